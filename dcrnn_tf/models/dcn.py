"""DCN: one DCN-v2 network (TFRS cross layers and a deep MLP) per task."""

from typing import Any, Dict, Optional, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf
import tensorflow_recommenders as tfrs

from dcrnn_tf.layers import MLP
from dcrnn_tf.models.base import MultiTaskModel, flatten_fields


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class DCN(MultiTaskModel):
  """Deep & Cross Network v2 (Wang et al., WWW 2021), one per task.

  Field embeddings → flatten → `x0` → per task, `cross_layers` TFRS
  `tfrs.layers.dcn.Cross` layers (`x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l`, with `W_l`
  of rank `cross_rank`) stacked with `MLP(deep_units)` → its `Tower`. The tasks share
  only the `FeatureEncoder`; adding a task adds a whole network. It is the untied,
  non-recurrent cross network that DCRNN's `RNNCross` reworks.

  Example:

  ```python
  config, features = dcrnn_tf.data.synthetic.example_batch(rows=4)
  model = DCN(config, cross_layers=2, cross_rank=32, deep_units=(64,))
  outputs = model(features)     # {"ctr": [4], "cvr": [4], "ctcvr": [4]}
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"] and outputs["ctcvr"].shape == [4]
  ```

  Args:
    feature_config: A `FeatureConfig` or its dict.
    embedding_dim: Field embedding size.
    cross_layers: Number of cross layers per task.
    cross_rank: Rank of each cross weight `W = U V` (TFRS `projection_dim`); `None`
      for full rank.
    deep_units: Widths of the deep MLP after the cross layers (empty: none).
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.
  """

  def __init__(self,
               feature_config,
               embedding_dim: int = 8,
               cross_layers: int = 2,
               cross_rank: Optional[int] = 32,
               deep_units: Sequence[int] = (64,),
               tower_units: Sequence[int] = (64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(feature_config, embedding_dim=embedding_dim, tower_units=tower_units,
                     dropout=dropout, **kwargs)
    if cross_layers < 0:
      raise ValueError(f"DCN: cross_layers must be >= 0, got {cross_layers}.")
    if cross_rank is not None and cross_rank < 1:
      raise ValueError(f"DCN: cross_rank must be >= 1 or None, got {cross_rank}.")
    self.cross_layers = int(cross_layers)
    self.cross_rank = None if cross_rank is None else int(cross_rank)
    self.deep_units = tuple(int(u) for u in deep_units)
    self.crosses = {name: [tfrs.layers.dcn.Cross(projection_dim=self.cross_rank,
                                                 name=f"cross_{name}_{i}")
                           for i in range(self.cross_layers)]
                    for name in self.task_names}
    self.deep = {name: MLP(self.deep_units, name=f"deep_{name}") for name in self.task_names}

  def task_states(self, embeddings, training=None):
    x0 = flatten_fields(embeddings)
    states = {}
    for name in self.task_names:
      x = x0
      for cross in self.crosses[name]:
        x = cross(x0, x)
      states[name] = self.deep[name](x)
    return states

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "cross_layers": self.cross_layers,
        "cross_rank": self.cross_rank,
        "deep_units": list(self.deep_units),
    })
    return config
