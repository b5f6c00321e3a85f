"""What a trained model does inside, on a sample of rows (`--mode=inspect`).

`inspect` returns a JSON-ready dict and `write` also stores it as
`<model_dir>/inspect.json` with PNG plots beside it (matplotlib, imported only here):

* every model: the mean prediction of each output on the rows (a probability, or a
  regression task's number);
* MMoE and PLE (`gates`, `inspect_gates.png`): per extraction level and task, the mean
  gate weight of each expert the gate mixes, `effective_experts`, `exp` of the entropy
  of that mean (how many experts the task uses over the rows: 1 to the gate's
  experts), and `row_effective_experts`, the mean over rows of each row's `exp`
  entropy (how many experts one row mixes);
* DCRNN (`inspect_dcrnn.png`): `gate_openness`, by cross (`shared`, then each task's
  private cross) the mean share of each step's new candidate that the gated cell
  admits (GRU: `1 - z`, LSTM: the input gate; not applicable to the simple cell);
  `state_norms`, by task the mean L2 norm of the shared and the private part of the
  state the tower reads, and the private part's share of their sum; `transfer`, by
  dependent task, the mean norm of the transferred parent state and the mean absolute
  change of each output's probability when the transfer is replaced by zeros.
"""

import json
import os
from typing import Any, Dict, Mapping

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import models

INSPECT = "inspect.json"
GATES_PLOT = "inspect_gates.png"
DCRNN_PLOT = "inspect_dcrnn.png"
SIMPLE_CELL = "not applicable: the simple cell has no gates"


def _flat(embeddings: tf.Tensor) -> tf.Tensor:
  return tf.reshape(embeddings, [-1, embeddings.shape[1] * embeddings.shape[2]])


def _effective(distribution: np.ndarray) -> np.ndarray:
  """`exp` of the entropy of each distribution in the last axis."""
  p = np.clip(distribution, 1e-12, 1.0)
  return np.exp(-np.sum(p * np.log(p), axis=-1))


def gates(model: models.MultiTaskModel, features: Mapping[str, tf.Tensor]) -> list:
  """Per level of an MMoE or PLE, each task's mean gate weights and effective experts."""
  levels = [model.experts] if isinstance(model, models.MMoE) else model.extraction_levels
  inputs = _flat(model.encoder(features))
  summary = []
  for index, level in enumerate(levels):
    inputs, weights = level.mixtures(inputs)
    tasks = {}
    for k, name in enumerate(model.task_names):
      rows = weights[k].numpy()
      mean = rows.mean(axis=0)
      tasks[name] = {"mean_weight": dict(zip(level.expert_names(k), mean.tolist())),
                     "effective_experts": float(_effective(mean)),
                     "row_effective_experts": float(_effective(rows).mean())}
    summary.append({"level": index, "tasks": tasks})
  return summary


def dcrnn(model: models.DCRNN, features: Mapping[str, tf.Tensor]) -> Dict[str, Any]:
  """DCRNN's gate openness per cross step, state norms per task and the transfer's part."""
  embeddings = model.encoder(features)
  cross_input = model.cross_input(embeddings)
  block = model.partial_sharing
  trace = block.trace(cross_input, with_gates=True)
  if model.cell == "simple":
    openness = SIMPLE_CELL
  else:
    openness = {name: tf.reduce_mean(g, axis=[0, 2]).numpy().tolist()
                for name, g in trace["gates"].items()}
  norms = {}
  for task in model.task_names:
    shared = (0.0 if trace["shared"] is None
              else float(tf.reduce_mean(tf.norm(trace["shared"][:, -1], axis=-1))))
    private = (0.0 if task not in trace["private"]
               else float(tf.reduce_mean(tf.norm(trace["private"][task][:, -1], axis=-1))))
    norms[task] = {"shared": shared, "private": private,
                   "private_share": private / (shared + private) if shared + private else 0.0}
  transfer = {}
  if trace["transfers"]:
    states = model.tower_inputs(block.trace(cross_input, with_transfer=False)["outputs"],
                                cross_input, embeddings)
    with_transfer = model(features)
    without = model.heads(states)
    for task, transferred in trace["transfers"].items():
      transfer[task] = {
          "from": block.depends_on[task],
          "transfer_norm": float(tf.reduce_mean(tf.norm(transferred[:, -1], axis=-1))),
          "mean_abs_change": {name: float(tf.reduce_mean(tf.abs(with_transfer[name]
                                                                - without[name])))
                              for name in model.feature_config.output_names}}
  return {"cell": model.cell, "gate_openness": openness, "state_norms": norms,
          "transfer": transfer}


