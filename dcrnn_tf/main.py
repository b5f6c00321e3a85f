r"""Trains, evaluates, exports and applies a multi-task model.

  python -m dcrnn_tf.main --flagfile=configs/train.flags

`--mode=train` (default) prepares the feature config from the training data (first
run), trains (resuming from the latest checkpoint in `--model_dir`), evaluates and
exports; `prepare` only prepares; `evaluate`, `export`, `predict` and `inspect` work on
a trained `--model_dir`.
"""

import contextlib
import json
import logging as std_logging
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from absl import app
from absl import flags
from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import pandas as pd
import tensorflow as tf

from dcrnn_tf import distribute
from dcrnn_tf import evaluation
from dcrnn_tf import errors
from dcrnn_tf import export
from dcrnn_tf import flag_checks
from dcrnn_tf import inspection
from dcrnn_tf import loss_weighting
from dcrnn_tf import model_dir
from dcrnn_tf import model_flags
from dcrnn_tf import models
from dcrnn_tf import outputs
from dcrnn_tf import trainer
from dcrnn_tf import training
from dcrnn_tf.data import in_memory
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.data import synthetic
from dcrnn_tf.data.split import Split
from dcrnn_tf.features import RESERVED_OUTPUT_NAME, FeatureConfig

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "train",
                  ["train", "prepare", "evaluate", "export", "predict", "inspect"],
                  "train: prepare the feature config (first run), train (resuming from "
                  "--model_dir), evaluate and export; prepare: learn vocabularies and "
                  "statistics from the training data into --model_dir; evaluate: write "
                  "eval_metrics.json; export: write a SavedModel; predict: write the "
                  "probabilities for --predict_path to --predict_output; inspect: write "
                  "inspect.json and plots of the gates, experts and states on "
                  "--inspect_rows validation rows.")
flags.DEFINE_integer("inspect_rows", 4096,
                     "--mode=inspect: the first this many validation rows.", lower_bound=1)
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
                    "Training files: a glob or comma-separated globs (CSV or TFRecord), "
                    "inside --data_dir when relative. Default: <data_dir>/train.tfrecord.gz.")
flags.DEFINE_string("eval_path", None,
                    "Validation files (checked after each epoch). Default: "
                    "<data_dir>/eval.tfrecord.gz; with --split, the validation part of "
                    "--train_path.")
flags.DEFINE_string("test_path", None,
                    "Files of the final metrics (eval_metrics.json). Default: the test part "
                    "of --train_path with a --split that has one, else the validation data.")
flags.DEFINE_string("feature_config", None,
                    "Feature config, JSON or YAML (.yaml, .yml). Default: "
                    "<data_dir>/feature_config.json.")
flags.DEFINE_enum("data_format", "auto", ["auto", "csv", "tfrecord"],
                  "File format; auto tells it by the file name (.csv, .tfrecord), else by "
                  "the content. GZIP is told by the content.")
flags.DEFINE_string("predict_path", None, "Files to predict (features; labels optional).")
flags.DEFINE_string("predict_output", None,
                    "CSV of probabilities: the file and line (TFRecord: record) of each "
                    "row, then one column per output; rows skipped as bad are listed in "
                    "<output>.skipped.csv. Default: <model_dir>/predictions.csv.")
flags.DEFINE_enum("bad_rows", "fail", list(scan.BAD_ROW_POLICIES),
                  "fail: stop at the first bad row with its file, line and column; skip: "
                  "leave bad rows out and count them in <model_dir>/data_report.json "
                  "(data_report_<mode>.json for modes other than train).")
flags.DEFINE_string("split", None,
                    "Split --train_path into train/validation/test parts by these "
                    "fractions, e.g. 80,10,10, or 90,10 for no test part (reproducible per "
                    "--split_seed). It applies to --train_path only: a given --eval_path or "
                    "--test_path is read whole. The first run stores the split in "
                    "--model_dir (split.json); later runs and modes use it.")
