"""What a model is trained to do: targets per output, the masked (ESMM) losses and
metrics of binary and regression outputs, the loss weights, and compiling a model with
them (`dcrnn_tf.trainer` trains it)."""

from typing import Dict, Mapping, Optional, Tuple

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import loss_weighting as weighting
from dcrnn_tf.features import (HUBER, LOG1P, MSE, REGRESSION_LOSSES, TRANSFORMS, WEIGHT_KEY,
                               FeatureConfig)

MASKED = float("nan")  # Target of a row that an output is not scored on.
# Thresholds of the streaming AUC of training and validation (the progress bar, the
# training log, TensorBoard), evenly spaced in [0, 1]. Keras' default of 200 buckets
# lumps together every probability below 0.005, so at low prevalence (a ctcvr of 0.4 %)
# its AUC fell 0.05 below the exact one; with 10,000 the two agree within 0.005 at a
# prevalence of 0.08 % (`tests/test_model.py`). `dcrnn_tf.evaluation` is exact.
AUC_THRESHOLDS = 10_000
BINARY_METRICS = ("auc",)
REGRESSION_METRICS = ("rmse", "mae", "r2")
MAXIMIZED = ("auc", "r2")  # The metrics that are better higher; the others lower.


def output_metrics(feature_config: FeatureConfig) -> Dict[str, Tuple[str, ...]]:
  """The metrics training reports of each output (`<output>_<metric>` in the logs):
  AUC of a probability, RMSE, MAE and R² of a regression."""
  regression = set(feature_config.regression_outputs)
  return {name: REGRESSION_METRICS if name in regression else BINARY_METRICS
          for name in feature_config.output_names}


def make_targets(labels: Mapping[str, tf.Tensor],
                 feature_config: FeatureConfig) -> Dict[str, tf.Tensor]:
  """Maps label columns to one float32 target per model output.

  A task's target is its label column. For a funnel stage (`funnel_output` set) the
  label marks the joint event, so it is the target of `funnel_output` on every row,
  and the stage's own (conditional) target is the same label on rows where the parent's
  label is 1 and `MASKED` elsewhere; a regression task that depends on a binary one is
  likewise `MASKED` where the parent's label is 0.

  Args:
    labels: Dict from label name to a `[batch]` tensor (0/1, or numbers for the
      labels of regression tasks).
    feature_config: The tasks.

  Returns:
    Dict from output name to a float32 `[batch]` target.
  """
  targets = {}
  for task in feature_config.tasks:
    label = tf.cast(labels[task.label], tf.float32)
    parent = feature_config.parent_label(task)
    if parent is not None:
      parent_label = tf.cast(labels[parent.name], tf.float32)
      targets[task.name] = tf.where(parent_label > 0, label, MASKED)
    else:
      targets[task.name] = label
    if task.funnel_output:
      targets[task.funnel_output] = label
  return targets


def fit_batch(features, labels: Mapping[str, tf.Tensor], feature_config: FeatureConfig):
  """A batch for Keras `fit`: `(features, targets)` (`make_targets`), and the row
  weights of every output third when the config has a `weight` column."""
  targets = make_targets(labels, feature_config)
  if feature_config.weight is None:
    return features, targets
  return features, targets, {name: labels[WEIGHT_KEY] for name in targets}


def scored_rows(y_true, y_pred, sample_weight=None):
  """`(target, prediction, weight)` `[batch]` with the `MASKED` rows' target set to 0
  and their weight to 0 (the others' weight 1, or `sample_weight`)."""
  y_true = tf.reshape(tf.cast(y_true, tf.float32), [-1])
  y_pred = tf.reshape(tf.cast(y_pred, tf.float32), [-1])
  scored = tf.logical_not(tf.math.is_nan(y_true))
  weight = tf.cast(scored, tf.float32)
  if sample_weight is not None:
    weight *= tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
  return tf.where(scored, y_true, 0.0), y_pred, weight


