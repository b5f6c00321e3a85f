"""Exact evaluation metrics per model output over a whole data set: AUC and log loss of a
probability, RMSE, MAE and R² of a regression."""

from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import WEIGHT_KEY, FeatureConfig
from dcrnn_tf.objectives import make_targets


def _weights(weights: Optional[np.ndarray], size: int) -> np.ndarray:
  return (np.ones(size) if weights is None
          else np.asarray(weights, dtype=np.float64).ravel())


def roc_auc(labels: np.ndarray, scores: np.ndarray,
            weights: Optional[np.ndarray] = None) -> float:
  """Area under the ROC curve: the chance that a positive outscores a negative, each
  pair weighted by the product of the rows' `weights` (default 1); ties count one half.
  NaN if either class has no weight."""
  labels = np.asarray(labels, dtype=bool).ravel()
  scores = np.asarray(scores, dtype=np.float64).ravel()
  weights = _weights(weights, labels.size)
  positive_weight = np.where(labels, weights, 0.0)
  negative_weight = np.where(labels, 0.0, weights)
  total_positive, total_negative = positive_weight.sum(), negative_weight.sum()
  if total_positive <= 0 or total_negative <= 0:
    return float("nan")
  # Per group of tied scores, in increasing order: its positives beat the negatives of
  # lower scores and tie with its own.
  distinct, group = np.unique(scores, return_inverse=True)
  positives = np.bincount(group, positive_weight, minlength=distinct.size)
  negatives = np.bincount(group, negative_weight, minlength=distinct.size)
  below = np.cumsum(negatives) - negatives
  return float(np.sum(positives * (below + 0.5 * negatives)) / (total_positive * total_negative))


def log_loss(labels: np.ndarray, probabilities: np.ndarray,
             weights: Optional[np.ndarray] = None, epsilon: float = 1e-7) -> float:
  """Mean binary cross-entropy, weighted by `weights` (default 1)."""
  labels = np.asarray(labels, dtype=np.float64).ravel()
  p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), epsilon, 1.0 - epsilon)
  losses = -(labels * np.log(p) + (1.0 - labels) * np.log(1.0 - p))
  weights = _weights(weights, labels.size)
  return float(np.sum(weights * losses) / np.sum(weights)) if weights.sum() > 0 else float("nan")


def regression_metrics(labels: np.ndarray, predictions: np.ndarray,
                       weights: Optional[np.ndarray] = None) -> Dict[str, float]:
  """RMSE, MAE and R² (`1 - SSE / sum (y - mean y)^2`; NaN if every label is the same)
  of predictions in the labels' units, each row weighted by `weights` (default 1)."""
  labels = np.asarray(labels, dtype=np.float64).ravel()
  weights = _weights(weights, labels.size)
  total = weights.sum()
  if not total > 0:
    return {"rmse": float("nan"), "mae": float("nan"), "r2": float("nan")}
  errors = np.asarray(predictions, dtype=np.float64).ravel() - labels
  squared = float(np.sum(weights * np.square(errors)))
  spread = float(np.sum(weights * np.square(labels - np.sum(weights * labels) / total)))
  return {"rmse": float(np.sqrt(squared / total)),
          "mae": float(np.sum(weights * np.abs(errors)) / total),
          "r2": 1.0 - squared / spread if spread > 0 else float("nan")}


def exact_metrics(labels: np.ndarray, predictions: np.ndarray, regression: bool,
                  weights: Optional[np.ndarray] = None) -> Dict[str, float]:
  """`regression_metrics` of a regression output, else its AUC, log loss and the share
  of positive labels (`positive_rate`, weighted as the others)."""
  if regression:
    return regression_metrics(labels, predictions, weights)
  weight = _weights(weights, np.size(labels))
  return {"auc": roc_auc(labels, predictions, weights),
          "logloss": log_loss(labels, predictions, weights),
          "positive_rate": (float(np.sum(weight * np.asarray(labels, np.float64).ravel())
                                  / weight.sum()) if weight.sum() > 0 else float("nan"))}


def evaluate(model: tf.keras.Model, dataset: Iterable[Tuple[Any, Any]],
             feature_config: FeatureConfig) -> Dict[str, Dict[str, float]]:
  """AUC, log loss and row count of every output over `dataset`.

  Args:
    model: A model returning a dict of predictions keyed by output name.
    dataset: Finite dataset (or another iterable) of `(features, labels)` batches
      (labels by column).
    feature_config: Tasks and funnel outputs.

  Returns:
    `{output: {"auc": float, "logloss": float, "positive_rate": float, "count": int}}`,
    for a regression task
    `{"rmse", "mae", "r2", "count"}`; a funnel stage, and a regression task that
    depends on a binary one, are scored on the rows where the parent's label is 1.
    With a `weight` column the metrics are weighted by the rows' weights, and the
    unweighted ones come beside them (`auc_unweighted`, …), with `weight`, the sum of
    the scored rows' weights.
  """
  predict = tf.function(lambda features: model(features, training=False))
  targets = {name: [] for name in feature_config.output_names}
  predictions = {name: [] for name in feature_config.output_names}
  weights = []
  for features, labels in dataset:
    outputs = predict(features)
    for name, target in make_targets(labels, feature_config).items():
      targets[name].append(target.numpy())
      predictions[name].append(outputs[name].numpy())
    if feature_config.weight is not None:
      weights.append(labels[WEIGHT_KEY].numpy())
  results = {}
  regression = set(feature_config.regression_outputs)
  for name in feature_config.output_names:
    if not targets[name]:
      raise ValueError("evaluate: the dataset is empty.")
    target = np.concatenate(targets[name])
    prediction = np.concatenate(predictions[name])
    scored = ~np.isnan(target)
    metrics = exact_metrics(target[scored], prediction[scored], name in regression)
    if weights:
      weight = np.concatenate(weights)[scored]
      metrics = {**exact_metrics(target[scored], prediction[scored], name in regression,
                                 weight),
                 **{f"{key}_unweighted": value for key, value in metrics.items()},
                 "weight": float(weight.sum())}
    results[name] = {**metrics, "count": int(scored.sum())}
  return results
