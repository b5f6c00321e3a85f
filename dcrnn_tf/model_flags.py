"""Command-line flags of the model architecture, shared by the main job and benchmarks.

Every model option has one flag of the same name (lists are comma-separated; a rank of
0 means full rank). `model_options()` hands `--model`'s constructor the options it
accepts, so a flag that another model uses is simply not passed.
"""

import inspect
from typing import Any, Dict

from absl import flags

from dcrnn_tf import flag_checks
from dcrnn_tf import models

FLAGS = flags.FLAGS

flags.DEFINE_enum("model", "dcrnn", sorted(models.MODELS), "Model architecture.")
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


def model_options() -> Dict[str, Any]:
  """The options of the `--model` architecture, from the flags.

  Returns:
    A dict of the keyword arguments that `models.MODELS[FLAGS.model]` accepts, in the
    constructor's order (JSON-serializable: `main` stores it in the model directory).
  """
  options = _all_options()
  accepted = inspect.signature(models.MODELS[FLAGS.model]).parameters
  return {name: options[name] for name in accepted if name in options}
