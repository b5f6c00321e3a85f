"""Command-line flags of the model architecture, shared by the main job and benchmarks."""

from typing import Any, Dict

from absl import flags

from dcrnn_tf import models

FLAGS = flags.FLAGS

flags.DEFINE_enum("model", "dcrnn", sorted(models.MODELS), "Model architecture.")
flags.DEFINE_integer("embedding_dim", 8, "Field embedding size.")
flags.DEFINE_enum("cross_axis", "depth", ["depth", "fields"],
                  "RNN cross over depth (one vector, --depth steps) or over the fields.")
flags.DEFINE_integer("cross_dim", 64, "Width of x0 for --cross_axis=depth.")
flags.DEFINE_enum("cell", "gru", ["gru", "lstm", "simple"], "Recurrent cell.")
flags.DEFINE_integer("depth", 3, "Cross steps for --cross_axis=depth.")
flags.DEFINE_integer("shared_units", 64, "Shared state width (0: one model per task).")
flags.DEFINE_integer("private_units", 16, "Private state width per task (0: hard sharing).")
flags.DEFINE_integer("rank", 0, "Rank of the low-rank cross weights (0: full rank).")
flags.DEFINE_bool("transfer_stop_gradient", False,
                  "Task transfer blocks gradients into the parent task.")
flags.DEFINE_list("tower_units", ["64", "32"], "Hidden widths of each task's tower.")
flags.DEFINE_float("dropout", 0.0, "Dropout rate in the towers.")


def model_options() -> Dict[str, Any]:
  """The options of the `--model` architecture, from the flags."""
  return {
      "embedding_dim": FLAGS.embedding_dim,
      "cross_axis": FLAGS.cross_axis,
      "cross_dim": FLAGS.cross_dim,
      "cell": FLAGS.cell,
      "depth": FLAGS.depth,
      "shared_units": FLAGS.shared_units,
      "private_units": FLAGS.private_units,
      "rank": FLAGS.rank or None,
      "transfer_stop_gradient": FLAGS.transfer_stop_gradient,
      "tower_units": [int(u) for u in FLAGS.tower_units],
      "dropout": FLAGS.dropout,
  }
