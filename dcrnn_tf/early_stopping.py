"""Early stopping on a validation metric, keeping the best epoch's weights.

`dcrnn_tf.trainer.Trainer` uses it (one epoch per `model.fit` call, resuming from
checkpoints), for `dcrnn_tf.main` and the benchmark's runs alike. Its state, the best
value, the best epoch and the epochs since, lives in variables (`EarlyStopping.state`)
so that a checkpoint holds it; the best weights are kept by a `BestWeights` store, in
memory by default or in a checkpoint (the trainer's, which survives a restart).
"""

import math
from typing import List, Mapping, Optional, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import numpy as np
import tensorflow as tf

from dcrnn_tf import errors
from dcrnn_tf.objectives import MAXIMIZED

DEFAULT_MONITOR = "val_loss"


def monitored_figures(output_metrics: Mapping[str, Sequence[str]]) -> List[str]:
  """The epoch-log keys that training reports and early stopping can watch: the loss,
  each output's loss and metrics (`objectives.output_metrics`: its AUC, or a
  regression's RMSE, MAE and R²), on the validation data (`val_`) and the training
  data. Keras names a model of one output's metrics without the output's name."""
  if len(output_metrics) == 1:
    figures = ["loss"] + list(*output_metrics.values())
  else:
    figures = ["loss"] + [f"{name}_{kind}" for name, metrics in output_metrics.items()
                          for kind in ("loss",) + tuple(metrics)]
  return [prefix + figure for prefix in ("val_", "") for figure in figures]


def check_monitor(monitor: str, output_metrics: Mapping[str, Sequence[str]]) -> None:
  """Refuses a monitor that training does not report (`monitored_figures`).

  Raises:
    errors.UsageError: Naming `--early_stopping_monitor` and the figures there are.
  """
  known = monitored_figures(output_metrics)
  if monitor not in known:
    raise errors.UsageError(f"--early_stopping_monitor={monitor} is not a figure that "
                            f"training reports; use one of {known}.")


def monitor_mode(monitor: str) -> str:
  """`"max"` for an AUC or an R², `"min"` for a loss, an RMSE or an MAE."""
  return "max" if monitor.endswith(tuple(f"_{m}" for m in MAXIMIZED)) else "min"


class BestWeights:
  """Keeps a copy of the model's weights in memory."""

  def __init__(self):
    self.weights: Optional[List[np.ndarray]] = None

  def save(self, model: tf.keras.Model) -> None:
    self.weights = model.get_weights()

  def restore(self, model: tf.keras.Model) -> bool:
    """Sets the kept weights; false if none were kept."""
    if self.weights is None:
      return False
    model.set_weights(self.weights)
    return True


class EarlyStoppingState(tf.Module):
  """The state of `EarlyStopping` as variables, for checkpoints."""

  def __init__(self, mode: str):
    super().__init__(name="early_stopping")
    self.best = tf.Variable(math.inf if mode == "min" else -math.inf, dtype=tf.float64,
                            trainable=False, name="best")
    self.best_epoch = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_epoch")
    self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="wait")


class EarlyStopping(tf.keras.callbacks.Callback):
  """Stops training when `monitor` has not improved for `patience` epochs.

  After every epoch the monitored value (a key of Keras' epoch logs: `val_loss`,
  `val_<output>_loss`, `val_<output>_auc`, `val_<output>_rmse`, …; an AUC or an R² is
  maximized, a loss, an RMSE or an MAE minimized)
  is compared with the best so far; a better one is kept with the model's weights
  (`best_weights.save`). Unlike `tf.keras.callbacks.EarlyStopping` its state persists
  across `fit` calls and in checkpoints, and `restore_best` sets the best epoch's
  weights whether or not training stopped early.

  Args:
    monitor: The epoch-log key to watch.
    patience: Epochs without improvement before training stops (0: never stops, only
      keeps the best epoch).
    best_weights: Where the best weights are kept (default: in memory).
  """

  def __init__(self, monitor: str = DEFAULT_MONITOR, patience: int = 1,
               best_weights: Optional[BestWeights] = None):
    super().__init__()
    if patience < 0:
      raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}.")
    self.monitor = monitor
    self.patience = int(patience)
    self.mode = monitor_mode(monitor)
    self.state = EarlyStoppingState(self.mode)
    self.best_weights = best_weights or BestWeights()

  @property
  def best_epoch(self) -> int:
    """The best epoch (0-based; -1 before the first)."""
    return int(self.state.best_epoch.numpy())

  @property
  def best(self) -> float:
    return float(self.state.best.numpy())

  @property
  def stopped(self) -> bool:
    """Whether `patience` epochs have passed without improvement."""
    return bool(self.patience) and int(self.state.wait.numpy()) >= self.patience

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    if self.monitor not in logs:
      raise ValueError(f"Early stopping monitors {self.monitor!r}, which training does not "
                       f"report; it reports {sorted(logs)}.")
    value = float(logs[self.monitor])
    improved = value < self.best if self.mode == "min" else value > self.best
    if improved:
      self.state.best.assign(value)
      self.state.best_epoch.assign(epoch)
      self.state.wait.assign(0)
      self.best_weights.save(self.model)
      return
    self.state.wait.assign_add(1)
    if self.stopped:
      self.model.stop_training = True

  def restore_best(self, model: tf.keras.Model) -> bool:
    """Sets the best epoch's weights on `model`; false if no epoch was kept."""
    return self.best_epoch >= 0 and self.best_weights.restore(model)
