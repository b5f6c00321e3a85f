"""Building, restoring and training a model with checkpoints in a model directory."""

import os
from typing import Any, Dict, Optional

from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import models
from dcrnn_tf import training
from dcrnn_tf.data import pipeline
from dcrnn_tf.features import FeatureConfig

CHECKPOINTS = "checkpoints"
TRAINING_LOG = "training_log.csv"


def dummy_features(feature_config: FeatureConfig) -> Dict[str, tf.Tensor]:
  """One row of zeros per feature, to create a model's weights."""
  return {name: tf.zeros([1], spec.dtype)
          for name, spec in pipeline.feature_tensor_specs(feature_config).items()}


class EpochCheckpoint(tf.keras.callbacks.Callback):
  """Saves model, optimizer and epoch count at the end of each epoch."""

  def __init__(self, checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager):
    super().__init__()
    self.checkpoint = checkpoint
    self.manager = manager

  def on_epoch_end(self, epoch, logs=None):
    self.checkpoint.epoch.assign(epoch + 1)
    path = self.manager.save(checkpoint_number=epoch + 1)
    logging.info("Saved checkpoint %s", path)


class Trainer:
  """A model, its optimizer and its checkpoints in `model_dir`.

  Creating a `Trainer` builds the model and restores the latest checkpoint of
  `model_dir`, if any (model weights, optimizer state and the number of epochs done).

  Args:
    model_name: Registered model name (see `dcrnn_tf.models.MODELS`).
    model_options: Keyword arguments of the model.
    feature_config: Features and tasks.
    model_dir: Directory of the checkpoints and the training log.
    learning_rate: Adam learning rate.
    keep_checkpoints: How many checkpoints to keep.
  """

  def __init__(self, model_name: str, model_options: Dict[str, Any],
               feature_config: FeatureConfig, model_dir: str, learning_rate: float = 1e-3,
               keep_checkpoints: int = 3):
    self.feature_config = feature_config
    self.model_dir = model_dir
    self.model = models.build_model(model_name, feature_config, **model_options)
    training.compile_model(self.model, feature_config, learning_rate)
    self.model(dummy_features(feature_config))
    self.model.optimizer.build(self.model.trainable_variables)
    self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer,
                                          epoch=tf.Variable(0, dtype=tf.int64))
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, os.path.join(model_dir, CHECKPOINTS), max_to_keep=keep_checkpoints)
    if self.manager.latest_checkpoint:
      self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()

  @property
  def has_checkpoint(self) -> bool:
    return self.manager.latest_checkpoint is not None

  @property
  def epochs_done(self) -> int:
    return int(self.checkpoint.epoch.numpy())

  def fit(self, train_data: tf.data.Dataset, epochs: int,
          validation_data: Optional[tf.data.Dataset] = None, verbose: int = 1) -> None:
    """Trains up to `epochs` epochs in all, resuming after the epochs already done."""
    start = self.epochs_done
    if start:
      logging.info("Resuming from %s (epoch %d of %d).", self.manager.latest_checkpoint,
                   start, epochs)
    if start >= epochs:
      logging.info("Already trained for %d epochs; nothing to train.", start)
      return
    self.model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        initial_epoch=start,
        callbacks=[EpochCheckpoint(self.checkpoint, self.manager),
                   tf.keras.callbacks.CSVLogger(os.path.join(self.model_dir, TRAINING_LOG),
                                                append=True)],
        verbose=verbose)
