"""Building, restoring and training a model with checkpoints in a model directory.

A checkpoint holds the model, the optimizer (its state and step count) and the training
position: the epochs done and the steps done in the next one. It is written every
`checkpoint_every_steps` steps and at the end of every epoch, numbered by the step
(`<model_dir>/checkpoints/ckpt-<step>`); the latest `keep_checkpoints` are kept. A new
`Trainer` on the same directory restores the latest one, and `fit` resumes at its
step: the data of each epoch comes in a fixed order (see
`dcrnn_tf.distribute.TrainingInput`), so the batches already seen are skipped.

A non-finite loss stops training with `NonFiniteLossError` before anything more is
saved, so the last good checkpoint stays the latest.

With early stopping (`early_stopping_patience`), the checkpoint also holds its state
(`dcrnn_tf.early_stopping`) and every new best epoch's weights are saved apart
(`<model_dir>/checkpoints/best/`); `restore_best` sets them on the model, which
`dcrnn_tf.main` does before it evaluates, exports or predicts. After every epoch the loss
weights (fixed or learned, `dcrnn_tf.loss_weighting`) are logged and written to
`<model_dir>/loss_weights.json`, and, with a `tensorboard_dir`, the epoch's losses,
AUCs, loss weights and learning rate are written as TensorBoard summaries.
"""

import os
import shutil
import tempfile
from typing import Any, Dict, Optional

from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import callbacks
from dcrnn_tf import distribute
from dcrnn_tf import early_stopping
from dcrnn_tf import errors
from dcrnn_tf import loss_weighting as weighting
from dcrnn_tf import models
from dcrnn_tf import objectives
from dcrnn_tf.data import pipeline
from dcrnn_tf.features import FeatureConfig
from dcrnn_tf.layers import feature_encoder

CHECKPOINTS = "checkpoints"
BEST_CHECKPOINTS = "best"  # Under CHECKPOINTS.
TRAINING_LOG = "training_log.csv"


class NonFiniteLossError(errors.UserError, RuntimeError):
  """The training loss (or a weight) became NaN or infinite: a user error (the learning
  rate, or extreme input values), shown at the command line as one line."""


def build_model(model_name: str, model_options: Dict[str, Any],
                feature_config: FeatureConfig, learning_rate: float,
                steps_per_execution: int = 1, loss_weighting: str = weighting.FIXED,
                gradnorm_alpha: float = 1.5, jit_compile: bool = False) -> tf.keras.Model:
  """A compiled model with its weights and optimizer state created."""
  model = models.build_model(model_name, feature_config, **model_options)
  objectives.compile_model(model, feature_config, learning_rate, steps_per_execution,
                           loss_weighting=loss_weighting, gradnorm_alpha=gradnorm_alpha,
                           jit_compile=jit_compile)
  model(pipeline.dummy_features(feature_config))
  model.optimizer.build(model.trainable_variables)
  return model


def input_preprocessor(model: tf.keras.Model
                       ) -> Optional[feature_encoder.FeaturePreprocessor]:
  """The model's preprocessing for the input pipeline, so that training feeds the model
  ids instead of raw values (`DataRoles.dataset(preprocessor=...)`): a new
  `FeaturePreprocessor` of its encoder's config (made outside any strategy's scope), or
  None where the model has no `FeatureEncoder`."""
  encoder = getattr(model, "encoder", None)
  if not isinstance(encoder, feature_encoder.FeatureEncoder):
    return None
  return feature_encoder.FeaturePreprocessor.from_config(encoder.preprocessor.get_config())


