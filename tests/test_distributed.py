"""tf.distribute: TF_CONFIG and the chief, input sharding, and real local clusters.

The cluster tests run `dcrnn_tf.main` as separate processes on 127.0.0.1 (through
`examples/local_cluster.py`): two MultiWorkerMirrored workers, and a chief, two workers
and a parameter server. Each trains 200 steps on a small synthetic data set; the
chief's export must score like a single-process run of the same flags:

* MultiWorkerMirrored: every AUC within 0.01 (`MIRRORED_TOLERANCE`). A step reads the
  same global batch as the single process, split over the workers, so the two runs
  differ only by rounding (measured: the same AUCs to 10 digits).
* Parameter server: ctr AUC within 0.06 and ctcvr AUC within 0.15 (`PS_TOLERANCE`); cvr
  is not compared. The runs take other paths: each worker reads its own file, steps
  are asynchronous and the workers, sharing 2 cores with the chief and the ps task,
  advance unevenly. These 200 steps are far from converged, so paths matter: over
  seeds 1-4 a single process itself scored ctr 0.62-0.67, ctcvr 0.83-0.95 and cvr
  0.38-0.88 (measured parameter-server runs: ctr 0.61-0.65, ctcvr 0.77-0.92).
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import distribute
from dcrnn_tf.data import synthetic

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
MIRRORED_TOLERANCE = {"ctr": 0.01, "cvr": 0.01, "ctcvr": 0.01}
PS_TOLERANCE = {"ctr": 0.06, "ctcvr": 0.15}
RUN_TIMEOUT = 120  # Seconds; one run takes 15-60 s on 2 busy cores.
# 200 steps: 12,800 rows, 2 epochs of batches of 128. The GRU of depth 3 without layer
# norm (not the simple cell with layer norm of the defaults) is the model the tolerances
# were measured with: with the simple cell at this learning rate, 2 of 4 parameter-server
# runs stayed below ctr AUC 0.56.
TRAIN_FLAGS = ["--batch_size=128", "--epochs=2", "--learning_rate=0.01",
               "--shared_units=8", "--private_units=4", "--cross_dim=16",
               "--tower_units=16", "--cell=gru", "--depth=3", "--nolayer_norm", "--verbose=0"]
REFERENCE_FLAGS = ["--deterministic", "--checkpoint_every_steps=40"]


def load_local_cluster():
  """The module of examples/local_cluster.py."""
  spec = importlib.util.spec_from_file_location("local_cluster",
                                                ROOT / "examples" / "local_cluster.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


local_cluster = load_local_cluster()


def write_small_dataset(directory: pathlib.Path) -> pathlib.Path:
  """A small synthetic data set (4 categorical, 2 numeric fields), also as 2 CSV parts."""
  synthetic.write_dataset(str(directory), train_rows=12_800, eval_rows=2_000,
                          num_categorical=4, num_numeric=2, num_noise_categorical=1,
                          num_noise_numeric=1)
  train = pd.read_csv(directory / "train.csv")
  for part, rows in enumerate(np.array_split(np.arange(len(train)), 2)):
    train.iloc[rows].to_csv(directory / f"part-{part}.csv", index=False)
  return directory


def main_flags(data_dir, model_dir, export_dir, *flags):
  return [f"--data_dir={data_dir}", f"--model_dir={model_dir}",
          f"--export_dir={export_dir}"] + TRAIN_FLAGS + list(flags)


def run_main(flags, timeout=RUN_TIMEOUT, check=True) -> subprocess.CompletedProcess:
  command = [sys.executable, "-m", "dcrnn_tf.main"] + list(flags)
  result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
  if check and result.returncode:
    raise AssertionError(f"{command} failed:\n{result.stderr[-4000:]}")
  return result


def read_metrics(model_dir) -> dict:
  return json.loads((pathlib.Path(model_dir) / "eval_metrics.json").read_text())


def versions(export_dir) -> list:
  return sorted(n for n in os.listdir(export_dir) if n.isdigit())


def wait_for_text(path, text: str, timeout: float, process=None) -> None:
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


def assert_close_auc(metrics, reference, tolerances):
  """Asserts that the AUC of each output of `tolerances` is within its tolerance."""
  for name, tolerance in tolerances.items():
    assert metrics[name]["auc"] == pytest.approx(reference[name]["auc"], abs=tolerance), (
        name, metrics[name], reference[name])


def set_tf_config(monkeypatch, cluster, task_type=None, index=0):
  config = {"cluster": cluster}
  if task_type:
    config["task"] = {"type": task_type, "index": index}
  monkeypatch.setenv("TF_CONFIG", json.dumps(config))


@pytest.mark.parametrize("cluster, task_type, index, chief", [
    ({}, None, 0, True),
    ({"worker": ["a:1", "b:1"]}, "worker", 0, True),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
    ({"chief": ["c:1"], "worker": ["a:1"], "ps": ["p:1"]}, "chief", 0, True),
    ({"chief": ["c:1"], "worker": ["a:1"], "ps": ["p:1"]}, "worker", 0, False),
    ({"chief": ["c:1"], "worker": ["a:1"], "ps": ["p:1"]}, "ps", 0, False),
])
def test_the_chief_comes_from_tf_config(monkeypatch, cluster, task_type, index, chief):
  set_tf_config(monkeypatch, cluster, task_type, index)
  assert distribute.Task.from_environment().is_chief == chief


def test_a_single_process_strategy_is_always_the_chief(monkeypatch):
  set_tf_config(monkeypatch, {"worker": ["a:1", "b:1"]}, "worker", 1)
  assert distribute.is_chief(tf.distribute.get_strategy())
  assert distribute.input_workers(tf.distribute.get_strategy()) == 1


def test_shards_by_file_only_with_a_file_per_worker():
  training = distribute.TrainingInput(read=None, seed=0, files=3, rows=1000, batch_size=64)
  assert training.shard_policy(3) == tf.data.experimental.AutoShardPolicy.FILE
  assert training.shard_policy(4) == tf.data.experimental.AutoShardPolicy.DATA
  assert training.steps_per_epoch == 16


def test_each_epoch_has_its_own_fixed_order_and_resumes_mid_epoch():
  def read(seed):
    return tf.data.Dataset.range(40).shuffle(40, seed=seed).batch(4)

  training = distribute.TrainingInput(read, seed=7, files=1, rows=40, batch_size=4)
  strategy = tf.distribute.get_strategy()

  def batches(epoch, skip=0):
    return [b.numpy().tolist() for b in training.dataset(strategy, epoch, skip)]

  assert batches(0) == batches(0)
  assert batches(0) != batches(1)
  assert batches(1, skip=3) == batches(1)[3:]
  assert training.steps(strategy, skip_steps=3) == 7
  options = training.dataset(strategy, 0).options().experimental_distribute
  assert options.auto_shard_policy == tf.data.experimental.AutoShardPolicy.FILE


def cluster_env(tmp_path):
  """The tasks' environment: their temporary files under `tmp_path/scratch`."""
  scratch = tmp_path / "scratch"
  scratch.mkdir()
  return dict(os.environ, TMPDIR=str(scratch)), scratch


