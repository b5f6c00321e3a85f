"""The command line end to end on a tiny synthetic data set: train, resume, evaluate,
export, predict."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

pytestmark = pytest.mark.slow

TINY = ["--synthetic_train_rows=4000", "--synthetic_eval_rows=1000", "--batch_size=256",
        "--shared_units=8", "--private_units=4", "--cross_dim=16", "--tower_units=16",
        "--verbose=0"]


def run_main(workdir, *flags, check=True):
  command = [sys.executable, "-m", "dcrnn_tf.main", "--synthetic",
             f"--data_dir={workdir}/data", f"--model_dir={workdir}/model",
             f"--export_dir={workdir}/export"] + TINY + list(flags)
  result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
  if check and result.returncode:
    raise AssertionError(f"{command} failed:\n{result.stderr[-4000:]}")
  return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  return tmp_path_factory.mktemp("cli")


def test_train_writes_metrics_checkpoint_and_export(workdir):
  log = run_main(workdir, "--epochs=1").stderr
  assert "Holding the 4000 train rows in memory" in log
  assert "Holding the 1000 validation rows in memory" in log
  metrics = json.loads((workdir / "model" / "eval_metrics.json").read_text())
  assert sorted(metrics) == ["ctcvr", "ctr", "cvr"]
  for values in metrics.values():
    assert 0.0 <= values["auc"] <= 1.0 and values["logloss"] > 0.0
  assert metrics["ctr"]["count"] == 1000 and metrics["cvr"]["count"] < 1000
  versions = os.listdir(workdir / "export")
  assert len(versions) == 1 and versions[0].isdigit()
  assert (workdir / "export" / versions[0] / "saved_model.pb").exists()


def test_rerun_resumes_from_the_latest_checkpoint(workdir):
  log = run_main(workdir, "--epochs=2").stderr
  assert "Resuming from" in log and "epoch 1 of 2" in log
  epochs = pd.read_csv(workdir / "model" / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]
  log = run_main(workdir, "--epochs=2").stderr
  assert "nothing to train" in log


def test_resume_refuses_other_model_flags(workdir):
  result = run_main(workdir, "--epochs=2", "--cell=lstm", check=False)
  assert result.returncode != 0
  assert "Use the same model flags to resume" in result.stderr


def test_evaluate_mode_reproduces_the_metrics(workdir):
  before = json.loads((workdir / "model" / "eval_metrics.json").read_text())
  run_main(workdir, "--mode=evaluate")
  after = json.loads((workdir / "model" / "eval_metrics.json").read_text())
  assert sorted(after) == sorted(before)
  for name, values in before.items():
    assert after[name] == pytest.approx(values)


def test_predict_mode_matches_the_latest_export(workdir):
  output = workdir / "predictions.csv"
  run_main(workdir, "--mode=predict", f"--predict_path={workdir}/data/eval.csv",
           f"--predict_output={output}")
  predictions = pd.read_csv(output)
  assert list(predictions.columns) == ["file", "line", "ctr", "cvr", "ctcvr"]
  assert (predictions["file"] == f"{workdir}/data/eval.csv").all()
  assert predictions["line"].tolist() == list(range(2, 1002))
  latest = max(os.listdir(workdir / "export"), key=int)
  serving = tf.saved_model.load(str(workdir / "export" / latest)).signatures["serving_default"]
  examples = tf.stack(list(tf.data.TFRecordDataset(str(workdir / "data" / "eval.tfrecord.gz"),
                                                   compression_type="GZIP")))
  served = serving(examples=examples)
  for name in ("ctr", "cvr", "ctcvr"):
    np.testing.assert_allclose(predictions[name].to_numpy(), served[name].numpy(),
                               rtol=1e-5, atol=1e-7)


def test_export_mode_adds_a_new_version(workdir):
  before = set(os.listdir(workdir / "export"))
  run_main(workdir, "--mode=export")
  assert len(set(os.listdir(workdir / "export")) - before) == 1


def test_trains_from_csv_files_read_every_epoch(workdir):
  log = run_main(workdir, "--epochs=2", f"--model_dir={workdir}/csv_model",
                 f"--train_path={workdir}/data/train.csv", f"--eval_path={workdir}/data/eval.csv",
                 "--in_memory_max_mib=0").stderr
  assert "in memory" not in log
  epochs = pd.read_csv(workdir / "csv_model" / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]
  assert (workdir / "csv_model" / "eval_metrics.json").exists()


def test_a_changed_feature_config_is_refused(workdir):
  config = json.loads((workdir / "data" / "feature_config.json").read_text())
  config["features"][-1]["log"] = not config["features"][-1].get("log", False)
  changed = workdir / "changed_features.json"
  changed.write_text(json.dumps(config))
  result = run_main(workdir, "--epochs=2", f"--feature_config={changed}", check=False)
  assert result.returncode == 2
  name = config["features"][-1]["name"]
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: --feature_config {changed} differs from the feature config "
      f"{workdir}/model was prepared from ({workdir}/data/feature_config.json): feature "
      f"{name!r} differs. To train with it, use a new --model_dir (or delete this one); to "
      "go on with this model, pass the config it was prepared from.")


def test_a_config_prepared_again_from_other_data_is_refused(workdir):
  copy = workdir / "reprepared"
  shutil.copytree(workdir / "model", copy)
  os.remove(copy / "feature_config.json")
  result = run_main(workdir, "--epochs=2", f"--model_dir={copy}",
                    f"--train_path={workdir}/data/eval.csv", check=False)
  assert result.returncode == 2
  message = result.stderr.splitlines()[-1]
  assert message.startswith(f"dcrnn_tf: error: The prepared feature config "
                            f"{copy}/feature_config.json differs from the one the model in "
                            f"{copy} was trained on: feature ")
  assert message.endswith(". Restore the config it was trained on, or train in a new "
                          "--model_dir (or delete this one).")
  assert not (copy / "feature_config.json").exists()