class Trainer:
  """A model, its optimizer and its checkpoints in `model_dir`, under a strategy.

  Creating a `Trainer` builds the model, its optimizer and metrics inside
  `strategy.scope()` and restores the latest checkpoint of `model_dir`, if any. Every
  worker of a multi-worker strategy restores the chief's checkpoint and saves with
  the chief, but only the chief's checkpoints and training log are kept.

  Args:
    model_name: Registered model name (see `dcrnn_tf.models.MODELS`).
    model_options: Keyword arguments of the model.
    feature_config: Features and tasks.
    model_dir: Directory of the checkpoints and the training log.
    learning_rate: Adam learning rate; applies also when resuming.
    keep_checkpoints: How many checkpoints to keep.
    strategy: The `tf.distribute` strategy (default: the current one).
    checkpoint_every_steps: Also save every this many steps (0: only per epoch).
    steps_per_execution: Training steps per call of the compiled step function (see
      `objectives.compile_model`); 1 where a checkpoint every `checkpoint_every_steps`
      needs a callback after every step, and under a multi-worker mirrored strategy,
      where workers reading their own files run epochs of unknown length.
    loss_weighting: `fixed`, `uncertainty` or `gradnorm` (`dcrnn_tf.loss_weighting`);
      the learned weights are part of the model and its checkpoints.
    gradnorm_alpha: GradNorm's `alpha`.
    jit_compile: Compile the training step with XLA (`tf.keras.Model.compile`); not
      under a parameter-server strategy, whose steps look up raw values.
    early_stopping_patience: Epochs without improvement of `early_stopping_monitor`
      before `fit` stops (0: off).
    early_stopping_monitor: The epoch-log key early stopping watches.
    tensorboard_dir: Where the chief writes TensorBoard summaries (empty: nowhere).

  Raises:
    ValueError: If the latest checkpoint holds a `FeatureEncoder` of the former layout
      of one table per field (see `feature_encoder.check_checkpoint_layout`).
  """

  def __init__(self, model_name: str, model_options: Dict[str, Any],
               feature_config: FeatureConfig, model_dir: str, learning_rate: float = 1e-3,
               keep_checkpoints: int = 3, strategy: Optional[tf.distribute.Strategy] = None,
               checkpoint_every_steps: int = 0, steps_per_execution: int = 1,
               loss_weighting: str = weighting.FIXED, gradnorm_alpha: float = 1.5,
               jit_compile: bool = False, early_stopping_patience: int = 0,
               early_stopping_monitor: str = early_stopping.DEFAULT_MONITOR,
               tensorboard_dir: str = ""):
    self.model_name = model_name
    self.model_options = model_options
    self.learning_rate = learning_rate
    self.feature_config = feature_config
    self.model_dir = model_dir
    self.strategy = strategy or tf.distribute.get_strategy()
    self.checkpoint_every_steps = checkpoint_every_steps
    single_steps = self._single_steps_reason()
    self.steps_per_execution = 1 if single_steps else steps_per_execution
    if self.steps_per_execution != steps_per_execution:
      logging.info("One training step per execution (not %d): %s.", steps_per_execution,
                   single_steps)
    self.loss_weighting = loss_weighting
    self.gradnorm_alpha = gradnorm_alpha
    if jit_compile and distribute.is_parameter_server(self.strategy):
      raise ValueError("jit_compile: a parameter-server strategy's training steps look up "
                       "raw values, which XLA does not compile.")
    self.rates = callbacks.TrainingRates()
    self.checkpoint_dir = os.path.join(model_dir, CHECKPOINTS)
    self.best_dir = os.path.join(self.checkpoint_dir, BEST_CHECKPOINTS)
    with self.strategy.scope():
      self.model = build_model(model_name, model_options, feature_config, learning_rate,
                               self.steps_per_execution, loss_weighting, gradnorm_alpha,
                               jit_compile)
      self.stopping = early_stopping.EarlyStopping(
          early_stopping_monitor, early_stopping_patience,
          best_weights=callbacks.CheckpointBestWeights(self))
      training_position = dict(model=self.model, optimizer=self.model.optimizer,
                               epoch=tf.Variable(0, dtype=tf.int64),
                               epoch_step=tf.Variable(0, dtype=tf.int64))
      self.checkpoint = tf.train.Checkpoint(early_stopping=self.stopping.state,
                                            **training_position)
    self.summaries = (callbacks.TensorBoardSummaries(tensorboard_dir,
                                                     self.loss_weights_report)
                      if tensorboard_dir and distribute.is_chief(self.strategy) else None)
    if distribute.is_parameter_server(self.strategy):
      logging.info("Variables partitioned over the parameter servers (shards): %s",
                   distribute.partitioned_variables(self.model))
    self.manager = tf.train.CheckpointManager(self.checkpoint, self.checkpoint_dir,
                                              max_to_keep=keep_checkpoints)
    self.latest_checkpoint = tf.train.latest_checkpoint(self.checkpoint_dir)
    if self.latest_checkpoint:
      feature_encoder.check_checkpoint_layout(self.latest_checkpoint, feature_config.features)
      # Every object of the model and the optimizer must be found; the early-stopping
      # state, also in the checkpoint, is restored next (so this restore is partial,
      # and must not warn of the values it leaves).
      tf.train.Checkpoint(**training_position).restore(
          self.latest_checkpoint).assert_existing_objects_matched().expect_partial()
      # Checkpoints written before early stopping existed hold no state of it.
      tf.train.Checkpoint(early_stopping=self.stopping.state).restore(
          self.latest_checkpoint).expect_partial()
      self.model.optimizer.learning_rate = learning_rate

  @property
  def has_checkpoint(self) -> bool:
    return self.latest_checkpoint is not None

  @property
  def epochs_done(self) -> int:
    return int(self.checkpoint.epoch.numpy())

  @property
  def step(self) -> int:
    """Training steps done (the optimizer's step count)."""
    return int(self.model.optimizer.iterations.numpy())

  def fit(self, train_input: distribute.TrainingInput, epochs: int,
          validation_data: Optional[tf.data.Dataset] = None,
          validation_steps: Optional[int] = None, verbose: int = 1) -> None:
    """Trains up to `epochs` epochs in all, resuming where the checkpoint stopped.

    Args:
      train_input: The training data.
      epochs: Epochs to train in all, counting those done.
      validation_data: Batches to evaluate after each epoch (not under a
        parameter-server strategy).
      validation_steps: The number of batches of `validation_data` (Keras needs it
        with more than one step per execution where the data's size is unknown).
      verbose: Keras progress: 0 silent, 1 progress bar, 2 one line per epoch.

    Every epoch's training rate is logged and kept in `rates` (`callbacks.TrainingRates`).
    With early stopping, training ends once `early_stopping_patience` epochs have
    passed without improvement (also when resuming a run that had stopped); the model
    then holds the last epoch's weights until `restore_best`.

    Raises:
      NonFiniteLossError: If the loss becomes NaN or infinite.
    """
    start, skip = self.epochs_done, int(self.checkpoint.epoch_step.numpy())
    if self.has_checkpoint:
      logging.info("Resuming from step %d (%s): epoch %d of %d done, %d steps into the "
                   "next.", self.step, self.latest_checkpoint, start, epochs, skip)
    if start >= epochs:
      logging.info("Already trained for %d epochs; nothing to train.", start)
      return
    if self.stopping.stopped:
      self._log_stop()
      return
    parameter_server = distribute.is_parameter_server(self.strategy)
    if parameter_server and self.checkpoint_every_steps:
      logging.warning("Checkpoints only at the end of each epoch under a parameter-server "
                      "strategy (Keras allows no per-step callbacks there).")
    if validation_data is not None and parameter_server:
      logging.info("No validation after each epoch under a parameter-server strategy.")
      validation_data = None
    elif validation_data is not None:
      validation_data = distribute.shard_by_record(validation_data)
    for epoch in range(start, epochs):
      self.model.fit(train_input.dataset(self.strategy, epoch, skip),
                     validation_data=validation_data, validation_steps=validation_steps,
                     initial_epoch=epoch, epochs=epoch + 1,
                     steps_per_epoch=train_input.steps(self.strategy, skip),
                     callbacks=[self.rates.callback(train_input, skip),
                                *self._callbacks(skip), callbacks.EpochProgress(epochs)],
                     verbose=verbose)
      skip = 0
      if self.stopping.stopped:
        self._log_stop()
        return

  def input_preprocessor(self) -> Optional[feature_encoder.FeaturePreprocessor]:
    """`input_preprocessor(model)`, or None under a parameter-server strategy (its
    workers run the input functions away from the lookup tables made here; the model
    then preprocesses in its step)."""
    if distribute.is_parameter_server(self.strategy):
      return None
    return input_preprocessor(self.model)

  def restore_best(self) -> None:
    """Sets the best epoch's weights on the model, if early stopping kept one."""
    if self.stopping.restore_best(self.model):
      logging.info("Restored the weights of epoch %d (0-based), the best by %s (%.6g).",
                   self.stopping.best_epoch, self.stopping.monitor, self.stopping.best)

  def loss_weights_report(self) -> Dict[str, Dict[str, float]]:
    """The current loss weights by output (`loss_weighting.LossWeighting.report`)."""
    layer = getattr(self.model, "loss_weighting", None)
    if layer is None:
      return weighting.fixed_report(objectives.loss_weights(
          self.feature_config, getattr(self.model, "entire_space", True)))
    return layer.report()

  def save_best(self) -> None:
    """Saves the model's weights as the best epoch's (every worker must call it)."""
    self._write(tf.train.CheckpointManager(tf.train.Checkpoint(model=self.model),
                                           self.best_dir, max_to_keep=1))

  def _log_stop(self) -> None:
    logging.info("Early stopping: %s has not improved for %d epochs (best %.6g at epoch %d, "
                 "0-based); training stops after %d epochs.", self.stopping.monitor,
                 self.stopping.patience, self.stopping.best, self.stopping.best_epoch,
                 self.epochs_done)

  def local_model(self) -> tf.keras.Model:
    """The model to evaluate, predict with and export in this process.

    The trained model itself, except under a multi-worker strategy: there, a copy
    outside the strategy restored from the latest checkpoint. A SavedModel of
    partitioned variables (`ShardedVariable`, parameter servers) does not load, and
    one of multi-worker mirrored variables would need every worker to export.
    """
    if not distribute.is_multi_worker(self.strategy):
      return self.model
    model = build_model(self.model_name, self.model_options, self.feature_config,
                        self.learning_rate, loss_weighting=self.loss_weighting,
                        gradnorm_alpha=self.gradnorm_alpha)
    best = self.stopping.best_epoch >= 0 and tf.train.latest_checkpoint(self.best_dir)
    tf.train.Checkpoint(model=model).restore(
        best or tf.train.latest_checkpoint(self.checkpoint_dir)).expect_partial()
    return model

  def save(self, epochs_done: int, epoch_step: int) -> None:
    """Saves a checkpoint at the current step (every worker must call it).

    Raises:
      NonFiniteLossError: If a weight is NaN or infinite (nothing is saved then).
    """
    finite = [tf.reduce_all(tf.math.is_finite(w)) for w in self.model.trainable_weights]
    if not bool(tf.reduce_all(finite)):
      raise self.non_finite("weights became NaN or infinite")
    self.checkpoint.epoch.assign(epochs_done)
    self.checkpoint.epoch_step.assign(epoch_step)
    path = self._write(self.manager)
    if path:
      self.latest_checkpoint = path

  def _write(self, manager: tf.train.CheckpointManager) -> Optional[str]:
    """Saves `manager`'s checkpoint at the current step: the chief's in its directory
    (returns the path), another worker's in a scratch directory it deletes."""
    step = self.step
    if distribute.is_chief(self.strategy):
      path = manager.save(checkpoint_number=step)
      logging.info("Saved checkpoint %s (step %d).", path, step)
      return path
    scratch = tempfile.mkdtemp(prefix="dcrnn-worker-checkpoint-")
    try:
      tf.train.CheckpointManager(manager.checkpoint, scratch, max_to_keep=1).save(
          checkpoint_number=step)
    finally:
      shutil.rmtree(scratch, ignore_errors=True)
    return None

  def non_finite(self, what: str) -> NonFiniteLossError:
    """The error to raise: why training stops, what was kept, what to do."""
    message = (f"Training stopped: the {what}, at step {self.step}. Nothing was saved "
               f"after the last good checkpoint ({self.latest_checkpoint}), and no model "
               "was exported. Lower --learning_rate or look for extreme values in the "
               "input data.")
    return NonFiniteLossError(message)

  @property
  def _step_callbacks(self) -> bool:
    """Whether training calls back after every step (`StepCheckpoint`)."""
    return bool(self.checkpoint_every_steps) and not distribute.is_parameter_server(
        self.strategy)

  def _single_steps_reason(self) -> Optional[str]:
    """Why training must run one step per execution, if it must."""
    if self._step_callbacks:
      return (f"checkpoints every {self.checkpoint_every_steps} steps need a callback after "
              "every step")
    if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
      return "workers reading their own files run epochs of unknown length"
    if distribute.is_parameter_server(self.strategy):
      return ("asynchronous parameter-server steps are scheduled one by one (a run with "
              "several steps per execution once trained nothing)")
    return None

  def _callbacks(self, skip: int):
    # Early stopping first: the epoch's checkpoint holds its updated state.
    chosen = [self.stopping] if self.stopping.patience else []
    chosen.append(callbacks.StepCheckpoint(self, skip) if self._step_callbacks
                  else callbacks.EpochCheckpoint(self))
    chosen.append(callbacks.LossWeightsLog(self))
    if distribute.is_chief(self.strategy):
      chosen.append(tf.keras.callbacks.CSVLogger(
          os.path.join(self.model_dir, TRAINING_LOG), append=True))
    if self.summaries is not None:
      chosen.append(self.summaries)
    return chosen
