"""tf.distribute: TF_CONFIG and the chief, input sharding, and real local clusters.

The cluster tests run `dcrnn_tf.main` as separate processes on 127.0.0.1 (through
`examples/local_cluster.py`): two MultiWorkerMirrored workers (killed midway and
restarted, in `test_fault_tolerance`), and here a chief, two workers and a parameter
server. Each trains 200 steps on the session's small synthetic data set
(`cli.write_small_dataset`); the chief's export must score like the session's trained
model (`conftest.trained`, one process, the same model flags):

* MultiWorkerMirrored: every AUC within 0.01 (`MIRRORED_TOLERANCE`). A step reads the
  same global batch as the single process, split over the workers, so the two runs
  differ only by rounding (measured: the same AUCs to 10 digits).
* Parameter server: ctr AUC within 0.06 and ctcvr AUC within 0.15 (`PS_TOLERANCE`); cvr
  is not compared. The runs take other paths: each worker reads its own file, steps
  are asynchronous and the workers, sharing 2 cores with the chief and the ps task,
  advance unevenly, and no early stopping (parameter servers run no validation). These
  200 steps are far from converged, so paths matter. Measured with these flags (seeds
  1, 2, 3 and twice the default 42): the single process scored ctr 0.63-0.66, ctcvr
  0.74-0.90 and cvr 0.59-0.83; the parameter-server runs ctr 0.58-0.65 and ctcvr
  0.74-0.94; the largest differences ctr 0.047, ctcvr 0.033 and cvr 0.090.
"""

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

import cli
from dcrnn_tf import distribute

ROOT = pathlib.Path(__file__).resolve().parents[1]
MIRRORED_TOLERANCE = {"ctr": 0.01, "cvr": 0.01, "ctcvr": 0.01}
PS_TOLERANCE = {"ctr": 0.06, "ctcvr": 0.15}


def load_local_cluster():
  """The module of examples/local_cluster.py."""
  spec = importlib.util.spec_from_file_location("local_cluster",
                                                ROOT / "examples" / "local_cluster.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


local_cluster = load_local_cluster()


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


@pytest.mark.slow
def test_parameter_servers_hold_partitioned_tables_and_the_export_loads(trained, tmp_path):
  # Two training files for two workers: each worker reads its own file. Shards of at
  # least 3200 bytes split the fused embedding table in 2, not the dense kernels. No
  # early stopping: parameter servers run no validation.
  flags = cli.main_flags(trained.data, tmp_path / "model", tmp_path / "export",
                         *cli.MODEL_FLAGS, "--strategy=parameter_server",
                         "--train_path=part-*.csv", "--ps_min_shard_bytes=3200",
                         "--ps_max_shards=2")
  with local_cluster.LocalCluster(local_cluster.make_cluster(workers=2, ps=1), flags,
                                  str(tmp_path / "logs")) as cluster:
    assert cluster.run(timeout=cli.RUN_TIMEOUT) == 0
    chief_log = cluster.log("chief-0")
  assert "'dcrnn/encoder/embedding': 2" in chief_log  # A ShardedVariable of 2 shards.
  metrics = cli.read_metrics(tmp_path / "model")
  assert_close_auc(metrics, trained.metrics, PS_TOLERANCE)
  # The export (of a copy outside the strategy) loads without dcrnn_tf and the cluster.
  [version] = cli.versions(tmp_path / "export")
  serving = tf.saved_model.load(str(tmp_path / "export" / version))
  examples = tf.stack(list(tf.data.TFRecordDataset(
      str(trained.data / "eval.tfrecord.gz"), compression_type="GZIP").take(8)))
  outputs = serving.signatures["serving_default"](examples=examples)
  assert np.all(np.isfinite(outputs["ctr"].numpy()))
