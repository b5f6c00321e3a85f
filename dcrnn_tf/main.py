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
from typing import Any, Dict, List, Tuple

from absl import app
from absl import flags
from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import pandas as pd
import tensorflow as tf

from dcrnn_tf import distribute
from dcrnn_tf import evaluation
from dcrnn_tf import errors
from dcrnn_tf import saved_model
from dcrnn_tf import flag_checks
from dcrnn_tf import inspection
from dcrnn_tf import loss_weighting
from dcrnn_tf import early_stopping
from dcrnn_tf import model_dir
from dcrnn_tf import objectives
from dcrnn_tf import models
from dcrnn_tf import outputs
from dcrnn_tf import run_flags
from dcrnn_tf import trainer
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import synthetic
from dcrnn_tf.data.roles import DataOptions, DataRoles
from dcrnn_tf.features import RESERVED_OUTPUT_NAME, FeatureConfig

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "train",
                  ["train", "prepare", "evaluate", "export", "predict", "inspect"],
                  "train: prepare the feature config (first run), train (resuming from "
                  "--model_dir), evaluate and export; prepare: learn vocabularies and "
                  "statistics from the training data into --model_dir; evaluate: write "
                  "eval_metrics.json; export: write a SavedModel; predict: write the "
                  "predictions for --predict_path to --predict_output; inspect: write "
                  "inspect.json and plots of the gates, experts and states on "
                  "--inspect_rows validation rows.")
flags.DEFINE_enum("model", "dcrnn", sorted(models.MODELS), "Model architecture.")
flags.DEFINE_integer("inspect_rows", 4096,
                     "--mode=inspect: the first this many validation rows.", lower_bound=1)
flags.DEFINE_string("model_dir", "runs/dcrnn", "Checkpoints, configs, logs and metrics.")
flags.DEFINE_string("export_dir", "export/dcrnn",
                    "Parent of the exported SavedModel versions (<export_dir>/<version>/).")
flags.DEFINE_string("predict_path", None, "Files to predict (features; labels optional).")
flags.DEFINE_string("predict_output", None,
                    "CSV of predictions: the file and line (TFRecord: record) of each "
                    "row, then one column per output; rows skipped as bad are listed in "
                    "<output>.skipped.csv. Default: <model_dir>/predictions.csv.")
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
flags.DEFINE_enum("strategy", distribute.DEFAULT, list(distribute.STRATEGIES),
                  "tf.distribute strategy: default (one device), mirrored (the GPUs of "
                  "this machine), multi_worker_mirrored (synchronous, the workers of "
                  "TF_CONFIG), parameter_server (asynchronous; TF_CONFIG names a chief, "
                  "workers and ps tasks).")
flags.DEFINE_integer("ps_min_shard_bytes", 256 << 10,
                     "Parameter server: variables larger than this are partitioned over "
                     "the ps tasks, in shards of at least this many bytes.")
flags.DEFINE_integer("ps_max_shards", 0,
                     "Parameter server: the most shards of one variable (0: one per ps "
                     "task).")
flags.DEFINE_integer("checkpoint_every_steps", 0,
                     "Also checkpoint every this many training steps (0: only at the end "
                     "of each epoch). Not with --strategy=parameter_server, where Keras "
                     "allows no per-step callbacks.")
flags.DEFINE_bool("deterministic", False,
                  "Make training reproducible: deterministic TensorFlow ops "
                  "(tf.config.experimental.enable_op_determinism) on top of --seed; "
                  "slower. Not with --strategy=parameter_server (asynchronous).")
flags.DEFINE_string("tensorboard_dir", None,
                    "TensorBoard summaries of every epoch (losses and AUCs per output, loss "
                    "weights, learning rate). Default: <model_dir>/tensorboard; empty: none.")
# `--help` lists the flags of every module of the command, not only this one's.
flags.adopt_module_key_flags(run_flags)

flag_checks.at_least("keep_checkpoints", 1)
for _name in ("ps_min_shard_bytes", "ps_max_shards", "checkpoint_every_steps"):
  flag_checks.at_least(_name, 0)
flag_checks.in_range("verbose", 0, 3)
flags.register_multi_flags_validator(
    ["early_stopping_patience", "strategy"],
    lambda values: not (values["early_stopping_patience"]
                        and values["strategy"] == distribute.PARAMETER_SERVER),
    "--early_stopping_patience needs validation after each epoch, which "
    "--strategy=parameter_server does not run.")
