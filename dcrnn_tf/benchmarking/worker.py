r"""One benchmark run in its own process, so that its peak memory is its own.

  python -m dcrnn_tf.benchmarking.worker <run_dir>/job.json

The job file (written by `dcrnn_tf.benchmark`) holds the run (`plan.Run.to_dict`)
and the benchmark's settings: the prepared feature config, the files, split part,
skipped rows and row count of each role (train, validation, test), batch size, learning
rate, epoch budget, patience, in-memory limit and measurement sizes. The worker holds
the training and validation rows in memory as `dcrnn_tf.main` does, trains with early
stopping on the validation loss (`dcrnn_tf.early_stopping`, as `dcrnn_tf.main
--early_stopping_patience` does; the best epoch's weights restored), evaluates on the
test part (and, to choose variants by, on the validation part) and writes
`<run_dir>/result.json`. A run that measures speed also measures
the training and input pipeline throughput and exports a SavedModel with sample
requests for `latency`. A profile job (`"profile": true`) trains nothing: it times the
parts of one training step of the run's model (`dcrnn_tf.benchmarking.profile`).
"""

import json
import os
import sys
import time
from typing import Any, Dict, Mapping, Optional

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import early_stopping
from dcrnn_tf import evaluation
from dcrnn_tf import export
from dcrnn_tf import models
from dcrnn_tf import serving
from dcrnn_tf import training
from dcrnn_tf.benchmarking import measure
from dcrnn_tf.benchmarking import profile
from dcrnn_tf.benchmarking.plan import with_dependencies
from dcrnn_tf.data import in_memory
from dcrnn_tf.data import pipeline
from dcrnn_tf.data.split import Split
from dcrnn_tf.features import FeatureConfig

RESULT = "result.json"
EXPORT_DIR = "export"
REQUESTS = "requests.tfrecord"


def dataset(settings: Mapping[str, Any], role: str, feature_config: FeatureConfig,
            seed: int, for_fit: bool = True,
            held: Optional[in_memory.InMemoryRows] = None) -> tf.data.Dataset:
  """The role's batches as `dcrnn_tf.main` reads them (targets per output if `for_fit`):
  from `held` rows if given, else from the files."""
  transform = ((lambda features, labels: (features, training.make_targets(
      labels, feature_config))) if for_fit else None)
  if held is not None:
    return held.dataset(settings["batch_size"], shuffle=role == "train", seed=seed,
                        transform=transform)
  data = settings["roles"][role]
  return pipeline.make_dataset(
      data["path"], feature_config, settings["batch_size"],
      data_format=settings["data_format"], shuffle=role == "train",
      shuffle_buffer=settings["shuffle_buffer"], seed=seed, transform=transform,
      split=_split(data), skip_rows=data["skip_rows"])


def hold_in_memory(settings: Mapping[str, Any], role: str,
                   feature_config: FeatureConfig) -> Optional[in_memory.InMemoryRows]:
  """The role's rows in memory where `dcrnn_tf.main` holds them there, else None."""
  data = settings["roles"][role]
  return in_memory.hold_if_fits(role, data["rows"], data["path"], feature_config,
                                settings["in_memory_max_mib"],
                                data_format=settings["data_format"], split=_split(data),
                                skip_rows=data["skip_rows"])


def _split(data: Mapping[str, Any]) -> Optional[Split]:
  split = data["split"]
  return Split(tuple(split["fractions"]), split["part"], split["seed"]) if split else None


def pipeline_only(settings: Mapping[str, Any]) -> Dict[str, Any]:
  """Rows per second of the training input pipeline alone: read from the files every
  epoch, and held in memory (the first read, then every epoch) if the rows fit."""
  feature_config = FeatureConfig.load(settings["feature_config"])
  rows = settings["roles"]["train"]["rows"]
  result = {"files_rows_per_s": measure.pipeline_rate(
      dataset(settings, "train", feature_config, seed=0), rows)}
  start = time.perf_counter()
  held = hold_in_memory(settings, "train", feature_config)
  if held is None:
    return {**result, "source": "files", "rows_per_s": result["files_rows_per_s"]}
  load_rows_per_s = rows / (time.perf_counter() - start)
  memory_rows_per_s = measure.pipeline_rate(
      dataset(settings, "train", feature_config, seed=0, held=held), rows)
  return {**result, "source": "memory", "load_rows_per_s": load_rows_per_s,
          "memory_rows_per_s": memory_rows_per_s, "rows_per_s": memory_rows_per_s}


