r"""One benchmark run in its own process, so that its peak memory is its own.

  python -m dcrnn_tf.benchmark.worker <run_dir>/job.json

The job file (written by `dcrnn_tf.benchmark`) holds the run (`plan.Run.to_dict`)
and the benchmark's settings: the prepared feature config, the data roles as the
benchmark checked them (`dcrnn_tf.data.roles.DataRoles.to_dict`), the training options
of `dcrnn_tf.trainer.Trainer` (the training flags of `dcrnn_tf.main`), the epoch budget
and measurement sizes. The worker trains with a `Trainer` in `<run_dir>/model`, as
`dcrnn_tf.main --mode=train` does (rows held in memory where they fit, the same steps
per execution, checkpoints, early stopping and loss weighting; the best epoch's weights
restored), evaluates on the test part (and, to choose variants by, on the validation
part) and writes `<run_dir>/result.json`. Its training rate is the `Trainer`'s
(`TrainingRates`), the rate `dcrnn_tf.main` logs after every epoch. A run that measures
speed also measures the training rate on cached batches and exports a SavedModel with
sample requests for `latency`. A profile job (`"profile": true`) trains nothing: it
times the parts of one training step of the run's model
(`dcrnn_tf.benchmark.profile`).
"""

import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Any, Dict, Mapping

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import pandas as pd
import tensorflow as tf

from dcrnn_tf import evaluation
from dcrnn_tf import saved_model
from dcrnn_tf import models
from dcrnn_tf import serving
from dcrnn_tf import trainer
from dcrnn_tf.benchmark import measure
from dcrnn_tf.benchmark import profile
from dcrnn_tf.benchmark.plan import with_dependencies
from dcrnn_tf.data.roles import DataRoles
from dcrnn_tf.features import FeatureConfig

RESULT = "result.json"
MODEL_DIR = "model"
EXPORT_DIR = "export"
REQUESTS = "requests.tfrecord"


def pipeline_only(settings: Mapping[str, Any]) -> Dict[str, Any]:
  """Rows per second of the training input pipeline alone: read from the files every
  epoch, and held in memory (the first read, then every epoch) if the rows fit."""
  feature_config = FeatureConfig.load(settings["feature_config"])
  from_files = DataRoles.from_dict(settings["data"], seed=0, in_memory_max_mib=0)
  rows = from_files.rows("train")
  result = {"files_rows_per_s": measure.pipeline_rate(
      from_files.dataset("train", feature_config), rows)}
  data = DataRoles.from_dict(settings["data"], seed=0)
  start = time.perf_counter()
  if data.in_memory("train", feature_config) is None:
    return {**result, "source": "files", "rows_per_s": result["files_rows_per_s"]}
  load_rows_per_s = rows / (time.perf_counter() - start)
  memory_rows_per_s = measure.pipeline_rate(data.dataset("train", feature_config), rows)
  return {**result, "source": "memory", "load_rows_per_s": load_rows_per_s,
          "memory_rows_per_s": memory_rows_per_s, "rows_per_s": memory_rows_per_s}