flags.register_multi_flags_validator(
    ["loss_weighting", "strategy"],
    lambda values: not (values["loss_weighting"] == loss_weighting.GRADNORM
                        and values["strategy"] != distribute.DEFAULT),
    "--loss_weighting=gradnorm runs only under --strategy=default (its per-replica "
    "all-reduce of the task gradients does not line up with Keras' under a mirrored "
    "strategy yet); use --loss_weighting=uncertainty there.")

EVAL_DATA = RESERVED_OUTPUT_NAME  # eval_metrics.json's key of the test data.
TENSORBOARD = "tensorboard"
# The columns before the predictions in --predict_output: where each row comes from.
PREDICTION_POSITION = ("file", "line")
# The roles whose files each mode reads, all checked before anything else happens.
MODE_ROLES = {"train": ("train", "validation", "test"), "prepare": ("train",),
              "evaluate": ("test",), "export": ("test",), "predict": ("predict",),
              "inspect": ("validation",)}


def model_directory() -> model_dir.ModelDirectory:
  return model_dir.ModelDirectory(FLAGS.model_dir)


def data_roles() -> DataRoles:
  """The data of the run from the flags, with the split and the validation and test
  data that `--model_dir` keeps from its first run (see `ModelDirectory`)."""
  directory = model_directory()
  options = run_flags.data_options(predict_path=FLAGS.predict_path)
  split, split_seed = directory.split_choice(
      FLAGS.split, FLAGS.split_seed, FLAGS["split"].present or FLAGS["split_seed"].present)
  return DataRoles(options, split, split_seed, stored=directory.stored_roles(options),
                   report_path=directory.report_path(FLAGS.mode))

def wanted_run_config() -> Dict[str, Any]:
  """The model, options and loss weighting that the flags ask for."""
  return {"model": FLAGS.model, "options": run_flags.model_options(FLAGS.model),
          "loss_weighting": FLAGS.loss_weighting}


def run_config(directory: model_dir.ModelDirectory,
               feature_config: FeatureConfig) -> Tuple[Dict[str, Any], bool]:
  """The model's name, options and loss weighting: those `--model_dir` was trained
  with, else (first training run) those the flags ask for; and whether they are new.

  Raises:
    errors.UsageError: If the model directory holds no trained model (modes other than
      train), or was trained with other model flags (mode train).
  """
  trained = directory.trained_run_config(feature_config, loss_weighting.FIXED)
  if trained is None:
    if FLAGS.mode != "train":
      raise errors.UsageError(f"{FLAGS.model_dir} holds no trained model "
                              f"({directory.file(model_dir.MODEL_CONFIG)} is missing).")
    return wanted_run_config(), True
  changes = run_config_changes(trained, wanted_run_config())
  if FLAGS.mode == "train" and changes:
    raise errors.UsageError(
        f"{FLAGS.model_dir} was trained with other model flags: {'; '.join(changes)}. "
        "Use the same model flags to resume (and the same --loss_weighting), or a new "
        "--model_dir.")
  return trained, False


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
      and not models.shares_a_layer(FLAGS.model, **run_flags.model_options(FLAGS.model))):
    raise errors.UsageError(
        f"--loss_weighting=gradnorm needs a layer that the tasks share after the feature "
        f"encoder, and --model={FLAGS.model} has none with these flags; use "
        "--loss_weighting=uncertainty or fixed.")


def check_early_stopping_monitor(options: DataOptions) -> None:
  """Refuses an early-stopping monitor that training does not report, from the feature
  config's outputs (before any data rows are read)."""
  if FLAGS.mode == "train" and FLAGS.early_stopping_patience:
    prepared = model_directory().file(model_dir.FEATURE_CONFIG)
    config = FeatureConfig.load(prepared if os.path.exists(prepared)
                                else options.path("feature_config"))
    early_stopping.check_monitor(FLAGS.early_stopping_monitor,
                                 objectives.output_metrics(config))


class TestBatches:
  """The test data's batches, read once for the metrics and the export's warm-up
  requests: iterating remembers the first batch's features (`first_features`)."""

  def __init__(self, data: DataRoles, feature_config: FeatureConfig):
    self.dataset = data.dataset("test", feature_config)
    self.features = None

  def __iter__(self):
    for features, labels in self.dataset:
      if self.features is None:
        self.features = features
      yield features, labels

  def first_features(self) -> Dict[str, tf.Tensor]:
    """The first batch's features (read now if no pass has begun)."""
    if self.features is None:
      next(iter(self))
    return self.features


