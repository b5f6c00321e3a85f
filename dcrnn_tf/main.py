r"""Trains, evaluates, exports and applies a multi-task model.

  python -m dcrnn_tf.main --flagfile=configs/train.flags

`--mode=train` (default) trains (resuming from the latest checkpoint in `--model_dir`),
evaluates and exports; `evaluate`, `export` and `predict` work on a trained
`--model_dir`.
"""

import json
import os
from typing import Any, Dict, Optional

from absl import app
from absl import flags
from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import pandas as pd
import tensorflow as tf

from dcrnn_tf import evaluation
from dcrnn_tf import export
from dcrnn_tf import model_flags
from dcrnn_tf import trainer
from dcrnn_tf import training
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import synthetic
from dcrnn_tf.features import FeatureConfig

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "train", ["train", "evaluate", "export", "predict"],
                  "train: train (resuming from --model_dir), evaluate and export; "
                  "evaluate: write eval_metrics.json; export: write a SavedModel; "
                  "predict: write the probabilities for --predict_path to --predict_output.")
flags.DEFINE_string("model_dir", "runs/dcrnn", "Checkpoints, configs, logs and metrics.")
flags.DEFINE_string("export_dir", "export/dcrnn",
                    "Parent of the exported SavedModel versions (<export_dir>/<version>/).")
flags.DEFINE_string("data_dir", None,
                    "Directory holding train.*, eval.* and feature_config.json; gives the "
                    "defaults of --train_path, --eval_path and --feature_config.")
flags.DEFINE_bool("synthetic", False,
                  "Write the built-in synthetic click/conversion data to --data_dir if it "
                  "is not there yet.")
flags.DEFINE_integer("synthetic_train_rows", 200_000, "Training rows of the synthetic data.")
flags.DEFINE_integer("synthetic_eval_rows", 50_000, "Evaluation rows of the synthetic data.")
flags.DEFINE_string("train_path", None,
                    "Training files: a glob or comma-separated globs (CSV or TFRecord). "
                    "Default: <data_dir>/train.tfrecord.gz.")
flags.DEFINE_string("eval_path", None, "Evaluation files. Default: <data_dir>/eval.tfrecord.gz.")
flags.DEFINE_string("feature_config", None,
                    "Feature config JSON. Default: <data_dir>/feature_config.json.")
flags.DEFINE_enum("data_format", "auto", ["auto", "csv", "tfrecord"],
                  "File format; auto picks by file name (.csv[.gz], .tfrecord[.gz]).")
flags.DEFINE_string("predict_path", None, "Files to predict (features; labels optional).")
flags.DEFINE_string("predict_output", None,
                    "CSV of probabilities, one column per output. Default: "
                    "<model_dir>/predictions.csv.")