def train_and_measure(settings: Mapping[str, Any], run: Mapping[str, Any],
                      run_dir: str) -> Dict[str, Any]:
  """Trains, evaluates and measures one run (see the module docstring)."""
  tf.keras.utils.set_random_seed(run["seed"])
  feature_config = with_dependencies(FeatureConfig.load(settings["feature_config"]),
                                     run["depends_on"])
  data = DataRoles.from_dict(settings["data"], seed=run["seed"])
  model_dir = os.path.join(run_dir, MODEL_DIR)
  shutil.rmtree(model_dir, ignore_errors=True)  # Of an earlier, unfinished try.
  run_trainer = trainer.Trainer(
      run["model"], run["options"], feature_config, model_dir, keep_checkpoints=1,
      **{**settings["training"], "learning_rate": learning_rate(settings, run)})
  preprocessor = run_trainer.input_preprocessor()  # As dcrnn_tf.main: it trains on ids.
  train = data.training_input(feature_config, preprocessor)
  if settings["max_train_batches"]:
    train = dataclasses.replace(
        train, rows=min(train.rows, settings["max_train_batches"] * train.batch_size))
  start = time.perf_counter()
  run_trainer.fit(train, settings["epochs"],
                  validation_data=data.dataset("validation", feature_config, for_fit=True,
                                               preprocessor=preprocessor),
                  validation_steps=-(-data.rows("validation") // train.batch_size),
                  verbose=0)
  train_seconds = time.perf_counter() - start
  run_trainer.restore_best()
  model = run_trainer.model
  log = pd.read_csv(os.path.join(model_dir, trainer.TRAINING_LOG))
  stopping = run_trainer.stopping
  result = {
      "run": dict(run),
      "metrics": evaluation.evaluate(model, data.dataset("test", feature_config),
                                     feature_config),
      "validation_metrics": evaluation.evaluate(
          model, data.dataset("validation", feature_config), feature_config),
      "epochs": len(log),
      "best_epoch": stopping.best_epoch + 1 if stopping.patience else len(log),
      "val_loss": [float(v) for v in log["val_loss"]],
      "train_seconds": train_seconds,
      "peak_rss_mib": measure.peak_rss_mib(),
      "trainable_parameters": measure.trainable_parameters(
          run["model"], feature_config, **run["options"]),
      "parameters_per_added_task": measure.parameters_per_added_task(
          run["model"], feature_config, **run["options"]),
      "flops_per_example": measure.forward_flops(model, feature_config),
  }
  if run["measure_speed"]:
    result["train_rows_per_s_input"] = run_trainer.rates.rows_per_s()
    export_path = saved_model.export_saved_model(model, feature_config,
                                                 os.path.join(run_dir, EXPORT_DIR))
    result["saved_model"] = export_path
    write_requests(data.dataset("test", feature_config), feature_config,
                   settings["latency_rows"], os.path.join(run_dir, REQUESTS))
    result["train_rows_per_s_cached"] = measure.cached_training_rate(
        model, data.dataset("train", feature_config, for_fit=True, preprocessor=preprocessor),
        train.batch_size,
        settings["speed_batches"], settings["speed_windows"])
  return result


def profile_step(settings: Mapping[str, Any], run: Mapping[str, Any]) -> Dict[str, Any]:
  """Times the parts of one training step of the run's (untrained) model on training
  rows (see `dcrnn_tf.benchmark.profile`): as it trains (`step_ms`: features
  preprocessed in the input pipeline, the model embeds ids) and on raw values
  (`step_ms_raw_input`: the model preprocesses in its step, as serving does)."""
  tf.keras.utils.set_random_seed(run["seed"])
  feature_config = with_dependencies(FeatureConfig.load(settings["feature_config"]),
                                     run["depends_on"])
  data = DataRoles.from_dict(settings["data"], seed=run["seed"])
  training = settings["training"]
  model = trainer.build_model(run["model"], run["options"], feature_config,
                              learning_rate(settings, run),
                              loss_weighting=training["loss_weighting"],
                              gradnorm_alpha=training["gradnorm_alpha"])
  batch_size = data.options.batch_size
  sizes = {"calls": settings["profile_calls"], "repeats": settings["profile_repeats"]}
  result = {"run": dict(run), "batch_size": batch_size}
  preprocessor = trainer.input_preprocessor(model)
  for key, used in (("step_ms", preprocessor), ("step_ms_raw_input", None)):
    train = data.dataset("train", feature_config, for_fit=True, preprocessor=used)
    features, targets, *weights = next(iter(train))
    result[key] = profile.step_profile(model, features, targets, train, batch_size, **sizes,
                                       sample_weight=weights[0] if weights else None)
  if isinstance(model, models.DCRNN):
    features = next(iter(data.dataset("train", feature_config, preprocessor=preprocessor)))[0]
    result["block_ms"] = profile.dcrnn_block_profile(model, features, **sizes)
  return result


def learning_rate(settings: Mapping[str, Any], run: Mapping[str, Any]) -> float:
  """The run's learning rate: its own (an ablation's), else the benchmark's."""
  rate = run["learning_rate"]
  return settings["training"]["learning_rate"] if rate is None else rate


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
    raise SystemExit("usage: python -m dcrnn_tf.benchmark.worker <run_dir>/job.json")
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