flags.DEFINE_integer("split_seed", 0, "Seed of --split's row assignment.")
flags.DEFINE_integer("batch_size", 1024, "Batch size.")
flags.DEFINE_integer("epochs", 2, "Training epochs (passes over --train_path).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("seed", 42, "Seed of weights initialization and data shuffling.")
flags.DEFINE_integer("shuffle_buffer", 100_000,
                     "Rows in the shuffle buffer of training rows read from the files.")
flags.DEFINE_float("in_memory_max_mib", 1024,
                   "Training and validation rows whose parsed columns take at most this "
                   "many MiB are read from the files once and held in memory (each epoch "
                   "reshuffles all training rows); larger ones are read from the files "
                   "every epoch through a --shuffle_buffer. 0: always from the files.")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints to keep in --model_dir.")
flags.DEFINE_integer("keep_exports", 3,
                     "Export versions to keep in --export_dir, the newest (0: all). "
                     "--mode=train exports only when the weights changed since the last "
                     "export; --mode=export always writes a new version.")
flags.DEFINE_integer("verbose", None, "Keras fit verbosity: 0 silent, 1 progress bar, 2 a "
                     "line per epoch. Default: 1 when stdout is a terminal, else 2.")
flags.DEFINE_bool("tf_logs", False,
                  "Show TensorFlow's C++ start-up and log lines (hidden by default; read "
                  "from the command line, before TensorFlow loads, so it has no effect in "
                  "a --flagfile; setting TF_CPP_MIN_LOG_LEVEL also shows them).")
# `--help` lists the flags of every module of the command, not only this one's.
for _module in (model_flags, trainer, distribute):
  flags.adopt_module_key_flags(_module)

for _name in ("synthetic_train_rows", "synthetic_eval_rows", "batch_size", "epochs",
              "shuffle_buffer", "keep_checkpoints"):
  flag_checks.at_least(_name, 1)
for _name in ("split_seed", "seed", "in_memory_max_mib"):
  flag_checks.at_least(_name, 0)
flag_checks.greater_than("learning_rate", 0)
flag_checks.in_range("verbose", 0, 3)
flags.register_validator("split", lambda value: value is None or Split.is_valid_flag(value),
                         "--split must be two or three numbers >= 0 with a sum > 0, such as "
                         "80,10,10 or 90,10")

MODEL_CONFIG = "model_config.json"
SPLIT = "split.json"
DATA_ROLES = "data_roles.json"
EXPORTED = "exported.json"
FEATURE_CONFIG = "feature_config.json"
EVAL_METRICS = "eval_metrics.json"
EVAL_DATA = RESERVED_OUTPUT_NAME  # eval_metrics.json's key of the test data.
DATA_REPORT = "data_report.json"
TENSORBOARD = "tensorboard"
SOURCE_FINGERPRINT = "feature_config_source.json"
# The roles whose files each mode reads, all checked before anything else happens.
# The columns before the probabilities in --predict_output: where each row comes from.
PREDICTION_POSITION = ("file", "line")
MODE_ROLES = {"train": ("train", "validation", "test"), "prepare": ("train",),
              "evaluate": ("test",), "export": ("test",), "predict": ("predict",),
              "inspect": ("validation",)}
DATA_DIR_DEFAULTS = {"train_path": "train.tfrecord.gz", "eval_path": "eval.tfrecord.gz",
                     "feature_config": FEATURE_CONFIG}


def data_path(name: str) -> str:
  """The files of a path flag: relative patterns are taken inside `--data_dir`."""
  value = getattr(FLAGS, name)
  if not value and name == "test_path":
    return data_path("eval_path")
  if not value and not FLAGS.data_dir:
    raise errors.UsageError(f"Give --data_dir or --{name}.")
  if not value:
    return os.path.join(FLAGS.data_dir, DATA_DIR_DEFAULTS[name])
  if name == "feature_config" or not FLAGS.data_dir:
    return value
  return ",".join(os.path.join(FLAGS.data_dir, p.strip()) for p in value.split(","))


def split_choice() -> Tuple[Optional[str], int]:
  """`--split` and `--split_seed`, kept in `<model_dir>/split.json` from the first run
  (written with the prepared feature config, see `save_prepared_feature_config`).

  Raises:
    errors.UsageError: If the flags give another split than the stored one.
  """
  path = os.path.join(FLAGS.model_dir, SPLIT)
  given = {"split": FLAGS.split, "split_seed": FLAGS.split_seed}
  if FLAGS.split is not None:
    try:
      Split.parse(FLAGS.split, "train", FLAGS.split_seed)
    except ValueError as e:
      raise errors.UsageError(str(e)) from None
  if not os.path.exists(path):
    return FLAGS.split, FLAGS.split_seed
  with open(path, encoding="utf-8") as f:
    stored = json.load(f)
  if FLAGS["split"].present or FLAGS["split_seed"].present:
    fractions = lambda choice: (choice["split"] and Split.parse(
        choice["split"], "train", 0).fractions, choice["split_seed"])
    if fractions(given) != fractions(stored):
      raise errors.UsageError(
          f"{FLAGS.model_dir} was prepared with --split={stored['split'] or ''} "
          f"--split_seed={stored['split_seed']} ({path}), but the flags ask for "
          f"--split={FLAGS.split or ''} --split_seed={FLAGS.split_seed}: leave the split "
          "flags out, or use a new --model_dir.")
  return stored["split"], stored["split_seed"]


class Data:
  """The files of each role (train, validation, test, predict), checked once per run.

  `--split` splits `--train_path` alone: train is its train part; validation is
  `--eval_path` if given, else its validation part; test is `--test_path` if given,
  else its test part, or the validation data where the split has no test part. Without
  a split, validation is `--eval_path` and test is `--test_path` (default:
  `--eval_path`). A model directory remembers the validation and test data of its first
  training run (`data_roles.json`, see `stored_roles`): without `--eval_path` or
  `--test_path`, later runs and modes read the same.
  Every role's rows are scanned (`dcrnn_tf.data.scan`) before they are read: bad rows
  fail the run or, with `--bad_rows=skip`, are left out and counted in the mode's
  report (`data_report.json` for train, `data_report_<mode>.json` for the others).
  Training and validation rows, read every epoch, are held in memory when they fit
  under `--in_memory_max_mib` (`dcrnn_tf.data.in_memory`).

  Args:
    split: The `--split` value in force (see `split_choice`), or None.
    split_seed: Its seed.
    stored: The stored validation and test data (`stored_roles`), by role.
  """

  def __init__(self, split: Optional[str] = None, split_seed: int = 0,
               stored: Optional[Dict[str, Dict[str, Any]]] = None):
    self.split_text = split
    self.split_seed = split_seed
    self.stored = stored or {}
    self.reports: Dict[str, scan.ScanReport] = {}
    self.held: Dict[str, Optional[in_memory.InMemoryRows]] = {}

  def source(self, role: str) -> Tuple[str, Optional[Split]]:
    """The role's files, and the part of the split it reads (None: all rows)."""
    if role == "predict":
      if not FLAGS.predict_path:
        raise errors.UsageError("--mode=predict needs --predict_path.")
      return FLAGS.predict_path, None
    flag = {"train": "train_path", "validation": "eval_path", "test": "test_path"}[role]
    if role in self.stored and not getattr(FLAGS, flag):
      stored = self.stored[role]
      part = stored["part"] and Split.parse(self.split_text, stored["part"], self.split_seed)
      return stored["path"], part
    if self.split_text is None or (role != "train" and getattr(FLAGS, flag)):
      return data_path(flag), None
    part = Split.parse(self.split_text, role, self.split_seed)
    if part.fraction > 0 or role == "train":
      return data_path("train_path"), part
    if role == "test":
      return self.source("validation")
    raise errors.UsageError(f"{part} holds no rows: give it a fraction, or give --eval_path.")

  def path(self, role: str) -> str:
    return self.source(role)[0]

  def describe(self, role: str) -> Dict[str, Any]:
    """What the role read: its files (the pattern given and the files it matched), the
    part of the split, and its rows (those read, and the valid ones)."""
    part = self.split(role)
    report = self.reports[role]
    return {"role": role, "path": self.path(role), "files": report.files,
            "part": str(part) if part else None, "rows": report.rows,
            "valid_rows": report.valid_rows}

  def split(self, role: str) -> Optional[Split]:
    return self.source(role)[1]

  def check(self, role: str, feature_config: FeatureConfig, learn: bool = False):
    """Scans the role's rows; returns the statistics when `learn`."""
    for other, report in self.reports.items():
      if (self.path(other), self.split(other)) == (self.path(role), self.split(role)):
        self.reports[role] = report  # Validation and test read the same rows.
        self.write_report()
        return None
    report, statistics = scan.scan(
        self.path(role), feature_config, data_format=FLAGS.data_format,
        with_labels=role != "predict", bad_rows=FLAGS.bad_rows, split=self.split(role),
        learn=learn, positions=role == "predict")
    self.reports[role] = report
    if report.bad_rows or report.empty_files:
      logging.warning("%s data: skipped %d bad rows of %d and %d empty files; see %s.",
                      role, len(report.bad_rows), report.rows, len(report.empty_files),
                      report_path())
    self.write_report()
    return statistics

  def write_report(self) -> None:
    os.makedirs(FLAGS.model_dir, exist_ok=True)
    path = report_path()
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"bad_rows_policy": FLAGS.bad_rows,
                 **{role: r.to_dict() for role, r in self.reports.items()}}, f, indent=2)

  def dataset(self, role: str, feature_config: FeatureConfig, for_fit: bool = False,
              seed: Optional[int] = None) -> tf.data.Dataset:
    """The role's batches; for Keras `fit`, with targets per output. `seed` (default
    `--seed`) shuffles the training rows."""
    transform = ((lambda features, labels: (features, training.make_targets(
        labels, feature_config))) if for_fit else None)
    shuffle = role == "train"
    seed = FLAGS.seed if seed is None else seed
    held = self.in_memory(role, feature_config)
    if held is not None:
      return held.dataset(FLAGS.batch_size, shuffle=shuffle, seed=seed, transform=transform)
    return pipeline.make_dataset(
        self.path(role), feature_config, FLAGS.batch_size, data_format=FLAGS.data_format,
        shuffle=shuffle, shuffle_buffer=FLAGS.shuffle_buffer, seed=seed,
        with_labels=role != "predict", transform=transform, split=self.split(role),
        skip_rows=self.reports[role].skip_rows())

  def in_memory(self, role: str, feature_config: FeatureConfig
                ) -> Optional[in_memory.InMemoryRows]:
    """The role's rows held in memory, or None where they are read from the files
    (test and predict rows, read once, and rows over `--in_memory_max_mib`)."""
    if role not in self.reports:
      self.check(role, feature_config)
    if role not in self.held:
      rows = self.reports[role].valid_rows
      self.held[role] = in_memory.hold_if_fits(
          role, rows, self.path(role), feature_config, FLAGS.in_memory_max_mib,
          data_format=FLAGS.data_format, split=self.split(role),
          skip_rows=self.reports[role].skip_rows())
      if self.held[role] is not None:
        logging.info("Holding the %d %s rows in memory (loading them takes up to about "
                     "%.0f MiB).", rows, role,
                     in_memory.estimated_bytes(rows, feature_config) / in_memory.MIB)
    return self.held[role]


