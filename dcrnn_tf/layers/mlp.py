"""MLP: the stack of dense layers of every expert, bottom, task network and tower."""

from typing import Any, Dict, Sequence, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MLP(tf.keras.layers.Layer):
  """A stack of dense layers, each optionally followed by dropout: an expert, a shared
  bottom, a task's network or a tower's hidden layers.

  Example:

  ```python
  mlp = MLP(units=(128, 64), dropout=0.1)
  h = mlp(tf.random.normal([32, 144]), training=True)
  assert h.shape == [32, 64]
  ```

  Args:
    units: Widths of the layers; empty is the identity.
    activation: Activation of every layer.
    dropout: Dropout rate after each layer, during training.
    kernel_regularizer: Regularizer of the kernels.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: `[batch, width]`.
    training: Python boolean, enables dropout.

  Returns:
    `[batch, units[-1]]` (the inputs when `units` is empty).
  """

  def __init__(self,
               units: Sequence[int] = (64,),
               activation: Union[str, Any] = "relu",
               dropout: float = 0.0,
               kernel_regularizer: Union[str, None, tf.keras.regularizers.Regularizer] = None,
               **kwargs):
    super().__init__(**kwargs)
    self.units = tuple(int(u) for u in units)
    if any(u < 1 for u in self.units):
      raise ValueError(f"MLP: units must be >= 1, got {self.units}.")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout}.")
    self.activation = tf.keras.activations.get(activation)
    self.dropout = float(dropout)
    self.kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    self.dense_layers = [tf.keras.layers.Dense(units, activation=self.activation,
                                               kernel_regularizer=self.kernel_regularizer,
                                               name=f"dense_{i}")
                         for i, units in enumerate(self.units)]
    self.dropout_layer = (tf.keras.layers.Dropout(self.dropout, name="dropout")
                          if self.dropout else None)
    super().build(input_shape)

  def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
    x = inputs
    for layer in self.dense_layers:
      x = layer(x)
      if self.dropout_layer is not None:
        x = self.dropout_layer(x, training=training)
    return x

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "units": list(self.units),
        "activation": tf.keras.activations.serialize(self.activation),
        "dropout": self.dropout,
        "kernel_regularizer": tf.keras.regularizers.serialize(self.kernel_regularizer),
    })
    return config
