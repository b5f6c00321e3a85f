"""DCRNN: RNN feature crossing with partially shared task states."""

from typing import Any, Dict, Optional

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers import MLP, PartialSharing
from dcrnn_tf.models.base import MultiTaskModel, flatten_fields


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class DCRNN(MultiTaskModel):
  """The DCRNN multi-task ranking model (Zhou & Yu, 2023, as reconstructed here).

  Field embeddings → (`cross_axis="depth"`: flatten and a linear map to `cross_dim`
  features `x0`, or the flattened embeddings themselves with `cross_dim=0`; `"fields"`:
  the field sequence itself) → `PartialSharing` (shared and private `RNNCross` cells,
  task transfer along `depends_on`) → one `Tower` per task. Two optional additions widen
  what the towers read, beside each task's state: `x0` itself (`x0_skip`), and the output
  of a deep MLP on the flattened embeddings computed beside the cross (`parallel_units`,
  DCN-v2's "parallel" form), both shared by all tasks.
  For a funnel task the model also outputs `p(parent) * p(task)`. A subclass may set
  `partial_sharing_class` to a `PartialSharing` subclass (see
  `examples/custom_layer.py`).

  Example:

  ```python
  config, features = dcrnn_tf.data.synthetic.example_batch(rows=4)
  model = DCRNN(config, shared_units=64, private_units=16)
  outputs = model(features)     # {"ctr": [4], "cvr": [4], "ctcvr": [4]}
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"] and outputs["ctcvr"].shape == [4]
  ```

  Args:
    feature_config: A `FeatureConfig` or its dict.
    embedding_dim: Field embedding size.
    cross_axis: `"depth"` or `"fields"` (see `RNNCross`).
    cross_dim: Width of `x0` for `cross_axis="depth"` (0: no projection, `x0` is the
      flattened embeddings).
    cell: `"simple"` (default), `"gru"` or `"lstm"`.
    depth: Cross steps for `cross_axis="depth"`.
    shared_units: Width of the shared state (0: one model per task).
    private_units: Width of each private state (0: hard sharing).
    rank: Optional rank of the low-rank cross weights.
    transfer_stop_gradient: Whether task transfer blocks gradients into the parent.
    residual: Whether every cross step adds the previous state (see `RNNCross`).
    layer_norm: Whether the cross networks layer-normalize their states (default on:
      the best state variant by validation AUC in the census benchmark's `state`
      ablation; the layers' own default stays off).
    x0_skip: Whether the towers also read `x0` (`cross_axis="depth"`).
    parallel_units: Widths of the deep MLP beside the cross whose output the towers
      also read (empty: none).
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.
  """

  partial_sharing_class = PartialSharing

  def __init__(self,
               feature_config,
               embedding_dim: int = 8,
               cross_axis: str = "depth",
               cross_dim: int = 64,
               cell: str = "simple",
               depth: int = 2,
               shared_units: int = 64,
               private_units: int = 16,
               rank: Optional[int] = None,
               transfer_stop_gradient: bool = False,
               residual: bool = False,
               layer_norm: bool = True,
               x0_skip: bool = False,
               parallel_units=(),
               tower_units=(64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(feature_config, embedding_dim=embedding_dim, tower_units=tower_units,
                     dropout=dropout, **kwargs)
    self.cross_axis = cross_axis
    self.cross_dim = int(cross_dim)
    self.cell = cell
    self.depth = int(depth)
    self.shared_units = int(shared_units)
    self.private_units = int(private_units)
    self.rank = rank
    self.transfer_stop_gradient = bool(transfer_stop_gradient)
    self.residual = bool(residual)
    self.layer_norm = bool(layer_norm)
    self.x0_skip = bool(x0_skip)
    self.parallel_units = tuple(int(u) for u in parallel_units)
    if self.cross_dim < 0:
      raise ValueError(f"DCRNN: cross_dim must be >= 0, got {cross_dim}.")
    if self.x0_skip and cross_axis != "depth":
      raise ValueError("DCRNN: x0_skip needs cross_axis='depth' (an x0 to skip).")
    self.x0_projection = (tf.keras.layers.Dense(self.cross_dim, name="x0_projection")
                          if cross_axis == "depth" and self.cross_dim else None)
    self.parallel = MLP(self.parallel_units, name="parallel") if self.parallel_units else None
    self.partial_sharing = self.partial_sharing_class(
        self.task_names,
        shared_units=shared_units,
        private_units=private_units,
        depends_on={t.name: t.depends_on for t in self.feature_config.tasks if t.depends_on},
        transfer_stop_gradient=transfer_stop_gradient,
        depth=depth,
        cell=cell,
        cross_axis=cross_axis,
        rank=rank,
        residual=residual,
        layer_norm=layer_norm,
        name="partial_sharing")

  def cross_input(self, embeddings: tf.Tensor) -> tf.Tensor:
    """What the cross reads: `x0` `[batch, cross_dim]` (`cross_axis="depth"`), or the
    field embeddings themselves (`"fields"`)."""
    if self.cross_axis == "fields":
      return embeddings
    flat = flatten_fields(embeddings)
    return flat if self.x0_projection is None else self.x0_projection(flat)

  def task_states(self, embeddings, training=None):
    cross_input = self.cross_input(embeddings)
    return self.tower_inputs(self.partial_sharing(cross_input, training=training),
                             cross_input, embeddings)

  def tower_inputs(self, states, cross_input: tf.Tensor, embeddings: tf.Tensor):
    """What each tower reads: the task's block state and, if set, `x0` and the
    parallel MLP's output."""
    extra = ([cross_input] if self.x0_skip else []) + (
        [self.parallel(flatten_fields(embeddings))] if self.parallel is not None else [])
    if not extra:
      return states
    return {task: tf.concat([state] + extra, axis=-1) for task, state in states.items()}

  def last_shared_weights(self):
    """The shared cross (its cross weights and cell), or without one the x0 projection."""
    if self.partial_sharing.shared_cross is not None:
      return list(self.partial_sharing.shared_cross.trainable_weights)
    return list(self.x0_projection.trainable_weights) if self.x0_projection else []

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "cross_axis": self.cross_axis,
        "cross_dim": self.cross_dim,
        "cell": self.cell,
        "depth": self.depth,
        "shared_units": self.shared_units,
        "private_units": self.private_units,
        "rank": self.rank,
        "transfer_stop_gradient": self.transfer_stop_gradient,
        "residual": self.residual,
        "layer_norm": self.layer_norm,
        "x0_skip": self.x0_skip,
        "parallel_units": list(self.parallel_units),
    })
    return config