def stored_roles() -> Dict[str, Dict[str, Any]]:
  """The validation and test data that `--model_dir`'s first training run read (the
  absolute file pattern and the part of the split), by role; empty before that run (or
  in a model directory of an earlier version).

  Raises:
    errors.UsageError: If a stored pattern matches no file now.
  """
  path = os.path.join(FLAGS.model_dir, DATA_ROLES)
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    stored = json.load(f)
  for role, flag in (("validation", "eval_path"), ("test", "test_path")):
    if role in stored and not getattr(FLAGS, flag):
      try:
        pipeline.list_files(stored[role]["path"])
      except errors.MissingFileError:
        raise errors.UsageError(
            f"{FLAGS.model_dir} was trained with {stored[role]['path']} as its {role} data "
            f"({path}), which matches no file now: give --{flag}.") from None
  return stored


def save_data_roles(data: "Data") -> None:
  """Writes the validation and test data of the first training run (`stored_roles`)."""
  path = os.path.join(FLAGS.model_dir, DATA_ROLES)
  if os.path.exists(path):
    return
  absolute = lambda pattern: ",".join(
      p if "://" in p else os.path.abspath(p) for p in pattern.split(",") if p.strip())
  roles = {}
  for role in ("validation", "test"):
    source, part = data.source(role)
    roles[role] = {"path": absolute(source), "part": part.part if part else None}
  with open(path, "w", encoding="utf-8") as f:
    json.dump(roles, f, indent=2)


