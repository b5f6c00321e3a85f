"""PartialSharing: a shared cross RNN plus one small private cross RNN per task."""

from typing import Any, Dict, Mapping, Optional, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers.rnn_cross import RNNCross
from dcrnn_tf.layers.task_transfer import TaskTransfer


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class PartialSharing(tf.keras.layers.Layer):
  """DCRNN's partially shared state: `[s_t ‖ p_t^k]` for every task `k`.

  One shared `RNNCross` of `shared_units` computes the shared sub-state `s_t` once
  for all tasks. Each task `k` has a private `RNNCross` of `private_units` whose cell
  reads, beside its own cross term, the shared state `s_t` of the same step and, if the
  task depends on a parent, the parent's private state `p_t^parent` through a
  `TaskTransfer`:

      p_t^k = cell_k([x_t ⊙ (V_k p_{t-1}^k + c_k) ‖ s_t ‖ transfer(p_t^parent)], p_{t-1}^k)

  The output for task `k` is `[s_T ‖ p_T^k]`. `private_units=0` is hard sharing (every
  task gets `s_T`); `shared_units=0` is one separate model per task. Adding a task adds
  one private cell (and a transfer map if it has a parent), nothing else.

  Example:

  ```python
  block = PartialSharing(["ctr", "cvr"], shared_units=32, private_units=8,
                         depends_on={"cvr": "ctr"})
  states = block(tf.random.normal([16, 64]))
  assert states["ctr"].shape == states["cvr"].shape == [16, 40]
  ```

  Args:
    task_names: Task names, in order; a parent must come before its dependants.
    shared_units: Width of the shared state (0: no sharing).
    private_units: Width of each task's private state (0: hard sharing).
    depends_on: Dict from task name to its parent task's name.
    transfer_stop_gradient: Whether transfers block gradients into the parent.
    depth: Cross steps (for `cross_axis="depth"`).
    cell: `"simple"` (default), `"gru"` or `"lstm"`.
    cross_axis: `"depth"` or `"fields"`, as in `RNNCross`.
    rank: Optional rank of the low-rank cross weights.
    residual: Whether every cross step adds the previous state (see `RNNCross`).
    layer_norm: Whether every cross network layer-normalizes its states.
    kernel_regularizer: Regularizer of the cross weights.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: `[batch, k]` (`cross_axis="depth"`) or `[batch, fields, d]` (`"fields"`).
    training: Python boolean, passed to the cells.

  Returns:
    A dict from task name to its state `[batch, shared_units + private_units]`.
  """

  def __init__(self,
               task_names: Sequence[str],
               shared_units: int = 64,
               private_units: int = 16,
               depends_on: Optional[Mapping[str, str]] = None,
               transfer_stop_gradient: bool = False,
               depth: int = 2,
               cell: str = "simple",
               cross_axis: str = "depth",
               rank: Optional[int] = None,
               residual: bool = False,
               layer_norm: bool = False,
               kernel_regularizer=None,
               **kwargs):
    super().__init__(**kwargs)
    self.task_names = tuple(task_names)
    self.depends_on = dict(depends_on or {})
    if not self.task_names:
      raise ValueError("PartialSharing needs at least one task.")
    if len(set(self.task_names)) != len(self.task_names):
      raise ValueError(f"PartialSharing: task names must be unique, got {self.task_names}.")
    for child, parent in self.depends_on.items():
      if child not in self.task_names:
        raise ValueError(f"PartialSharing: depends_on names an unknown task {child!r}.")
      if parent not in self.task_names[:self.task_names.index(child)]:
        raise ValueError(f"PartialSharing: task {child!r} depends on {parent!r}, which "
                         "is not an earlier task.")
    if shared_units < 0 or private_units < 0 or shared_units + private_units == 0:
      raise ValueError("PartialSharing: shared_units and private_units must be >= 0 and "
                       f"not both 0, got {shared_units} and {private_units}.")
    self.shared_units = int(shared_units)
    self.private_units = int(private_units)
    self.transfer_stop_gradient = bool(transfer_stop_gradient)
    self.depth = int(depth)
    self.cell = cell
    self.cross_axis = cross_axis
    self.rank = rank
    self.residual = bool(residual)
    self.layer_norm = bool(layer_norm)
    self.kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)

  def cross_options(self) -> Dict[str, Any]:
    """The options, besides `units` and `name`, of every cross network the block builds:
    its configured `depth`, `cell`, `cross_axis`, `rank`, `residual`, `layer_norm` and
    `kernel_regularizer`, and `return_sequences=True` (the block reads every step)."""
    return {"depth": self.depth, "cell": self.cell, "cross_axis": self.cross_axis,
            "rank": self.rank, "return_sequences": True, "residual": self.residual,
            "layer_norm": self.layer_norm, "kernel_regularizer": self.kernel_regularizer}

  def make_cross(self, units: int, name: str, **options) -> RNNCross:
    """Creates the shared or a private cross network.

    `build` calls it once for the shared cross (`name="shared_cross"`) and once per task
    (`name="private_cross_<task>"`) with `options=self.cross_options()`, the block's
    configured cross options. Override it to build an `RNNCross` subclass; passing
    `**options` on keeps every option of the block (and any added later):

    ```python
    class MyCross(RNNCross):
      pass

    class MySharing(PartialSharing):
      def make_cross(self, units, name, **options):
        return MyCross(units, name=name, **options)

    block = MySharing(["ctr", "cvr"], shared_units=8, private_units=4, residual=True)
    block(tf.random.normal([2, 6]))
    assert isinstance(block.shared_cross, MyCross) and block.shared_cross.residual
    ```

    Args:
      units: Width of the cross network's state.
      name: The layer's name.
      **options: The other `RNNCross` arguments (see `cross_options`).

    Returns:
      An `RNNCross` whose call returns the states of every step.
    """
    return RNNCross(units, name=name, **options)

  def build(self, input_shape):
    options = self.cross_options()
    self.shared_cross = (self.make_cross(self.shared_units, "shared_cross", **options)
                         if self.shared_units else None)
    self.private_crosses = {}
    self.transfers = {}
    if self.private_units:
      for task in self.task_names:
        self.private_crosses[task] = self.make_cross(self.private_units,
                                                     f"private_cross_{task}", **options)
        if task in self.depends_on:
          self.transfers[task] = TaskTransfer(self.private_units,
                                              stop_gradient=self.transfer_stop_gradient,
                                              name=f"transfer_{task}")
    super().build(input_shape)

  def call(self, inputs: tf.Tensor, training=None) -> Dict[str, tf.Tensor]:
    return self.trace(inputs, training=training)["outputs"]

  def trace(self, inputs: tf.Tensor, training=None, with_transfer: bool = True,
            with_gates: bool = False) -> Dict[str, Any]:
    """The block's parts: `outputs` (what `call` returns), `shared` (the shared states
    `[batch, steps, shared_units]` or None), `private` and `transfers` (by task, the
    private states and the transferred parent states, `[batch, steps, units]`) and,
    `with_gates`, `gates` (by cross, `"shared"` or the task, `RNNCross.gate_openness`).
    `with_transfer=False` replaces every transfer by zeros (what the transfer adds)."""
    gates = {}

    def cross(layer, name, context):
      if with_gates:
        gates[name] = layer.gate_openness(inputs, context)
      return layer(inputs, context=context, training=training)

    shared = cross(self.shared_cross, "shared", None) if self.shared_cross else None
    private, transfers, outputs = {}, {}, {}
    for task in self.task_names:
      if not self.private_units:
        outputs[task] = shared[:, -1]
        continue
      context = [] if shared is None else [shared]
      if task in self.transfers:
        transfers[task] = self.transfers[task](private[self.depends_on[task]])
        context.append(transfers[task] if with_transfer else tf.zeros_like(transfers[task]))
      private[task] = cross(self.private_crosses[task], task,
                            tf.concat(context, axis=-1) if context else None)
      last = private[task][:, -1]
      outputs[task] = last if shared is None else tf.concat([shared[:, -1], last], axis=-1)
    return {"outputs": outputs, "shared": shared, "private": private,
            "transfers": transfers, "gates": gates}

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "task_names": list(self.task_names),
        "shared_units": self.shared_units,
        "private_units": self.private_units,
        "depends_on": dict(self.depends_on),
        "transfer_stop_gradient": self.transfer_stop_gradient,
        "depth": self.depth,
        "cell": self.cell,
        "cross_axis": self.cross_axis,
        "rank": self.rank,
        "residual": self.residual,
        "layer_norm": self.layer_norm,
        "kernel_regularizer": tf.keras.regularizers.serialize(self.kernel_regularizer),
    })
    return config
