"""Shared-Bottom: one MLP shared by every task (hard sharing)."""

from typing import Any, Dict, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers import MLP
from dcrnn_tf.models.base import MultiTaskModel, flatten_fields


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class SharedBottom(MultiTaskModel):
  """Hard sharing: every task's tower reads one shared MLP over the flat embeddings.

  Field embeddings `[batch, fields, dim]` → flatten → `MLP(bottom_units)` → the same
  state for every task → one `Tower` per task. Adding a task adds one tower.

  Example:

  ```python
  config, features = dcrnn_tf.data.synthetic.example_batch(rows=4)
  model = SharedBottom(config, bottom_units=(128, 64))
  outputs = model(features)     # {"ctr": [4], "cvr": [4], "ctcvr": [4]}
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"] and outputs["ctcvr"].shape == [4]
  ```

  Args:
    feature_config: A `FeatureConfig` or its dict.
    embedding_dim: Field embedding size.
    bottom_units: Widths of the shared MLP (empty: the towers read the embeddings).
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.
  """

  def __init__(self,
               feature_config,
               embedding_dim: int = 8,
               bottom_units: Sequence[int] = (128, 64),
               tower_units: Sequence[int] = (64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(feature_config, embedding_dim=embedding_dim, tower_units=tower_units,
                     dropout=dropout, **kwargs)
    self.bottom_units = tuple(int(u) for u in bottom_units)
    self.bottom = MLP(self.bottom_units, name="bottom")

  def task_states(self, embeddings, training=None):
    state = self.bottom(flatten_fields(embeddings))
    return {name: state for name in self.task_names}

  def last_shared_weights(self):
    return list(self.bottom.dense_layers[-1].trainable_weights) if self.bottom_units else []

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config["bottom_units"] = list(self.bottom_units)
    return config