def source_feature_config_path() -> Optional[str]:
  """The feature config the flags give (`--feature_config`, or the one in `--data_dir`
  if it is there), or None."""
  if FLAGS.feature_config:
    return FLAGS.feature_config
  if FLAGS.data_dir and os.path.exists(data_path("feature_config")):
    return data_path("feature_config")
  return None


def report_path() -> str:
  """The data report of this mode: `data_report.json` for train, else
  `data_report_<mode>.json` (a predict run leaves the training run's report alone)."""
  name = DATA_REPORT if FLAGS.mode == "train" else DATA_REPORT.replace(
      ".json", f"_{FLAGS.mode}.json")
  return os.path.join(FLAGS.model_dir, name)


def prepared_feature_config(data: Data) -> FeatureConfig:
  """The model directory's prepared feature config, or one prepared from the training
  data if it has none yet (modes train and prepare; `save_prepared_feature_config`
  stores it once the run is known to work).

  Raises:
    UsageError: If the flags give a feature config other than the one the model
      directory was prepared from.
  """
  path = os.path.join(FLAGS.model_dir, FEATURE_CONFIG)
  source = source_feature_config_path()
  if os.path.exists(path):
    if source is not None:
      check_source_feature_config(source)
    return FeatureConfig.load(path)
  if FLAGS.mode not in ("train", "prepare"):
    raise errors.UsageError(f"{FLAGS.model_dir} holds no prepared feature config ({path}); "
                            "run --mode=prepare or --mode=train first.")
  raw = FeatureConfig.load(data_path("feature_config"))
  start = time.time()
  statistics = data.check("train", raw, learn=True)
  prepared = scan.prepare(raw, statistics)
  logging.info("Prepared the feature config from %d training rows in %.1f s.",
               data.reports["train"].valid_rows, time.time() - start)
  return prepared


def wanted_run_config() -> Dict[str, Any]:
  """The model, options and loss weighting that the flags ask for."""
  return {"model": FLAGS.model, "options": model_flags.model_options(),
          "loss_weighting": FLAGS.loss_weighting}


