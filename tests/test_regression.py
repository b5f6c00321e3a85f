"""Regression tasks: the config's rules, losses and metrics against numpy on known values,
the towers' heads, bad labels, and a funnel with a dependent regression task trained,
evaluated and served end to end."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

import cli
from dcrnn_tf import early_stopping
from dcrnn_tf import evaluation
from dcrnn_tf import loss_weighting
from dcrnn_tf import objectives
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.errors import DataError
from dcrnn_tf.features import WEIGHT_KEY, Feature, FeatureConfig, Label, Task
from dcrnn_tf.layers import Tower
from dcrnn_tf.models import MODELS, build_model
from dcrnn_tf.objectives import MASKED

NAN = float("nan")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dwell_config(**dwell) -> FeatureConfig:
  """ctr, and the dwell time of a clicked impression (a regression on ctr)."""
  return FeatureConfig(
      features=(Feature("item", "categorical", vocabulary=("a", "b", "c")),
                Feature("price", "numeric", mean=0.0, std=1.0)),
      labels=("click", "dwell"),
      tasks=(Task("ctr", "click"),
             Task("dwell_time", "dwell", depends_on="ctr",
                  **{"type": "regression", **dwell})))


@pytest.mark.parametrize("task, message", [
    (dict(type="regression", depends_on="ctr", funnel_output="x"), "has no funnel output"),
    (dict(transform="log1p"), "applies to regression tasks only"),
    (dict(type="regression", transform="log1p", output="linear"), "drop output: linear"),
    (dict(type="regression", loss="mae"), "loss must be one of"),
    (dict(type="ordinal"), "type must be one of"),
])
def test_task_rules(task, message):
  with pytest.raises(ValueError, match=message):
    Task("t", "y", **task)


def test_config_rules():
  with pytest.raises(ValueError, match="may depend on a binary task only"):
    FeatureConfig(features=(Feature("p", "numeric"),), labels=("a", "b"),
                  tasks=(Task("a", "a", type="regression"),
                         Task("b", "b", type="regression", depends_on="a")))
  with pytest.raises(ValueError, match="of a binary and of a regression task"):
    FeatureConfig(features=(Feature("p", "numeric"),), labels=("a",),
                  tasks=(Task("a", "a"), Task("b", "a", type="regression")))
  with pytest.raises(ValueError, match="regression label is a number"):
    FeatureConfig(features=(Feature("p", "numeric"),),
                  labels=(Label("a", positive_values=("yes",)),),
                  tasks=(Task("a", "a", type="regression"),))
  config = dwell_config(transform="log1p", loss="huber")
  assert FeatureConfig.from_dict(config.to_dict()) == config
  assert config.regression_outputs == ("dwell_time",)
  assert config.output_names == ("ctr", "dwell_time")


def test_targets_of_a_dependent_regression_task_cover_the_parents_positive_rows():
  targets = objectives.make_targets(
      {"click": tf.constant([1.0, 0.0, 1.0]), "dwell": tf.constant([4.0, 0.0, 0.5])},
      dwell_config())
  np.testing.assert_array_equal(targets["dwell_time"], [4.0, MASKED, 0.5])
  np.testing.assert_array_equal(targets["ctr"], [1.0, 0.0, 1.0])


@pytest.mark.parametrize("loss, transform", [("mse", None), ("huber", None),
                                             ("mse", "log1p"), ("huber", "log1p")])
def test_regression_losses_match_numpy_on_the_scored_rows(loss, transform):
  y_true = np.array([0.0, 3.0, MASKED, 10.0, 2.0], np.float32)
  y_pred = np.array([1.0, 3.5, 7.0, 2.0, 2.0], np.float32)
  scored = ~np.isnan(y_true)
  t = np.log1p if transform else (lambda v: v)
  error = t(y_pred[scored].astype(np.float64)) - t(y_true[scored].astype(np.float64))
  per_row = (np.square(error) if loss == "mse" else
             np.where(np.abs(error) <= 1, 0.5 * np.square(error), np.abs(error) - 0.5))
  value = objectives.MaskedRegressionLoss(loss, transform)(y_true, y_pred)
  assert float(value) == pytest.approx(per_row.mean(), rel=1e-5)
  everything_masked = objectives.MaskedRegressionLoss(loss, transform)(
      tf.fill([3], MASKED), tf.constant([1.0, 2.0, 3.0]))
  assert float(everything_masked) == 0.0


def test_streaming_regression_metrics_equal_the_exact_ones():
  rng = np.random.default_rng(0)
  labels = rng.exponential(3.0, 500).astype(np.float32)
  predictions = (labels + rng.normal(0, 1, 500)).astype(np.float32)
  targets = np.where(rng.random(500) < 0.3, MASKED, labels).astype(np.float32)
  scored = ~np.isnan(targets)
  exact = evaluation.regression_metrics(labels[scored], predictions[scored])
  errors = predictions[scored].astype(np.float64) - labels[scored]
  assert exact["rmse"] == pytest.approx(np.sqrt(np.mean(errors ** 2)))
  assert exact["mae"] == pytest.approx(np.mean(np.abs(errors)))
  spread = np.sum((labels[scored] - labels[scored].mean()) ** 2)
  assert exact["r2"] == pytest.approx(1 - np.sum(errors ** 2) / spread)
  for metric, name in ((objectives.MaskedRootMeanSquaredError(), "rmse"),
                       (objectives.MaskedMeanAbsoluteError(), "mae"),
                       (objectives.MaskedR2(), "r2")):
    for start in range(0, 500, 128):  # In batches, as training streams them.
      metric.update_state(targets[start:start + 128], predictions[start:start + 128])
    assert float(metric.result()) == pytest.approx(exact[name], rel=1e-5), name


@pytest.mark.parametrize("head, expected", [
    ("probability", lambda z: 1 / (1 + np.exp(-z))), ("linear", lambda z: z),
    ("nonnegative", lambda z: np.log1p(np.exp(z))),
    ("expm1", lambda z: np.expm1(np.log1p(np.exp(z))))])
def test_tower_heads_give_known_outputs_from_known_weights(head, expected):
  tower = Tower(hidden_units=(), head=head)
  x = tf.constant([[1.0, 2.0], [0.0, -1.0], [-3.0, 0.5]])
  tower(x)
  tower.logit.kernel.assign([[0.5], [-1.0]])
  tower.logit.bias.assign([0.25])
  z = x.numpy() @ np.array([0.5, -1.0]) + 0.25
  np.testing.assert_allclose(tower(x).numpy(), expected(z), rtol=1e-6)
  assert Tower.from_config(tower.get_config()).head == head


def test_uncertainty_weighting_uses_the_regression_form():
  layer = loss_weighting.make("uncertainty", {"ctr": 1.0, "dwell_time": 2.0},
                              regression_outputs=("dwell_time",))
  np.testing.assert_allclose(layer.task_weights().numpy(), [1.0, 2.0], rtol=1e-6)
  s = layer.log_variances.numpy()
  objective = layer({"ctr": tf.constant(0.5), "dwell_time": tf.constant(3.0)})
  expected = np.exp(-s[0]) * 0.5 + 0.5 * np.exp(-s[1]) * 3.0 + 0.5 * s.sum()
  assert float(objective) == pytest.approx(expected, rel=1e-6)
  rebuilt = loss_weighting.UncertaintyWeighting.from_config(layer.get_config())
  assert rebuilt.regression_outputs == ("dwell_time",)


def test_early_stopping_watches_regression_metrics_in_their_direction():
  metrics = objectives.output_metrics(dwell_config())
  assert metrics == {"ctr": ("auc",), "dwell_time": ("rmse", "mae", "r2")}
  early_stopping.check_monitor("val_dwell_time_rmse", metrics)
  with pytest.raises(Exception, match="val_dwell_time_auc"):
    early_stopping.check_monitor("val_dwell_time_auc", metrics)
  assert [early_stopping.monitor_mode(f"val_dwell_time_{m}") for m in ("rmse", "mae", "r2")] \
      == ["min", "min", "max"]


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"esmm"}))
def test_every_model_trains_a_regression_output(name):
  config = dwell_config(transform="log1p")
  model = build_model(name, config)
  objectives.compile_model(model, config, learning_rate=0.01)
  features = {"item": tf.constant(["a", "b", "c", "a"] * 8),
              "price": tf.constant(np.linspace(-1, 1, 32), tf.float32)}
  labels = {"click": tf.constant([1.0, 0.0] * 16), "dwell": tf.constant([3.0, 0.0] * 16)}
  history = model.fit(features, objectives.make_targets(labels, config), batch_size=8,
                      epochs=2, verbose=0)
  assert np.isfinite(history.history["dwell_time_rmse"]).all()
  predictions = model(features)
  assert bool(tf.reduce_all(predictions["dwell_time"] >= 0))


def test_esmm_trains_a_regression_task_beside_its_funnel():
  config = FeatureConfig(
      features=(Feature("price", "numeric", mean=0.0, std=1.0),),
      labels=("click", "buy", "dwell"),
      tasks=(Task("ctr", "click"), Task("cvr", "buy", depends_on="ctr", funnel_output="ctcvr"),
             Task("dwell_time", "dwell", depends_on="ctr", type="regression")))
  model = build_model("esmm", config)
  objectives.compile_model(model, config)
  labels = {"click": tf.constant([1.0, 0.0] * 4), "buy": tf.constant([1.0, 0.0, 0.0, 0.0] * 2),
            "dwell": tf.constant([2.0, 0.0] * 4)}
  model.fit({"price": tf.range(8, dtype=tf.float32)}, objectives.make_targets(labels, config),
            epochs=1, verbose=0)
  assert sorted(model({"price": tf.zeros([2])})) == ["ctcvr", "ctr", "cvr", "dwell_time"]


def write_csv(path, rows):
  pd.DataFrame(rows, columns=["item", "price", "click", "dwell"]).to_csv(path, index=False)


def test_bad_regression_labels_are_bad_rows_naming_file_line_and_column(tmp_path):
  path = tmp_path / "train.csv"
  write_csv(path, [["a", 1.0, 1, 2.5], ["b", 0.5, 1, "x"], ["c", 0.1, 0, "inf"],
                   ["a", 0.3, 1, -2.0]])
  config = dwell_config(transform="log1p")
  with pytest.raises(DataError, match=r"train.csv:3:4: label column 'dwell': value 'x' is "
                                      "not a finite number"):
    scan.scan(str(path), config)
  report = scan.scan(str(path), config, bad_rows="skip")[0]
  reasons = [bad.reason for bad in report.bad_rows]
  assert reasons == ["label column 'dwell': value 'x' is not a finite number",
                     "label column 'dwell': value 'inf' is not a finite number",
                     "label column 'dwell': value '-2.0' is negative, and its task trains "
                     "on log1p(label)"]


def test_bad_regression_labels_in_tfrecords_are_bad_rows(tmp_path):
  from conftest import serialize_example  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "train.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for dwell in ([2.5], [NAN], [-1.0]):
      writer.write(serialize_example(item=["a"], price=[1.0], click=[1], dwell=dwell))
  report = scan.scan(path, dwell_config(transform="log1p"), bad_rows="skip")[0]
  assert [(bad.line, bad.kind) for bad in report.bad_rows] == [(2, "label_value"),
                                                          (3, "label_value")]
  assert "negative" in report.bad_rows[1].reason


def dwell_rows(rows: int, seed: int = 0) -> pd.DataFrame:
  """Rows of `dwell_config`'s columns and a weight `w`: clicks likelier at a high price,
  log(dwell) = 1 + price + noise(0.2)."""
  rng = np.random.default_rng(seed)
  price = rng.normal(size=rows).round(3)
  click = (rng.random(rows) < 1 / (1 + np.exp(-2 * price))).astype(int)
  return pd.DataFrame({
      "item": rng.choice(["a", "b", "c"], rows), "price": price, "click": click,
      "dwell": np.where(click == 1, np.exp(1 + price + rng.normal(0, 0.2, rows)).round(3),
                        0.0),
      "w": rng.uniform(0.5, 2.0, rows).round(2)})


def unprepared(config: FeatureConfig) -> dict:
  """The config's dict without the statistics the data scan learns."""
  out = config.to_dict()
  for feature in out["features"]:
    for key in ("vocabulary", "mean", "std"):
      feature.pop(key, None)
  return out


