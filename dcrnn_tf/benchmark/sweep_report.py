"""The Markdown section and the plots of a sweep (`--sweep`, `dcrnn_tf.benchmark.sweep`).

A sweep's JSON is a benchmark's (`report.BENCH_KEYS`, with empty `models` and
`ablations`) plus `sweep`: `{"kind": ..., "points": [...]}`, each point holding
`POINT_KEYS`, its `models` rows as `report.aggregate` makes them.
"""

import math
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from dcrnn_tf.benchmark import report
from dcrnn_tf.benchmark.measure import FLOPS_NOTE
from dcrnn_tf.benchmark import sweep

POINT_KEYS = ("label", "value", "number", "outputs", "rows", "ceiling", "models")
PLOTS = {
    "sweep": "test AUC per task and its mean over tasks (RMSE of a regression), mean ± std "
             "over seeds",
    "cost": "trainable parameters and forward FLOPs per example",
    "frontier": "mean test AUC over tasks against forward FLOPs per example and against "
                "training rows/s; circled: on the Pareto front",
}
_AXIS = {"tasks": "number of tasks", "task_cosine": "cosine between the task directions",
         "size": "width factor"}


def point_bench(bench: Mapping[str, Any], point: Mapping[str, Any]) -> Dict[str, Any]:
  """The benchmark as it is at one point (its models and outputs), for `report`'s
  tables and paired differences."""
  return {**bench, "models": point["models"], "ablations": [], "outputs": point["outputs"]}


def summary_lines(bench: Mapping[str, Any]) -> List[str]:
  """The lines of the summary table that `render.document` opens with, one per point:
  the models on the front of mean AUC against FLOPs, and DCRNN's paired result."""
  lines = []
  for point in bench["sweep"]["points"]:
    pb = point_bench(bench, point)
    lines.append(report.summary_line(pb, f"{bench['title']}, {point['label']}"))
  return lines


def measured_speed(bench: Mapping[str, Any]) -> bool:
  """Whether a run at any point of the sweep measured speed."""
  return any(report.measured_speed(p["models"]) for p in bench["sweep"]["points"])


def point_table(bench: Mapping[str, Any], point: Mapping[str, Any]) -> str:
  """The Markdown table of the models at one point."""
  pb = point_bench(bench, point)
  outputs = point["outputs"]
  scored = report.auc_outputs(pb)
  reference = report.reference_row(pb)
  done = report.finished(point["models"])
  on_front = dict(zip((r["label"] for r in done), report.fronts(done, scored)["flops"]))
  speed = measured_speed(bench)
  head = (["model"] + [f"{o} {report.headline_name(pb, o)}" for o in outputs]
          + ["mean AUC", "mean log loss",
             f"mean AUC − `{reference['label']}`" if reference else "mean AUC − reference",
             "params", "params / added task", "FLOPs / example"]
          + (["train ex/s", "latency b=1 (ms)", "latency b=512 (ms)"] if speed else [])
          + ["front", "epochs", "note"])
  lines = [report.table_row(head), report.table_row(["---"] * len(head))]
  for row in point["models"]:
    mean = report.mean_auc(row, scored)
    logloss = (float(np.mean([row["metrics"][o]["logloss_mean"] for o in scored]))
               if row["metrics"] and scored else None)
    paired = (report.mean_auc_difference(pb, row, reference)
              if reference is not None and row is not reference and row["metrics"] else None)
    lines.append(report.table_row(
        [f"`{row['label']}`"] + [report.metric_cell(pb, row, o) for o in outputs]
        + ["–" if mean is None else f"{mean:.4f}",
           "–" if logloss is None else f"{logloss:.4f}",
           "reference" if row is reference else report.difference_cell(paired),
           report.number(row["trainable_parameters"]),
           report.number(row["parameters_per_added_task"]),
           report.number(row["flops_per_example"])]
        + ([report.rate(row["train_rows_per_s_input"]), report.latency_cell(row, "1"),
            report.latency_cell(row, "512")] if speed else [])
        + ["yes" if on_front.get(row["label"]) else "",
           report.epochs_cell(row), report.status(row)]))
  return "\n".join(lines)