def evaluate(model, data: DataRoles, test: TestBatches,
             feature_config: FeatureConfig) -> Dict[str, Dict[str, float]]:
  """Writes `eval_metrics.json`: each output's metrics on the test data, and under
  `"data"` which data that was (`DataRoles.describe`)."""
  metrics = evaluation.evaluate(model, test, feature_config)
  described = data.describe("test")
  path = model_directory().write_eval_metrics({**metrics, EVAL_DATA: described})
  logging.info("Evaluated on %s%s: %d valid rows of %d.", described["path"],
               f" ({described['part']})" if described["part"] else "",
               described["valid_rows"], described["rows"])
  for name, values in metrics.items():
    shown = ((("AUC", "auc", ".4f"), ("log loss", "logloss", ".4f"),
              ("positive rate", "positive_rate", ".4f")) if "auc" in values else
             (("RMSE", "rmse", ".4g"), ("MAE", "mae", ".4g"), ("R²", "r2", ".4f")))
    weighted = "auc_unweighted" in values or "rmse_unweighted" in values
    logging.info("eval %s: %s (%d rows%s)", name, ", ".join(
        f"{label} {values[key]:{form}}"
        + (f" (unweighted {values[key + '_unweighted']:{form}})" if weighted else "")
        for label, key, form in shown), values["count"],
                 f", weight {values['weight']:.6g}" if weighted else "")
  logging.info("Wrote %s", path)
  return metrics


def prediction_paths() -> Tuple[str, str]:
  """`--predict_output` (default `<model_dir>/predictions.csv`) and the file of the rows
  it skipped as bad (`<output>.skipped.csv`)."""
  output = FLAGS.predict_output or os.path.join(FLAGS.model_dir, "predictions.csv")
  return output, f"{os.path.splitext(output)[0]}.skipped.csv"


