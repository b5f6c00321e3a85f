"""TaskTransfer: hands a parent task's private state to a dependent task."""

from typing import Any, Dict, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class TaskTransfer(tf.keras.layers.Layer):
  """Maps a parent task's private state into a dependent task's input.

  `transfer(p) = activation(sg(p) W + b)`, where `sg` is the identity or, with
  `stop_gradient=True`, a stop-gradient, so that the dependent task reads the parent's
  state without pulling the parent's parameters towards its own loss. Works on states
  `[batch, units]` and on state sequences `[batch, steps, units]`.

  Example:

  ```python
  ctr_states = tf.random.normal([32, 3, 16])
  transfer = TaskTransfer(units=16, stop_gradient=True)
  cvr_context = transfer(ctr_states)
  assert cvr_context.shape == [32, 3, 16]
  ```

  Args:
    units: Width of the transferred state.
    stop_gradient: Whether to block gradients into the parent.
    activation: Activation of the map (default `tanh`).
    kernel_initializer: Initializer of `W`.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: The parent's private state(s), `[..., parent_units]`.

  Returns:
    A tensor `[..., units]`.
  """

  def __init__(self,
               units: int,
               stop_gradient: bool = False,
               activation: Union[str, Any] = "tanh",
               kernel_initializer: Union[str, tf.keras.initializers.Initializer] = (
                   "glorot_uniform"),
               **kwargs):
    super().__init__(**kwargs)
    if units < 1:
      raise ValueError(f"TaskTransfer: units must be >= 1, got {units}.")
    self.units = int(units)
    self.stop_gradient = bool(stop_gradient)
    self.activation = tf.keras.activations.get(activation)
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)

  def build(self, input_shape):
    width = int(tf.TensorShape(input_shape)[-1])
    self.kernel = self.add_weight(name="kernel", shape=(width, self.units),
                                  initializer=self.kernel_initializer)
    self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
    super().build(input_shape)

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    if self.stop_gradient:
      inputs = tf.stop_gradient(inputs)
    return self.activation(tf.tensordot(inputs, self.kernel, axes=1) + self.bias)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "units": self.units,
        "stop_gradient": self.stop_gradient,
        "activation": tf.keras.activations.serialize(self.activation),
        "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
    })
    return config
