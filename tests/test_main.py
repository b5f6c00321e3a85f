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
        "--shared_units=8", "--private_units=4", "--cross_dim=16", "--tower_units=16"]


def run_main(workdir, *flags, check=True):
  command = [sys.executable, "-m", "dcrnn_tf.main", "--synthetic",
             f"--data_dir={workdir}/data", f"--model_dir={workdir}/model",
             f"--export_dir={workdir}/export"] + TINY + list(flags)
  # As a user runs it: without the TF_CPP_MIN_LOG_LEVEL that conftest sets.
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env=env)
  if check and result.returncode:
    raise AssertionError(f"{command} failed:\n{result.stderr[-4000:]}")
  return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  return tmp_path_factory.mktemp("cli")


def test_train_writes_metrics_checkpoint_and_export(workdir):
  result = run_main(workdir, "--epochs=1")
  log = result.stderr
  # TensorFlow's start-up lines are hidden; stdout (not a terminal) has a line per epoch.
  for noise in ("absl::InitializeLog", "cuInit", "oneDNN", "cuda", "Sharding callback",
                "Assets written"):
    assert noise not in log
  assert "\r" not in result.stdout and len(result.stdout.splitlines()) == 1
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
  result = run_main(workdir, "--epochs=2")
  assert "Resuming from" in result.stderr and "epoch 1 of 2" in result.stderr
  assert result.stdout.splitlines()[0] == "Epoch 2/2"
  epochs = pd.read_csv(workdir / "model" / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]
  versions = sorted(os.listdir(workdir / "export"))
  log = run_main(workdir, "--epochs=2").stderr
  assert "nothing to train" in log
  assert f"Not exported: {workdir}/export/{versions[-1]} already holds the weights" in log
  assert sorted(os.listdir(workdir / "export")) == versions


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
  training_report = (workdir / "model" / "data_report.json").read_text()
  run_main(workdir, "--mode=predict", f"--predict_path={workdir}/data/eval.csv",
           f"--predict_output={output}")
  assert (workdir / "model" / "data_report.json").read_text() == training_report
  report = json.loads((workdir / "model" / "data_report_predict.json").read_text())
  assert sorted(report) == ["bad_rows_policy", "predict"]
  assert report["predict"]["valid_rows"] == 1000
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


def test_export_mode_adds_a_new_version_and_keeps_the_newest(workdir):
  before = set(os.listdir(workdir / "export"))
  assert len(before) == 2
  run_main(workdir, "--mode=export", "--keep_exports=1")
  after = os.listdir(workdir / "export")
  assert len(after) == 1 and after[0] not in before and int(after[0]) > max(map(int, before))


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


def test_split_applies_to_the_training_files_and_is_stored(workdir):
  train = f"--train_path={workdir}/data/train.csv"
  model = workdir / "split_model"
  result = run_main(workdir, "--epochs=2", train, "--split=90,10", f"--model_dir={model}")
  assert result.stdout.splitlines()[0::2] == ["Epoch 1/2", "Epoch 2/2"]
  report = json.loads((model / "data_report.json").read_text())
  rows = {role: report[role]["valid_rows"] for role in ("train", "validation", "test")}
  assert rows["train"] + rows["validation"] == 4000 and rows["test"] == rows["validation"]
  assert json.loads((model / "split.json").read_text()) == {"split": "90,10", "split_seed": 0}
  # Later modes use the stored split; a given test file is read whole.
  run_main(workdir, "--mode=evaluate", train, f"--model_dir={model}")
  metrics = json.loads((model / "eval_metrics.json").read_text())
  assert metrics["ctr"]["count"] == rows["validation"]
  assert (model / "data_report_evaluate.json").exists()
  run_main(workdir, "--mode=evaluate", train, f"--model_dir={model}",
           f"--test_path={workdir}/data/eval.csv")
  assert json.loads((model / "eval_metrics.json").read_text())["ctr"]["count"] == 1000
  result = run_main(workdir, "--mode=evaluate", train, f"--model_dir={model}",
                    "--split=80,10,10", check=False)
  assert result.returncode == 2
  assert (f"{model} was prepared with --split=90,10 --split_seed=0 ({model}/split.json), but "
          "the flags ask for --split=80,10,10 --split_seed=0: leave the split flags out, or "
          "use a new --model_dir.") in result.stderr


def test_help_lists_every_flag_of_the_package_and_exits_0(workdir):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from dcrnn_tf import distribute, main, model_flags, trainer  # pylint: disable=import-outside-toplevel
  result = subprocess.run([sys.executable, "-m", "dcrnn_tf.main", "--help"],
                          capture_output=True, text=True, cwd=workdir)
  assert result.returncode == 0
  for module in (main, model_flags, trainer, distribute):
    for flag in flags.FLAGS.get_flags_for_module(module.__name__):
      assert f"--{flag.name}:" in result.stdout or f"--[no]{flag.name}:" in result.stdout
  for foreign in ("--test_srcdir", "--tpu", "--only_check_args"):
    assert foreign not in result.stdout