flags.DEFINE_integer("batch_size", 1024, "Batch size.")
flags.DEFINE_integer("epochs", 2, "Training epochs (passes over --train_path).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("seed", 42, "Seed of weights initialization and data shuffling.")
flags.DEFINE_integer("shuffle_buffer", 100_000, "Rows in the training shuffle buffer.")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints to keep in --model_dir.")
flags.DEFINE_integer("verbose", 1, "Keras fit verbosity: 0 silent, 1 progress bar, 2 a line "
                     "per epoch.")

MODEL_CONFIG = "model_config.json"
FEATURE_CONFIG = "feature_config.json"
EVAL_METRICS = "eval_metrics.json"


def data_path(flag_value: Optional[str], name: str) -> str:
  if flag_value:
    return flag_value
  if not FLAGS.data_dir:
    raise app.UsageError(f"Give --data_dir or --{name}.")
  defaults = {"train_path": "train.tfrecord.gz", "eval_path": "eval.tfrecord.gz",
              "feature_config": FEATURE_CONFIG}
  return os.path.join(FLAGS.data_dir, defaults[name])


def make_dataset(path: str, feature_config: FeatureConfig, training_data: bool,
                 shuffle: bool = True, with_labels: bool = True) -> tf.data.Dataset:
  """Batches of `path`; for Keras `fit` (`training_data`), with targets per output."""
  transform = ((lambda features, labels: (features, training.make_targets(labels,
                                                                          feature_config)))
               if training_data else None)
  return pipeline.make_dataset(
      path, feature_config, FLAGS.batch_size, data_format=FLAGS.data_format,
      shuffle=training_data and shuffle, shuffle_buffer=FLAGS.shuffle_buffer,
      seed=FLAGS.seed, with_labels=with_labels, transform=transform)


def run_config(feature_config: FeatureConfig) -> Dict[str, Any]:
  """The model's name and options; a `--model_dir` keeps the ones it was trained with."""
  path = os.path.join(FLAGS.model_dir, MODEL_CONFIG)
  wanted = {"model": FLAGS.model, "options": model_flags.model_options()}
  if FLAGS.mode != "train":
    if not os.path.exists(path):
      raise app.UsageError(f"{FLAGS.model_dir} holds no trained model ({path} is missing).")
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      stored = json.load(f)
    if stored != json.loads(json.dumps(wanted)):
      raise app.UsageError(
          f"{FLAGS.model_dir} was trained with {stored}, but the flags ask for {wanted}. "
          "Use the same model flags to resume, or a new --model_dir.")
    stored_features = FeatureConfig.load(os.path.join(FLAGS.model_dir, FEATURE_CONFIG))
    if stored_features != feature_config:
      raise app.UsageError(f"{FLAGS.model_dir} was trained with another feature config.")
  else:
    os.makedirs(FLAGS.model_dir, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
      json.dump(wanted, f, indent=2)
    feature_config.save(os.path.join(FLAGS.model_dir, FEATURE_CONFIG))
  return wanted


def evaluate(model, feature_config: FeatureConfig) -> Dict[str, Dict[str, float]]:
  metrics = evaluation.evaluate(
      model, make_dataset(data_path(FLAGS.eval_path, "eval_path"), feature_config,
                          training_data=False), feature_config)
  path = os.path.join(FLAGS.model_dir, EVAL_METRICS)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(metrics, f, indent=2)
  for name, values in metrics.items():
    logging.info("eval %s: AUC %.4f, log loss %.4f (%d rows)", name, values["auc"],
                 values["logloss"], values["count"])
  logging.info("Wrote %s", path)
  return metrics


def predict(model, feature_config: FeatureConfig) -> str:
  if not FLAGS.predict_path:
    raise app.UsageError("--mode=predict needs --predict_path.")
  output = FLAGS.predict_output or os.path.join(FLAGS.model_dir, "predictions.csv")
  dataset = make_dataset(FLAGS.predict_path, feature_config, training_data=False,
                         with_labels=False)
  frames = [pd.DataFrame({name: value.numpy() for name, value in model(batch).items()})
            for batch in dataset]
  pd.concat(frames, ignore_index=True)[list(feature_config.output_names)].to_csv(
      output, index=False)
  logging.info("Wrote %s", output)
  return output


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  tf.keras.utils.set_random_seed(FLAGS.seed)
  if FLAGS.synthetic:
    if not FLAGS.data_dir:
      raise app.UsageError("--synthetic needs --data_dir.")
    synthetic.ensure_dataset(FLAGS.data_dir, train_rows=FLAGS.synthetic_train_rows,
                             eval_rows=FLAGS.synthetic_eval_rows, seed=FLAGS.seed)
  if FLAGS.mode == "train":
    feature_config = FeatureConfig.load(data_path(FLAGS.feature_config, "feature_config"))
  else:
    feature_config = FeatureConfig.load(os.path.join(FLAGS.model_dir, FEATURE_CONFIG))
  config = run_config(feature_config)
  run = trainer.Trainer(config["model"], config["options"], feature_config, FLAGS.model_dir,
                        FLAGS.learning_rate, FLAGS.keep_checkpoints)
  if FLAGS.mode != "train" and not run.has_checkpoint:
    raise app.UsageError(f"{FLAGS.model_dir} holds no checkpoint.")
  model = run.model
  if FLAGS.mode == "train":
    run.fit(make_dataset(data_path(FLAGS.train_path, "train_path"), feature_config,
                         training_data=True),
            FLAGS.epochs,
            validation_data=make_dataset(data_path(FLAGS.eval_path, "eval_path"),
                                         feature_config, training_data=True, shuffle=False),
            verbose=FLAGS.verbose)
  if FLAGS.mode in ("train", "evaluate"):
    evaluate(model, feature_config)
  if FLAGS.mode in ("train", "export"):
    path = export.export_saved_model(model, feature_config, FLAGS.export_dir)
    logging.info("Exported SavedModel to %s", path)
  if FLAGS.mode == "predict":
    predict(model, feature_config)


if __name__ == "__main__":
  app.run(main)