@pytest.fixture(scope="module")
def trained_dwell(tmp_path_factory):
  """A ctr task, the log1p dwell time of clicks and row weights, trained, evaluated and
  exported through `python -m dcrnn_tf.main`."""
  work = tmp_path_factory.mktemp("dwell")
  dwell_rows(3000).to_csv(work / "train.csv", index=False)
  config = dataclasses.replace(dwell_config(transform="log1p"), weight="w")
  (work / "config.json").write_text(json.dumps(unprepared(config)))
  flags = [f"--feature_config={work / 'config.json'}", f"--train_path={work / 'train.csv'}",
           "--split=80,10,10", f"--model_dir={work / 'model'}",
           f"--export_dir={work / 'export'}", "--epochs=4", "--batch_size=64",
           "--learning_rate=0.01"]
  trained = cli.run(*flags, "--early_stopping_patience=2",
                    "--early_stopping_monitor=val_dwell_time_rmse", cwd=work)
  (work / "train_log.txt").write_text(trained.stderr)
  dwell_rows(5, seed=1)[["item", "price"]].to_csv(work / "predict.csv", index=False)
  cli.run(*flags, "--mode=predict", f"--predict_path={work / 'predict.csv'}", cwd=work)
  cli.run(*flags, "--mode=inspect", "--inspect_rows=64", cwd=work)
  return work


