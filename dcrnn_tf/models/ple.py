"""PLE: stacked CGC levels of task-specific and shared experts."""

from typing import Any, Dict, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers import CGC
from dcrnn_tf.models.base import MultiTaskModel, flatten_fields


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class PLE(MultiTaskModel):
  """Progressive Layered Extraction (Tang et al., RecSys 2020).

  Field embeddings → flatten → `num_levels` `CGC` levels: at each level every task
  has `num_task_experts` experts of its own and a gate over them and the
  `num_shared_experts` shared experts; every level but the last also mixes a shared
  output (a gate over all experts) for the next level's shared experts → the last
  level's task outputs are the states → one `Tower` per task. Adding a task adds its
  experts and gate at every level (and widens the shared gates) and one tower.

  Example:

  ```python
  config, features = dcrnn_tf.data.synthetic.example_batch(rows=4)
  model = PLE(config, num_levels=2, num_shared_experts=2, num_task_experts=1)
  outputs = model(features)     # {"ctr": [4], "cvr": [4], "ctcvr": [4]}
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"] and outputs["ctcvr"].shape == [4]
  ```

  Args:
    feature_config: A `FeatureConfig` or its dict.
    embedding_dim: Field embedding size.
    num_levels: Number of extraction levels (1: a single CGC).
    num_shared_experts: Shared experts per level.
    num_task_experts: Experts of each task per level.
    expert_units: Widths of each expert's layers; the last is the state width.
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.
  """

  def __init__(self,
               feature_config,
               embedding_dim: int = 8,
               num_levels: int = 2,
               num_shared_experts: int = 2,
               num_task_experts: int = 1,
               expert_units: Sequence[int] = (64,),
               tower_units: Sequence[int] = (64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(feature_config, embedding_dim=embedding_dim, tower_units=tower_units,
                     dropout=dropout, **kwargs)
    if num_levels < 1:
      raise ValueError(f"PLE: num_levels must be >= 1, got {num_levels}.")
    self.num_levels = int(num_levels)
    self.num_shared_experts = int(num_shared_experts)
    self.num_task_experts = int(num_task_experts)
    self.expert_units = tuple(int(u) for u in expert_units)
    self.extraction_levels = [
        CGC(len(self.task_names), num_shared_experts=self.num_shared_experts,
            num_task_experts=self.num_task_experts, expert_units=self.expert_units,
            shared_output=level < self.num_levels - 1, name=f"level_{level}")
        for level in range(self.num_levels)]

  def task_states(self, embeddings, training=None):
    states = flatten_fields(embeddings)
    for level in self.extraction_levels:
      states = level(states)
    return dict(zip(self.task_names, states))

  def last_shared_weights(self):
    """The output layers of the last level's shared experts."""
    return [w for expert in self.extraction_levels[-1].shared_experts
            for w in expert.dense_layers[-1].trainable_weights]

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "num_levels": self.num_levels,
        "num_shared_experts": self.num_shared_experts,
        "num_task_experts": self.num_task_experts,
        "expert_units": list(self.expert_units),
    })
    return config
