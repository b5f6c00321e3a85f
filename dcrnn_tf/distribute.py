"""tf.distribute for the main job: the strategy, the chief, and the sharded input.

The cluster comes from the standard `TF_CONFIG` environment variable (JSON):

  {"cluster": {"chief": ["host0:port"], "worker": ["host1:port", "host2:port"],
               "ps": ["host3:port"]},
   "task": {"type": "worker", "index": 0}}

* `--strategy=multi_worker_mirrored`: synchronous data parallelism. Every task is a
  worker (the "chief" task, or worker 0 when the cluster has no chief, is the chief);
  all of them run the same command and train.
* `--strategy=parameter_server`: asynchronous training. The chief coordinates: it runs
  the command's training loop and sends steps to the workers; variables live on the
  "ps" tasks, partitioned when large (`setup`'s `ps_min_shard_bytes`, `ps_max_shards`).
  Worker and ps tasks of the same command only serve (`setup` never returns there).

Whatever the strategy, `--batch_size` is the global batch: one training step reads
`--batch_size` rows in all, split over the replicas. The learning rate does not change
with the number of workers.

Only the chief writes the model directory's files and the export; the other workers
write their checkpoints (every worker must save) to a scratch directory and delete it.
"""

import collections
import contextlib
import dataclasses
import json
import os
import re
from typing import Callable, Dict, Iterator, List, Optional, Union

from absl import logging
import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf
# `auto_shard_dataset` is the rewrite that tf.distribute applies to the input of a
# multi-worker strategy; the parameter-server input needs it with the worker index.
# pylint: disable-next=g-direct-tensorflow-import
from tensorflow.python.distribute import input_ops


DEFAULT = "default"
MIRRORED = "mirrored"
MULTI_WORKER_MIRRORED = "multi_worker_mirrored"
PARAMETER_SERVER = "parameter_server"
STRATEGIES = (DEFAULT, MIRRORED, MULTI_WORKER_MIRRORED, PARAMETER_SERVER)
_PART = re.compile(r"/part_\d+:\d+$")  # The name suffix of a ShardedVariable's shards.

@dataclasses.dataclass(frozen=True)
class Task:
  """This process's place in the cluster of `TF_CONFIG`.

  Attributes:
    cluster: Job name ("chief", "worker", "ps") to task addresses; empty without
      `TF_CONFIG`.
    type: This task's job name, or None without `TF_CONFIG`.
    index: This task's index in its job.
  """

  cluster: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  type: Optional[str] = None
  index: int = 0

  @classmethod
  def from_environment(cls) -> "Task":
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    return cls(cluster=config.get("cluster", {}), type=task.get("type"),
               index=int(task.get("index", 0)))

  @property
  def is_chief(self) -> bool:
    """Whether this task is the chief: "chief", or worker 0 of a cluster without one."""
    if self.type in (None, "chief"):
      return True
    return self.type == "worker" and self.index == 0 and "chief" not in self.cluster


def is_parameter_server(strategy: tf.distribute.Strategy) -> bool:
  return isinstance(strategy, tf.distribute.ParameterServerStrategy)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  return isinstance(strategy, (tf.distribute.MultiWorkerMirroredStrategy,
                               tf.distribute.ParameterServerStrategy))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process is the chief (always, unless `strategy` is multi-worker)."""
  return not is_multi_worker(strategy) or Task.from_environment().is_chief


def setup(name: str = DEFAULT, ps_min_shard_bytes: int = 256 << 10,
          ps_max_shards: int = 0) -> tf.distribute.Strategy:
  """The strategy `name` (one of `STRATEGIES`) of this task, created first thing
  (before other TensorFlow work).

  Args:
    name: `default` (one device), `mirrored` (the GPUs of this machine),
      `multi_worker_mirrored` or `parameter_server` (the cluster of `TF_CONFIG`).
    ps_min_shard_bytes: Parameter server: variables larger than this are partitioned
      over the ps tasks, in shards of at least this many bytes.
    ps_max_shards: Parameter server: the most shards of one variable (0: one per ps
      task).

  Under `parameter_server`, the worker and ps tasks start their server here and serve
  until they are killed: this function returns only on the chief.
  """
  task = Task.from_environment()
  if name == MIRRORED:
    return tf.distribute.MirroredStrategy()
  if name == MULTI_WORKER_MIRRORED:
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == PARAMETER_SERVER:
    missing = [job for job in ("chief", "worker", "ps") if not task.cluster.get(job)]
    if missing:
      raise ValueError(f"--strategy={PARAMETER_SERVER} needs TF_CONFIG with a chief, "
                       f"workers and ps tasks; its cluster has no {missing}.")
    if task.type in ("worker", "ps"):
      serve(task)
    num_ps = len(task.cluster["ps"])
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=ps_min_shard_bytes, max_shards=ps_max_shards or num_ps)
    return tf.distribute.ParameterServerStrategy(
        tf.distribute.cluster_resolver.TFConfigClusterResolver(),
        variable_partitioner=partitioner)
  return tf.distribute.get_strategy()


def serve(task: Task) -> None:
  """Runs this task's server (a parameter-server worker or ps task) until killed."""
  logging.info("Serving as %s %d of %s.", task.type, task.index, task.cluster)
  server = tf.distribute.Server(tf.train.ClusterSpec(task.cluster), job_name=task.type,
                                task_index=task.index, protocol="grpc", start=True)
  server.join()


