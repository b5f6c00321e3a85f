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

import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

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
LOSS_WEIGHTS = "loss_weights.json"


class NonFiniteLossError(errors.UserError, RuntimeError):
  """The training loss (or a weight) became NaN or infinite: a user error (the learning
  rate, or extreme input values), shown at the command line as one line."""


def build_model(model_name: str, model_options: Dict[str, Any],
                feature_config: FeatureConfig, learning_rate: float,
                steps_per_execution: int = 1, loss_weighting: str = weighting.FIXED,
                gradnorm_alpha: float = 1.5) -> tf.keras.Model:
  """A compiled model with its weights and optimizer state created."""
  model = models.build_model(model_name, feature_config, **model_options)
  objectives.compile_model(model, feature_config, learning_rate, steps_per_execution,
                         loss_weighting=loss_weighting, gradnorm_alpha=gradnorm_alpha)
  model(pipeline.dummy_features(feature_config))
  model.optimizer.build(model.trainable_variables)
  return model


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
               early_stopping_patience: int = 0,
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
    self.rates = TrainingRates()
    self.checkpoint_dir = os.path.join(model_dir, CHECKPOINTS)
    self.best_dir = os.path.join(self.checkpoint_dir, BEST_CHECKPOINTS)
    with self.strategy.scope():
      self.model = build_model(model_name, model_options, feature_config, learning_rate,
                               self.steps_per_execution, loss_weighting, gradnorm_alpha)
      self.stopping = early_stopping.EarlyStopping(
          early_stopping_monitor, early_stopping_patience,
          best_weights=CheckpointBestWeights(self))
      training_position = dict(model=self.model, optimizer=self.model.optimizer,
                               epoch=tf.Variable(0, dtype=tf.int64),
                               epoch_step=tf.Variable(0, dtype=tf.int64))
      self.checkpoint = tf.train.Checkpoint(early_stopping=self.stopping.state,
                                            **training_position)
    self.summaries = (TensorBoardSummaries(tensorboard_dir, self.loss_weights_report)
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
          validation_steps: Optional[int] = None, verbose: int = 1,
          callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> None:
    """Trains up to `epochs` epochs in all, resuming where the checkpoint stopped.

    Args:
      train_input: The training data.
      epochs: Epochs to train in all, counting those done.
      validation_data: Batches to evaluate after each epoch (not under a
        parameter-server strategy).
      validation_steps: The number of batches of `validation_data` (Keras needs it
        with more than one step per execution where the data's size is unknown).
      verbose: Keras progress: 0 silent, 1 progress bar, 2 one line per epoch.
      callbacks: More Keras callbacks, after the trainer's own.

    Every epoch's training rate is logged and kept in `rates` (`TrainingRate`).
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
                                *self._callbacks(skip), EpochProgress(epochs), *callbacks],
                     verbose=verbose)
      skip = 0
      if self.stopping.stopped:
        self._log_stop()
        return

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
    callbacks = [self.stopping] if self.stopping.patience else []
    callbacks.append(StepCheckpoint(self, skip) if self._step_callbacks
                     else EpochCheckpoint(self))
    callbacks.append(LossWeightsLog(self))
    if distribute.is_chief(self.strategy):
      callbacks.append(tf.keras.callbacks.CSVLogger(
          os.path.join(self.model_dir, TRAINING_LOG), append=True))
    if self.summaries is not None:
      callbacks.append(self.summaries)
    return callbacks


class CheckpointBestWeights(early_stopping.BestWeights):
  """Keeps the best epoch's weights in the trainer's `checkpoints/best/`, which a
  restarted run finds again."""

  def __init__(self, trainer: Trainer):
    super().__init__()
    self.trainer = trainer

  def save(self, model: tf.keras.Model) -> None:
    del model  # The trainer's.
    self.trainer.save_best()

  def restore(self, model: tf.keras.Model) -> bool:
    path = tf.train.latest_checkpoint(self.trainer.best_dir)
    if path is None:
      return False
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return True


class LossWeightsLog(tf.keras.callbacks.Callback):
  """Logs the loss weights after every epoch; the chief also writes them, epoch by
  epoch, to `<model_dir>/loss_weights.json` (`{"loss_weighting": …, "epochs":
  [{"epoch": 0, "weights": {output: weight}, …}, …]}`, epochs 0-based as in the
  training log)."""

  def __init__(self, trainer: Trainer):
    super().__init__()
    self.trainer = trainer

  def on_epoch_end(self, epoch, logs=None):
    report = self.trainer.loss_weights_report()
    logging.info("Epoch %d loss weights (%s): %s", epoch, self.trainer.loss_weighting,
                 ", ".join(f"{name} {value:.4g}" for name, value in report["weights"].items()))
    if not distribute.is_chief(self.trainer.strategy):
      return
    path = os.path.join(self.trainer.model_dir, LOSS_WEIGHTS)
    epochs = []
    if os.path.exists(path):  # Resumed: keep the epochs before this one.
      with open(path, encoding="utf-8") as f:
        epochs = [e for e in json.load(f)["epochs"] if e["epoch"] < epoch]
    epochs.append({"epoch": epoch, **report})
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      json.dump({"loss_weighting": self.trainer.loss_weighting, "epochs": epochs}, f,
                indent=2)
    os.replace(path + ".tmp", path)


# TensorBoard shows a summary as a scalar when its metadata names the scalars plugin.
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


def _scalar(tag: str, value: float) -> None:
  """Writes a scalar summary to the default writer at its default step."""
  tf.summary.write(tag, tf.constant(float(value), tf.float32), metadata=_SCALAR_METADATA)


class TensorBoardSummaries(tf.keras.callbacks.Callback):
  """Writes every epoch's figures as TensorBoard scalars, named as Keras'
  `TensorBoard` callback names them: `<log_dir>/train` holds `epoch_loss`,
  `epoch_<output>_loss`, `epoch_<output>_auc`, `epoch_learning_rate` and
  `weights/<output>`, the loss weights (and `log_variances/<output>` for uncertainty
  weighting);
  `<log_dir>/validation` the same losses and AUCs on the validation data. The step is
  the epoch (0-based). The summaries are written with TensorFlow's own ops in the
  format of TensorBoard's scalars plugin, so writing them needs no `tensorboard`
  package (TensorFlow 2.21 does not install it; viewing them does).

  Args:
    log_dir: The summaries' directory.
    loss_weights_report: Returns the current loss weights (`Trainer.loss_weights_report`).
  """

  def __init__(self, log_dir: str, loss_weights_report):
    super().__init__()
    self.log_dir = log_dir
    self.loss_weights_report = loss_weights_report
    self.writers: Dict[str, Any] = {}

  def writer(self, run: str):
    if run not in self.writers:
      self.writers[run] = tf.summary.create_file_writer(os.path.join(self.log_dir, run))
    return self.writers[run]

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    with self.writer("train").as_default(step=epoch):
      for key, value in logs.items():
        if not key.startswith("val_"):
          _scalar(f"epoch_{key}", value)
      _scalar("epoch_learning_rate",
                        float(tf.keras.backend.get_value(self.model.optimizer.learning_rate)))
      for kind, values in self.loss_weights_report().items():
        for name, value in values.items():
          _scalar(f"{kind}/{name}", value)
    validation = {key[len("val_"):]: value for key, value in logs.items()
                  if key.startswith("val_")}
    if validation:
      with self.writer("validation").as_default(step=epoch):
        for key, value in validation.items():
          _scalar(f"epoch_{key}", value)
    for writer in self.writers.values():
      writer.flush()


class EpochCheckpoint(tf.keras.callbacks.Callback):
  """Checks the loss and saves a checkpoint at the end of each epoch."""

  def __init__(self, trainer: Trainer):
    super().__init__()
    self.trainer = trainer

  def on_epoch_end(self, epoch, logs=None):
    self.check_loss(logs, f"epoch {epoch + 1}")
    self.trainer.save(epoch + 1, 0)

  def check_loss(self, logs, where: str) -> None:
    """Raises `NonFiniteLossError` if the loss in `logs` is NaN or infinite."""
    loss = float((logs or {}).get("loss", 0.0))
    if not math.isfinite(loss):
      raise self.trainer.non_finite(f"loss became {loss} ({where})")


class StepCheckpoint(EpochCheckpoint):
  """Also checks the loss after every step and saves every `checkpoint_every_steps`.

  A step's checkpoint is written when the next step begins, unless the epoch ends
  first (its own checkpoint then stands for the step).

  Args:
    trainer: The trainer.
    skip: Steps of the first epoch done before this `fit` (when resuming).
  """

  def __init__(self, trainer: Trainer, skip: int = 0):
    super().__init__(trainer)
    self.skip = skip
    self.epoch = 0
    self.pending: Optional[int] = None  # Epoch step of a checkpoint to write.

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_begin(self, batch, logs=None):
    if self.pending is not None:
      self.trainer.save(self.epoch, self.pending)
      self.pending = None

  def on_train_batch_end(self, batch, logs=None):
    epoch_step = self.skip + batch + 1
    self.check_loss(logs, f"epoch {self.epoch + 1}, step {epoch_step} of the epoch")
    if self.trainer.step % self.trainer.checkpoint_every_steps == 0:
      self.pending = epoch_step

  def on_epoch_end(self, epoch, logs=None):
    self.pending = None
    self.skip = 0
    super().on_epoch_end(epoch, logs)


class TrainingRates:
  """The training rate of every epoch a `Trainer` trained in this process: rows and
  seconds of its training steps, input included, validation and checkpoints excluded
  (from the epoch's start to the start of its validation).

  Attributes:
    epochs: `(epoch, rows, seconds)` per epoch, 0-based epochs in training order.
  """

  def __init__(self):
    self.epochs: List[tuple] = []

  def callback(self, train_input: distribute.TrainingInput,
               skip: int = 0) -> tf.keras.callbacks.Callback:
    """The callback that times the epochs of one `Model.fit` (the first skipping
    `skip` steps done before) and logs each epoch's rate."""
    return _EpochTimer(self, train_input, skip)

  def rows_per_s(self, skip_first: bool = True) -> float:
    """Training rows per second over the epochs timed, by default without the first
    one timed (it traces the step functions) where more than one was."""
    timed = self.epochs[1:] if skip_first and len(self.epochs) > 1 else self.epochs
    return sum(rows for _, rows, _ in timed) / sum(seconds for _, _, seconds in timed)


class _EpochTimer(tf.keras.callbacks.Callback):
  """Times the training steps of each epoch for `TrainingRates`: from the epoch's
  start to the start of its validation, or to its end without validation. It has no
  batch-level hooks (a parameter-server strategy allows none), and comes first among
  the callbacks, so the epoch's checkpoint is not timed."""

  def __init__(self, rates: TrainingRates, train_input: distribute.TrainingInput,
               skip: int):
    super().__init__()
    self.rates = rates
    self.train_input = train_input
    self.skip = skip
    self.start: Optional[float] = None
    self.end: Optional[float] = None

  def on_epoch_begin(self, epoch, logs=None):
    self.start, self.end = time.perf_counter(), None

  def on_test_begin(self, logs=None):
    if self.start is not None and self.end is None:
      self.end = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    seconds = (self.end or time.perf_counter()) - self.start
    batch_size = self.train_input.batch_size
    rows = self.train_input.rows - self.skip * batch_size
    steps = self.params.get("steps")
    if steps:  # Known unless workers read files of their own (then all rows).
      rows = min(rows, steps * batch_size)
    self.skip, self.start = 0, None
    if rows <= 0 or seconds <= 0:
      return
    self.rates.epochs.append((epoch, rows, seconds))
    logging.info("Epoch %d trained on %d rows in %.2f s: %.0f rows/s (input included, "
                 "validation excluded).", epoch, rows, seconds, rows / seconds)


class EpochProgress(tf.keras.callbacks.ProgbarLogger):
  """Keras' progress output, with the header "Epoch i/n" counting all `epochs`.

  `Trainer.fit` trains one epoch per `Model.fit` call (`epochs=epoch + 1`), for which
  Keras would print no header before the first epoch and "Epoch i/i" before the others.
  """

  def __init__(self, epochs: int):
    super().__init__(count_mode="steps")
    self.total_epochs = epochs

  def set_params(self, params):
    super().set_params({**params, "epochs": self.total_epochs})