def test_two_mirrored_workers_train_like_one_process(small_data, single_process, tmp_path):
  env, scratch = cluster_env(tmp_path)
  flags = main_flags(small_data, tmp_path / "model", tmp_path / "export",
                     "--strategy=multi_worker_mirrored", "--checkpoint_every_steps=60")
  with local_cluster.LocalCluster(local_cluster.make_cluster(workers=2), flags,
                                  str(tmp_path / "logs"), env=env) as cluster:
    assert cluster.run(timeout=RUN_TIMEOUT) == 0
    assert cluster.wait(cluster.tasks, timeout=1) == {"worker-0": 0, "worker-1": 0}
    chief_log = cluster.log("worker-0")
  assert_close_auc(read_metrics(tmp_path / "model"), single_process["metrics"],
                   MIRRORED_TOLERANCE)
  assert "Saved checkpoint" in chief_log
  # Only the chief wrote: one export, one training log line per epoch, and the other
  # worker's checkpoints were deleted.
  assert len(versions(tmp_path / "export")) == 1
  epochs = pd.read_csv(tmp_path / "model" / "training_log.csv")["epoch"].tolist()
  assert epochs == [0, 1]
  assert not [p for p in scratch.iterdir() if p.name.startswith("dcrnn-worker")]


def test_parameter_servers_hold_partitioned_tables_and_the_export_loads(
    small_data, single_process, tmp_path):
  # Two training files for two workers: each worker reads its own file. Shards of at
  # least 3200 bytes split the fused embedding table in 2, not the dense kernels.
  flags = main_flags(small_data, tmp_path / "model", tmp_path / "export",
                     "--strategy=parameter_server", "--train_path=part-*.csv",
                     "--ps_min_shard_bytes=3200", "--ps_max_shards=2")
  with local_cluster.LocalCluster(local_cluster.make_cluster(workers=2, ps=1), flags,
                                  str(tmp_path / "logs")) as cluster:
    assert cluster.run(timeout=RUN_TIMEOUT) == 0
    chief_log = cluster.log("chief-0")
  assert "'dcrnn/encoder/embedding': 2" in chief_log  # A ShardedVariable of 2 shards.
  metrics = read_metrics(tmp_path / "model")
  assert_close_auc(metrics, single_process["metrics"], PS_TOLERANCE)
  # The export (of a copy outside the strategy) loads without dcrnn_tf and the cluster.
  [version] = versions(tmp_path / "export")
  serving = tf.saved_model.load(str(tmp_path / "export" / version))
  examples = tf.stack(list(tf.data.TFRecordDataset(
      str(small_data / "eval.tfrecord.gz"), compression_type="GZIP").take(8)))
  outputs = serving.signatures["serving_default"](examples=examples)
  assert np.all(np.isfinite(outputs["ctr"].numpy()))
