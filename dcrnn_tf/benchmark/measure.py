"""Measurements of a model and its process: parameters, FLOPs, memory, timing, the
machine."""

import dataclasses
import importlib.metadata
import os
import platform
import resource
import statistics
import time
from typing import Any, Dict, List, Tuple

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import models
from dcrnn_tf.data.pipeline import dummy_features, feature_tensor_specs
from dcrnn_tf.features import FeatureConfig, Task

FLOPS_NOTE = (
    "FLOPs per example: the float operations of the model's forward graph at batch 1 "
    "(`tf.function` of `model(features, training=False)`), counted by "
    "`tf.compat.v1.profiler` with `ProfileOptionBuilder.float_operation()`: ops with a "
    "registered FLOP count (MatMul, elementwise arithmetic, activations, reductions); "
    "embedding gathers, string lookups and tensor reshaping count 0. A multiply-add "
    "counts 2.")


def trainable_parameters(name: str, feature_config: FeatureConfig, **options: Any) -> int:
  """The number of trainable parameters of model `name` built for `feature_config`."""
  model = models.build_model(name, feature_config, **options)
  model(dummy_features(feature_config))
  return sum(int(w.shape.num_elements()) for w in model.trainable_weights)


def parameters_per_added_task(name: str, feature_config: FeatureConfig,
                              **options: Any) -> int:
  """How many trainable parameters one more task adds to model `name`.

  Compares the model built for `feature_config` with the model built for the same
  config plus one independent task (no `depends_on`, no funnel).

  Example:

  ```python
  config, _ = dcrnn_tf.data.synthetic.example_batch()
  added = parameters_per_added_task("mmoe", config)     # one gate and one tower
  assert added == 4 * 144 + 4 + (64 * 64 + 64) + (64 * 32 + 32) + (32 + 1)
  ```
  """
  used = set(feature_config.columns + feature_config.ignore + feature_config.output_names)
  task = "added_task"
  while task in used or f"{task}_label" in used:
    task += "_"
  csv = feature_config.csv
  if csv.columns is not None:
    csv = dataclasses.replace(csv, columns=csv.columns + (f"{task}_label",))
  extended = dataclasses.replace(feature_config,
                                 labels=feature_config.labels + (f"{task}_label",),
                                 tasks=feature_config.tasks + (Task(task, f"{task}_label"),),
                                 csv=csv)
  return (trainable_parameters(name, extended, **options)
          - trainable_parameters(name, feature_config, **options))


def forward_flops(model: tf.keras.Model, feature_config: FeatureConfig) -> int:
  """Float operations of one example's forward pass (see `FLOPS_NOTE`)."""
  specs = {name: tf.TensorSpec([1], spec.dtype, name=name)
           for name, spec in feature_tensor_specs(feature_config).items()}
  forward = tf.function(lambda features: model(features, training=False))
  graph = forward.get_concrete_function(specs).graph
  options = (tf.compat.v1.profiler.ProfileOptionBuilder(
      tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
             .with_empty_output().build())
  return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def peak_rss_mib() -> float:
  """Peak resident memory of this process so far, in MiB (Linux `ru_maxrss`)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class BatchTimer(tf.keras.callbacks.Callback):
  """Records when each training step of the last epoch ends, by step index (with
  several steps per execution Keras calls back once per execution, with the index of
  its last step)."""

  def __init__(self):
    super().__init__()
    self.marks: List[Tuple[int, float]] = []

  def on_epoch_begin(self, epoch, logs=None):
    self.marks = []

  def on_train_batch_end(self, batch, logs=None):
    self.marks.append((batch, time.perf_counter()))

  def window_rates(self, batch_size: int, window: int) -> List[float]:
    """Rows per second of consecutive windows of at least `window` steps, after the
    first call back."""
    rates, start = [], self.marks[0]
    for mark in self.marks[1:]:
      if mark[0] - start[0] >= window:
        rates.append((mark[0] - start[0]) * batch_size / (mark[1] - start[1]))
        start = mark
    return rates


def cached_training_rate(model: tf.keras.Model, dataset: tf.data.Dataset, batch_size: int,
                         batches: int, windows: int) -> float:
  """Training rows per second on `batches` batches held in memory (no file reading).

  The batches are cached and read once before timing; `fit` then runs `windows`
  windows of `batches` steps after a warm-up window, and the median window rate is
  returned (robust to other processes on a shared machine). Trains `model` further.
  """
  # A window spans at least one call of the compiled step (steps per execution).
  batches = max(batches, int(model._steps_per_execution))  # pylint: disable=protected-access
  cached = dataset.take(batches).cache().repeat()
  for _ in cached.take(batches):
    pass
  timer = BatchTimer()
  model.fit(cached, steps_per_epoch=batches * (windows + 1), epochs=1, verbose=0,
            callbacks=[timer])
  return statistics.median(timer.window_rates(batch_size, batches)[1:] or
                           timer.window_rates(batch_size, batches))


def pipeline_rate(dataset: tf.data.Dataset, rows: int) -> float:
  """Rows per second of a full pass over `dataset` (after an untimed pass), no model.

  The batches are drawn in the graph (`Dataset.reduce`), as `fit` draws them, not
  through Python.
  """
  count = lambda batches, _: batches + 1
  dataset.reduce(0, count)
  start = time.perf_counter()
  dataset.reduce(0, count)
  return rows / (time.perf_counter() - start)


def machine() -> Dict[str, str]:
  """The CPU model, core count and software versions of this machine."""
  cpu = platform.processor() or platform.machine()
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else cpu
  return {
      "cpu": cpu,
      "cores": str(os.cpu_count()),
      "tensorflow": tf.__version__,
      "tf_keras": importlib.metadata.version("tf-keras"),
      "python": platform.python_version(),
  }