def check_source_feature_config(source: str) -> None:
  """Refuses a feature config other than the one `--model_dir` was prepared from."""
  path = os.path.join(FLAGS.model_dir, SOURCE_FINGERPRINT)
  if not os.path.exists(path):
    return  # A model directory of an earlier version.
  with open(path, encoding="utf-8") as f:
    stored = json.load(f)
  changes = model_dir.differences(stored["fingerprint"],
                                  model_dir.fingerprint(FeatureConfig.load(source)))
  if changes:
    raise errors.UsageError(
        f"--feature_config {source} differs from the feature config {FLAGS.model_dir} was "
        f"prepared from ({stored['path']}): {'; '.join(changes)}. To train with it, use a "
        "new --model_dir (or delete this one); to go on with this model, pass the config "
        "it was prepared from.")


def save_prepared_feature_config(feature_config: FeatureConfig) -> None:
  """Writes the prepared feature config, the fingerprint of the config it was prepared
  from and the split choice (`split_choice`) into `--model_dir`, unless they are there."""
  path = os.path.join(FLAGS.model_dir, FEATURE_CONFIG)
  if os.path.exists(path):
    return
  os.makedirs(FLAGS.model_dir, exist_ok=True)
  source = data_path("feature_config")
  with open(os.path.join(FLAGS.model_dir, SOURCE_FINGERPRINT), "w", encoding="utf-8") as f:
    json.dump({"path": source,
               "fingerprint": model_dir.fingerprint(FeatureConfig.load(source))}, f, indent=2)
  with open(os.path.join(FLAGS.model_dir, SPLIT), "w", encoding="utf-8") as f:
    json.dump({"split": FLAGS.split, "split_seed": FLAGS.split_seed}, f, indent=2)
  feature_config.save(path)
  logging.info("Wrote the prepared feature config %s", path)


def run_config(feature_config: FeatureConfig) -> Dict[str, Any]:
  """The model's name, options and loss weighting; a `--model_dir` keeps the ones it was
  trained with (a directory from before `--loss_weighting` was trained with `fixed`),
  and the fingerprint of the prepared feature config it was trained on.

  On the first run the model is built once to check the options, and only then are
  `model_config.json` and the prepared feature config written, so that a run that
  fails leaves nothing that would refuse the corrected command.
  """
  path = os.path.join(FLAGS.model_dir, MODEL_CONFIG)
  prints = model_dir.fingerprint(feature_config)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      stored = json.load(f)
    changes = model_dir.differences(stored.get("feature_config", prints), prints)
    if changes:
      raise errors.UsageError(
          f"The prepared feature config {os.path.join(FLAGS.model_dir, FEATURE_CONFIG)} "
          f"differs from the one the model in {FLAGS.model_dir} was trained on: "
          f"{'; '.join(changes)}. Restore the config it was trained on, or train in a new "
          "--model_dir (or delete this one).")
    trained = {"model": stored["model"], "options": stored["options"],
               "loss_weighting": stored.get("loss_weighting", loss_weighting.FIXED)}
    changes = run_config_changes(trained, wanted_run_config())
    if FLAGS.mode == "train" and changes:
      raise errors.UsageError(
          f"{FLAGS.model_dir} was trained with other model flags: {'; '.join(changes)}. "
          "Use the same model flags to resume (and the same --loss_weighting), or a new "
          "--model_dir.")
    return trained
  if FLAGS.mode != "train":
    raise errors.UsageError(f"{FLAGS.model_dir} holds no trained model ({path} is missing).")
  wanted = wanted_run_config()
  try:
    trainer.build_model(wanted["model"], wanted["options"], feature_config,
                        FLAGS.learning_rate, loss_weighting=wanted["loss_weighting"],
                        gradnorm_alpha=FLAGS.gradnorm_alpha)
  except ValueError as e:
    raise errors.UsageError(f"--model={FLAGS.model}: {e}") from e
  # The model trained is built as if this one had not been: same names, same weights.
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(FLAGS.seed)
  save_prepared_feature_config(feature_config)
  with open(path, "w", encoding="utf-8") as f:
    json.dump({**wanted, "feature_config": prints}, f, indent=2)
  return wanted


def run_config_changes(trained: Dict[str, Any], wanted: Dict[str, Any]) -> List[str]:
  """`--flag was X, the flags give Y` for each model flag that differs."""
  wanted = json.loads(json.dumps(wanted))  # Tuples as the stored lists.
  show = lambda value: (",".join(map(str, value)) or "(empty)") if isinstance(
      value, list) else str(value)
  pairs = [(name, trained[name], wanted[name]) for name in ("model", "loss_weighting")]
  if trained["model"] == wanted["model"]:
    pairs += [(name, trained["options"].get(name), wanted["options"].get(name))
              for name in dict.fromkeys([*trained["options"], *wanted["options"]])]
  return [f"--{name} was {show(old)}, the flags give {show(new)}"
          for name, old, new in pairs if old != new]


