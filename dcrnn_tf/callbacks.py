"""The Keras callbacks of `dcrnn_tf.trainer.Trainer.fit`: checkpoints (every epoch, or
every N steps), the best epoch's weights, the loss weights' log, TensorBoard summaries,
each epoch's training rate, and the progress output."""

import json
import math
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import distribute
from dcrnn_tf import early_stopping

if TYPE_CHECKING:
  from dcrnn_tf.trainer import Trainer  # pylint: disable=cyclic-import

LOSS_WEIGHTS = "loss_weights.json"


class CheckpointBestWeights(early_stopping.BestWeights):
  """Keeps the best epoch's weights in the trainer's `checkpoints/best/`, which a
  restarted run finds again."""

  def __init__(self, trainer: "Trainer"):
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

  def __init__(self, trainer: "Trainer"):
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

  def __init__(self, trainer: "Trainer"):
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

  def __init__(self, trainer: "Trainer", skip: int = 0):
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
  seconds of its training steps, input included, validation and the epoch's checkpoint
  excluded (from the epoch's start to the start of its validation); the checkpoints of
  `checkpoint_every_steps`, written between steps, count.

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

  def rows_per_s(self) -> float:
    """Training rows per second over the epochs timed, without the first one (it traces
    the step functions) where more than one was."""
    timed = self.epochs[1:] if len(self.epochs) > 1 else self.epochs
    return sum(rows for _, rows, _ in timed) / sum(seconds for _, _, seconds in timed)


class _EpochTimer(tf.keras.callbacks.Callback):
  """Times the training steps of each epoch for `TrainingRates`: from the epoch's
  start to the start of its validation, or to its end without validation. It has no
  batch-level hooks (a parameter-server strategy allows none), and comes first among
  the callbacks, so the epoch's checkpoint is not timed (step checkpoints are)."""

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