def _over_scored_rows(per_row: tf.Tensor, y_true: tf.Tensor) -> tf.Tensor:
  """Per-row losses scaled so that Keras' mean over the batch is the mean over the rows
  whose target is not `MASKED` (0 on those that are; 0 when all are)."""
  scored = tf.logical_not(tf.math.is_nan(y_true))
  count = tf.reduce_sum(tf.cast(scored, tf.float32))
  scale = tf.cast(tf.size(scored), tf.float32) / tf.maximum(count, 1.0)
  return tf.where(scored, per_row * scale, 0.0)


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedBinaryCrossentropy(tf.keras.losses.Loss):
  """Binary cross-entropy on probabilities that skips rows whose target is `MASKED`.

  With the default reduction the result is the mean over the unmasked rows of the
  batch (0 when every row is masked): each unmasked row's loss is scaled by
  `batch / unmasked`, so Keras's mean over the batch becomes the mean over the rows
  that count.

  Args:
    epsilon: Probabilities are clipped to `[epsilon, 1 - epsilon]`.
    **kwargs: Standard loss arguments.
  """

  def __init__(self, epsilon: float = 1e-7, name: str = "masked_binary_crossentropy",
               **kwargs):
    super().__init__(name=name, **kwargs)
    self.epsilon = float(epsilon)

  def call(self, y_true, y_pred):
    label, y_pred, _ = scored_rows(y_true, y_pred)
    y_pred = tf.clip_by_value(y_pred, self.epsilon, 1.0 - self.epsilon)
    losses = -(label * tf.math.log(y_pred) + (1.0 - label) * tf.math.log(1.0 - y_pred))
    return _over_scored_rows(losses, tf.reshape(y_true, [-1]))

  def get_config(self):
    config = super().get_config()
    config["epsilon"] = self.epsilon
    return config


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedRegressionLoss(tf.keras.losses.Loss):
  """Squared (`mse`) or Huber (`huber`) error of a regression output, on its
  `transform`ed label and prediction, that skips rows whose target is `MASKED` (the
  mean over the rows that count, as `MaskedBinaryCrossentropy`).

  Example:

  ```python
  loss = MaskedRegressionLoss("mse", transform="log1p")
  value = loss(tf.constant([0.0, 3.0, MASKED]), tf.constant([1.0, 3.0, 9.0]))
  assert abs(float(value) - np.log(2.0) ** 2 / 2) < 1e-6
  ```

  Args:
    loss: `"mse"` (`e^2`) or `"huber"` (`e^2 / 2` for `|e| <= delta`, else
      `delta (|e| - delta / 2)`), of the error `e = t(prediction) - t(label)`.
    transform: None, or `"log1p"`: `t = log1p` (the model predicts `expm1` of its
      unit's non-negative value, so `t(prediction)` is that value).
    delta: Huber's threshold, in transformed units.
    **kwargs: Standard loss arguments.
  """

  def __init__(self, loss: str = MSE, transform: Optional[str] = None, delta: float = 1.0,
               name: str = "masked_regression_loss", **kwargs):
    super().__init__(name=name, **kwargs)
    if loss not in REGRESSION_LOSSES:
      raise ValueError(f"MaskedRegressionLoss: loss must be one of {list(REGRESSION_LOSSES)}, "
                       f"got {loss!r}.")
    if transform not in (None,) + TRANSFORMS:
      raise ValueError(f"MaskedRegressionLoss: transform must be None or one of "
                       f"{list(TRANSFORMS)}, got {transform!r}.")
    self.loss = loss
    self.transform = transform
    self.delta = float(delta)

  def call(self, y_true, y_pred):
    label, y_pred, _ = scored_rows(y_true, y_pred)
    if self.transform == LOG1P:
      label, y_pred = tf.math.log1p(label), tf.math.log1p(y_pred)
    error = y_pred - label
    if self.loss == HUBER:
      absolute = tf.abs(error)
      losses = tf.where(absolute <= self.delta, 0.5 * tf.square(error),
                        self.delta * (absolute - 0.5 * self.delta))
    else:
      losses = tf.square(error)
    return _over_scored_rows(losses, tf.reshape(y_true, [-1]))

  def get_config(self):
    config = super().get_config()
    config.update({"loss": self.loss, "transform": self.transform, "delta": self.delta})
    return config


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedAUC(tf.keras.metrics.AUC):
  """`tf.keras.metrics.AUC` over the rows whose target is not `MASKED`, with
  `AUC_THRESHOLDS` thresholds by default.

  Args:
    num_thresholds: Evenly spaced thresholds of the streaming approximation.
    **kwargs: Other `tf.keras.metrics.AUC` arguments.
  """

  def __init__(self, num_thresholds: int = AUC_THRESHOLDS, **kwargs):
    super().__init__(num_thresholds=num_thresholds, **kwargs)

  def update_state(self, y_true, y_pred, sample_weight=None):
    return super().update_state(*scored_rows(y_true, y_pred, sample_weight))


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedRootMeanSquaredError(tf.keras.metrics.RootMeanSquaredError):
  """`tf.keras.metrics.RootMeanSquaredError` over the rows whose target is not
  `MASKED`, in the label's units."""

  def update_state(self, y_true, y_pred, sample_weight=None):
    return super().update_state(*scored_rows(y_true, y_pred, sample_weight))


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedMeanAbsoluteError(tf.keras.metrics.MeanAbsoluteError):
  """`tf.keras.metrics.MeanAbsoluteError` over the rows whose target is not `MASKED`,
  in the label's units."""

  def update_state(self, y_true, y_pred, sample_weight=None):
    y_true, y_pred, weight = scored_rows(y_true, y_pred, sample_weight)
    # [batch, 1]: the error is a mean over the last axis, one per row.
    return super().update_state(y_true[:, tf.newaxis], y_pred[:, tf.newaxis], weight)


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedR2(tf.keras.metrics.Metric):
  """The coefficient of determination `1 - sum w e^2 / sum w (y - mean_w y)^2` over the
  rows whose target is not `MASKED` (weighted by `sample_weight`), streamed in float64
  sums; NaN before any row (or when every label is the same).

  Example:

  ```python
  r2 = MaskedR2()
  r2.update_state([1.0, 2.0, 3.0, MASKED], [1.0, 2.0, 2.0, 0.0])
  assert abs(float(r2.result()) - 0.5) < 1e-9
  ```
  """

  def __init__(self, name: str = "r2", **kwargs):
    super().__init__(name=name, **kwargs)
    self.sums = self.add_weight("sums", shape=(4,), dtype=tf.float64, initializer="zeros")

  def update_state(self, y_true, y_pred, sample_weight=None):
    label, y_pred, weight = scored_rows(y_true, y_pred, sample_weight)
    label, y_pred, weight = (tf.cast(t, tf.float64) for t in (label, y_pred, weight))
    return self.sums.assign_add(tf.stack([
        tf.reduce_sum(weight), tf.reduce_sum(weight * label),
        tf.reduce_sum(weight * tf.square(label)),
        tf.reduce_sum(weight * tf.square(tf.where(weight > 0, y_pred - label, 0.0)))]))

  def result(self):
    total, labels, squares, errors = tf.unstack(self.sums)
    spread = squares - tf.math.divide_no_nan(tf.square(labels), total)
    return tf.cast(1.0 - errors / tf.where(total > 0, spread, float("nan")), tf.float32)

  def reset_state(self):
    self.sums.assign(tf.zeros_like(self.sums))


