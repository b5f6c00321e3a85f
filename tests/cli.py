"""The command line in tests: `python -m dcrnn_tf.main` in a fresh process, as a user
runs it, or `in_process` (parsing the flags and running `main` in this process, without
the 4 s start of a fresh one) where the test is not about the process.

Also the flags and the small data set of the session's trained model (see `conftest`),
which the CLI, training-control, fault-tolerance and cluster tests share.
"""

import contextlib
import dataclasses
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from absl import flags
from absl import logging
from absl.testing import flagsaver
import numpy as np
import pandas as pd

COMMAND = [sys.executable, "-m", "dcrnn_tf.main"]
RUN_TIMEOUT = 180  # Seconds; one run of the trained model's flags takes 15-60 s.
# 200 steps: 12,800 rows, 2 epochs of batches of 128. The GRU of depth 3 without layer
# norm (not the simple cell with layer norm of the defaults) is the model the cluster
# tolerances were measured with: with the simple cell at this learning rate, 2 of 4
# parameter-server runs stayed below ctr AUC 0.56.
MODEL_FLAGS = ["--batch_size=128", "--epochs=2", "--learning_rate=0.01",
               "--shared_units=8", "--private_units=4", "--cross_dim=16",
               "--tower_units=16", "--cell=gru", "--depth=3", "--nolayer_norm",
               "--loss_weighting=uncertainty"]
# Early stopping needs validation after each epoch, which parameter servers do not run.
EARLY_STOPPING_FLAGS = ["--early_stopping_patience=2",
                        "--early_stopping_monitor=val_ctcvr_auc"]
# Reproducible, with a checkpoint every 40 steps (`in_process` refuses --deterministic,
# which would change this process's ops for good).
DETERMINISTIC_FLAGS = ["--deterministic", "--checkpoint_every_steps=40"]
# The session's trained model.
REFERENCE_FLAGS = MODEL_FLAGS + EARLY_STOPPING_FLAGS + DETERMINISTIC_FLAGS
TRAIN_ROWS, EVAL_ROWS = 12_800, 2_000


def write_small_dataset(directory: pathlib.Path) -> pathlib.Path:
  """The small synthetic data set (4 categorical, 2 numeric fields), also as 2 CSV
  parts `part-0.csv`, `part-1.csv`."""
  from dcrnn_tf.data import synthetic  # pylint: disable=import-outside-toplevel
  synthetic.write_dataset(str(directory), train_rows=TRAIN_ROWS, eval_rows=EVAL_ROWS,
                          num_categorical=4, num_numeric=2, num_noise_categorical=1,
                          num_noise_numeric=1)
  train = pd.read_csv(directory / "train.csv")
  for part, rows in enumerate(np.array_split(np.arange(len(train)), 2)):
    train.iloc[rows].to_csv(directory / f"part-{part}.csv", index=False)
  return directory


def main_flags(data_dir, model_dir, export_dir, *more: str) -> List[str]:
  """The directory flags, then `more`."""
  return [f"--data_dir={data_dir}", f"--model_dir={model_dir}",
          f"--export_dir={export_dir}", *more]


def user_env(**extra: str) -> Dict[str, str]:
  """The environment a user runs the command in: without the TF_CPP_MIN_LOG_LEVEL that
  conftest sets."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  env.update(extra)
  return env


def run(*flags_: str, cwd=None, env=None, check: bool = True,
        timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
  """Runs the command in a fresh process; with `check`, a failure raises with the end
  of its stderr."""
  command = COMMAND + [str(f) for f in flags_]
  result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, check=False)
  if check and result.returncode:
    raise AssertionError(f"{command} failed:\n{result.stderr[-4000:]}")
  return result


def _as_in_a_terminal() -> None:
  """Ctrl-C's signal handled as in a terminal: a process started in the background of a
  shell (as CI may start the suite) inherits SIGINT ignored."""
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(flags_: Sequence[str], log_path) -> subprocess.Popen:
  """Starts the command in a fresh process that writes its output to `log_path`."""
  with open(log_path, "w", encoding="utf-8") as log:
    return subprocess.Popen(COMMAND + [str(f) for f in flags_], stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=_as_in_a_terminal)


def kill(process: subprocess.Popen) -> None:
  if process.poll() is None:
    process.send_signal(signal.SIGKILL)
  process.wait(timeout=30)


@dataclasses.dataclass
class InProcessResult:
  returncode: int
  stderr: str  # The log lines (absl's INFO and above, TensorFlow's warnings) and stderr.
  stdout: str


def in_process(*flags_: str) -> InProcessResult:
  """Runs the command's `main` in this process with `flags_`, as `python -m
  dcrnn_tf.main` does (one line and exit status 2 for a user error), and restores the
  flags and the log level after. Any mode runs; TensorFlow's process-wide state stays
  as the run leaves it, so `--deterministic` (op determinism for good) is refused."""
  from dcrnn_tf import errors  # pylint: disable=import-outside-toplevel
  from dcrnn_tf import main  # pylint: disable=import-outside-toplevel
  if "--deterministic" in flags_:
    raise ValueError("--deterministic would make every later test's ops deterministic.")
  stderr, stdout = io.StringIO(), io.StringIO()
  handler = logging.logging.StreamHandler(stderr)
  handler.setFormatter(logging.logging.Formatter("%(levelname)s %(message)s"))
  loggers = [logging.logging.getLogger(name) for name in ("absl", "tensorflow")]
  verbosity = logging.get_verbosity()
  code = 0
  with flagsaver.flagsaver(), contextlib.redirect_stderr(stderr), \
      contextlib.redirect_stdout(stdout):
    for logger in loggers:
      logger.addHandler(handler)
    try:
      argv = errors.parse_flags(["dcrnn_tf", *[str(f) for f in flags_]])
      logging.set_verbosity(logging.INFO)
      errors.handled(main.main)(argv)
    except SystemExit as e:
      code = e.code
    finally:
      for logger in loggers:
        logger.removeHandler(handler)
      logging.set_verbosity(verbosity)
      flags.FLAGS.unparse_flags()
  return InProcessResult(code, stderr.getvalue(), stdout.getvalue())


def read_metrics(model_dir) -> dict:
  return json.loads((pathlib.Path(model_dir) / "eval_metrics.json").read_text())


def versions(export_dir) -> list:
  return sorted(n for n in os.listdir(export_dir) if n.isdigit())


def wait_for_text(path, text: str, timeout: float,
                  process: Optional[subprocess.Popen] = None) -> None:
  """Waits until the file at `path` contains `text`.

  Raises:
    AssertionError: After `timeout` seconds, or when `process` has exited first.
  """
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if os.path.exists(path) and text in pathlib.Path(path).read_text(errors="replace"):
      return
    if process is not None and process.poll() is not None:
      raise AssertionError(f"The process exited ({process.returncode}) before writing "
                           f"{text!r} to {path}.")
    time.sleep(0.05)
  raise AssertionError(f"{text!r} did not appear in {path} within {timeout} s.")
