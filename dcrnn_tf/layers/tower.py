"""Tower: a task's MLP and its head (a probability, or a number for a regression)."""

from typing import Any, Dict, Sequence, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers.mlp import MLP

PROBABILITY = "probability"
LINEAR = "linear"
NONNEGATIVE = "nonnegative"
EXPM1 = "expm1"
HEADS = (PROBABILITY, LINEAR, NONNEGATIVE, EXPM1)
# The largest value `expm1` is taken of: expm1(80) = 5.5e34, finite in float32.
_MAX_LOG1P = 80.0


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class Tower(tf.keras.layers.Layer):
  """An `MLP` over a task's state ending in one unit `z`, whose `head` makes it a
  probability per row (`sigmoid(z)`) or, for a regression, a number: `z` (`linear`),
  `softplus(z)` (`nonnegative`) or `expm1(min(softplus(z), 80))` (`expm1`: the
  prediction of a task trained on `log1p` of its label, in the label's units).

  Example:

  ```python
  tower = Tower(hidden_units=(64, 32), dropout=0.1)
  p = tower(tf.random.normal([32, 80]))
  assert p.shape == [32] and bool(tf.reduce_all((p > 0) & (p < 1)))
  seconds = Tower(hidden_units=(16,), head="expm1")(tf.random.normal([32, 80]))
  assert bool(tf.reduce_all(seconds >= 0))
  ```

  Args:
    hidden_units: Widths of the hidden layers (may be empty: a logistic head).
    activation: Activation of the hidden layers.
    dropout: Dropout rate after each hidden layer, during training.
    kernel_regularizer: Regularizer of the kernels.
    head: `"probability"`, `"linear"`, `"nonnegative"` or `"expm1"` (see above).
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: `[batch, width]`.
    training: Python boolean, enables dropout.

  Returns:
    Probabilities, or regression predictions, `[batch]` (float32).
  """

  def __init__(self,
               hidden_units: Sequence[int] = (64, 32),
               activation: Union[str, Any] = "relu",
               dropout: float = 0.0,
               kernel_regularizer: Union[str, None, tf.keras.regularizers.Regularizer] = None,
               head: str = PROBABILITY,
               **kwargs):
    super().__init__(**kwargs)
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"Tower: dropout must be in [0, 1), got {dropout}.")
    if head not in HEADS:
      raise ValueError(f"Tower: head must be one of {list(HEADS)}, got {head!r}.")
    self.head = head
    self.hidden_units = tuple(int(u) for u in hidden_units)
    self.activation = tf.keras.activations.get(activation)
    self.dropout = float(dropout)
    self.kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    self.hidden = MLP(self.hidden_units, activation=self.activation, dropout=self.dropout,
                      kernel_regularizer=self.kernel_regularizer, name="hidden")
    self.logit = tf.keras.layers.Dense(1, kernel_regularizer=self.kernel_regularizer,
                                       name="logit")
    super().build(input_shape)

  def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
    unit = tf.squeeze(tf.cast(self.logit(self.hidden(inputs, training=training)), tf.float32),
                      axis=-1)
    if self.head == PROBABILITY:
      return tf.sigmoid(unit)
    if self.head == NONNEGATIVE:
      return tf.nn.softplus(unit)
    if self.head == EXPM1:
      return tf.math.expm1(tf.minimum(tf.nn.softplus(unit), _MAX_LOG1P))
    return unit

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "hidden_units": list(self.hidden_units),
        "activation": tf.keras.activations.serialize(self.activation),
        "dropout": self.dropout,
        "kernel_regularizer": tf.keras.regularizers.serialize(self.kernel_regularizer),
        "head": self.head,
    })
    return config