def check_loss_weighting() -> None:
  """Refuses GradNorm on a model whose tasks share no layer (before any data is read)."""
  if (FLAGS.mode == "train" and FLAGS.loss_weighting == loss_weighting.GRADNORM
      and not models.shares_a_layer(FLAGS.model, **model_flags.model_options())):
    raise errors.UsageError(
        f"--loss_weighting=gradnorm needs a layer that the tasks share after the feature "
        f"encoder, and --model={FLAGS.model} has none with these flags; use "
        "--loss_weighting=uncertainty or fixed.")


def check_early_stopping_monitor() -> None:
  """Refuses an early-stopping monitor that training does not report, from the feature
  config's outputs (before any data rows are read)."""
  if FLAGS.mode == "train" and FLAGS.early_stopping_patience:
    prepared = os.path.join(FLAGS.model_dir, FEATURE_CONFIG)
    config = FeatureConfig.load(prepared if os.path.exists(prepared)
                                else data_path("feature_config"))
    figures = ["loss"] + [f"{name}_{kind}" for name in config.output_names
                          for kind in ("loss", "auc")]
    known = [prefix + figure for prefix in ("val_", "") for figure in figures]
    if FLAGS.early_stopping_monitor not in known:
      raise errors.UsageError(f"--early_stopping_monitor={FLAGS.early_stopping_monitor} is "
                           f"not a figure that training reports; use one of {known}.")


def training_input(data: Data, feature_config: FeatureConfig) -> distribute.TrainingInput:
  """The training rows for `Trainer.fit`: an epoch at a time, sharded over workers."""
  if "train" not in data.reports:
    data.check("train", feature_config)
  report = data.reports["train"]
  held = data.in_memory("train", feature_config) is not None
  return distribute.TrainingInput(
      lambda seed: data.dataset("train", feature_config, for_fit=True, seed=seed),
      seed=FLAGS.seed, files=1 if held else len(report.files), rows=report.valid_rows,
      batch_size=FLAGS.batch_size)


def evaluate(model, data: Data, feature_config: FeatureConfig) -> Dict[str, Dict[str, float]]:
  """Writes `eval_metrics.json`: each output's metrics on the test data, and under
  `"data"` which data that was (`Data.describe`)."""
  metrics = evaluation.evaluate(model, data.dataset("test", feature_config), feature_config)
  path = os.path.join(FLAGS.model_dir, EVAL_METRICS)
  described = data.describe("test")
  with open(path, "w", encoding="utf-8") as f:
    json.dump({**metrics, EVAL_DATA: described}, f, indent=2)
  logging.info("Evaluated on %s%s: %d valid rows of %d.", described["path"],
               f" ({described['part']})" if described["part"] else "",
               described["valid_rows"], described["rows"])
  for name, values in metrics.items():
    logging.info("eval %s: AUC %.4f, log loss %.4f (%d rows)", name, values["auc"],
                 values["logloss"], values["count"])
  logging.info("Wrote %s", path)
  return metrics


def prediction_paths() -> Tuple[str, str]:
  """`--predict_output` (default `<model_dir>/predictions.csv`) and the file of the rows
  it skipped as bad (`<output>.skipped.csv`)."""
  output = FLAGS.predict_output or os.path.join(FLAGS.model_dir, "predictions.csv")
  return output, f"{os.path.splitext(output)[0]}.skipped.csv"


def predict(model, data: Data, feature_config: FeatureConfig) -> str:
  """Writes the probabilities of every valid row of `--predict_path`, each with the file
  and line (record, for TFRecord) it comes from; the rows skipped as bad (with
  `--bad_rows=skip`) are listed in `<output>.skipped.csv`."""
  output, skipped = prediction_paths()
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  frames = [pd.DataFrame({name: value.numpy() for name, value in model(batch).items()})
            for batch in data.dataset("predict", feature_config)]
  report = data.reports["predict"]
  positions = pd.DataFrame(
      [(path, line) for path in report.files for line in report.positions.get(path, ())],
      columns=list(PREDICTION_POSITION))
  predictions = pd.concat(frames, ignore_index=True)[list(feature_config.output_names)]
  pd.concat([positions, predictions], axis=1).to_csv(output, index=False)
  logging.info("Wrote %s", output)
  if report.bad_rows:
    pd.DataFrame([(b.path, b.line, b.column, b.kind, b.reason) for b in report.bad_rows],
                 columns=["file", "line", "column", "kind", "reason"]).to_csv(
                     skipped, index=False)
    logging.warning("Skipped %d bad rows of %d (no prediction); they are listed in %s.",
                    len(report.bad_rows), report.rows, skipped)
  elif os.path.exists(skipped):
    os.remove(skipped)  # Of an earlier run.
  return output


