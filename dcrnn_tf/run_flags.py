"""The flags of a training run, shared by `dcrnn_tf.main` and `dcrnn_tf.benchmark`.

Three groups, each turned into the library's own arguments in one place:

* data (`--data_dir`, `--train_path`, `--split`, `--batch_size`, …): `data_options()`,
  a `dcrnn_tf.data.roles.DataOptions`;
* training (`--epochs`, `--learning_rate`, `--steps_per_execution`, early stopping,
  loss weighting): `training_options()`, the keyword arguments of
  `dcrnn_tf.trainer.Trainer`;
* the model architecture: every model option has one flag of the same name (lists are
  comma-separated; a rank of 0 means full rank). `model_options(name)` hands a model's
  constructor the options it accepts, so a flag that another model uses is simply not
  passed (`dcrnn_tf.main` trains its `--model`; the benchmark its `--models`).

And `--debug`, read by `dcrnn_tf.errors.run`. Library modules define no flags.
"""

import inspect
from typing import Any, Dict

from absl import flags

from dcrnn_tf import early_stopping
from dcrnn_tf import flag_checks
from dcrnn_tf import loss_weighting
from dcrnn_tf import models
from dcrnn_tf.data import scan
from dcrnn_tf.data.roles import DataOptions
from dcrnn_tf.data.split import Split

FLAGS = flags.FLAGS

flags.DEFINE_bool("debug", False, "Show the traceback of a usage, config or data error.")

# Data.
flags.DEFINE_string("data_dir", None,
                    "Directory holding train.*, eval.* and feature_config.json; gives the "
                    "defaults of --train_path, --eval_path and --feature_config.")
flags.DEFINE_bool("synthetic", False,
                  "Write the built-in synthetic click/conversion data to --data_dir if it "
                  "is not there yet.")
flags.DEFINE_bool("synthetic_dwell", False,
                  "With --synthetic: clicks also have a dwell time in seconds "
                  "(dwell_seconds), and the config the regression task dwell (on log1p, "
                  "depending on ctr).")
flags.DEFINE_float("synthetic_task_cosine", 0.7,
                   "With --synthetic: how related the click and conversion tasks are, the "
                   "cosine between their directions in the hidden latent (0: unrelated, "
                   "1: the same direction).", lower_bound=0.0, upper_bound=1.0)
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
flags.DEFINE_integer("seed", 42, "Seed of weights initialization and data shuffling.")
flags.DEFINE_integer("shuffle_buffer", 100_000,
                     "Rows in the shuffle buffer of training rows read from the files.")
flags.DEFINE_float("in_memory_max_mib", 1024,
                   "Training and validation rows whose parsed columns take at most this "
                   "many MiB are read from the files once and held in memory (each epoch "
                   "reshuffles all training rows); larger ones are read from the files "
                   "every epoch through a --shuffle_buffer. 0: always from the files.")

# Training.
flags.DEFINE_integer("epochs", 2, "Training epochs (passes over --train_path).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("steps_per_execution", 8,
                     "Training steps per call of the compiled step function (fewer calls "
                     "from Python). One step per call with --checkpoint_every_steps (its "
                     "callback acts after every step), under "
                     "--strategy=multi_worker_mirrored (workers reading their own files run "
                     "epochs of unknown length) and under --strategy=parameter_server.")
flags.DEFINE_boolean("jit_compile", False,
                     "Compile the training step with XLA (`tf.keras.Model.compile`; the "
                     "README gives the measured rates). Not under "
                     "--strategy=parameter_server, whose steps look up raw values.")
flags.DEFINE_integer("early_stopping_patience", 0,
                     "Stop training after this many epochs without improvement of "
                     "--early_stopping_monitor, and evaluate, export and predict with the "
                     "best epoch's weights (0: off, train every epoch and use the last).")
flags.DEFINE_string("early_stopping_monitor", early_stopping.DEFAULT_MONITOR,
                    "The validation figure early stopping watches: val_loss (the weighted "
                    "sum of the losses with the fixed weights), val_<output>_loss, "
                    "val_<output>_auc or val_<output>_r2 (maximized), val_<output>_rmse or "
                    "val_<output>_mae (regression tasks); without <output>_ for a config "
                    "of one output (Keras' names); also the same without val_ (training).")