def across_table(bench: Mapping[str, Any]) -> str:
  """Per model, its mean test AUC over tasks at every point, and (tasks, size) its
  parameters and FLOPs per example there."""
  points = bench["sweep"]["points"]
  costs = bench["sweep"]["kind"] != "task_cosine"
  head = ["model"] + [f"{p['label']}: mean AUC" for p in points]
  if costs:
    head += [f"{p['label']}: params" for p in points] + [
        f"{p['label']}: FLOPs" for p in points]
  lines = [report.table_row(head), report.table_row(["---"] * len(head))]
  labels = list(dict.fromkeys(r["label"] for p in points for r in p["models"]))
  for label in labels:
    rows = [next((r for r in p["models"] if r["label"] == label), None) for p in points]
    cells = []
    for p, r in zip(points, rows):
      spread = None if r is None else report.mean_auc_spread(
          r, report.auc_outputs(point_bench(bench, p)))
      cells.append("–" if spread is None else f"{spread[0]:.4f} ± {spread[1]:.4f}")
    if costs:
      cells += [report.number(r and r["trainable_parameters"]) for r in rows]
      cells += [report.number(r and r["flops_per_example"]) for r in rows]
    lines.append(report.table_row([f"`{label}`"] + cells))
  return "\n".join(lines)


def growth_sentence(bench: Mapping[str, Any]) -> Optional[str]:
  """For a `tasks` sweep: each model's parameters and FLOPs per task added between the
  first and the last point."""
  points = bench["sweep"]["points"]
  if bench["sweep"]["kind"] != "tasks" or len(points) < 2:
    return None
  first, last = points[0], points[-1]
  added = last["number"] - first["number"]
  parts = []
  for row in first["models"]:
    end = next((r for r in last["models"] if r["label"] == row["label"]), None)
    if end is None or not row["metrics"] or not end["metrics"]:
      continue
    parts.append(f"`{row['label']}` "
                 f"{(end['trainable_parameters'] - row['trainable_parameters']) / added:,.0f} "
                 f"params and {(end['flops_per_example'] - row['flops_per_example']) / added:,.0f}"
                 " FLOPs")
  if not parts:
    return None
  return (f"Per task added from {first['label']} to {last['label']} (the difference "
          f"divided by {added:g}): " + "; ".join(parts) + ".")


def section(bench: Mapping[str, Any], figures_dir: str) -> str:
  """The Markdown section of a sweep."""
  kind = bench["sweep"]["kind"]
  points = bench["sweep"]["points"]
  lines = report.section_head(bench)
  lines += [f"Swept: {_AXIS[kind]} at " + ", ".join(f"`{p['label']}`" for p in points)
            + ". " + _KIND_NOTES[kind], ""]
  lines += ["### Across the points", "",
            "Mean test AUC over the tasks (binary outputs) per model and point, mean ± std "
            "over the seeds' means.", "", across_table(bench), ""]
  growth = growth_sentence(bench)
  if growth:
    lines += [growth, ""]
  frontier = frontier_table(bench)
  if frontier:
    lines += ["Every model at every size, mean test AUC over the tasks; on the front: no "
              "other (model, size) has both a lower cost and a higher mean AUC.", "",
              frontier, ""]
  lines += report.figure_links(bench, figures_dir, PLOTS, plot_keys(bench))
  for point in points:
    pb = point_bench(bench, point)
    reference = report.reference_row(pb)
    lines += [f"### {point['label']}", "", _rows_sentence(pb, point), "",
              point_table(bench, point), ""]
    paired = report.paired_table(pb)
    if paired:
      lines += [f"Paired differences per task to `{reference['label']}`, as in the other "
                "sections:", "", paired, ""]
  lines += ["### How it is measured", "",
            *[f"* {note}" for note in SWEEP_NOTES
              + ((SPEED_NOTE,) if measured_speed(bench) else ())],
            "* mean AUC: the test AUC averaged over the binary outputs, per seed; its paired "
            "difference to the reference is over those per-seed means (95 % interval, "
            "Student's t). front: on the Pareto front of mean test AUC against FLOPs per "
            "example among the point's models (no model has both fewer FLOPs and a higher "
            "mean AUC).", ""]
  return "\n".join(lines)


