"""RNNCross: a cross network whose layers are the steps of a recurrent cell."""

from typing import Any, Dict, Optional, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers._initializers import fresh

CELLS = {
    "gru": tf.keras.layers.GRUCell,
    "lstm": tf.keras.layers.LSTMCell,
    "simple": tf.keras.layers.SimpleRNNCell,
}
CROSS_AXES = ("depth", "fields")


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class RNNCross(tf.keras.layers.Layer):
  """Crosses features with a recurrent cell, in the spirit of DCN-v2's cross layer.

  DCN-v2 computes `x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l`, a recurrence over depth.
  `RNNCross` ties `W` across steps, feeds the cross term to a recurrent cell and keeps
  the cell's state as the running result:

      h_t = cell(x_t ⊙ (W h_{t-1} + b) [‖ context_t], h_{t-1}),   h_0 = 0,

  so every step raises the order of the feature interaction by one, a gated cell (GRU,
  LSTM) decides how much of each new cross to admit, and the parameter count does not
  grow with the number of steps. `W` maps the state (`units`) to the input width; with
  `rank`, `W = U V` is low-rank (`units × rank` and `rank × input width`). `b` starts
  at one, so the first step sees `x_t` itself.

  The cell's weights are those of a Keras `GRUCell`, `LSTMCell` or `SimpleRNNCell`
  (`self.cell`, in its layout and gate order), but the step is computed here, with the
  gates of each projection in one matmul as in Keras' `implementation=2`, the context's
  part of the input projection apart from the cross term's (no concatenation), and the
  first step skipping the terms of the zero state.

  Two optional changes of the recurrence, both off by default: `residual=True` adds the
  previous state to each step's output, `h_t = h_{t-1} + cell(…)`, like the identity
  term of DCN's `x_{l+1} = … + x_l`; `layer_norm=True` normalizes every state with one
  `LayerNormalization` tied across steps (as `W` is), `h_t = LN(…)`, applied after the
  residual.

  Two readings of "the sequence" `x_1 … x_T`:

  * `cross_axis="depth"`: the input is one vector `x0` `[batch, k]`, used at every
    step (`x_t = x0`), for `depth` steps.
  * `cross_axis="fields"`: the input is the field embeddings `[batch, fields, d]` and
    step `i` reads field `i` (`x_i = e_i`), so the state carries the crosses of every
    field seen so far; there are as many steps as fields and `depth` is not used.

  Example:

  ```python
  x0 = tf.random.normal([32, 64])
  cross = RNNCross(units=32, depth=3, cell="gru")
  h = cross(x0)                       # the last state
  assert h.shape == [32, 32]
  fields = tf.random.normal([32, 10, 8])
  h = RNNCross(units=32, cross_axis="fields")(fields)
  assert h.shape == [32, 32]
  ```

  Args:
    units: Size of the cell's state.
    depth: Number of cross steps for `cross_axis="depth"`.
    cell: `"simple"` (default; a tanh RNN), `"gru"` or `"lstm"`.
    cross_axis: `"depth"` or `"fields"` (see above).
    rank: If set, the rank of the low-rank cross weight `W = U V`.
    return_sequences: If true, return every step's state, `[batch, steps, units]`.
    residual: Whether each step adds the previous state to its output.
    layer_norm: Whether each state is layer-normalized (one normalization for all
      steps).
    kernel_initializer: Initializer of the cross weight(s).
    kernel_regularizer: Regularizer of the cross weight(s).
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: `[batch, k]` for `cross_axis="depth"`, `[batch, fields, d]` for
      `"fields"`.
    context: Optional `[batch, steps, c]` tensor appended to the cell's input at each
      step (e.g. another cross network's states), not crossed.
    training: Python boolean, passed to the cell.

  Returns:
    The last state `[batch, units]`, or all states `[batch, steps, units]` when
    `return_sequences=True`.
  """

  def __init__(self,
               units: int,
               depth: int = 2,
               cell: str = "simple",
               cross_axis: str = "depth",
               rank: Optional[int] = None,
               return_sequences: bool = False,
               residual: bool = False,
               layer_norm: bool = False,
               kernel_initializer: Union[str, tf.keras.initializers.Initializer] = (
                   "glorot_uniform"),
               kernel_regularizer: Union[str, None, tf.keras.regularizers.Regularizer] = None,
               **kwargs):
    super().__init__(**kwargs)
    if units < 1:
      raise ValueError(f"RNNCross: units must be >= 1, got {units}.")
    if depth < 1:
      raise ValueError(f"RNNCross: depth must be >= 1, got {depth}.")
    if cell not in CELLS:
      raise ValueError(f"RNNCross: cell must be one of {sorted(CELLS)}, got {cell!r}.")
    if cross_axis not in CROSS_AXES:
      raise ValueError(f"RNNCross: cross_axis must be one of {CROSS_AXES}, got {cross_axis!r}.")
    if rank is not None and rank < 1:
      raise ValueError(f"RNNCross: rank must be >= 1 or None, got {rank}.")
    self.units = int(units)
    self.depth = int(depth)
    self.cell_type = cell
    self.cross_axis = cross_axis
    self.rank = None if rank is None else int(rank)
    self.return_sequences = bool(return_sequences)
    self.residual = bool(residual)
    self.layer_norm = bool(layer_norm)
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    self.kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    input_shape = tf.TensorShape(input_shape)
    expected_rank = 2 if self.cross_axis == "depth" else 3
    if input_shape.rank != expected_rank:
      raise ValueError(f"RNNCross(cross_axis={self.cross_axis!r}) expects inputs of rank "
                       f"{expected_rank}, got shape {input_shape}.")
    width = int(input_shape[-1])
    if self.rank is None:
      self.cross_kernel = self.add_weight(
          name="cross_kernel", shape=(self.units, width),
          initializer=fresh(self.kernel_initializer), regularizer=self.kernel_regularizer)
    else:
      self.cross_kernel_u = self.add_weight(
          name="cross_kernel_u", shape=(self.units, self.rank),
          initializer=fresh(self.kernel_initializer), regularizer=self.kernel_regularizer)
      self.cross_kernel_v = self.add_weight(
          name="cross_kernel_v", shape=(self.rank, width),
          initializer=fresh(self.kernel_initializer), regularizer=self.kernel_regularizer)
    self.cross_bias = self.add_weight(name="cross_bias", shape=(width,), initializer="ones")
    # The Keras cell holds the step's weights in its layout (kernel, recurrent_kernel,
    # bias), so checkpoints of either are interchangeable; the step itself is computed
    # here (see `_CELL_STEPS`). Its input width depends on the optional context, so its
    # weights are created on the first call.
    self.cell = CELLS[self.cell_type](self.units, name="cell")
    self.state_norm = None
    if self.layer_norm:
      self.state_norm = tf.keras.layers.LayerNormalization(name="state_norm")
      self.state_norm.build(tf.TensorShape([None, self.units]))
    super().build(input_shape)

  def _cross_weight(self, state: tf.Tensor) -> tf.Tensor:
    if self.rank is None:
      return tf.matmul(state, self.cross_kernel) + self.cross_bias
    return tf.matmul(tf.matmul(state, self.cross_kernel_u), self.cross_kernel_v) + self.cross_bias

  def call(self, inputs: tf.Tensor, context: Optional[tf.Tensor] = None, training=None):
    del training  # The cells have no dropout.
    outputs, _ = self.run(inputs, context)
    if self.return_sequences:
      return tf.stack(outputs, axis=1)
    return outputs[-1]

  def gate_openness(self, inputs: tf.Tensor,
                    context: Optional[tf.Tensor] = None) -> Optional[tf.Tensor]:
    """How much of each step's new candidate the gated cell admits, `[batch, steps,
    units]`: `1 - z` for the GRU (its update gate `z` keeps the old state), the input
    gate for the LSTM; None for the simple cell, which has no gates. For a built layer."""
    _, gates = self.run(inputs, context)
    return None if gates[0] is None else tf.stack(gates, axis=1)

  def run(self, inputs: tf.Tensor, context: Optional[tf.Tensor] = None):
    """The steps: every step's state and gate openness (None for the simple cell)."""
    steps = self.depth if self.cross_axis == "depth" else inputs.shape[1]
    width = int(inputs.shape[-1])
    if not self.cell.built:
      context_width = 0 if context is None else int(context.shape[-1])
      with tf.init_scope():  # Variables are created eagerly, as Keras builds layers.
        self.cell.build(tf.TensorShape([None, width + context_width]))
    cross_kernel, context_kernel = self.cell.kernel[:width], self.cell.kernel[width:]
    step = _CELL_STEPS[self.cell_type]
    # The context's part of each step's input projection, apart from the cross term's.
    context_terms = (None if context is None else
                     [tf.matmul(c, context_kernel) for c in tf.unstack(context, axis=1)])
    states = None
    outputs, gates = [], []
    for t in range(steps):
      x_t = inputs if self.cross_axis == "depth" else inputs[:, t]
      # h_0 = 0: the first step's cross weight is the bias alone, and the cell skips the
      # terms of a zero state.
      cross = x_t * (self.cross_bias if states is None else self._cross_weight(states[0]))
      projected = tf.matmul(cross, cross_kernel)
      if context_terms is not None:
        projected += context_terms[t]
      previous = states
      states, gate = step(self.cell, projected, states)
      if self.residual and previous is not None:
        states[0] += previous[0]
      if self.state_norm is not None:
        states[0] = self.state_norm(states[0])
      outputs.append(states[0])
      gates.append(gate)
    return outputs, gates

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "units": self.units,
        "depth": self.depth,
        "cell": self.cell_type,
        "cross_axis": self.cross_axis,
        "rank": self.rank,
        "return_sequences": self.return_sequences,
        "residual": self.residual,
        "layer_norm": self.layer_norm,
        "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
        "kernel_regularizer": tf.keras.regularizers.serialize(self.kernel_regularizer),
    })
    return config