flags.DEFINE_enum("loss_weighting", loss_weighting.FIXED, list(loss_weighting.WEIGHTINGS),
                  "How the outputs' losses are weighted: fixed (the feature config's "
                  "weights), uncertainty (learned log-variances, Kendall et al. 2018) or "
                  "gradnorm (weights balancing the gradient norms at the last shared layer, "
                  "Chen et al. 2018; not for models whose tasks share only the encoder: "
                  "single_task, esmm, dcn).")
flags.DEFINE_float("gradnorm_alpha", 1.5,
                   "--loss_weighting=gradnorm: how strongly slower tasks are favoured (0: "
                   "equal gradient norms).")

for _name in ("synthetic_train_rows", "synthetic_eval_rows", "batch_size", "epochs",
              "shuffle_buffer", "steps_per_execution"):
  flag_checks.at_least(_name, 1)
for _name in ("split_seed", "seed", "in_memory_max_mib"):
  flag_checks.at_least(_name, 0)
flags.register_validator("early_stopping_patience", lambda value: value >= 0,
                         "--early_stopping_patience must be >= 0 (0: off).")
flags.register_validator("gradnorm_alpha", lambda value: value >= 0,
                         "--gradnorm_alpha must be >= 0.")
flag_checks.greater_than("learning_rate", 0)
flags.register_validator("split", lambda value: value is None or Split.is_valid_flag(value),
                         "--split must be two or three numbers >= 0 with a sum > 0, such as "
                         "80,10,10 or 90,10")

# The model.
flags.DEFINE_integer("embedding_dim", 8, "Field embedding size.")
flags.DEFINE_list("tower_units", ["64", "32"], "Hidden widths of each task's tower.")
flags.DEFINE_float("dropout", 0.0, "Dropout rate in the towers.")

flags.DEFINE_enum("cross_axis", "depth", ["depth", "fields"],
                  "dcrnn: RNN cross over depth (one vector, --depth steps) or over the "
                  "fields.")
flags.DEFINE_integer("cross_dim", 64, "dcrnn: width of x0 for --cross_axis=depth (0: no "
                     "projection, x0 is the flattened field embeddings).")
flags.DEFINE_enum("cell", "simple", ["gru", "lstm", "simple"], "dcrnn: recurrent cell.")
flags.DEFINE_integer("depth", 2, "dcrnn: cross steps for --cross_axis=depth.")
flags.DEFINE_integer("shared_units", 64, "dcrnn: shared state width (0: one model per task).")
flags.DEFINE_integer("private_units", 16,
                     "dcrnn: private state width per task (0: hard sharing).")
flags.DEFINE_integer("rank", 0, "dcrnn: rank of the low-rank cross weights (0: full rank).")
flags.DEFINE_bool("transfer_stop_gradient", False,
                  "dcrnn: task transfer blocks gradients into the parent task.")
flags.DEFINE_bool("residual", False,
                  "dcrnn: every cross step adds the previous state (h_t = h_{t-1} + cell).")
flags.DEFINE_bool("layer_norm", True, "dcrnn: the cross networks layer-normalize their "
                  "states (one normalization per network, tied across steps).")
flags.DEFINE_bool("x0_skip", False, "dcrnn: the towers also read x0 (--cross_axis=depth).")
flags.DEFINE_list("parallel_units", [],
                  "dcrnn: widths of a deep MLP beside the cross, on the flattened field "
                  "embeddings, whose output the towers also read (DCN-v2's parallel form; "
                  "empty: none).")

flags.DEFINE_list("bottom_units", ["128", "64"], "shared_bottom: widths of the shared MLP.")
flags.DEFINE_list("hidden_units", ["128", "64"],
                  "single_task, esmm: widths of each task's MLP.")
flags.DEFINE_list("expert_units", ["64"], "mmoe, ple: widths of each expert's layers.")
flags.DEFINE_integer("num_experts", 4, "mmoe: number of shared experts.")
flags.DEFINE_integer("num_levels", 2, "ple: number of extraction (CGC) levels.")
flags.DEFINE_integer("num_shared_experts", 2, "ple: shared experts per level.")
flags.DEFINE_integer("num_task_experts", 1, "ple: experts of each task per level.")
flags.DEFINE_integer("cross_layers", 2, "dcn: cross layers per task.")
flags.DEFINE_integer("cross_rank", 32,
                     "dcn: rank of the cross weights (TFRS projection_dim; 0: full rank).")