SWEEP_NOTES = (
    "Each (model, seed) trains in its own process.",
    "params: trainable parameters; params / added task: the same model built for the "
    "feature config plus one independent task, minus the model itself.",
    FLOPS_NOTE,
)
SPEED_NOTE = (
    "train ex/s: rows per second of `fit` over the epochs after the first, from the input "
    "pipeline that training uses (validation excluded), from the first seed's run; "
    "latency: median wall time of a call of the SavedModel's `serving_default` signature "
    "(serialized `tf.Example`s of test rows) in a fresh process that imports only "
    "TensorFlow, after 10 warm-up calls. Compare them within one run.")

_KIND_NOTES = {
    "tasks": "Each point trains on the feature config's first N tasks (same rows, same "
             "split; the other tasks' label columns ignored).",
    "task_cosine": "Each point is its own synthetic data set of the same seed, rows and "
                   "fields, whose click and conversion directions have that cosine "
                   "(0: unrelated tasks, 1: one direction); ceiling: the AUC of the true "
                   f"probabilities on {sweep.CEILING_ROWS:,} fresh rows of the same "
                   "structure (the Bayes-optimal predictions).",
    "size": "Every model's widths scaled: " + ", ".join(
        f"{name} × {factor:g}" for name, factor in sweep.SIZE_FACTORS.items())
            + f" ({', '.join(sweep.WIDTH_OPTIONS)}; the numbers of experts, levels, "
              "steps and cross layers and the embedding size unchanged).",
}


def _rows_sentence(pb: Mapping[str, Any], point: Mapping[str, Any]) -> str:
  rows = point["rows"]
  text = (f"Train {rows['train']:,}, validation {rows['validation']:,}, test "
          f"{rows['test']:,} rows.")
  if report.positive_rates(pb):
    text += " " + report.positive_rate_sentence(pb)
  if point["ceiling"]:
    text += " Ceiling (true probabilities' AUC): " + ", ".join(
        f"{o} {a:.4f}" for o, a in point["ceiling"].items()) + "."
  return text


def plot_keys(bench: Mapping[str, Any]) -> List[str]:
  """The plots a sweep has: all three for `size`, no cost plot for `task_cosine`."""
  kind = bench["sweep"]["kind"]
  return [k for k in PLOTS if not (k == "cost" and kind == "task_cosine")
          and not (k == "frontier" and kind != "size")]