def inspect(model, data: Data, feature_config: FeatureConfig) -> Dict[str, Any]:
  """Writes `<model_dir>/inspect.json` and its plots (`dcrnn_tf.inspection`)."""
  features, _ = next(iter(data.dataset("validation", feature_config).unbatch().take(
      FLAGS.inspect_rows).batch(FLAGS.inspect_rows)))
  result = inspection.write(model, features, FLAGS.model_dir)
  logging.info("Inspected %s on %d validation rows: wrote %s and its plots.", result["model"],
               result["rows"], os.path.join(FLAGS.model_dir, inspection.INSPECT))
  return result


def tensorboard_dir() -> str:
  """`--tensorboard_dir` (default `<model_dir>/tensorboard`; empty: none), in train
  mode."""
  if FLAGS.mode != "train":
    return ""
  if FLAGS.tensorboard_dir is None:
    return os.path.join(FLAGS.model_dir, TENSORBOARD)
  return FLAGS.tensorboard_dir


def export_model(model, run: trainer.Trainer, data: Data,
                 feature_config: FeatureConfig) -> str:
  """Exports a new version, unless in mode train the latest export (recorded in
  `<model_dir>/exported.json`) holds the same checkpoint; keeps `--keep_exports`."""
  record_path = os.path.join(FLAGS.model_dir, EXPORTED)
  record = {}
  if os.path.exists(record_path):
    with open(record_path, encoding="utf-8") as f:
      record = json.load(f)
  if (FLAGS.mode == "train" and record.get("checkpoint") == run.latest_checkpoint
      and os.path.isdir(record.get("export", ""))):
    logging.info("Not exported: %s already holds the weights of %s (--mode=export writes "
                 "a new version).", record["export"], run.latest_checkpoint)
    return record["export"]
  features, _ = next(iter(data.dataset("test", feature_config)))
  path = export.export_saved_model(
      model, feature_config, FLAGS.export_dir,
      warmup_features={name: value.numpy()[:export.WARMUP_BATCH_SIZES[-1]]
                       for name, value in features.items()})
  with open(record_path, "w", encoding="utf-8") as f:
    json.dump({"checkpoint": run.latest_checkpoint, "export": path}, f, indent=2)
  logging.info("Exported SavedModel to %s", path)
  for removed in export.remove_old_versions(FLAGS.export_dir, FLAGS.keep_exports):
    logging.info("Removed %s (--keep_exports=%d)", removed, FLAGS.keep_exports)
  return path


class _TensorFlowInfo(std_logging.Filter):
  """Drops the INFO lines that TensorFlow's Python code logs through absl (the saver's
  "Sharding callback duration", the SavedModel builder's paths)."""

  def __init__(self):
    super().__init__()
    self.directory = os.path.dirname(tf.__file__) + os.sep

  def filter(self, record):
    return record.levelno > std_logging.INFO or not record.pathname.startswith(self.directory)


def check_outputs() -> None:
  """Fails at once, before any data is read, where the mode could not write what it
  writes, or would write its predictions over one of its input files."""
  outputs.check_directory(FLAGS.model_dir, "--model_dir")
  if FLAGS.mode in ("train", "export"):
    outputs.check_directory(FLAGS.export_dir, "--export_dir")
  if tensorboard_dir():
    outputs.check_directory(tensorboard_dir(), "--tensorboard_dir")
  if FLAGS.mode == "predict":
    inputs = pipeline.list_files(Data().path("predict"))
    source = source_feature_config_path()
    output, skipped = prediction_paths()
    for path, name in ((output, "--predict_output"),
                       (skipped, "The file of skipped rows of --predict_output,")):
      outputs.check_file(path, name)
      outputs.check_not_an_input(path, name, inputs + ([source] if source else []))


def hide_tensorflow_info() -> None:
  """Hides TensorFlow's Python INFO lines (see `--tf_logs`), from its own logger and
  those it writes through absl (once per process, however often `main` runs)."""
  tf.get_logger().setLevel("WARNING")
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _TensorFlowInfo) for f in handler.filters):
    handler.addFilter(_TensorFlowInfo())


def verbosity() -> int:
  """`--verbose`, by default a progress bar on a terminal and a line per epoch in a file
  (a bar written to a file is a line of carriage returns per step)."""
  if FLAGS.verbose is not None:
    return FLAGS.verbose
  return 1 if sys.stdout.isatty() else 2


