"""Training that survives faults: SIGKILL and resume, killed workers, NaN, killed export.

Every run trains 200 steps on the small data set of `test_distributed` and writes a
checkpoint every 40 steps, like that module's uninterrupted `single_process` run. Under
`--deterministic` a resumed run reads the rest of its epoch in the same order and
restores the optimizer, so it ends with exactly the metrics of an uninterrupted run.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from test_distributed import (MIRRORED_TOLERANCE, REFERENCE_FLAGS, RUN_TIMEOUT,
                              assert_close_auc, local_cluster, main_flags, read_metrics,
                              run_main, versions, wait_for_text)

pytestmark = pytest.mark.slow

FIRST_STEP_CHECKPOINT = "ckpt-40 "  # Of REFERENCE_FLAGS' --checkpoint_every_steps=40.


def copy_run(run, tmp_path):
  """A copy of the model and export directories of a run (`single_process`)."""
  for name in ("model", "export"):
    shutil.copytree(run["work"] / name, tmp_path / name)
  return tmp_path / "model", tmp_path / "export"


def snapshot(*paths):
  """Every file under `paths` with its size and modification time."""
  files = [str(p) for p in paths if os.path.isfile(p)]
  files += [os.path.join(root, name) for p in paths if os.path.isdir(p)
            for root, _, names in os.walk(p) for name in names]
  return {path: (os.path.getsize(path), os.path.getmtime(path)) for path in files}


def start_main(flags, log_path) -> subprocess.Popen:
  with open(log_path, "w", encoding="utf-8") as log:
    return subprocess.Popen([sys.executable, "-m", "dcrnn_tf.main"] + list(flags),
                            stdout=log, stderr=subprocess.STDOUT)


def kill(process: subprocess.Popen) -> None:
  if process.poll() is None:
    process.send_signal(signal.SIGKILL)
  process.wait(timeout=30)


def test_sigkilled_training_resumes_exactly(small_data, single_process, tmp_path):
  again = tmp_path / "again"
  run_main(main_flags(small_data, again / "model", again / "export", *REFERENCE_FLAGS))
  assert read_metrics(again / "model") == single_process["metrics"]

  flags = main_flags(small_data, tmp_path / "model", tmp_path / "export",
                     *REFERENCE_FLAGS)
  process = start_main(flags, tmp_path / "killed.log")
  try:
    wait_for_text(tmp_path / "killed.log", FIRST_STEP_CHECKPOINT, RUN_TIMEOUT, process)
  finally:
    kill(process)
  assert process.returncode == -signal.SIGKILL
  assert not (tmp_path / "model" / "eval_metrics.json").exists()

  log = run_main(flags).stderr
  resumed_step = int(log.split("Resuming from step ")[1].split()[0])
  assert 40 <= resumed_step < 200, resumed_step
  assert read_metrics(tmp_path / "model") == single_process["metrics"]
  epochs = pd.read_csv(tmp_path / "model" / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]


def test_a_diverging_run_stops_training_and_keeps_the_last_good_state(
    small_data, single_process, tmp_path):
  model_dir, export_dir = copy_run(single_process, tmp_path)
  kept = [model_dir / "checkpoints", model_dir / "eval_metrics.json",
          model_dir / "training_log.csv", export_dir]
  before = snapshot(*kept)
  # --learning_rate=inf is refused when the flags are parsed; 1e38 diverges at once.
  result = run_main(main_flags(small_data, model_dir, export_dir, "--epochs=3",
                               "--learning_rate=1e38", *REFERENCE_FLAGS), check=False)
  assert result.returncode == 1
  assert re.search(r"Training stopped: the (loss became nan|weights became NaN or infinite)",
                   result.stderr), result.stderr[-2000:]
  assert "Nothing was saved after the last good checkpoint" in result.stderr
  assert snapshot(*kept) == before


def test_an_export_killed_midway_leaves_only_whole_versions(
    small_data, single_process, tmp_path):
  model_dir, export_dir = copy_run(single_process, tmp_path)
  [previous] = versions(export_dir)
  process = start_main(main_flags(small_data, model_dir, export_dir, "--mode=export"),
                       tmp_path / "export.log")
  try:
    deadline = time.monotonic() + RUN_TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
      if any(name.startswith(".tmp-") for name in os.listdir(export_dir)):
        break
      time.sleep(0.001)
  finally:
    kill(process)
  # Killed while writing: the half-written version is only a `.tmp-*` directory, no
  # version (TF Serving reads numeric names only), and the previous version loads.
  assert [n for n in os.listdir(export_dir) if n.startswith(".tmp-")]
  assert versions(export_dir) == [previous]
  tf.saved_model.load(str(export_dir / previous))
  # The next export removes what the killed one left.
  run_main(main_flags(small_data, model_dir, export_dir, "--mode=export"))
  assert not [n for n in os.listdir(export_dir) if n.startswith(".tmp-")]
  assert len(versions(export_dir)) == 2


def test_killed_workers_restart_from_the_step_checkpoint(
    small_data, single_process, tmp_path):
  flags = main_flags(small_data, tmp_path / "model", tmp_path / "export",
                     "--strategy=multi_worker_mirrored", "--checkpoint_every_steps=40")
  cluster_spec = local_cluster.make_cluster(workers=2)
  with local_cluster.LocalCluster(cluster_spec, flags, str(tmp_path / "logs")) as cluster:
    cluster.start()
    wait_for_text(cluster.log_path("worker-0"), FIRST_STEP_CHECKPOINT, RUN_TIMEOUT,
                  cluster.processes["worker-0"])
    cluster.kill("worker-1")  # A worker fails; the job goes down with it,
    cluster.kill("worker-0")
    assert not (tmp_path / "model" / "eval_metrics.json").exists()
    cluster.start("worker-0")  # and comes back on the same addresses.
    cluster.start("worker-1")
    assert cluster.wait(cluster.tasks, RUN_TIMEOUT) == {"worker-0": 0, "worker-1": 0}
    for task in cluster.tasks:
      log = cluster.log(task)
      resumed_step = int(log.split("Resuming from step ")[1].split()[0])
      assert 40 <= resumed_step < 200, (task, resumed_step)
  assert_close_auc(read_metrics(tmp_path / "model"), single_process["metrics"],
                   MIRRORED_TOLERANCE)