def output_losses(feature_config: FeatureConfig) -> Dict[str, tf.keras.losses.Loss]:
  """The loss of each output: `MaskedBinaryCrossentropy` of a probability,
  `MaskedRegressionLoss` (the task's `loss` and `transform`) of a regression."""
  losses = {name: MaskedBinaryCrossentropy() for name in feature_config.output_names}
  for task in feature_config.tasks:
    if task.is_regression:
      losses[task.name] = MaskedRegressionLoss(task.loss or MSE, task.transform)
  return losses


def _metric_objects(metrics: Tuple[str, ...]):
  made = {"auc": lambda: MaskedAUC(name="auc"),
          "rmse": lambda: MaskedRootMeanSquaredError(name="rmse"),
          "mae": lambda: MaskedMeanAbsoluteError(name="mae"),
          "r2": lambda: MaskedR2(name="r2")}
  return [made[metric]() for metric in metrics]


def loss_weights(feature_config: FeatureConfig, entire_space: bool = True) -> Dict[str, float]:
  """The weight of each output's loss.

  Args:
    feature_config: The tasks (see `Task.loss_weight`, `Task.masked_loss_weight`).
    entire_space: How funnel stages train. True (ESMM): the funnel output carries the
      task's `loss_weight` and the stage its `masked_loss_weight`. False (each task on
      its own label): the stage carries `loss_weight` on the rows where the parent's
      label is 1 and the funnel output is not trained.

  Returns:
    Dict from output name to its loss weight.
  """
  weights = {}
  for task in feature_config.tasks:
    if task.funnel_output and entire_space:
      weights[task.name] = task.masked_loss_weight
      weights[task.funnel_output] = task.loss_weight
    elif task.funnel_output:
      weights[task.name] = task.loss_weight
      weights[task.funnel_output] = 0.0
    else:
      weights[task.name] = task.loss_weight
  return weights


def compile_model(model: tf.keras.Model, feature_config: FeatureConfig,
                  learning_rate: float = 1e-3, steps_per_execution: int = 1,
                  loss_weighting: str = weighting.FIXED, gradnorm_alpha: float = 1.5,
                  jit_compile: bool = False) -> None:
  """Compiles `model` with Adam, the masked loss of every output (`output_losses`) and
  its metrics (`output_metrics`; weighted by the rows' weights when the config has a
  `weight` column, as the losses are).

  A model whose `entire_space` attribute is false trains funnel stages on their own
  labels (see `loss_weights`).

  Args:
    model: The model.
    feature_config: Its tasks.
    learning_rate: Adam's learning rate.
    steps_per_execution: Training steps run by each call of the compiled step function.
      Above 1, Keras calls per-batch callbacks (`on_train_batch_begin` and `_end`) only
      once per that many steps, with the logs of the last one.
    loss_weighting: `fixed` (the weights of `loss_weights`), `uncertainty` or
      `gradnorm` (see `dcrnn_tf.loss_weighting`; attached as `model.loss_weighting`,
      which a `MultiTaskModel`'s `train_step` minimizes).
    gradnorm_alpha: GradNorm's `alpha`.
    jit_compile: Whether Keras compiles the training step with XLA (the model must
      take preprocessed features: string lookups do not compile).
  """
  weights = loss_weights(feature_config, getattr(model, "entire_space", True))
  model.compile(
      optimizer=tf.keras.optimizers.Adam(learning_rate),
      loss=output_losses(feature_config),
      loss_weights=weights,
      **{"weighted_metrics" if feature_config.weight else "metrics": {
          name: _metric_objects(metrics)
          for name, metrics in output_metrics(feature_config).items()}},
      steps_per_execution=steps_per_execution, jit_compile=jit_compile)
  if loss_weighting != weighting.FIXED:
    model.loss_weighting = weighting.make(loss_weighting, weights, gradnorm_alpha,
                                          feature_config.regression_outputs)
