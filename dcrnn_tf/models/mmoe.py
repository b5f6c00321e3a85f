"""MMoE: shared experts mixed by one gate per task (soft sharing)."""

from typing import Any, Dict, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers import CGC
from dcrnn_tf.models.base import MultiTaskModel, flatten_fields


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MMoE(MultiTaskModel):
  """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

  Field embeddings → flatten → `num_experts` shared expert MLPs → per task, a softmax
  gate over the experts reading the same input → the gated sum is the task's state →
  one `Tower` per task. The block is a `CGC` with shared experts only. Adding a task
  adds one gate and one tower.

  Example:

  ```python
  config, features = dcrnn_tf.data.synthetic.example_batch(rows=4)
  model = MMoE(config, num_experts=4, expert_units=(64,))
  outputs = model(features)     # {"ctr": [4], "cvr": [4], "ctcvr": [4]}
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"] and outputs["ctcvr"].shape == [4]
  ```

  Args:
    feature_config: A `FeatureConfig` or its dict.
    embedding_dim: Field embedding size.
    num_experts: Number of shared experts.
    expert_units: Widths of each expert's layers; the last is the state width.
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.
  """

  def __init__(self,
               feature_config,
               embedding_dim: int = 8,
               num_experts: int = 4,
               expert_units: Sequence[int] = (64,),
               tower_units: Sequence[int] = (64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(feature_config, embedding_dim=embedding_dim, tower_units=tower_units,
                     dropout=dropout, **kwargs)
    self.num_experts = int(num_experts)
    self.expert_units = tuple(int(u) for u in expert_units)
    self.experts = CGC(len(self.task_names), num_shared_experts=self.num_experts,
                       num_task_experts=0, expert_units=self.expert_units, name="experts")

  def task_states(self, embeddings, training=None):
    states = self.experts(
        flatten_fields(embeddings))
    return dict(zip(self.task_names, states))

  def last_shared_weights(self):
    """The output layers of the shared experts."""
    return [w for expert in self.experts.shared_experts
            for w in expert.dense_layers[-1].trainable_weights]

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "num_experts": self.num_experts,
        "expert_units": list(self.expert_units),
    })
    return config