def main(argv):
  if len(argv) > 1:
    raise errors.UsageError(f"Unexpected arguments: {argv[1:]}")
  check_loss_weighting()
  if not FLAGS.tf_logs:
    hide_tensorflow_info()
  strategy = distribute.setup()
  if FLAGS.deterministic:
    tf.config.experimental.enable_op_determinism()
  tf.keras.utils.set_random_seed(FLAGS.seed)
  if distribute.is_chief(strategy):
    check_outputs()
  if FLAGS.synthetic:
    if not FLAGS.data_dir:
      raise errors.UsageError("--synthetic needs --data_dir.")
    if not os.path.isdir(FLAGS.data_dir):  # It is written.
      outputs.check_directory(FLAGS.data_dir, "--data_dir")
    synthetic.ensure_dataset(FLAGS.data_dir, train_rows=FLAGS.synthetic_train_rows,
                             eval_rows=FLAGS.synthetic_eval_rows, seed=FLAGS.seed)
  check_early_stopping_monitor()
  # Only the chief writes into --model_dir; it holds the lock for the whole job.
  with (model_dir.lock(FLAGS.model_dir) if distribute.is_chief(strategy)
        else contextlib.nullcontext()):
    try:
      run_mode(strategy)
    except KeyboardInterrupt:
      raise errors.Interrupted(interrupted()) from None


def interrupted() -> str:
  """What a run stopped with Ctrl-C kept, and how to go on."""
  if FLAGS.mode != "train":
    return (f"Interrupted (Ctrl-C): --mode={FLAGS.mode} did not finish; the checkpoints in "
            f"{FLAGS.model_dir} are unchanged. Run the command again.")
  latest = tf.train.latest_checkpoint(os.path.join(FLAGS.model_dir, trainer.CHECKPOINTS))
  if latest is None:
    return ("Interrupted (Ctrl-C) before the first checkpoint: nothing was trained yet. "
            "Run the same command to start again.")
  return (f"Interrupted (Ctrl-C): the checkpoints in {FLAGS.model_dir} are kept (the "
          f"latest: {latest}); run the same command to resume from it.")


def run_mode(strategy: tf.distribute.Strategy) -> None:
  """Checks every file the mode reads, then prepares, trains, evaluates, exports or
  predicts."""
  with distribute.chief_first(strategy):  # Other workers read what the chief writes.
    data = Data(*split_choice(), stored=stored_roles())
    feature_config = prepared_feature_config(data)
    for role in MODE_ROLES[FLAGS.mode]:
      if role not in data.reports:
        data.check(role, feature_config)
    if FLAGS.mode == "prepare":
      save_prepared_feature_config(feature_config)
      return
    config = run_config(feature_config)
    if FLAGS.mode == "train" and distribute.is_chief(strategy):
      save_data_roles(data)
  run = trainer.Trainer(config["model"], config["options"], feature_config, FLAGS.model_dir,
                        FLAGS.learning_rate, FLAGS.keep_checkpoints, strategy=strategy,
                        checkpoint_every_steps=FLAGS.checkpoint_every_steps,
                        steps_per_execution=FLAGS.steps_per_execution,
                        loss_weighting=config["loss_weighting"],
                        gradnorm_alpha=FLAGS.gradnorm_alpha,
                        early_stopping_patience=FLAGS.early_stopping_patience,
                        early_stopping_monitor=FLAGS.early_stopping_monitor,
                        tensorboard_dir=tensorboard_dir())
  if FLAGS.mode != "train" and not run.has_checkpoint:
    raise errors.UsageError(f"{FLAGS.model_dir} holds no checkpoint.")
  if FLAGS.mode == "train":
    validation = data.dataset("validation", feature_config, for_fit=True)
    run.fit(training_input(data, feature_config), FLAGS.epochs, validation_data=validation,
            validation_steps=-(-data.reports["validation"].valid_rows // FLAGS.batch_size),
            verbose=verbosity())
  run.restore_best()  # With early stopping, everything below uses the best epoch.
  if not distribute.is_chief(strategy):  # Only the chief evaluates, exports and predicts;
    distribute.barrier(strategy)  # the other workers stay up until it is done.
    return
  model = run.local_model()
  if FLAGS.mode in ("train", "evaluate"):
    evaluate(model, data, feature_config)
  if FLAGS.mode in ("train", "export"):
    export_model(model, run, data, feature_config)
  if FLAGS.mode == "predict":
    predict(model, data, feature_config)
  if FLAGS.mode == "inspect":
    inspect(model, data, feature_config)
  distribute.barrier(strategy)


def run() -> None:
  """The command: `--help` (`-h`, `-?`, `--helpshort`) lists the flags and exits with
  status 0 (absl's exits with 1); `--helpfull` adds absl's own flags."""
  if any(arg in ("--help", "-help", "-h", "-?", "--helpshort") for arg in sys.argv[1:]):
    app.usage(shorthelp=True, writeto_stdout=True, exitcode=0)
  errors.run(main)


if __name__ == "__main__":
  run()
