"""Single-task baseline: one MLP per task over the shared embeddings."""

from typing import Any, Dict, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers import MLP
from dcrnn_tf.models.base import MultiTaskModel, flatten_fields


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class SingleTask(MultiTaskModel):
  """One separate network per task; the tasks share only the `FeatureEncoder`.

  Field embeddings → flatten → per task, `MLP(hidden_units)` → its `Tower`. Adding a
  task adds a whole network (MLP and tower). Each task trains on its own label: a
  funnel stage (cvr) on the rows where the parent's label is 1, with no loss on the
  funnel output (`entire_space = False`; `ESMM` is the same networks trained over the
  entire space).

  Example:

  ```python
  config, features = dcrnn_tf.data.synthetic.example_batch(rows=4)
  model = SingleTask(config, hidden_units=(128, 64))
  outputs = model(features)     # {"ctr": [4], "cvr": [4], "ctcvr": [4]}
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"] and outputs["ctcvr"].shape == [4]
  ```

  Args:
    feature_config: A `FeatureConfig` or its dict.
    embedding_dim: Field embedding size.
    hidden_units: Widths of each task's MLP (empty: the towers read the embeddings).
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.
  """

  entire_space = False

  def __init__(self,
               feature_config,
               embedding_dim: int = 8,
               hidden_units: Sequence[int] = (128, 64),
               tower_units: Sequence[int] = (64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(feature_config, embedding_dim=embedding_dim, tower_units=tower_units,
                     dropout=dropout, **kwargs)
    self.hidden_units = tuple(int(u) for u in hidden_units)
    self.networks = {name: MLP(self.hidden_units, name=f"mlp_{name}")
                     for name in self.task_names}

  def task_states(self, embeddings, training=None):
    flat = flatten_fields(embeddings)
    return {name: self.networks[name](flat) for name in self.task_names}

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config["hidden_units"] = list(self.hidden_units)
    return config
