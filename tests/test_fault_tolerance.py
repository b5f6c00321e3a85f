"""Training that survives faults: SIGKILL and resume, killed workers, NaN, killed export.

Every run trains 200 steps on the session's small data set and writes a checkpoint
every 40 steps, like the session's uninterrupted trained model (`conftest.trained`).
Under `--deterministic` a resumed run reads the rest of its epoch in the same order and
restores the optimizer, the loss weights and the early-stopping state, so it ends with
exactly the metrics of an uninterrupted run.
"""

import os
import re
import signal
import time

import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

import cli
from test_distributed import MIRRORED_TOLERANCE, assert_close_auc, cluster_env, local_cluster

pytestmark = pytest.mark.slow

FIRST_STEP_CHECKPOINT = "ckpt-40 "  # Of --checkpoint_every_steps=40.


def snapshot(*paths):
  """Every file under `paths` with its size and modification time."""
  files = [str(p) for p in paths if os.path.isfile(p)]
  files += [os.path.join(root, name) for p in paths if os.path.isdir(p)
            for root, _, names in os.walk(p) for name in names]
  return {path: (os.path.getsize(path), os.path.getmtime(path)) for path in files}


def test_sigkilled_training_resumes_exactly(trained, tmp_path):
  """Killed after the first step checkpoint and run again, in fresh processes, the run
  ends with exactly the metrics of the session's uninterrupted run (so a run in a fresh
  process reproduces it: --deterministic holds across processes)."""
  flags = trained.flags(tmp_path / "model", tmp_path / "export")
  process = cli.start(flags, tmp_path / "killed.log")
  try:
    cli.wait_for_text(tmp_path / "killed.log", FIRST_STEP_CHECKPOINT, cli.RUN_TIMEOUT,
                      process)
  finally:
    cli.kill(process)
  assert process.returncode == -signal.SIGKILL
  assert not (tmp_path / "model" / "eval_metrics.json").exists()

  log = cli.run(*flags).stderr
  resumed_step = int(log.split("Resuming from step ")[1].split()[0])
  assert 40 <= resumed_step < 200, resumed_step
  assert cli.read_metrics(tmp_path / "model") == trained.metrics
  epochs = pd.read_csv(tmp_path / "model" / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]


def test_a_diverging_run_stops_training_and_keeps_the_last_good_state(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  kept = [model_dir / "checkpoints", model_dir / "eval_metrics.json",
          model_dir / "training_log.csv", export_dir]
  before = snapshot(*kept)
  # --learning_rate=inf is refused when the flags are parsed; 1e38 diverges at once.
  result = cli.run(*trained.flags(model_dir, export_dir, "--epochs=3",
                                  "--learning_rate=1e38"), check=False)
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
  last = result.stderr.splitlines()[-1]
  assert re.match(r"dcrnn_tf: error: Training stopped: the (loss became nan|weights became "
                  r"NaN or infinite)", last), last
  assert "Nothing was saved after the last good checkpoint" in last
  assert result.stderr.count("Training stopped") == 1
  assert snapshot(*kept) == before


def test_ctrl_c_stops_with_one_line_that_says_how_to_resume(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  kept = [model_dir / "eval_metrics.json", export_dir]
  before = snapshot(*kept)
  process = cli.start(trained.flags(model_dir, export_dir, "--epochs=3"),
                      tmp_path / "interrupted.log")
  try:
    cli.wait_for_text(tmp_path / "interrupted.log", "Resuming from", cli.RUN_TIMEOUT,
                      process)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=cli.RUN_TIMEOUT)
  finally:
    cli.kill(process)
  log = (tmp_path / "interrupted.log").read_text()
  assert process.returncode == 130 and "Traceback" not in log, log[-2000:]
  latest = re.fullmatch(
      rf"dcrnn_tf: error: Interrupted \(Ctrl-C\): the checkpoints in {model_dir} are kept "
      rf"\(the latest: ({model_dir}/checkpoints/ckpt-\d+)\); run the same command to resume "
      "from it.", log.splitlines()[-1])
  assert latest, log.splitlines()[-1]
  assert os.path.exists(latest.group(1) + ".index")
  assert not (model_dir / "LOCK").exists()
  assert snapshot(*kept) == before  # The metrics and the export are as they were.


def test_an_export_killed_midway_leaves_only_whole_versions(trained, tmp_path):
  model_dir, export_dir = trained.copy(tmp_path)
  [previous] = cli.versions(export_dir)
  export = cli.main_flags(trained.data, model_dir, export_dir, "--mode=export")
  process = cli.start(export, tmp_path / "export.log")
  try:
    deadline = time.monotonic() + cli.RUN_TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
      if any(name.startswith(".tmp-") for name in os.listdir(export_dir)):
        break
      time.sleep(0.001)
  finally:
    cli.kill(process)
  # Killed while writing: the half-written version is only a `.tmp-*` directory, no
  # version (TF Serving reads numeric names only), and the previous version loads.
  assert [n for n in os.listdir(export_dir) if n.startswith(".tmp-")]
  assert cli.versions(export_dir) == [previous]
  tf.saved_model.load(str(export_dir / previous))
  # The next export removes what the killed one left.
  assert cli.in_process(*export).returncode == 0
  assert not [n for n in os.listdir(export_dir) if n.startswith(".tmp-")]
  assert len(cli.versions(export_dir)) == 2


def test_killed_mirrored_workers_restart_from_the_step_checkpoint(trained, tmp_path):
  """Two MultiWorkerMirrored workers, both killed after the first step checkpoint and
  started again on the same addresses, end like the one-process run (the cluster's one
  training run; see `test_distributed` for the tolerance)."""
  env, scratch = cluster_env(tmp_path)
  flags = cli.main_flags(trained.data, tmp_path / "model", tmp_path / "export",
                         *cli.MODEL_FLAGS, *cli.EARLY_STOPPING_FLAGS,
                         "--strategy=multi_worker_mirrored", "--checkpoint_every_steps=40")
  cluster_spec = local_cluster.make_cluster(workers=2)
  with local_cluster.LocalCluster(cluster_spec, flags, str(tmp_path / "logs"),
                                  env=env) as cluster:
    cluster.start()
    cli.wait_for_text(cluster.log_path("worker-0"), FIRST_STEP_CHECKPOINT,
                      cli.RUN_TIMEOUT, cluster.processes["worker-0"])
    cluster.kill("worker-1")  # A worker fails; the job goes down with it,
    cluster.kill("worker-0")
    assert not (tmp_path / "model" / "eval_metrics.json").exists()
    killed_scratch = set(scratch.iterdir())  # A killed worker cannot clean up.
    cluster.start("worker-0")  # and comes back on the same addresses.
    cluster.start("worker-1")
    assert cluster.wait(cluster.tasks, cli.RUN_TIMEOUT) == {"worker-0": 0, "worker-1": 0}
    for task in cluster.tasks:
      log = cluster.log(task)
      resumed_step = int(log.split("Resuming from step ")[1].split()[0])
      assert 40 <= resumed_step < 200, (task, resumed_step)
    chief_log = cluster.log("worker-0")
  assert_close_auc(cli.read_metrics(tmp_path / "model"), trained.metrics, MIRRORED_TOLERANCE)
  assert "Saved checkpoint" in chief_log
  # Only the chief wrote: one export, one training log line per epoch, and the other
  # worker's checkpoints of the restarted run were deleted.
  assert len(cli.versions(tmp_path / "export")) == 1
  epochs = pd.read_csv(tmp_path / "model" / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]
  assert not [p for p in set(scratch.iterdir()) - killed_scratch
              if p.name.startswith("dcrnn-worker")]
