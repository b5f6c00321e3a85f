"""User errors at the command line: one line `dcrnn_tf: error: …`, exit status 2, nothing
written; flags and configs checked before any data is read; the model directory's lock."""

import json
import os
import socket
import subprocess
import sys

from absl import flags
import pytest

import cli
from dcrnn_tf import errors
from dcrnn_tf import main  # pylint: disable=unused-import
from dcrnn_tf import model_dir

FLAGS = flags.FLAGS

FEATURES = {"features": [{"name": "user", "type": "categorical"},
                         {"name": "price", "type": "numeric"}],
            "labels": ["click"], "tasks": [{"name": "ctr", "label": "click"}]}


@pytest.mark.parametrize("flag,message", [
    ("--epochs=0", "flag --epochs=0: --epochs must be >= 1"),
    ("--epochs=-1", "flag --epochs=-1: --epochs must be >= 1"),
    ("--learning_rate=-0.1", "flag --learning_rate=-0.1: --learning_rate must be > 0 and "
     "finite"),
    ("--learning_rate=inf", "flag --learning_rate=inf: --learning_rate must be > 0 and "
     "finite"),
    ("--batch_size=0", "flag --batch_size=0: --batch_size must be >= 1"),
    ("--embedding_dim=0", "flag --embedding_dim=0: --embedding_dim must be >= 1"),
    ("--tower_units=64,0", "flag --tower_units=['64', '0']: --tower_units must be a "
     "comma-separated list of integers >= 1 (or empty)"),
    ("--expert_units=", "flag --expert_units=[]: --expert_units must be a comma-separated "
     "list of integers >= 1"),
    ("--dropout=1", "flag --dropout=1.0: --dropout must be >= 0 and < 1"),
    ("--split=80", "flag --split=80: --split must be two or three numbers >= 0 with a sum > "
     "0, such as 80,10,10 or 90,10"),
    ("--steps_per_execution=0", "flag --steps_per_execution=0: --steps_per_execution must "
     "be >= 1"),
    ("--epochs=two", "flag --epochs=two: invalid literal for int() with base 10: 'two'"),
])
def test_flag_out_of_range_is_one_line(capsys, flag, message):
  with pytest.raises(SystemExit) as exit_:
    errors.parse_flags(["dcrnn_tf", flag])
  FLAGS.unparse_flags()
  assert exit_.value.code == 2
  assert capsys.readouterr().err == f"dcrnn_tf: error: {message}\n"


def _write_data(tmp_path, data="user,price,click\nu1,1.0,0\nu2,2.0,1\n"):
  (tmp_path / "data.csv").write_text(data)
  return [f"--train_path={tmp_path}/data.csv", f"--model_dir={tmp_path}/model",
          f"--export_dir={tmp_path}/export", "--epochs=1", "--verbose=0"]


def _run(tmp_path, *flags_, **data):
  return cli.in_process(*_write_data(tmp_path, **data), *flags_)


@pytest.mark.slow
def test_the_command_shows_a_flag_error_in_one_line_with_status_2(tmp_path):
  result = cli.run(*_write_data(tmp_path), "--epochs=0", env=cli.user_env(), check=False)
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      "dcrnn_tf: error: flag --epochs=0: --epochs must be >= 1"]


@pytest.mark.slow
def test_the_command_shows_a_user_error_in_one_line_with_status_2(tmp_path):
  result = cli.run(*_write_data(tmp_path), f"--feature_config={tmp_path}/none.json",
                   env=cli.user_env(), check=False)
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      f"dcrnn_tf: error: Feature config {tmp_path}/none.json does not exist."]
  assert "Traceback" not in result.stderr


def test_config_error_is_one_line_and_writes_nothing(tmp_path):
  config = tmp_path / "features.json"
  config.write_text(json.dumps({**FEATURES, "features": [
      {"name": "user", "typ": "categorical"}, {"name": "price", "type": "numeric"}]}))
  result = _run(tmp_path, f"--feature_config={config}")
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: {config}: invalid feature config: unknown key 'typ' in "
      "features[0] (did you mean 'type'?)")
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "model").exists() or os.listdir(tmp_path / "model") == []
  debug = _run(tmp_path, f"--feature_config={config}", "--debug")
  assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr


def test_empty_vocabulary_fails_before_anything_is_written(tmp_path):
  config = tmp_path / "features.json"
  config.write_text(json.dumps({**FEATURES, "features": [
      {"name": "user", "type": "categorical", "min_count": 5},
      {"name": "price", "type": "numeric"}]}))
  result = _run(tmp_path, f"--feature_config={config}", "--split=50,25,25")
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      "dcrnn_tf: error: feature 'user': no value occurs min_count=5 times in the training "
      "rows (the most frequent occurs 1 times), so the learned vocabulary would be empty; "
      "lower min_count.")
  for name in ("feature_config.json", "model_config.json", "LOCK"):
    assert not (tmp_path / "model" / name).exists()


def test_a_bad_row_only_in_the_test_files_fails_before_training(tmp_path):
  config = tmp_path / "features.json"
  config.write_text(json.dumps(FEATURES))
  rows = "".join(f"u{i % 3},{i}.5,{i % 2}\n" for i in range(40))
  (tmp_path / "test.csv").write_text("user,price,click\n" + rows + "u1,1.5.1,0\n")
  result = _run(tmp_path, f"--feature_config={config}", f"--eval_path={tmp_path}/data.csv",
                f"--test_path={tmp_path}/test.csv", data="user,price,click\n" + rows)
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: {tmp_path}/test.csv:42:2: column 'price': cannot parse '1.5.1' as "
      "a number (use --bad_rows=skip to skip such rows)")
  assert not (tmp_path / "model" / "checkpoints").exists()
  assert not (tmp_path / "model" / "model_config.json").exists()


def test_a_second_run_on_a_locked_model_dir_fails(tmp_path):
  (tmp_path / "model").mkdir()
  (tmp_path / "model" / "LOCK").write_text(json.dumps(
      {"pid": os.getpid(), "host": socket.gethostname(), "since": "2026-01-01 00:00:00"}))
  result = _run(tmp_path, f"--feature_config={tmp_path}/none.json")
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: {tmp_path}/model is in use by process {os.getpid()} on host "
      f"{socket.gethostname()} (since 2026-01-01 00:00:00): one run at a time per "
      f"--model_dir. If that run is gone, delete {tmp_path}/model/LOCK.")


def _dead_pid():
  process = subprocess.Popen([sys.executable, "-c", "pass"])  # pylint: disable=consider-using-with
  process.wait()
  return process.pid


def test_lock_is_released_and_a_stale_one_taken_over(tmp_path, caplog):
  path = tmp_path / "model" / "LOCK"
  with model_dir.lock(str(tmp_path / "model")):
    holder = json.loads(path.read_text())
    assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
    with pytest.raises(errors.UsageError, match="is in use by process"):
      with model_dir.lock(str(tmp_path / "model")):
        pass
  assert not path.exists()
  dead = _dead_pid()
  path.write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "since": "x"}))
  with model_dir.lock(str(tmp_path / "model")):
    assert json.loads(path.read_text())["pid"] == os.getpid()
  assert f"Taking over the lock {path} of process {dead}, which no longer runs." in caplog.text
  # A lock of another host is never taken over: its process cannot be seen from here.
  path.write_text(json.dumps({"pid": dead, "host": "elsewhere", "since": "x"}))
  with pytest.raises(errors.UsageError, match=f"in use by process {dead} on host elsewhere"):
    with model_dir.lock(str(tmp_path / "model")):
      pass


def test_fingerprint_differences():
  from dcrnn_tf.features import FeatureConfig  # pylint: disable=import-outside-toplevel
  before = FeatureConfig.from_dict(FEATURES)
  after = FeatureConfig.from_dict({**FEATURES, "features": [
      {"name": "user", "type": "categorical", "min_count": 2},
      {"name": "age", "type": "numeric"}]})
  assert model_dir.differences(model_dir.fingerprint(before), model_dir.fingerprint(after)) == [
      "feature 'user' differs", "feature 'age' is new", "feature 'price' is gone"]
  lost = FeatureConfig.from_dict({**FEATURES, "features": FEATURES["features"][:1]})
  assert model_dir.differences(model_dir.fingerprint(before), model_dir.fingerprint(lost)) == [
      "feature 'price' is gone"]
  swapped = FeatureConfig.from_dict({**FEATURES, "features": FEATURES["features"][::-1]})
  assert model_dir.differences(model_dir.fingerprint(before),
                               model_dir.fingerprint(swapped)) == ["the feature order differs"]
  assert model_dir.differences(model_dir.fingerprint(before), model_dir.fingerprint(before)) == []