# One step of each cell, computed from the Keras cell's weights (its layout and gate
# order), with the input projection `x W_x` already done; `states` is None at the first
# step (a zero state, whose terms are skipped). Each returns the new states, output first,
# and how open the cell's gate to the new candidate is (None for the simple cell).


def _gru_step(cell: tf.keras.layers.GRUCell, projected: tf.Tensor, states):
  input_bias, recurrent_bias = tf.unstack(cell.bias)
  x_z, x_r, x_h = tf.split(projected + input_bias, 3, axis=-1)
  if states is None:
    r_z, r_r, r_h = tf.split(recurrent_bias, 3)
  else:
    r_z, r_r, r_h = tf.split(tf.matmul(states[0], cell.recurrent_kernel) + recurrent_bias, 3,
                             axis=-1)
  update = tf.sigmoid(x_z + r_z)
  candidate = tf.tanh(x_h + tf.sigmoid(x_r + r_r) * r_h)
  if states is None:
    return [(1.0 - update) * candidate], 1.0 - update
  return [update * states[0] + (1.0 - update) * candidate], 1.0 - update


def _lstm_step(cell: tf.keras.layers.LSTMCell, projected: tf.Tensor, states):
  z = projected + cell.bias
  if states is not None:
    z += tf.matmul(states[0], cell.recurrent_kernel)
  z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
  input_gate = tf.sigmoid(z_i)
  carry = input_gate * tf.tanh(z_c)
  if states is not None:
    carry += tf.sigmoid(z_f) * states[1]
  return [tf.sigmoid(z_o) * tf.tanh(carry), carry], input_gate


def _simple_step(cell: tf.keras.layers.SimpleRNNCell, projected: tf.Tensor, states):
  z = projected + cell.bias
  if states is not None:
    z += tf.matmul(states[0], cell.recurrent_kernel)
  return [tf.tanh(z)], None


_CELL_STEPS = {"gru": _gru_step, "lstm": _lstm_step, "simple": _simple_step}