def predict(model, data: DataRoles, feature_config: FeatureConfig) -> str:
  """Writes the predictions of every valid row of `--predict_path`, each with the file
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


def inspect(model, data: DataRoles, feature_config: FeatureConfig) -> Dict[str, Any]:
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


def export_model(model, run: trainer.Trainer, test: TestBatches,
                 feature_config: FeatureConfig) -> str:
  """Exports a new version, unless in mode train the latest export (recorded in
  `<model_dir>/exported.json`) holds the same checkpoint; keeps `--keep_exports`."""
  record = model_directory().latest_export()
  if (FLAGS.mode == "train" and record.get("checkpoint") == run.latest_checkpoint
      and os.path.isdir(record.get("export", ""))):
    logging.info("Not exported: %s already holds the weights of %s (--mode=export writes "
                 "a new version).", record["export"], run.latest_checkpoint)
    return record["export"]
  features = test.first_features()
  path = saved_model.export_saved_model(
      model, feature_config, FLAGS.export_dir,
      warmup_features={name: value.numpy()[:saved_model.WARMUP_BATCH_SIZES[-1]]
                       for name, value in features.items()})
  model_directory().record_export(run.latest_checkpoint, path)
  logging.info("Exported SavedModel to %s", path)
  for removed in saved_model.remove_old_versions(FLAGS.export_dir, FLAGS.keep_exports):
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
    options = run_flags.data_options(predict_path=FLAGS.predict_path)
    inputs = pipeline.list_files(DataRoles(options).path("predict"))
    source = options.source_feature_config()
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
  strategy = distribute.setup(FLAGS.strategy, ps_min_shard_bytes=FLAGS.ps_min_shard_bytes,
                              ps_max_shards=FLAGS.ps_max_shards)
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
                             eval_rows=FLAGS.synthetic_eval_rows, seed=FLAGS.seed,
                             dwell_time=FLAGS.synthetic_dwell,
                             task_cosine=FLAGS.synthetic_task_cosine)
  check_early_stopping_monitor(run_flags.data_options())
  # Only the chief writes into --model_dir; it holds the lock for the whole job.
  with (model_directory().lock() if distribute.is_chief(strategy)
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
  latest = tf.train.latest_checkpoint(model_directory().file(trainer.CHECKPOINTS))
  if latest is None:
    return ("Interrupted (Ctrl-C) before the first checkpoint: nothing was trained yet. "
            "Run the same command to start again.")
  return (f"Interrupted (Ctrl-C): the checkpoints in {FLAGS.model_dir} are kept (the "
          f"latest: {latest}); run the same command to resume from it.")


def run_mode(strategy: tf.distribute.Strategy) -> None:
  """Checks every file the mode reads, then prepares, trains, evaluates, exports or
  predicts."""
  directory = model_directory()
  with distribute.chief_first(strategy):  # Other workers read what the chief writes.
    data = data_roles()
    feature_config = directory.prepared_feature_config(
        data, may_prepare=FLAGS.mode in ("train", "prepare"))
    for role in MODE_ROLES[FLAGS.mode]:
      if role not in data.reports:
        data.check(role, feature_config)
    if FLAGS.mode == "prepare":
      save_prepared_feature_config(directory, data, feature_config)
      return
    config, first_run = run_config(directory, feature_config)
    if first_run and distribute.is_multi_worker(strategy) and distribute.is_chief(strategy):
      # The other workers, next in this block, read the prepared config instead of
      # scanning the training files again. The model is built below, by all workers
      # together; should that fail, the prepared config stays (as after --mode=prepare).
      save_prepared_feature_config(directory, data, feature_config)
  tf.keras.utils.set_random_seed(FLAGS.seed)
  try:
    run = trainer.Trainer(config["model"], config["options"], feature_config,
                          FLAGS.model_dir, keep_checkpoints=FLAGS.keep_checkpoints,
                          strategy=strategy,
                          checkpoint_every_steps=FLAGS.checkpoint_every_steps,
                          tensorboard_dir=tensorboard_dir(),
                          **{**run_flags.training_options(),
                             "loss_weighting": config["loss_weighting"]})
  except ValueError as e:
    if not first_run:
      raise
    raise errors.UsageError(f"--model={FLAGS.model}: {e}") from e
  if first_run and distribute.is_chief(strategy):
    # Only now that the model builds: a run that fails leaves nothing that would refuse
    # the corrected command.
    save_prepared_feature_config(directory, data, feature_config)
    directory.save_run_config(config, feature_config)
  if FLAGS.mode == "train" and distribute.is_chief(strategy):
    directory.save_data_roles(data)
  if FLAGS.mode != "train" and not run.has_checkpoint:
    raise errors.UsageError(f"{FLAGS.model_dir} holds no checkpoint.")
  if FLAGS.mode == "train":
    preprocessor = run.input_preprocessor()  # The model trains on ids.
    validation = data.dataset("validation", feature_config, for_fit=True,
                              preprocessor=preprocessor)
    run.fit(data.training_input(feature_config, preprocessor), FLAGS.epochs,
            validation_data=validation,
            validation_steps=-(-data.rows("validation") // FLAGS.batch_size),
            verbose=verbosity())
  run.restore_best()  # With early stopping, everything below uses the best epoch.
  if not distribute.is_chief(strategy):  # Only the chief evaluates, exports and predicts;
    distribute.barrier(strategy)  # the other workers stay up until it is done.
    return
  model = run.local_model()
  test = TestBatches(data, feature_config) if FLAGS.mode in ("train", "evaluate",
                                                              "export") else None
  if FLAGS.mode in ("train", "evaluate"):
    evaluate(model, data, test, feature_config)
  if FLAGS.mode in ("train", "export"):
    export_model(model, run, test, feature_config)
  if FLAGS.mode == "predict":
    predict(model, data, feature_config)
  if FLAGS.mode == "inspect":
    inspect(model, data, feature_config)
  distribute.barrier(strategy)


def save_prepared_feature_config(directory: model_dir.ModelDirectory, data: DataRoles,
                                 feature_config: FeatureConfig) -> None:
  """Stores the prepared feature config, the config it comes from and the split."""
  directory.save_prepared_feature_config(feature_config, data.options.path("feature_config"),
                                         data.split_text, data.split_seed)


def run() -> None:
  """The command: `--help` (`-h`, `-?`, `--helpshort`) lists the flags and exits with
  status 0 (absl's exits with 1); `--helpfull` adds absl's own flags."""
  if any(arg in ("--help", "-help", "-h", "-?", "--helpshort") for arg in sys.argv[1:]):
    app.usage(shorthelp=True, writeto_stdout=True, exitcode=0)
  errors.run(main)


if __name__ == "__main__":
  run()