@pytest.mark.slow
def test_a_dependent_regression_task_trains_evaluates_and_serves(trained_dwell):
  metrics = json.loads((trained_dwell / "model" / "eval_metrics.json").read_text())
  assert sorted(metrics["dwell_time"]) == ["count", "mae", "mae_unweighted", "r2",
                                           "r2_unweighted", "rmse", "rmse_unweighted",
                                           "weight"]
  assert sorted(metrics["ctr"]) == ["auc", "auc_unweighted", "count", "logloss",
                                    "logloss_unweighted", "positive_rate",
                                    "positive_rate_unweighted", "weight"]
  assert metrics["ctr"]["auc"] != metrics["ctr"]["auc_unweighted"]
  assert "eval ctr: AUC " in (trained_dwell / "train_log.txt").read_text()
  assert " (unweighted " in (trained_dwell / "train_log.txt").read_text()
  assert metrics["dwell_time"]["r2"] > 0.5  # log(dwell) = 1 + price + noise(0.2).
  assert metrics["dwell_time"]["count"] < metrics["ctr"]["count"]  # Clicked rows only.
  predictions = pd.read_csv(trained_dwell / "model" / "predictions.csv")
  assert len(predictions) == 5 and (predictions["dwell_time"] > 0).all()
  inspected = json.loads((trained_dwell / "model" / "inspect.json").read_text())
  assert inspected["mean_prediction"]["dwell_time"] > 1.0
  export = trained_dwell / "export"
  version = export / sorted(os.listdir(export))[-1]
  # A fresh process that does not import dcrnn_tf serves both signatures.
  script = f"""
import json, tensorflow as tf
loaded = tf.saved_model.load({str(version)!r})
by_features = loaded.signatures["predict_features"](
    item=tf.constant(["a", "zzz"]), price=tf.constant([1.0, -1.0]))
example = tf.train.Example()
example.features.feature["item"].bytes_list.value.append(b"a")
example.features.feature["price"].float_list.value.append(1.0)
example.features.feature["w"].float_list.value.append(1.5)  # A weight: allowed, unused.
by_examples = loaded.signatures["serving_default"](
    examples=tf.constant([example.SerializeToString()]))
print(json.dumps({{"features": by_features["dwell_time"].numpy().tolist(),
                   "examples": by_examples["dwell_time"].numpy().tolist(),
                   "ctr": by_features["ctr"].numpy().tolist()}}))
"""
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env=cli.user_env())
  served = json.loads(result.stdout.strip().splitlines()[-1])
  assert served["features"][0] == served["examples"][0]
  # In seconds: exp(1 + price) is 7.4 at price 1, 1.0 at price -1.
  assert 4.0 < served["features"][0] < 12.0 and 0.3 < served["features"][1] < 2.5
  assert all(0 < p < 1 for p in served["ctr"])


