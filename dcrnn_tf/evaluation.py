"""Exact evaluation metrics per model output over a whole data set: AUC and log loss of a
probability, RMSE, MAE and R² of a regression."""

from typing import Any, Dict, Iterable, Tuple

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import FeatureConfig
from dcrnn_tf.objectives import make_targets


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """Area under the ROC curve (ties count one half); NaN if one class is absent."""
  labels = np.asarray(labels, dtype=bool).ravel()
  scores = np.asarray(scores, dtype=np.float64).ravel()
  positives = int(labels.sum())
  negatives = labels.size - positives
  if positives == 0 or negatives == 0:
    return float("nan")
  order = np.argsort(scores, kind="mergesort")
  sorted_scores = scores[order]
  ranks = np.empty(scores.size, dtype=np.float64)
  # Average rank (1-based) of each group of tied scores.
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
  ends = np.r_[starts[1:], scores.size]
  ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
  rank_sum = ranks[labels].sum()
  return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def log_loss(labels: np.ndarray, probabilities: np.ndarray, epsilon: float = 1e-7) -> float:
  """Mean binary cross-entropy."""
  labels = np.asarray(labels, dtype=np.float64).ravel()
  p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), epsilon, 1.0 - epsilon)
  return float(-np.mean(labels * np.log(p) + (1.0 - labels) * np.log(1.0 - p)))


def regression_metrics(labels: np.ndarray, predictions: np.ndarray) -> Dict[str, float]:
  """RMSE, MAE and R² (`1 - SSE / sum (y - mean y)^2`; NaN if every label is the same)
  of predictions in the labels' units."""
  labels = np.asarray(labels, dtype=np.float64).ravel()
  if not labels.size:
    return {"rmse": float("nan"), "mae": float("nan"), "r2": float("nan")}
  errors = np.asarray(predictions, dtype=np.float64).ravel() - labels
  spread = float(np.sum(np.square(labels - labels.mean())))
  return {"rmse": float(np.sqrt(np.mean(np.square(errors)))),
          "mae": float(np.mean(np.abs(errors))),
          "r2": 1.0 - float(np.sum(np.square(errors))) / spread if spread > 0 else float("nan")}


def evaluate(model: tf.keras.Model, dataset: Iterable[Tuple[Any, Any]],
             feature_config: FeatureConfig) -> Dict[str, Dict[str, float]]:
  """AUC, log loss and row count of every output over `dataset`.

  Args:
    model: A model returning a dict of predictions keyed by output name.
    dataset: Finite dataset (or another iterable) of `(features, labels)` batches
      (labels by column).
    feature_config: Tasks and funnel outputs.

  Returns:
    `{output: {"auc": float, "logloss": float, "count": int}}`, for a regression task
    `{"rmse", "mae", "r2", "count"}`; a funnel stage, and a regression task that
    depends on a binary one, are scored on the rows where the parent's label is 1.
  """
  predict = tf.function(lambda features: model(features, training=False))
  targets = {name: [] for name in feature_config.output_names}
  predictions = {name: [] for name in feature_config.output_names}
  for features, labels in dataset:
    outputs = predict(features)
    for name, target in make_targets(labels, feature_config).items():
      targets[name].append(target.numpy())
      predictions[name].append(outputs[name].numpy())
  results = {}
  regression = set(feature_config.regression_outputs)
  for name in feature_config.output_names:
    if not targets[name]:
      raise ValueError("evaluate: the dataset is empty.")
    target = np.concatenate(targets[name])
    prediction = np.concatenate(predictions[name])
    scored = ~np.isnan(target)
    if name in regression:
      results[name] = regression_metrics(target[scored], prediction[scored])
    else:
      results[name] = {"auc": roc_auc(target[scored], prediction[scored]),
                       "logloss": log_loss(target[scored], prediction[scored])}
    results[name]["count"] = int(scored.sum())
  return results
