"""Initializer helpers shared by the layers."""

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf


def fresh(initializer: tf.keras.initializers.Initializer) -> tf.keras.initializers.Initializer:
  """A new instance of `initializer`, so that weights sharing a config differ.

  Keras 2 returns identical values when one unseeded initializer instance initializes
  several weights; each weight gets its own instance instead.
  """
  return tf.keras.initializers.get(tf.keras.initializers.serialize(initializer))
