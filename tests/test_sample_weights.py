"""Row weights (`weight: <column>`): the config's rules, weights read from both formats,
bad weights as bad rows, the weighted loss and metrics against numpy (integer weights
equal repeated rows). A weighted run through `python -m dcrnn_tf.main` is in
test_regression.py (`trained_dwell`)."""

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import serialize_example
from dcrnn_tf import evaluation
from dcrnn_tf import objectives
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.errors import DataError
from dcrnn_tf.features import WEIGHT_KEY, Feature, FeatureConfig, Task
from dcrnn_tf.models import build_model

COLUMNS = ["item", "price", "click", "w"]


def weighted_config(**changes) -> FeatureConfig:
  return FeatureConfig(**{
      "features": (Feature("item", "categorical", vocabulary=("a", "b")),
                   Feature("price", "numeric", mean=0.0, std=1.0)),
      "labels": ("click",), "tasks": (Task("ctr", "click"),), "weight": "w", **changes})


def test_config_rules():
  config = weighted_config()
  assert FeatureConfig.from_dict(config.to_dict()) == config
  assert config.columns == ("item", "price", "click", "w")
  for changes in ({"weight": "price"}, {"weight": "click"}, {"ignore": ("w",)}):
    with pytest.raises(ValueError, match="The weight column 'w'|The weight column 'price'|"
                                         "The weight column 'click'"):
      weighted_config(**changes)
  with pytest.raises(ValueError, match="No label may be named"):
    weighted_config(labels=(WEIGHT_KEY,), tasks=(Task("ctr", WEIGHT_KEY),))


def test_both_formats_read_the_weights_among_the_labels(tmp_path):
  config = weighted_config()
  csv_path = tmp_path / "rows.csv"
  pd.DataFrame([["a", 1.0, 1, 2.5], ["b", 0.0, 0, 0.0]], columns=COLUMNS).to_csv(
      csv_path, index=False)
  tfrecord_path = str(tmp_path / "rows.tfrecord")
  with tf.io.TFRecordWriter(tfrecord_path) as writer:
    writer.write(serialize_example(item=["a"], price=[1.0], click=[1], w=[2.5]))
    writer.write(serialize_example(item=["b"], price=[0.0], click=[0], w=[0.0]))
  for path in (str(csv_path), tfrecord_path):
    _, labels = next(iter(pipeline.make_dataset(path, config, 2)))
    np.testing.assert_array_equal(labels[WEIGHT_KEY], [2.5, 0.0])
  # Predictions need no weight column.
  pd.DataFrame([["a", 1.0]], columns=COLUMNS[:2]).to_csv(tmp_path / "features.csv",
                                                         index=False)
  features = next(iter(pipeline.make_dataset(str(tmp_path / "features.csv"), config, 1,
                                             with_labels=False)))
  assert sorted(features) == ["item", "price"]


def test_bad_weights_are_bad_rows_naming_file_line_and_column(tmp_path):
  path = tmp_path / "rows.csv"
  pd.DataFrame([["a", 1.0, 1, 2.0], ["a", 1.0, 1, -1.0], ["b", 0.0, 0, ""],
                ["b", 0.0, 0, "nan"]], columns=COLUMNS).to_csv(path, index=False)
  with pytest.raises(DataError, match=r"rows.csv:3:4: weight column 'w': value '-1.0' is not "
                                      "a finite number >= 0"):
    scan.scan(str(path), weighted_config())
  report = scan.scan(str(path), weighted_config(), bad_rows="skip")[0]
  assert [(bad.line, bad.kind) for bad in report.bad_rows] == [
      (3, "weight_value"), (4, "missing_weight"), (5, "weight_value")]
  tfrecord_path = str(tmp_path / "rows.tfrecord")
  with tf.io.TFRecordWriter(tfrecord_path) as writer:
    for weight in ([1.0], [-2.0], [], [float("inf")]):
      writer.write(serialize_example(item=["a"], price=[1.0], click=[1], w=weight))
  report = scan.scan(tfrecord_path, weighted_config(), bad_rows="skip")[0]
  assert [(bad.line, bad.kind) for bad in report.bad_rows] == [
      (2, "weight_value"), (3, "missing_weight"), (4, "weight_value")]


def test_weighted_metrics_equal_the_metrics_of_repeated_rows():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 200).astype(float)
  scores = np.round(rng.random(200), 2)  # With ties.
  weights = rng.integers(0, 4, 200).astype(float)
  repeated = np.repeat(np.arange(200), weights.astype(int))
  assert evaluation.roc_auc(labels, scores, weights) == pytest.approx(
      evaluation.roc_auc(labels[repeated], scores[repeated]))
  assert evaluation.log_loss(labels, scores, weights) == pytest.approx(
      evaluation.log_loss(labels[repeated], scores[repeated]))
  values = rng.exponential(2.0, 200)
  predictions = values + rng.normal(0, 1, 200)
  weighted = evaluation.regression_metrics(values, predictions, weights)
  plain = evaluation.regression_metrics(values[repeated], predictions[repeated])
  assert weighted == pytest.approx(plain)


def test_the_training_loss_weighs_each_rows_loss():
  config = weighted_config()
  model = build_model("shared_bottom", config)
  objectives.compile_model(model, config)
  features = {"item": tf.constant(["a", "b", "a", "b"]),
              "price": tf.constant([1.0, -1.0, 0.5, 2.0])}
  labels = {"click": tf.constant([1.0, 0.0, 0.0, 1.0]),
            WEIGHT_KEY: tf.constant([2.0, 0.0, 1.0, 0.5])}
  _, targets, weights = objectives.fit_batch(features, labels, config)
  p = model(features)["ctr"].numpy().astype(np.float64)
  y = labels["click"].numpy()
  per_row = -(y * np.log(p) + (1 - y) * np.log(1 - p))
  logs = model.evaluate(features, targets, sample_weight=weights, batch_size=4, verbose=0,
                        return_dict=True)
  assert logs["loss"] == pytest.approx(np.mean(labels[WEIGHT_KEY].numpy() * per_row),
                                       rel=1e-5)
  assert logs["auc"] == pytest.approx(  # One output: Keras names it "auc".
      evaluation.roc_auc(y, p, labels[WEIGHT_KEY].numpy()), abs=1e-3)