def write_plots(bench: Mapping[str, Any], out_dir: str) -> List[str]:
  """Writes the sweep's PNG plots (`plot_keys`); returns their paths."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel

  points = bench["sweep"]["points"]
  kind = bench["sweep"]["kind"]
  labels = list(dict.fromkeys(r["label"] for p in points for r in p["models"]))
  outputs = list(dict.fromkeys(o for p in points for o in p["outputs"]))
  paths = []

  def save(figure, key):
    paths.append(report.save_figure(figure, bench, key, PLOTS[key], out_dir))

  def series(label, value):
    xs, ys, errors = [], [], []
    for p in points:
      row = next((r for r in p["models"] if r["label"] == label and r["metrics"]), None)
      got = value(p, row) if row is not None else None
      if got is not None:
        xs.append(p["number"])
        ys.append(got[0])
        errors.append(got[1])
    return xs, ys, errors

  panels = outputs + ["mean AUC"]
  columns = min(4, len(panels))
  figure, axes = plt.subplots(math.ceil(len(panels) / columns), columns, squeeze=False,
                              figsize=(3.6 * columns, 3.0 * math.ceil(len(panels) / columns)))
  for ax, panel in zip(axes.flat, panels):
    for label in labels:
      if panel == "mean AUC":
        def value(p, row):
          return report.mean_auc_spread(row, report.auc_outputs(point_bench(bench, p)))
      else:
        def value(p, row, o=panel):
          if o not in p["outputs"]:
            return None
          metric = report.headline(point_bench(bench, p), o)
          m = row["metrics"][o]
          return m[f"{metric}_mean"], m[f"{metric}_std"]
      xs, ys, errors = series(label, value)
      if xs:
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=label)
    if kind == "task_cosine" and panel in outputs:
      ceiling = [(p["number"], p["ceiling"][panel]) for p in points
                 if p["ceiling"] and panel in p["ceiling"]]
      if ceiling:
        ax.plot(*zip(*ceiling), "k--", label="ceiling")
    ax.set_title(panel, fontsize=9)
    ax.set_xlabel(_AXIS[kind], fontsize=8)
    ax.grid(alpha=0.3)
  for ax in axes.flat[len(panels):]:
    ax.axis("off")
  axes.flat[0].legend(fontsize=7)
  save(figure, "sweep")

  if "cost" in plot_keys(bench):
    figure, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), squeeze=False)
    for ax, key, name in zip(axes[0], ("trainable_parameters", "flops_per_example"),
                             ("trainable parameters", "forward FLOPs per example")):
      for label in labels:
        xs, ys, _ = series(label, lambda p, row, k=key: (row[k], 0.0))
        if xs:
          ax.plot(xs, ys, marker="o", label=label)
      ax.set_yscale("log")
      ax.set_xlabel(_AXIS[kind], fontsize=8)
      ax.set_title(name, fontsize=9)
      ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    save(figure, "cost")

  if "frontier" in plot_keys(bench):
    rows, names = [], []
    for p in points:
      for r in report.finished(p["models"]):
        rows.append(r)
        names.append(f"{r['label']} ({p['value']})")
    scored = _frontier_outputs(bench)
    front = report.fronts(rows, scored) if rows else {}
    axes_keys = [("flops", "flops_per_example", "forward FLOPs per example")]
    if "rate" in front:
      axes_keys.append(("rate", "train_rows_per_s_input", "training rows/s (with input)"))
    figure, axes = plt.subplots(1, len(axes_keys), figsize=(5.0 * len(axes_keys), 3.8),
                                squeeze=False)
    for ax, (key, field, name) in zip(axes[0], axes_keys):
      for label in labels:
        mine = [(r[field], report.mean_auc(r, scored)) for r in rows if r["label"] == label]
        if mine:
          ax.plot(*zip(*mine), marker="o", label=label)
      for r, n, on in zip(rows, names, front.get(key, [])):
        if on:
          ax.scatter([r[field]], [report.mean_auc(r, scored)], s=160, facecolors="none",
                     edgecolors="k")
          ax.annotate(n, (r[field], report.mean_auc(r, scored)), fontsize=6, xytext=(4, -8),
                      textcoords="offset points")
      ax.set_xscale("log")
      ax.set_xlabel(name, fontsize=8)
      ax.set_ylabel("mean test AUC", fontsize=8)
      ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    save(figure, "frontier")
  return paths


def _frontier_outputs(bench: Mapping[str, Any]) -> List[str]:
  """The binary outputs of a size sweep (the same at every size), as the first point
  with results says."""
  for point in bench["sweep"]["points"]:
    if report.finished(point["models"]):
      return report.auc_outputs(point_bench(bench, point))
  return []


def frontier_table(bench: Mapping[str, Any]) -> Optional[str]:
  """For a `size` sweep: every (model, size) with its mean AUC, FLOPs, rate and whether
  it is on the front over all sizes."""
  if bench["sweep"]["kind"] != "size":
    return None
  rows, sizes = [], []
  for p in bench["sweep"]["points"]:
    for r in report.finished(p["models"]):
      rows.append(r)
      sizes.append(p["value"])
  if not rows:
    return None
  scored = _frontier_outputs(bench)
  front = report.fronts(rows, scored)
  head = ["model", "size", "mean AUC", "FLOPs / example", "train ex/s",
          "on the front (FLOPs)", "on the front (ex/s)"]
  lines = [report.table_row(head), report.table_row(["---"] * len(head))]
  for i, (r, size) in enumerate(zip(rows, sizes)):
    lines.append(report.table_row(
        [f"`{r['label']}`", size, report.number(report.mean_auc(r, scored), 4),
         report.number(r["flops_per_example"]), report.rate(r["train_rows_per_s_input"]),
         "yes" if front["flops"][i] else "",
         ("yes" if front["rate"][i] else "") if "rate" in front else "–"]))
  return "\n".join(lines)