def train_and_measure(settings: Mapping[str, Any], run: Mapping[str, Any],
                      run_dir: str) -> Dict[str, Any]:
  """Trains, evaluates and measures one run (see the module docstring)."""
  tf.keras.utils.set_random_seed(run["seed"])
  feature_config = with_dependencies(FeatureConfig.load(settings["feature_config"]),
                                     run["depends_on"])
  train = dataset(settings, "train", feature_config, run["seed"],
                  held=hold_in_memory(settings, "train", feature_config))
  if settings["max_train_batches"]:
    train = train.take(settings["max_train_batches"])
  model = models.build_model(run["model"], feature_config, **run["options"])
  training.compile_model(model, feature_config, learning_rate(settings, run))
  timer = measure.BatchTimer()
  stopping = early_stopping.EarlyStopping(early_stopping.DEFAULT_MONITOR, settings["patience"])
  held_validation = hold_in_memory(settings, "validation", feature_config)
  start = time.perf_counter()
  history = model.fit(train, epochs=settings["epochs"], verbose=0,
                      validation_data=dataset(settings, "validation", feature_config,
                                              run["seed"], held=held_validation),
                      callbacks=[stopping, timer])
  train_seconds = time.perf_counter() - start
  stopping.restore_best(model)
  test = dataset(settings, "test", feature_config, run["seed"], for_fit=False)
  metrics = evaluation.evaluate(model, test, feature_config)
  validation_metrics = evaluation.evaluate(
      model, dataset(settings, "validation", feature_config, run["seed"], for_fit=False,
                     held=held_validation), feature_config)
  train_rows = settings["roles"]["train"]["rows"]
  if settings["max_train_batches"]:
    train_rows = min(train_rows, settings["max_train_batches"] * settings["batch_size"])
  result = {
      "run": dict(run),
      "metrics": metrics,
      "validation_metrics": validation_metrics,
      "epochs": len(history.history["val_loss"]),
      "best_epoch": stopping.best_epoch + 1,
      "val_loss": [float(v) for v in history.history["val_loss"]],
      "train_seconds": train_seconds,
      "peak_rss_mib": measure.peak_rss_mib(),
      "trainable_parameters": measure.trainable_parameters(
          run["model"], feature_config, **run["options"]),
      "parameters_per_added_task": measure.parameters_per_added_task(
          run["model"], feature_config, **run["options"]),
      "flops_per_example": measure.forward_flops(model, feature_config),
  }
  if run["measure_speed"]:
    result["train_rows_per_s_input"] = timer.epoch_rate(train_rows, settings["batch_size"])
    export_path = export.export_saved_model(model, feature_config,
                                            os.path.join(run_dir, EXPORT_DIR))
    result["saved_model"] = export_path
    write_requests(test, feature_config, settings["latency_rows"],
                   os.path.join(run_dir, REQUESTS))
    result["train_rows_per_s_cached"] = measure.cached_training_rate(
        model, train, settings["batch_size"], settings["speed_batches"],
        settings["speed_windows"])
  return result


def profile_step(settings: Mapping[str, Any], run: Mapping[str, Any]) -> Dict[str, Any]:
  """Times the parts of one training step of the run's (untrained) model on training
  rows (see `dcrnn_tf.benchmarking.profile`)."""
  tf.keras.utils.set_random_seed(run["seed"])
  feature_config = with_dependencies(FeatureConfig.load(settings["feature_config"]),
                                     run["depends_on"])
  train = dataset(settings, "train", feature_config, run["seed"],
                  held=hold_in_memory(settings, "train", feature_config))
  model = models.build_model(run["model"], feature_config, **run["options"])
  training.compile_model(model, feature_config, learning_rate(settings, run))
  features, targets = next(iter(train))
  sizes = {"calls": settings["profile_calls"], "repeats": settings["profile_repeats"]}
  result = {"run": dict(run), "batch_size": settings["batch_size"],
            "step_ms": profile.step_profile(model, features, targets, train,
                                            settings["batch_size"], **sizes)}
  if isinstance(model, models.DCRNN):
    result["block_ms"] = profile.dcrnn_block_profile(model, features, **sizes)
  return result


def learning_rate(settings: Mapping[str, Any], run: Mapping[str, Any]) -> float:
  """The run's learning rate: its own (an ablation's), else the benchmark's."""
  return settings["learning_rate"] if run["learning_rate"] is None else run["learning_rate"]


def write_requests(test: tf.data.Dataset, feature_config: FeatureConfig, rows: int,
                   path: str) -> None:
  """Writes the first `rows` test rows as serialized `tf.Example`s (latency inputs)."""
  features, _ = next(iter(test.unbatch().batch(rows)))
  features = {name: values.numpy() for name, values in features.items()}
  with tf.io.TFRecordWriter(path) as writer:
    for record in serving.serialize_examples(features, feature_config):
      writer.write(record)


def main(argv) -> None:
  if len(argv) != 2:
    raise SystemExit("usage: python -m dcrnn_tf.benchmarking.worker <run_dir>/job.json")
  with open(argv[1], encoding="utf-8") as f:
    job = json.load(f)
  run_dir = os.path.dirname(os.path.abspath(argv[1]))
  if job["run"] is None:
    result = pipeline_only(job["settings"])
  elif job.get("profile"):
    result = profile_step(job["settings"], job["run"])
  else:
    result = train_and_measure(job["settings"], job["run"], run_dir)
  path = os.path.join(run_dir, RESULT)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
  os.replace(path + ".tmp", path)


if __name__ == "__main__":
  main(sys.argv)
