"""Where a run writes and what it reads, checked before any data is read: one line
`dcrnn_tf: error: …`, exit status 2, and nothing the user had is changed."""

import os

import pytest

import cli
from dcrnn_tf import outputs

DATA = "user,price,click\nu1,1.0,0\nu2,2.0,1\n"
CONFIG = ('{"features": [{"name": "user", "type": "categorical"}, {"name": "price", '
          '"type": "numeric"}], "labels": ["click"], "tasks": [{"name": "ctr", '
          '"label": "click"}]}')


@pytest.fixture(name="files")
def fixture_files(tmp_path):
  (tmp_path / "data.csv").write_text(DATA)
  (tmp_path / "features.json").write_text(CONFIG)
  return tmp_path


def run(files, *flags):
  defaults = {"--train_path": files / "data.csv", "--feature_config": files / "features.json",
              "--model_dir": files / "model", "--export_dir": files / "export"}
  given = {flag.split("=")[0] for flag in flags}
  return cli.in_process(*[f"{k}={v}" for k, v in defaults.items() if k not in given],
                        "--epochs=1", "--verbose=0", *flags)


def error(result):
  assert result.returncode == 2, result.stderr
  assert "Traceback" not in result.stderr
  return result.stderr.splitlines()[-1]


def test_predictions_over_their_input_are_refused_and_the_input_kept(files):
  data = files / "data.csv"
  result = run(files, "--mode=predict", f"--predict_path={data}", f"--predict_output={data}")
  assert error(result) == (
      f"dcrnn_tf: error: --predict_output {data} is also an input of this run ({data}): "
      "writing it would destroy that input; give another file.")
  assert data.read_text() == DATA
  # Also through a link, and for the file of skipped rows beside the predictions.
  os.symlink(data, files / "link.csv")
  assert "is also an input" in error(run(files, "--mode=predict", f"--predict_path={data}",
                                         f"--predict_output={files / 'link.csv'}"))
  skipped = files / "out.skipped.csv"
  skipped.write_text("file,line\n")
  assert f"rows of --predict_output, {skipped} is also an input" in error(run(
      files, "--mode=predict", f"--predict_path={skipped}",
      f"--predict_output={files / 'out.csv'}"))
  assert data.read_text() == DATA
  assert not (files / "model").exists()


def test_predictions_into_a_directory_are_refused(files):
  assert error(run(files, "--mode=predict", f"--predict_path={files / 'data.csv'}",
                   f"--predict_output={files}")) == (
      f"dcrnn_tf: error: --predict_output {files} is a directory: give a file name, such "
      f"as {files}/predictions.csv.")


@pytest.mark.parametrize("flag", ["--model_dir", "--export_dir", "--tensorboard_dir"])
def test_an_output_directory_that_is_a_file_fails_before_reading(files, flag):
  (files / "taken").write_text("mine")
  assert error(run(files, f"{flag}={files / 'taken'}")) == (
      f"dcrnn_tf: error: {flag} {files / 'taken'} is a file, not a directory: give a "
      "directory (it is created if missing).")
  assert (files / "taken").read_text() == "mine"
  # Below a file, it cannot be created.
  assert error(run(files, f"{flag}={files / 'taken' / 'sub'}")) == (
      f"dcrnn_tf: error: {flag} {files / 'taken' / 'sub'}: cannot create the directory: "
      f"{files / 'taken'} is a file.")
  assert not (files / "model" / "feature_config.json").exists()


def test_synthetic_data_into_a_file_is_refused(files):
  assert error(run(files, "--synthetic", f"--data_dir={files / 'data.csv'}")) == (
      f"dcrnn_tf: error: --data_dir {files / 'data.csv'} is a file, not a directory: give a "
      "directory (it is created if missing).")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any directory")
def test_an_output_directory_without_write_permission_fails(files):
  locked = files / "locked"
  locked.mkdir(mode=0o555)
  assert error(run(files, f"--model_dir={locked / 'model'}")).startswith(
      f"dcrnn_tf: error: --model_dir {locked / 'model'}: cannot write in {locked}: ")


def test_the_check_creates_nothing(tmp_path):
  outputs.check_directory(str(tmp_path / "a" / "b"), "--model_dir")
  outputs.check_file(str(tmp_path / "c" / "predictions.csv"), "--predict_output")
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("data_format", ["auto", "csv"])
def test_a_directory_of_data_is_named_as_one(files, data_format):
  (files / "parts").mkdir()
  assert error(run(files, f"--train_path={files / 'parts'}",
                   f"--data_format={data_format}")) == (
      f"dcrnn_tf: error: {files / 'parts'} is a directory, not a data file: give its "
      f"files, such as {files / 'parts'}/*.csv (a glob, or comma-separated globs).")


def test_a_feature_config_that_is_a_directory_is_named_as_one(files):
  assert error(run(files, f"--feature_config={files}")) == (
      f"dcrnn_tf: error: Feature config {files} is a directory: give the config file "
      "(JSON, or YAML named .yaml or .yml).")


def test_the_benchmark_checks_its_outputs_first(tmp_path, capsys):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from absl.testing import flagsaver  # pylint: disable=import-outside-toplevel
  from dcrnn_tf import errors  # pylint: disable=import-outside-toplevel
  from dcrnn_tf.benchmark import cli as benchmark  # pylint: disable=import-outside-toplevel
  (tmp_path / "taken").write_text("mine")
  with flagsaver.flagsaver(), pytest.raises(SystemExit) as exit_:
    try:
      argv = errors.parse_flags(["benchmark", f"--output_dir={tmp_path / 'taken'}"])
      errors.handled(benchmark.main)(argv)
    finally:
      flags.FLAGS.unparse_flags()
  assert exit_.value.code == 2
  assert capsys.readouterr().err.splitlines()[-1] == (
      f"dcrnn_tf: error: --output_dir {tmp_path / 'taken'} is a file, not a directory: give "
      "a directory (it is created if missing).")
  assert (tmp_path / "taken").read_text() == "mine"
