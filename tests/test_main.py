"""The command line end to end on the session's trained model (`conftest.trained`):
train, resume, evaluate, export, predict; the errors that end a run early, in process."""

import json
import os

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

import cli

pytestmark = pytest.mark.slow


def test_train_writes_metrics_checkpoint_and_export(trained):
  log, stdout = trained.result.stderr, trained.result.stdout
  # TensorFlow's start-up lines are hidden; stdout (not a terminal) has lines per epoch.
  for noise in ("absl::InitializeLog", "cuInit", "oneDNN", "cuda", "Sharding callback",
                "Assets written"):
    assert noise not in log
  assert "\r" not in stdout and stdout.splitlines()[0::2] == ["Epoch 1/2", "Epoch 2/2"]
  assert "Using the synthetic data set in" in log  # --synthetic keeps what is there.
  assert f"Holding the {cli.TRAIN_ROWS} train rows in memory" in log
  assert f"Holding the {cli.EVAL_ROWS} validation rows in memory" in log
  metrics = dict(trained.metrics)
  # The metrics file says which data its figures are from.
  test = f"{trained.data}/eval.tfrecord.gz"
  assert metrics.pop("data") == {"role": "test", "path": test, "files": [test], "part": None,
                                 "rows": cli.EVAL_ROWS, "valid_rows": cli.EVAL_ROWS}
  assert sorted(metrics) == ["ctcvr", "ctr", "cvr"]
  for values in metrics.values():
    assert 0.0 <= values["auc"] <= 1.0 and values["logloss"] > 0.0
  assert metrics["ctr"]["count"] == cli.EVAL_ROWS and metrics["cvr"]["count"] < cli.EVAL_ROWS
  versions = os.listdir(trained.export_dir)
  assert len(versions) == 1 and versions[0].isdigit()
  assert (trained.export_dir / versions[0] / "saved_model.pb").exists()