class KnownOutputs(tf.keras.Model):
  """Known predictions of `dwell_config`'s outputs: ctr = sigmoid(price), dwell_time =
  exp(1 + price)."""

  def call(self, inputs, training=None):
    price = tf.reshape(inputs["price"], [-1])
    return {"ctr": tf.sigmoid(price), "dwell_time": tf.exp(1.0 + price)}


def test_evaluation_of_known_outputs_matches_numpy(tmp_path):
  frame = dwell_rows(400)
  frame.to_csv(tmp_path / "rows.csv", index=False)
  config = dataclasses.replace(dwell_config(), weight="w")
  metrics = evaluation.evaluate(KnownOutputs(), pipeline.make_dataset(
      str(tmp_path / "rows.csv"), config, 64), config)
  price, click = frame["price"].to_numpy(np.float64), frame["click"].to_numpy()
  w = frame["w"].to_numpy(np.float64)
  p = np.clip(1 / (1 + np.exp(-price)), 1e-7, 1 - 1e-7)
  pairs = [(i, j) for i in np.flatnonzero(click == 1) for j in np.flatnonzero(click == 0)]
  pairs = np.array(pairs)
  beats = (p[pairs[:, 0]] > p[pairs[:, 1]]) + 0.5 * (p[pairs[:, 0]] == p[pairs[:, 1]])
  pair_weights = w[pairs[:, 0]] * w[pairs[:, 1]]
  assert metrics["ctr"]["auc"] == pytest.approx(np.sum(pair_weights * beats)
                                                / np.sum(pair_weights), rel=1e-6)
  assert metrics["ctr"]["auc_unweighted"] == pytest.approx(beats.mean(), rel=1e-6)
  losses = -(click * np.log(p) + (1 - click) * np.log(1 - p))
  assert metrics["ctr"]["logloss"] == pytest.approx(np.sum(w * losses) / w.sum(), rel=1e-5)
  clicked = click == 1
  y = frame["dwell"].to_numpy(np.float64)[clicked]
  e = np.exp(1 + price[clicked]).astype(np.float32) - y
  wc = w[clicked]
  assert metrics["dwell_time"]["count"] == clicked.sum()
  assert metrics["dwell_time"]["weight"] == pytest.approx(wc.sum())
  assert metrics["dwell_time"]["rmse"] == pytest.approx(np.sqrt(np.sum(wc * e ** 2) / wc.sum()),
                                                        rel=1e-5)
  assert metrics["dwell_time"]["mae_unweighted"] == pytest.approx(np.mean(np.abs(e)),
                                                                  rel=1e-5)
  mean = np.sum(wc * y) / wc.sum()
  assert metrics["dwell_time"]["r2"] == pytest.approx(
      1 - np.sum(wc * e ** 2) / np.sum(wc * (y - mean) ** 2), rel=1e-5)