def input_workers(strategy: tf.distribute.Strategy) -> int:
  """The number of tasks that read training data under `strategy`."""
  cluster = Task.from_environment().cluster
  if is_parameter_server(strategy):
    return len(cluster["worker"])
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) or 1
  return 1


def partitioned_variables(model: tf.keras.Model) -> Dict[str, int]:
  """The model's variables partitioned by the strategy, with their numbers of shards."""
  shards = collections.Counter(_PART.sub("", v.name) for v in model.variables
                               if _PART.search(v.name))
  return dict(shards)


def barrier(strategy: tf.distribute.Strategy) -> None:
  """Waits until every worker of a multi-worker strategy gets here."""
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    one = strategy.experimental_distribute_values_from_function(lambda _: tf.constant(1.0))
    strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None)


@contextlib.contextmanager
def chief_first(strategy: tf.distribute.Strategy) -> Iterator[None]:
  """Runs the block on the chief first, then on the other workers.

  For writes into the model directory that later readers need whole: the other
  workers wait until the chief has left the block.
  """
  chief = is_chief(strategy)
  if not chief:
    barrier(strategy)
  yield
  if chief:
    barrier(strategy)


def shard_by_record(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """`dataset` for a multi-worker strategy, sharded by record whatever its files."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return dataset.with_options(options)


def epoch_seed(seed: int, epoch: int) -> int:
  """The shuffling seed of one epoch: the same on every worker and in every run."""
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


@dataclasses.dataclass(frozen=True)
class TrainingInput:
  """The training data, one epoch at a time, sharded over the workers.

  Every epoch is shuffled by its own seed (`epoch_seed`), so a run that resumes in the
  middle of an epoch reads that epoch's batches in the same order and skips the ones
  done. Workers shard by file when there are at least as many files as workers
  (`AutoShardPolicy.FILE`: each reads its files), otherwise by record
  (`AutoShardPolicy.DATA`: each reads everything and keeps its part of every batch).

  Attributes:
    read: Seed to the training batches of one pass over the data, shuffled with that
      seed; batches of the global batch size, as `(features, targets)`.
    seed: The run's seed.
    files: The number of training files (1 for rows held in memory).
    rows: The number of training rows.
    batch_size: The global batch size.
  """

  read: Callable[[int], tf.data.Dataset]
  seed: int
  files: int
  rows: int
  batch_size: int

  @property
  def steps_per_epoch(self) -> int:
    return -(-self.rows // self.batch_size)

  def shard_policy(self, workers: int) -> tf.data.experimental.AutoShardPolicy:
    if self.files >= workers:
      return tf.data.experimental.AutoShardPolicy.FILE
    return tf.data.experimental.AutoShardPolicy.DATA

  def steps(self, strategy: tf.distribute.Strategy, skip_steps: int = 0) -> Optional[int]:
    """The `steps_per_epoch` of `fit` for the rest of an epoch after `skip_steps`.

    None where synchronous workers read files of different lengths: `fit` then runs
    until every worker's files are done.
    """
    return None if self._own_files(strategy) else self.steps_per_epoch - skip_steps

  def dataset(self, strategy: tf.distribute.Strategy, epoch: int, skip_steps: int = 0
              ) -> Union[tf.data.Dataset, tf.keras.utils.experimental.DatasetCreator]:
    """The rest of `epoch` after its first `skip_steps` steps, for Keras `fit`.

    Under a parameter-server strategy, a `DatasetCreator` of each worker's shard,
    repeated (`fit` needs `steps_per_epoch` then); `skip_steps` is not applied there:
    the order of asynchronous steps is not reproducible anyway.
    """
    workers = input_workers(strategy)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = self.shard_policy(workers)
    seed = epoch_seed(self.seed, epoch)
    if is_parameter_server(strategy):
      def worker_dataset(_):
        index = tf.distribute.coordinator.experimental_get_current_worker_index()
        shard = input_ops.auto_shard_dataset(self.read(seed).with_options(options),
                                             workers, index)
        return shard.repeat()

      return tf.keras.utils.experimental.DatasetCreator(worker_dataset)
    dataset = self.read(seed)
    if skip_steps and self._own_files(strategy):
      # Each step reads 1/workers of a batch of each worker's files.
      if skip_steps % workers:
        logging.warning("Resuming %d steps into the epoch with %d workers reading their "
                        "own files: each skips %d batches, a little less than it had "
                        "read.", skip_steps, workers, skip_steps // workers)
      dataset = dataset.skip(skip_steps // workers)
    elif skip_steps:
      dataset = dataset.skip(skip_steps)  # Each step reads one batch of the data.
    return dataset.with_options(options)

  def _own_files(self, strategy: tf.distribute.Strategy) -> bool:
    """Whether synchronous workers (more than one) shard by file."""
    workers = input_workers(strategy)
    return (workers > 1 and not is_parameter_server(strategy)
            and self.shard_policy(workers) == tf.data.experimental.AutoShardPolicy.FILE)
