r"""Subclassing a dcrnn_tf layer, training a model with it, saving and reloading it.

  python examples/custom_layer.py --rows=20000

`NormalizedRNNCross` extends `RNNCross` with a layer normalization of every state;
`NormalizedPartialSharing` makes DCRNN's partial-sharing block use it through the
`make_cross` hook, which receives the block's configured cross options to pass on;
`NormalizedDCRNN` uses that block through `partial_sharing_class`. All three are
registered for serialization, so the trained model saves and reloads like any Keras
model.
"""

import os
import tempfile

from absl import app
from absl import flags

import dcrnn_tf  # Selects Keras 2 before TensorFlow loads.
import numpy as np
import tensorflow as tf

from dcrnn_tf import objectives
from dcrnn_tf.data import pipeline, scan, synthetic

flags.DEFINE_integer("rows", 20_000, "Training rows of synthetic data.")


@tf.keras.utils.register_keras_serializable(package="examples")
class NormalizedRNNCross(dcrnn_tf.RNNCross):
  """`RNNCross` whose states are layer-normalized."""

  def build(self, input_shape):
    self.norm = tf.keras.layers.LayerNormalization(name="norm")
    super().build(input_shape)

  def call(self, inputs, context=None, training=None):
    return self.norm(super().call(inputs, context=context, training=training))


@tf.keras.utils.register_keras_serializable(package="examples")
class NormalizedPartialSharing(dcrnn_tf.PartialSharing):
  """`PartialSharing` built from `NormalizedRNNCross` layers."""

  def make_cross(self, units, name, **options):
    # `options` are the block's configured cross options (depth, cell, residual, ...).
    return NormalizedRNNCross(units, name=name, **options)


@tf.keras.utils.register_keras_serializable(package="examples")
class NormalizedDCRNN(dcrnn_tf.DCRNN):
  """DCRNN with the normalized partial-sharing block."""

  partial_sharing_class = NormalizedPartialSharing


def train_save_reload(rows: int, workdir: str) -> float:
  """Trains `NormalizedDCRNN`, saves it, reloads it; returns the largest difference."""
  raw_config = synthetic.write_dataset(os.path.join(workdir, "data"), train_rows=rows,
                                       eval_rows=1000)
  train_path = os.path.join(workdir, "data", "train.tfrecord.gz")
  # Learn vocabularies and numeric statistics from the training rows.
  config = scan.prepare(raw_config, scan.scan(train_path, raw_config, learn=True)[1])
  dataset = pipeline.make_dataset(
      train_path, config, batch_size=512,
      transform=lambda f, l: (f, objectives.make_targets(l, config)))
  model = NormalizedDCRNN(config, shared_units=32, private_units=8)
  objectives.compile_model(model, config)
  model.fit(dataset, epochs=1, verbose=2)
  path = os.path.join(workdir, "model.keras")
  model.save(path)
  reloaded = tf.keras.models.load_model(path)
  features = next(iter(pipeline.make_dataset(
      os.path.join(workdir, "data", "eval.tfrecord.gz"), config, batch_size=1000,
      with_labels=False)))
  before, after = model.predict(features, verbose=0), reloaded.predict(features, verbose=0)
  assert isinstance(reloaded.partial_sharing.shared_cross, NormalizedRNNCross)
  return max(float(np.abs(before[k] - after[k]).max()) for k in before)


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as workdir:
    difference = train_save_reload(flags.FLAGS.rows, workdir)
  print(f"Reloaded model's largest prediction difference: {difference}")


if __name__ == "__main__":
  app.run(main)