def inspect(model: models.MultiTaskModel, features: Mapping[str, tf.Tensor]
            ) -> Dict[str, Any]:
  """The inspection of `model` on the rows of `features` (see the module docstring)."""
  outputs = model(features)
  rows = int(next(iter(outputs.values())).shape[0])
  result = {"model": type(model).__name__, "rows": rows,
            "mean_prediction": {name: float(tf.reduce_mean(value))
                                 for name, value in outputs.items()}}
  if isinstance(model, (models.MMoE, models.PLE)):
    result["gates"] = gates(model, features)
  elif isinstance(model, models.DCRNN):
    result["dcrnn"] = dcrnn(model, features)
  else:
    result["note"] = "no gates, experts or partial sharing to inspect in this model"
  return result


def write(model: models.MultiTaskModel, features: Mapping[str, tf.Tensor],
          directory: str) -> Dict[str, Any]:
  """Writes `inspect.json` and the plots to `directory`; returns the inspection."""
  result = inspect(model, features)
  with open(os.path.join(directory, INSPECT), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
  if "gates" in result:
    plot_gates(result["gates"], os.path.join(directory, GATES_PLOT))
  if "dcrnn" in result:
    plot_dcrnn(result["dcrnn"], os.path.join(directory, DCRNN_PLOT))
  return result


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def plot_gates(levels: list, path: str) -> None:
  """One heat map per level: tasks × experts, the mean gate weight (blank: not mixed)."""
  plt = _pyplot()
  figure, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 3), squeeze=False)
  for axis, level in zip(axes[0], levels):
    tasks = list(level["tasks"])
    experts = sorted({e for t in level["tasks"].values() for e in t["mean_weight"]})
    grid = np.full((len(tasks), len(experts)), np.nan)
    for i, task in enumerate(tasks):
      for expert, weight in level["tasks"][task]["mean_weight"].items():
        grid[i, experts.index(expert)] = weight
    image = axis.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis")
    axis.set_xticks(range(len(experts)), experts, rotation=45, ha="right", fontsize=7)
    axis.set_yticks(range(len(tasks)), [f"{t} ({level['tasks'][t]['effective_experts']:.1f})"
                                        for t in tasks])
    axis.set_title(f"level {level['level']}: mean gate weight (effective experts)")
    figure.colorbar(image, ax=axis)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def plot_dcrnn(summary: Mapping[str, Any], path: str) -> None:
  """Gate openness per step (gated cells) and shared/private state norms per task."""
  plt = _pyplot()
  gated = isinstance(summary["gate_openness"], dict)
  figure, axes = plt.subplots(1, 2 if gated else 1, figsize=(10 if gated else 5, 3),
                              squeeze=False)
  axis = axes[0][0]
  tasks = list(summary["state_norms"])
  shared = [summary["state_norms"][t]["shared"] for t in tasks]
  private = [summary["state_norms"][t]["private"] for t in tasks]
  axis.bar(tasks, shared, label="shared")
  axis.bar(tasks, private, bottom=shared, label="private")
  axis.set_title("mean state norm the tower reads")
  axis.legend()
  if gated:
    axis = axes[0][1]
    for name, steps in summary["gate_openness"].items():
      axis.plot(range(1, len(steps) + 1), steps, marker="o", label=name)
    axis.set_ylim(0.0, 1.0)
    axis.set_xlabel("cross step")
    axis.set_title(f"{summary['cell']}: share of the new candidate admitted")
    axis.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)