def test_gradnorm_trains_a_regression_output_beside_a_probability():
  config = dwell_config(transform="log1p")
  model = build_model("shared_bottom", config)
  objectives.compile_model(model, config, learning_rate=0.01, loss_weighting="gradnorm")
  frame = dwell_rows(256)
  features = {"item": tf.constant(frame["item"]), "price": tf.constant(frame["price"],
                                                                      tf.float32)}
  labels = {"click": tf.constant(frame["click"], tf.float32),
            "dwell": tf.constant(frame["dwell"], tf.float32)}
  history = model.fit(features, objectives.make_targets(labels, config), batch_size=64,
                      epochs=2, verbose=0)
  assert np.isfinite(history.history["loss"]).all()
  weights = model.loss_weighting.task_weights().numpy()
  assert weights.sum() == pytest.approx(2.0, rel=1e-5) and (weights > 0).all()


@pytest.mark.slow
def test_the_benchmark_compares_a_regression_task(tmp_path):
  out = tmp_path / "out"
  result = subprocess.run(
      [sys.executable, "-m", "dcrnn_tf.benchmark", "--flagfile=configs/benchmark_synthetic.flags",
       "--synthetic_dwell", f"--data_dir={tmp_path / 'data'}", "--synthetic_train_rows=4000",
       f"--output_dir={out}", "--preset=smoke", "--models=shared_bottom",
       "--ablations=", "--profile=off", "--write_markdown=", "--measure_speed=false"],
      capture_output=True, text=True, cwd=ROOT, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  markdown = (out / "smoke" / "synthetic.md").read_text()
  assert "| model | ctr AUC | cvr AUC | dwell RMSE | ctcvr AUC |" in markdown
  bench = json.loads((out / "smoke" / "synthetic.json").read_text())
  assert {"rmse_mean", "r2_mean", "rmse_by_seed"} <= set(bench["models"][0]["metrics"]["dwell"])


def test_a_model_of_one_output_is_monitored_by_keras_names():
  config = FeatureConfig(features=(Feature("p", "numeric", mean=0.0, std=1.0),),
                         labels=("y",), tasks=(Task("time", "y", type="regression"),))
  metrics = objectives.output_metrics(config)
  assert early_stopping.monitored_figures(metrics)[:5] == [
      "val_loss", "val_rmse", "val_mae", "val_r2", "loss"]
  model = build_model("shared_bottom", config)
  objectives.compile_model(model, config)
  logs = model.evaluate({"p": tf.constant([0.0, 1.0])}, {"time": tf.constant([1.0, 2.0])},
                        verbose=0, return_dict=True)
  assert sorted(logs) == ["loss", "mae", "r2", "rmse"]


def test_a_keras_file_of_a_regression_model_reloads_with_identical_predictions(tmp_path):
  config = dataclasses.replace(dwell_config(transform="log1p", loss="huber"), weight="w")
  model = build_model("dcrnn", config)
  objectives.compile_model(model, config, loss_weighting="uncertainty")
  frame = dwell_rows(64)
  features = {"item": tf.constant(frame["item"]),
              "price": tf.constant(frame["price"], tf.float32)}
  labels = {"click": tf.constant(frame["click"], tf.float32),
            "dwell": tf.constant(frame["dwell"], tf.float32),
            WEIGHT_KEY: tf.constant(frame["w"], tf.float32)}
  _, targets, weights = objectives.fit_batch(features, labels, config)
  model.fit(features, targets, sample_weight=weights, epochs=1, verbose=0)
  model.save(str(tmp_path / "model.keras"))
  reloaded = tf.keras.models.load_model(str(tmp_path / "model.keras"))
  assert [t.head for t in reloaded.towers.values()] == ["probability", "expm1"]
  for name, values in model(features).items():
    np.testing.assert_array_equal(reloaded(features)[name], values)
  assert reloaded.loss["dwell_time"].get_config()["loss"] == "huber"