def test_rerun_resumes_from_the_latest_checkpoint(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  flags = cli.main_flags(trained.data, model_dir, export_dir, *cli.MODEL_FLAGS,
                         *cli.EARLY_STOPPING_FLAGS, "--epochs=3")
  result = cli.in_process(*flags)
  assert result.returncode == 0
  assert "could not be found" not in result.stderr
  assert "Resuming from" in result.stderr and "epoch 2 of 3" in result.stderr
  assert result.stdout.splitlines()[0] == "Epoch 3/3"
  epochs = pd.read_csv(model_dir / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1, 2]
  versions = cli.versions(export_dir)
  log = cli.in_process(*flags).stderr
  assert "nothing to train" in log
  assert f"Not exported: {export_dir}/{versions[-1]} already holds the weights" in log
  assert cli.versions(export_dir) == versions


def test_resume_refuses_other_model_flags(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  result = cli.in_process(*cli.main_flags(trained.data, model_dir, export_dir,
                                          *cli.MODEL_FLAGS, "--cell=lstm",
                                          "--tower_units=8,4"))
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: {model_dir} was trained with other model flags: --cell was gru, the "
      "flags give lstm; --tower_units was 16, the flags give 8,4. Use the same model "
      "flags to resume (and the same --loss_weighting), or a new --model_dir.")


def test_evaluate_mode_reproduces_the_metrics(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  result = cli.in_process(*cli.main_flags(trained.data, model_dir, export_dir,
                                          "--mode=evaluate"))
  assert result.returncode == 0
  # The checkpoint is read whole (in two parts): no warning of values left unread.
  assert "could not be found" not in result.stderr and "expect_partial" not in result.stderr
  after = cli.read_metrics(model_dir)
  assert sorted(after) == sorted(trained.metrics)
  assert after["data"] == trained.metrics["data"]
  for name, values in trained.metrics.items():
    if name != "data":
      assert after[name] == pytest.approx(values)


def test_evaluate_reads_the_test_data_the_model_was_trained_with(trained, tmp_path):
  """Without --test_path, evaluation reads the test data of the first training run
  (data_roles.json), not what the other flags would give now."""
  model_dir, export_dir = trained.copy(tmp_path)
  other = f"{trained.data}/part-0.csv"
  stored = json.loads((model_dir / "data_roles.json").read_text())
  assert stored == {role: {"path": f"{trained.data}/eval.tfrecord.gz", "part": None}
                    for role in ("validation", "test")}
  # Another --eval_path would be the test data by default; the stored test data is read.
  evaluate = cli.main_flags(trained.data, model_dir, export_dir, "--mode=evaluate",
                            f"--eval_path={other}")
  assert cli.in_process(*evaluate).returncode == 0
  assert cli.read_metrics(model_dir)["data"]["files"] == [f"{trained.data}/eval.tfrecord.gz"]
  assert cli.read_metrics(model_dir)["ctr"]["count"] == cli.EVAL_ROWS
  # A given --test_path is read, and named in the metrics.
  assert cli.in_process(*evaluate, f"--test_path={other}").returncode == 0
  metrics = cli.read_metrics(model_dir)
  assert metrics["data"]["files"] == [other]
  assert metrics["ctr"]["count"] == len(pd.read_csv(other))
  # Stored data that is gone is named, with the flag to give instead.
  stored["test"]["path"] = str(tmp_path / "moved.csv")
  (model_dir / "data_roles.json").write_text(json.dumps(stored))
  result = cli.in_process(*evaluate)
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: {model_dir} was trained with {tmp_path / 'moved.csv'} as its test "
      f"data ({model_dir}/data_roles.json), which matches no file now: give --test_path.")


def test_predict_mode_matches_the_latest_export(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  data, output = trained.data, tmp_path / "new" / "predictions.csv"  # Its directory is made.
  training_report = (model_dir / "data_report.json").read_text()
  assert cli.in_process(*cli.main_flags(
      data, model_dir, export_dir, "--mode=predict", f"--predict_path={data}/eval.csv",
      f"--predict_output={output}")).returncode == 0
  assert (model_dir / "data_report.json").read_text() == training_report
  report = json.loads((model_dir / "data_report_predict.json").read_text())
  assert sorted(report) == ["bad_rows_policy", "predict"]
  assert report["predict"]["valid_rows"] == cli.EVAL_ROWS
  predictions = pd.read_csv(output)
  assert list(predictions.columns) == ["file", "line", "ctr", "cvr", "ctcvr"]
  assert (predictions["file"] == f"{data}/eval.csv").all()
  assert predictions["line"].tolist() == list(range(2, cli.EVAL_ROWS + 2))
  [latest] = cli.versions(export_dir)
  serving = tf.saved_model.load(str(export_dir / latest)).signatures["serving_default"]
  examples = tf.stack(list(tf.data.TFRecordDataset(str(data / "eval.tfrecord.gz"),
                                                   compression_type="GZIP")))
  served = serving(examples=examples)
  for name in ("ctr", "cvr", "ctcvr"):
    np.testing.assert_allclose(predictions[name].to_numpy(), served[name].numpy(),
                               rtol=1e-5, atol=1e-7)


def test_export_mode_adds_a_new_version_and_keeps_the_newest(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  before = set(cli.versions(export_dir))
  assert cli.in_process(*cli.main_flags(trained.data, model_dir, export_dir,
                                        "--mode=export", "--keep_exports=1")).returncode == 0
  after = os.listdir(export_dir)
  assert len(before) == 1 and len(after) == 1
  assert after[0] not in before and int(after[0]) > max(map(int, before))


def test_a_changed_feature_config_is_refused(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  config = json.loads((trained.data / "feature_config.json").read_text())
  config["features"][-1]["log"] = not config["features"][-1].get("log", False)
  changed = tmp_path / "changed_features.json"
  changed.write_text(json.dumps(config))
  result = cli.in_process(*cli.main_flags(trained.data, model_dir, export_dir,
                                          *cli.MODEL_FLAGS, f"--feature_config={changed}"))
  assert result.returncode == 2
  name = config["features"][-1]["name"]
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: --feature_config {changed} differs from the feature config "
      f"{model_dir} was prepared from ({trained.data}/feature_config.json): feature "
      f"{name!r} differs. To train with it, use a new --model_dir (or delete this one); to "
      "go on with this model, pass the config it was prepared from.")


def test_a_config_prepared_again_from_other_data_is_refused(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  os.remove(model_dir / "feature_config.json")
  result = cli.in_process(*cli.main_flags(trained.data, model_dir, export_dir,
                                          *cli.MODEL_FLAGS,
                                          f"--train_path={trained.data}/eval.csv"))
  assert result.returncode == 2
  message = result.stderr.splitlines()[-1]
  assert message.startswith(f"dcrnn_tf: error: The prepared feature config "
                            f"{model_dir}/feature_config.json differs from the one the "
                            f"model in {model_dir} was trained on: feature ")
  assert message.endswith(". Restore the config it was trained on, or train in a new "
                          "--model_dir (or delete this one).")
  assert not (model_dir / "feature_config.json").exists()


def test_split_of_csv_files_read_every_epoch_is_stored(small_data, tmp_path):
  """A --split of a CSV file, read from the file every epoch (not held in memory)."""
  model_dir, part = tmp_path / "model", small_data / "part-0.csv"
  rows = len(pd.read_csv(part))
  flags = cli.main_flags(small_data, model_dir, tmp_path / "export",
                         f"--train_path={part}")
  result = cli.in_process(*flags, "--batch_size=256", "--shared_units=4",
                          "--private_units=2", "--cross_dim=8", "--tower_units=8",
                          "--split=90,10", "--in_memory_max_mib=0")
  assert result.returncode == 0
  assert "Prepared the feature config" in result.stderr  # The log is captured,
  assert result.stdout.splitlines()[0::2] == ["Epoch 1/2", "Epoch 2/2"]
  assert "in memory" not in result.stderr  # and says nothing of rows in memory.
  epochs = pd.read_csv(model_dir / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]
  report = json.loads((model_dir / "data_report.json").read_text())
  counts = {role: report[role]["valid_rows"] for role in ("train", "validation", "test")}
  assert counts["train"] + counts["validation"] == rows
  assert counts["test"] == counts["validation"]
  assert json.loads((model_dir / "split.json").read_text()) == {"split": "90,10",
                                                                 "split_seed": 0}
  assert cli.read_metrics(model_dir)["ctr"]["count"] == counts["validation"]
  # Later modes use the stored split; a given test file is read whole.
  os.remove(model_dir / "eval_metrics.json")
  assert cli.in_process(*flags, "--mode=evaluate").returncode == 0
  assert cli.read_metrics(model_dir)["ctr"]["count"] == counts["validation"]
  assert (model_dir / "data_report_evaluate.json").exists()
  assert cli.in_process(*flags, "--mode=evaluate",
                        f"--test_path={small_data}/eval.csv").returncode == 0
  assert cli.read_metrics(model_dir)["ctr"]["count"] == cli.EVAL_ROWS
  result = cli.in_process(*flags, "--mode=evaluate", "--split=80,10,10")
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: {model_dir} was prepared with --split=90,10 --split_seed=0 "
      f"({model_dir}/split.json), but the flags ask for --split=80,10,10 --split_seed=0: "
      "leave the split flags out, or use a new --model_dir.")


def test_help_lists_every_flag_of_the_package_and_exits_0(tmp_path):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from dcrnn_tf import main, run_flags  # pylint: disable=import-outside-toplevel
  result = cli.run("--help", cwd=tmp_path)
  assert result.returncode == 0
  for module in (main, run_flags):
    for flag in flags.FLAGS.get_flags_for_module(module.__name__):
      assert f"--{flag.name}:" in result.stdout or f"--[no]{flag.name}:" in result.stdout
  for foreign in ("--test_srcdir", "--tpu", "--only_check_args"):
    assert foreign not in result.stdout