flags.DEFINE_list("deep_units", ["64"], "dcn: widths of the deep MLP after the cross layers.")

for _name in ("embedding_dim", "depth", "num_experts", "num_levels", "cross_layers"):
  flag_checks.at_least(_name, 1)
for _name in ("cross_dim", "shared_units", "private_units", "rank", "num_shared_experts",
              "num_task_experts", "cross_rank"):
  flag_checks.at_least(_name, 0)
flag_checks.in_range("dropout", 0, 1)
for _name in ("bottom_units", "hidden_units", "expert_units"):
  flag_checks.widths(_name)
for _name in ("tower_units", "deep_units", "parallel_units"):  # Empty: a logistic head,
  flag_checks.widths(_name, allow_empty=True)  # no deep part, no parallel MLP.


def _units(values) -> list:
  return [int(u) for u in values]


def _all_options() -> Dict[str, Any]:
  """Every model option, from its flag."""
  return {
      "embedding_dim": FLAGS.embedding_dim,
      "tower_units": _units(FLAGS.tower_units),
      "dropout": FLAGS.dropout,
      "cross_axis": FLAGS.cross_axis,
      "cross_dim": FLAGS.cross_dim,
      "cell": FLAGS.cell,
      "depth": FLAGS.depth,
      "shared_units": FLAGS.shared_units,
      "private_units": FLAGS.private_units,
      "rank": FLAGS.rank or None,
      "transfer_stop_gradient": FLAGS.transfer_stop_gradient,
      "residual": FLAGS.residual,
      "layer_norm": FLAGS.layer_norm,
      "x0_skip": FLAGS.x0_skip,
      "parallel_units": _units(FLAGS.parallel_units),
      "bottom_units": _units(FLAGS.bottom_units),
      "hidden_units": _units(FLAGS.hidden_units),
      "expert_units": _units(FLAGS.expert_units),
      "num_experts": FLAGS.num_experts,
      "num_levels": FLAGS.num_levels,
      "num_shared_experts": FLAGS.num_shared_experts,
      "num_task_experts": FLAGS.num_task_experts,
      "cross_layers": FLAGS.cross_layers,
      "cross_rank": FLAGS.cross_rank or None,
      "deep_units": _units(FLAGS.deep_units),
  }


def model_options(model: str) -> Dict[str, Any]:
  """The options of model architecture `model` (`dcrnn_tf.models.MODELS`), from the flags.

  Returns:
    A dict of the keyword arguments that `models.MODELS[model]` accepts, in the
    constructor's order (JSON-serializable: `main` stores it in the model directory).
  """
  options = _all_options()
  accepted = inspect.signature(models.MODELS[model]).parameters
  return {name: options[name] for name in accepted if name in options}


def data_options(**changes) -> DataOptions:
  """What a run reads and how, from the data flags (`changes` override them)."""
  return DataOptions(**{
      "data_dir": FLAGS.data_dir, "train_path": FLAGS.train_path,
      "eval_path": FLAGS.eval_path, "test_path": FLAGS.test_path,
      "feature_config": FLAGS.feature_config, "data_format": FLAGS.data_format,
      "bad_rows": FLAGS.bad_rows, "batch_size": FLAGS.batch_size, "seed": FLAGS.seed,
      "shuffle_buffer": FLAGS.shuffle_buffer,
      "in_memory_max_mib": FLAGS.in_memory_max_mib, **changes})


def training_options() -> Dict[str, Any]:
  """The keyword arguments of `dcrnn_tf.trainer.Trainer` that the training flags give."""
  return {"learning_rate": FLAGS.learning_rate,
          "steps_per_execution": FLAGS.steps_per_execution,
          "loss_weighting": FLAGS.loss_weighting, "gradnorm_alpha": FLAGS.gradnorm_alpha,
          "jit_compile": FLAGS.jit_compile,
          "early_stopping_patience": FLAGS.early_stopping_patience,
          "early_stopping_monitor": FLAGS.early_stopping_monitor}
