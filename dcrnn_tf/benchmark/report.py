"""Aggregating runs over seeds into table rows; a model table's Markdown section, the
summary line of a section, and the plots."""

import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dcrnn_tf.benchmark import profile
from dcrnn_tf.benchmark.measure import FLOPS_NOTE
from dcrnn_tf.benchmark.plan import MODELS_GROUP, Row
from dcrnn_tf.benchmark.sweep import pareto_front
from dcrnn_tf.objectives import MAXIMIZED

# Keys of a benchmark's JSON (see `dcrnn_tf.benchmark.run_benchmark`).
BENCH_KEYS = ("name", "title", "command", "machine", "date", "wall_seconds",
              "time_budget_minutes", "runs", "preset", "settings", "outputs",
              "reference_model", "pipeline", "flops_note", "models", "ablations")
# The metrics of an output's runs that rows aggregate: a probability's (its test part's
# positive rate among them), a regression's.
METRICS = ("auc", "logloss", "positive_rate", "rmse", "mae", "r2")
# Keys of a row of the JSON (see `aggregate`).
ROW_KEYS = ("group", "label", "model", "options", "depends_on", "seeds", "seeds_done",
            "skip_reason", "metrics", "trainable_parameters", "parameters_per_added_task",
            "flops_per_example", "train_rows_per_s_input", "train_rows_per_s_cached",
            "pipeline_ratio", "latency_ms", "peak_rss_mib", "epochs", "val_loss")
PLOTS = {"auc": "test AUC (RMSE of a regression) per task by model (mean ± std over seeds)",
         "auc_vs_flops": "test AUC (RMSE) against forward FLOPs per example",
         "curves": "validation loss per epoch (the training loss: the weighted sum "
                    "over outputs)"}


def aggregate(row: Row, results: Mapping[str, Mapping[str, Any]],
              pipeline_rows_per_s: Optional[float]) -> Dict[str, Any]:
  """One table row from the results of its runs (by `Run.key`).

  Metrics (`METRICS`: AUC, log loss and positive rate of a probability, RMSE, MAE and R²
  of a regression) are the mean and sample standard deviation over the seeds that
  finished, with each seed's value (`<metric>_by_seed`), and the mean validation
  metrics, which choose among variants, where every run measured them (a metric that
  only some runs have, say results of an older version beside new ones, is left out);
  counts, FLOPs and memory come from the first finished seed (they do not depend on
  it, except memory, whose maximum is kept); speed from the run that measured it.
  """
  done = [results[run.key] for run in row.runs() if run.key in results]
  out: Dict[str, Any] = {key: None for key in ROW_KEYS}
  out.update(group=row.group, label=row.label, model=row.model, options=dict(row.options),
             depends_on=dict(row.depends_on), seeds=list(row.seeds),
             seeds_done=[r["run"]["seed"] for r in done], skip_reason=row.skip_reason)
  if not done:
    return out
  outputs = list(done[0]["metrics"])
  out["metrics"] = {}
  for name in outputs:
    metrics = out["metrics"][name] = {"count": done[0]["metrics"][name]["count"]}
    for metric in METRICS:
      if not all(metric in r["metrics"][name] for r in done):
        continue
      values = np.array([r["metrics"][name][metric] for r in done])
      metrics.update({f"{metric}_mean": float(values.mean()), f"{metric}_std": _std(values),
                      f"{metric}_by_seed": {str(r["run"]["seed"]): r["metrics"][name][metric]
                                            for r in done}})
      if all(metric in r.get("validation_metrics", {}).get(name, {}) for r in done):
        metrics[f"val_{metric}_mean"] = float(np.mean(
            [r["validation_metrics"][name][metric] for r in done]))
  first = done[0]
  for key in ("trainable_parameters", "parameters_per_added_task", "flops_per_example"):
    out[key] = first[key]
  out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in done)
  out["epochs"] = [r["epochs"] for r in done]
  out["val_loss"] = [r["val_loss"] for r in done]
  speed = next((r for r in done if "train_rows_per_s_cached" in r), None)
  if speed:
    out["train_rows_per_s_input"] = speed["train_rows_per_s_input"]
    out["train_rows_per_s_cached"] = speed["train_rows_per_s_cached"]
    out["latency_ms"] = speed.get("latency_ms")
    if pipeline_rows_per_s:
      out["pipeline_ratio"] = pipeline_rows_per_s / speed["train_rows_per_s_cached"]
  return out


def finished(rows: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
  """The rows with results (at least one finished seed)."""
  return [r for r in rows if r["metrics"]]


def epochs_cell(row: Mapping[str, Any]) -> str:
  """The epochs each seed trained, `4/3/4`."""
  return "/".join(str(e) for e in row["epochs"] or []) or "–"


def _std(values: np.ndarray) -> float:
  return float(values.std(ddof=1)) if len(values) > 1 else 0.0


# Student's t quantile 0.975 by degrees of freedom (1 to 30); 1.96 beyond.
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
          2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
          2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def paired_difference(values: Mapping[str, float], reference: Mapping[str, float],
                      higher_is_better: bool = True) -> Optional[Dict[str, Any]]:
  """The paired difference `values - reference` over their common seeds.

  Args:
    values, reference: Dicts from seed to a metric (runs of the same split and seed).
    higher_is_better: The metric's direction (an AUC's; not an RMSE's).

  Returns:
    None with fewer than two common seeds; else a dict of `mean`, the 95 % confidence
    interval `low`, `high` (Student's t over the seeds' differences), `seeds` and
    `call`: `"win"` (the interval lies above 0, or below it for a metric that is better
    lower), `"loss"` (the other side) or `"tie"`.
  """
  seeds = sorted(set(values) & set(reference), key=int)
  if len(seeds) < 2:
    return None
  differences = np.array([values[s] - reference[s] for s in seeds])
  mean = float(differences.mean())
  t = _T_975[len(seeds) - 2] if len(seeds) - 1 <= len(_T_975) else 1.96
  half = t * float(differences.std(ddof=1)) / math.sqrt(len(seeds))
  call = "win" if mean - half > 0 else "loss" if mean + half < 0 else "tie"
  if not higher_is_better:
    call = {"win": "loss", "loss": "win", "tie": "tie"}[call]
  return {"mean": mean, "low": mean - half, "high": mean + half, "seeds": len(seeds),
          "call": call}


# Markdown.

def number(value, digits: int = 0) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "–"
  return f"{value:,.{digits}f}"


def rate(value) -> str:
  return "–" if value is None else f"{value / 1000:,.1f}k"


# Per kind of output: its headline metric (tables, plots, paired differences), its
# second one, and their names.
_BINARY = (("auc", "AUC"), ("logloss", "log loss"))
_REGRESSION = (("rmse", "RMSE"), ("r2", "R²"))


def _kind(bench: Mapping[str, Any], output: str):
  """`_BINARY` or `_REGRESSION`, as the rows' metrics of `output` say."""
  for row in bench["models"] + bench["ablations"]:
    if row["metrics"]:
      return _REGRESSION if "rmse_mean" in row["metrics"][output] else _BINARY
  return _BINARY


def headline(bench: Mapping[str, Any], output: str) -> str:
  """The metric that compares models on `output`: `auc`, or a regression's `rmse`."""
  return _kind(bench, output)[0][0]


def headline_name(bench: Mapping[str, Any], output: str) -> str:
  """The name of `headline`'s metric in tables: `AUC` or `RMSE`."""
  return _kind(bench, output)[0][1]


def metric_cell(bench: Mapping[str, Any], row: Mapping[str, Any], output: str) -> str:
  """A table cell: the row's headline metric of `output`, mean ± std over seeds."""
  return _metric(row["metrics"], output, headline(bench, output))


def positive_rates(bench: Mapping[str, Any]) -> Dict[str, float]:
  """The test part's positive rate of each binary output (weighted as the metrics are),
  from the first model row that measured it."""
  for row in finished(bench["models"]):
    rates = {o: m["positive_rate_mean"] for o, m in row["metrics"].items()
             if "positive_rate_mean" in m}
    if rates:
      return rates
  return {}


def positive_rate_sentence(bench: Mapping[str, Any]) -> str:
  """`Test positive rate: <output> <rate>, ...` (empty without any)."""
  rates = positive_rates(bench)
  return ("Test positive rate: " + ", ".join(f"{o} {r:.2%}" for o, r in rates.items()) + "."
          if rates else "")


def _metric(metrics, name: str, metric: str, spread: bool = True) -> str:
  if not metrics or f"{metric}_mean" not in metrics[name]:
    return "–"
  m = metrics[name]
  if metric in ("rmse", "mae"):
    text = f"{m[f'{metric}_mean']:.4g}"
    return f"{text} ± {m[f'{metric}_std']:.2g}" if spread else text
  text = f"{m[f'{metric}_mean']:.4f}"
  return f"{text} ± {m[f'{metric}_std']:.4f}" if spread else text


def latency_cell(row, size: str) -> str:
  latency = row["latency_ms"]
  return "–" if not latency or size not in latency else f"{latency[size]['median_ms']:.2f}"


def status(row) -> str:
  if row["skip_reason"]:
    return f"not run: {row['skip_reason']}"
  missing = len(row["seeds"]) - len(row["seeds_done"])
  return f"{missing} of {len(row['seeds'])} seeds not finished" if missing else ""


def _runs(runs: Mapping[str, int]) -> str:
  text = f"{runs['planned']} runs"
  if runs["not_started"]:
    text += f", **{runs['not_started']} not started: the time budget ran out**"
  if runs["failed"]:
    text += f", **{runs['failed']} failed**"
  return text


def measured_speed(rows: Sequence[Mapping[str, Any]]) -> bool:
  """Whether any of the rows measured a training rate or a latency (a quality-only
  benchmark's have neither: its tables leave those columns out)."""
  return any(row["train_rows_per_s_input"] is not None or row["latency_ms"] for row in rows)


def model_table(bench: Mapping[str, Any]) -> str:
  """The Markdown table of the models (the speed columns only where a run measured
  speed: a quality-only benchmark has none)."""
  outputs = bench["outputs"]
  kinds = [_kind(bench, o) for o in outputs]
  speed = measured_speed(bench["models"])
  head = (["model"] + [f"{o} {k[0][1]}" for o, k in zip(outputs, kinds)]
          + [f"{o} {k[1][1]}" for o, k in zip(outputs, kinds)]
          + ["params", "params / added task", "FLOPs / example"]
          + (["train ex/s (with input)", "train ex/s (model alone)", "pipeline ÷ train",
              "latency b=1 (ms)", "latency b=512 (ms)"] if speed else [])
          + ["peak RSS (MiB)", "epochs", "note"])
  lines = [table_row(head), table_row(["---"] * len(head))]
  for row in bench["models"]:
    ratio = "–" if row["pipeline_ratio"] is None else f"{row['pipeline_ratio']:.1f}×"
    lines.append(table_row(
        [f"`{row['label']}`"]
        + [_metric(row["metrics"], o, k[0][0]) for o, k in zip(outputs, kinds)]
        + [_metric(row["metrics"], o, k[1][0], spread=False) for o, k in zip(outputs, kinds)]
        + [number(row["trainable_parameters"]), number(row["parameters_per_added_task"]),
           number(row["flops_per_example"])]
        + ([rate(row["train_rows_per_s_input"]), rate(row["train_rows_per_s_cached"]),
            ratio, latency_cell(row, "1"), latency_cell(row, "512")] if speed else [])
        + [number(row["peak_rss_mib"]), epochs_cell(row), status(row)]))
  return "\n".join(lines)


def ablation_table(bench: Mapping[str, Any]) -> str:
  """The Markdown table of the ablations, with the best line of each group (by mean
  validation AUC) in bold."""
  outputs = bench["outputs"]
  kinds = [_kind(bench, o) for o in outputs]
  scored = _choice_outputs(bench)
  what = "AUC" if _kind(bench, scored[0]) is _BINARY else "R²"
  head = (["group", "variant"] + [f"{o} {k[0][1]}" for o, k in zip(outputs, kinds)]
          + [f"mean {what}", f"mean validation {what}", "params", "FLOPs / example", "note"])
  lines = [table_row(head), table_row(["---"] * len(head))]
  best = best_by_group(bench["ablations"], scored)
  for row in bench["ablations"]:
    mean = _mean_score(row, scored)
    validation = _mean_score(row, scored, "val")
    label = f"**{row['label']}**" if best.get(row["group"]) == row["label"] else row["label"]
    lines.append(table_row(
        [row["group"], label]
        + [_metric(row["metrics"], o, k[0][0]) for o, k in zip(outputs, kinds)]
        + ["–" if mean is None else f"{mean:.4f}",
           "–" if validation is None else f"{validation:.4f}",
           number(row["trainable_parameters"]), number(row["flops_per_example"]),
           status(row)]))
  return "\n".join(lines)


def _choice_outputs(bench: Mapping[str, Any]) -> List[str]:
  """The outputs whose mean score chooses among models and variants: the probabilities
  (their AUC), or, with none, the regressions (their R²)."""
  binary = [o for o in bench["outputs"] if _kind(bench, o) is _BINARY]
  return binary or list(bench["outputs"])


def _mean_score(row, outputs, split: str = "") -> Optional[float]:
  """The mean over `outputs` of the row's AUC (R² of a regression) on the test part, or
  on the validation part (`split="val"`); None where it has none."""
  def key(o):
    metric = "auc" if "auc_mean" in row["metrics"][o] else "r2"
    return f"{split}_{metric}_mean" if split else f"{metric}_mean"
  if not row["metrics"] or any(key(o) not in row["metrics"][o] for o in outputs):
    return None
  return float(np.mean([row["metrics"][o][key(o)] for o in outputs]))


def best_by_group(rows: Sequence[Mapping[str, Any]], outputs) -> Dict[str, str]:
  """Per ablation group, the label of the row with the highest mean validation AUC over
  `outputs` (R² of regressions; never the test figures: the choice must not look at the
  test part)."""
  best: Dict[str, Any] = {}
  for row in rows:
    mean = _mean_score(row, outputs, "val")
    if mean is not None and (row["group"] not in best or mean > best[row["group"]][0]):
      best[row["group"]] = (mean, row["label"])
  return {group: label for group, (_, label) in best.items()}


def profile_tables(profiles: Mapping[str, Mapping[str, Any]]) -> List[str]:
  """Markdown lines: the step profile of every model, then DCRNN's block by layer."""
  head = (["model"] + list(profile.STEP_PARTS)
          + ["train_step", "fit (per batch)", "encoder share", "raw input: encoder",
             "raw input: fit"])
  lines = [table_row(head), table_row(["---"] * len(head))]
  for label, result in profiles.items():
    step = result["step_ms"]
    raw = result.get("step_ms_raw_input")  # Absent in profiles made before ids.
    lines.append(table_row(
        [f"`{label}`"] + [f"{step[part]:.2f}" for part in profile.STEP_PARTS]
        + [f"{step['train_step']:.2f}", f"{step['fit']:.2f}",
           f"{100 * step['encoder'] / step['fit']:.0f} %"]
        + ([f"{raw['encoder']:.2f}", f"{raw['fit']:.2f}"] if raw else ["–", "–"])))
  for label, result in profiles.items():
    if "block_ms" not in result:
      continue
    lines += ["", f"`{label}` by layer (forward and backward, each layer alone; ms per "
              f"batch of {result['batch_size']}):", "",
              table_row(["layer", "ms"]), table_row(["---", "---"])]
    lines += [table_row([layer, f"{ms:.2f}"]) for layer, ms in result["block_ms"].items()]
  return lines


BEST_BASELINE = "best_baseline"


def reference_row(bench: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
  """The model row of `bench["reference_model"]` (`BEST_BASELINE`: the model other than
  DCRNN with the best mean validation AUC over the probabilities (`_choice_outputs`),
  or test AUC in results that measured no validation AUC), if it has results."""
  rows = finished(bench["models"])
  name = bench.get("reference_model")
  if name == BEST_BASELINE:
    baselines = [r for r in rows if r["model"] != "dcrnn"]
    outputs = _choice_outputs(bench)
    split = ("val" if all(_mean_score(r, outputs, "val") is not None for r in baselines)
             else "")
    return max(baselines, key=lambda r: _mean_score(r, outputs, split), default=None)
  return next((r for r in rows if r["label"] == name), None)


def dcrnn_verdict(bench: Mapping[str, Any]) -> Optional[str]:
  """One sentence: DCRNN's win, tie or loss against the reference per output, and those
  of the DCRNN ablation lines chosen on validation AUC (the bold ones), or None."""
  reference = reference_row(bench)
  dcrnn = dcrnn_row(bench)
  if reference is None or dcrnn is None or reference is dcrnn:
    return None
  outputs = bench["outputs"]
  best = best_by_group(bench["ablations"], _choice_outputs(bench))
  chosen = [r for r in bench["ablations"]
            if best.get(r["group"]) == r["label"] and "(default)" not in r["label"]]

  def calls(row) -> str:
    return calls_per_output(bench, row, reference)

  measured = ("test AUC" if all(headline(bench, o) == "auc" for o in outputs)
              else "test AUC, RMSE of a regression")
  text = (f"**In short:** `dcrnn` against `{reference['label']}` ({measured}, paired): "
          f"{calls(dcrnn)}.")
  if chosen:
    text += " The DCRNN ablation lines chosen on validation AUC: " + "; ".join(
        f"{r['group']} `{r['label']}`: {calls(r)}" for r in chosen) + "."
  return text


def dcrnn_row(bench: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
  """The model row of DCRNN, if it has results."""
  return next((r for r in finished(bench["models"]) if r["label"] == "dcrnn"), None)


def calls_per_output(bench: Mapping[str, Any], row, reference) -> str:
  """`<output> win|tie|loss, ...`: the row's paired calls against the reference."""
  return ", ".join(f"{o} {'–' if d is None else d['call']}" for o, d in
                   ((o, _paired(bench, row, reference, o)) for o in bench["outputs"]))


def mean_auc_by_seed(row: Mapping[str, Any], outputs: Sequence[str]) -> Dict[str, float]:
  """Per seed, the row's test AUC averaged over `outputs` (seeds that have all)."""
  if not row["metrics"]:
    return {}
  by_output = [row["metrics"][o].get("auc_by_seed", {}) for o in outputs]
  seeds = set.intersection(*(set(b) for b in by_output)) if by_output else set()
  return {s: float(np.mean([b[s] for b in by_output])) for s in seeds}


def auc_outputs(bench: Mapping[str, Any]) -> List[str]:
  """The outputs compared on their AUC (the binary ones)."""
  return [o for o in bench["outputs"] if headline(bench, o) == "auc"]


def mean_auc(row: Mapping[str, Any], outputs: Sequence[str]) -> Optional[float]:
  """The row's mean test AUC over `outputs` (None without results or outputs)."""
  return _mean_score(row, outputs) if outputs else None


def mean_auc_spread(row: Mapping[str, Any], outputs: Sequence[str]) -> Optional[Tuple[float, float]]:
  """(mean, sample std) over the seeds of the row's per-seed mean AUC over `outputs`;
  None without results."""
  by_seed = np.array(list(mean_auc_by_seed(row, outputs).values()))
  return (float(by_seed.mean()), _std(by_seed)) if by_seed.size else None


def mean_auc_difference(pb: Mapping[str, Any], row, reference) -> Optional[Dict[str, Any]]:
  """The paired difference of the mean AUC over tasks, `row` minus `reference`."""
  outputs = auc_outputs(pb)
  return paired_difference(mean_auc_by_seed(row, outputs),
                           mean_auc_by_seed(reference, outputs))


def difference_cell(d: Optional[Mapping[str, Any]], form: str = "+.4f") -> str:
  """A paired difference as a table cell: mean [95 % interval] call."""
  return "–" if d is None else (f"{d['mean']:{form}} [{d['low']:{form}}, {d['high']:{form}}] "
                                f"{d['call']}")


def fronts(rows: Sequence[Mapping[str, Any]], outputs: Sequence[str]) -> Dict[str, List[bool]]:
  """Which rows (with results) are on the Pareto front of mean test AUC against FLOPs
  per example (`"flops"`) and against training rows/s (`"rate"`, where measured); a row
  without a mean AUC (no binary output) is on neither."""
  auc = [mean_auc(r, outputs) for r in rows]
  scored = [i for i, a in enumerate(auc) if a is not None]

  def front(costs) -> List[bool]:
    on = pareto_front([costs[i] for i in scored], [auc[i] for i in scored])
    marks = dict(zip(scored, on))
    return [marks.get(i, False) for i in range(len(rows))]

  out = {"flops": front([r["flops_per_example"] for r in rows])}
  if all(r["train_rows_per_s_input"] for r in rows):
    out["rate"] = front([-r["train_rows_per_s_input"] for r in rows])
  return out


def summary_line(bench: Mapping[str, Any], name: str) -> str:
  """A row of the summary table: the reference, DCRNN's paired difference of mean test
  AUC to it and its per-task calls, and the models on the front of mean test AUC
  against FLOPs per example."""
  reference = reference_row(bench)
  dcrnn = dcrnn_row(bench)
  done = finished(bench["models"])
  outputs = auc_outputs(bench)
  front = [r["label"] for r, on in zip(done, fronts(done, outputs)["flops"]) if on] \
      if done and outputs else []
  difference, calls = "–", "–"
  if reference is not None and dcrnn is not None and reference is not dcrnn:
    d = mean_auc_difference(bench, dcrnn, reference)
    if d is not None:
      difference = difference_cell(d)
    calls = calls_per_output(bench, dcrnn, reference)
  shown = "–" if reference is None else f"`{reference['label']}`" + (
      " (best baseline)" if bench["reference_model"] == BEST_BASELINE else "")
  return table_row([name, shown,
                    difference, calls, ", ".join(f"`{m}`" for m in front) or "–"])


SUMMARY_HEAD = ("| section | reference | `dcrnn` mean AUC − reference "
                "(95 % interval) | `dcrnn` per task | on the front (mean AUC vs FLOPs) |\n"
                "| --- | --- | --- | --- | --- |")


def paired_table(bench: Mapping[str, Any]) -> Optional[str]:
  """The Markdown table of every row's paired test-AUC difference to the reference
  model, per output; None when the reference model has no results."""
  reference = reference_row(bench)
  if reference is None:
    return None
  outputs = bench["outputs"]
  head = ["model"] + [f"{o} {_kind(bench, o)[0][1]} − `{reference['label']}`"
                      for o in outputs]
  lines = [table_row(head), table_row(["---"] * len(head))]
  for row in bench["models"] + bench["ablations"]:
    if _is_reference(row, reference) or not row["metrics"] or (
        row["group"] != MODELS_GROUP and "(default)" in row["label"]):
      continue
    label = (f"`{row['label']}`" if row["group"] == MODELS_GROUP
             else f"`dcrnn` {row['group']}: {row['label']}")
    cells = [difference_cell(_paired(bench, row, reference, o),
                             "+.4g" if headline(bench, o) == "rmse" else "+.4f")
             for o in outputs]
    lines.append(table_row([label] + cells))
  return "\n".join(lines)


def _is_reference(row: Mapping[str, Any], reference: Mapping[str, Any]) -> bool:
  """Whether `row` is the reference's own runs, under its name or another (the ablations'
  "no cross" line when Shared-Bottom is the reference): the same model, options, task
  dependencies and metrics."""
  return row is reference or all(row[k] == reference[k]
                                 for k in ("model", "options", "depends_on", "metrics"))


def _paired(bench, row, reference, output: str) -> Optional[Dict[str, Any]]:
  """`paired_difference` of the rows' headline metric of `output`."""
  metric = headline(bench, output)
  return paired_difference(row["metrics"][output][f"{metric}_by_seed"],
                           reference["metrics"][output][f"{metric}_by_seed"],
                           higher_is_better=metric in MAXIMIZED)


def table_row(cells) -> str:
  return "| " + " | ".join(str(c) for c in cells) + " |"


def _stopping(settings: Mapping[str, Any]) -> str:
  """How the runs stopped (JSONs from before `early_stopping_monitor` watched the
  validation loss)."""
  if not settings["patience"]:
    return "no early stopping"
  monitor = settings.get("early_stopping_monitor", "val_loss")
  watched = "the validation loss" if monitor == "val_loss" else f"`{monitor}`"
  return (f"early stopping on {watched} (patience {settings['patience']}, best epoch's "
          "weights restored)")


def section_head(bench: Mapping[str, Any]) -> List[str]:
  """The first lines of a benchmark's section: its title, the command, the machine and
  the data and training settings."""
  settings = bench["settings"]
  machine = bench["machine"]
  rows = settings["rows"]
  budget = (f"{bench['wall_seconds'] / 60:.1f} minutes of a "
            f"{bench['time_budget_minutes']:g}-minute budget")
  if bench["runs"].get("reused"):  # Finished in pieces: this invocation, and in all.
    spent = bench.get("run_seconds")
    budget = (f"{bench['runs']['reused']} finished runs reused from earlier invocations"
              + (f" (every process's time in all: {spent / 60:.1f} minutes)" if spent
                 else "") + f"; this invocation {budget}")
  return [
      f"## {bench['title']}",
      "",
      "Produced by:",
      "",
      "```sh",
      bench["command"],
      "```",
      "",
      f"on {machine['cpu']}, {machine['cores']} cores, TensorFlow {machine['tensorflow']} "
      f"(tf-keras {machine['tf_keras']}, Python {machine['python']}), {bench['date']}; "
      f"{budget}; {_runs(bench['runs'])}.",
      "",
      f"Data: `{settings['train_path']}`, split {settings['split']} (train {rows['train']:,}, "
      f"validation {rows['validation']:,}, test {rows['test']:,} rows). Every model: "
      f"embedding size {settings['embedding_dim']}, batch {settings['batch_size']}, Adam "
      f"(learning rate {settings['learning_rate']}), at most {settings['epochs']} epochs, "
      f"{_stopping(settings)}; metrics on the test part"
      + (f", weighted by the column `{settings['weight']}` (as the losses are)"
         if settings.get("weight") else "")
      + f", mean ± std over seeds {settings['seeds']}"
      + (f" (ablations: {settings['ablation_seeds']})." if bench["ablations"] else "."),
      "",
  ]


def section(bench: Mapping[str, Any], figures_dir: str) -> str:
  """The Markdown section of one benchmark (figures linked under `figures_dir`)."""
  lines = section_head(bench)
  if bench["models"]:
    lines += ["### Models", "", model_table(bench), ""]
    if positive_rates(bench):
      lines += [positive_rate_sentence(bench), ""]
  if bench["pipeline"]:
    lines += [pipeline_sentence(bench["pipeline"]), ""]
  paired = paired_table(bench) if bench["models"] else None
  if paired:
    lines += [f"Paired differences to `{reference_row(bench)['label']}`"
              + (" (the best baseline by mean validation AUC, by test AUC "
                 "in results that measured none)"
                 if bench["reference_model"] == BEST_BASELINE else "")
              + ": each model's (and each "
              "DCRNN ablation's) test AUC"
              + (" (RMSE of a regression)" if any(headline(bench, o) == "rmse"
                                                  for o in bench["outputs"]) else "")
              + " minus the reference's, run by run over the seeds "
              "both finished (same split, same seed), mean and 95 % interval (Student's t); "
              "win or loss when the interval excludes 0 (an RMSE wins below it), else tie.",
              "", paired, ""]
    verdict = dcrnn_verdict(bench)
    if verdict:
      lines += [verdict, ""]
  if bench["models"]:
    lines += figure_links(bench, figures_dir, PLOTS)
  if bench.get("profile"):
    batch = next(iter(bench["profile"].values()))["batch_size"]
    lines += ["### Where a training step's time goes", "",
              f"Milliseconds per training step (batch of {batch}), by part, as training "
              "runs (features preprocessed in the input pipeline, the model embeds ids); "
              "\"encoder share\": the encoder's forward pass over a batch of `fit`; "
              "\"raw input\": the encoder and `fit` when the model preprocesses raw "
              "values in its step (as serving does, and training did before it trained "
              "on ids).", "",
              *profile_tables(bench["profile"]), ""]
  if bench["ablations"]:
    lines += ["### DCRNN ablations", "",
              "Each line changes one thing of the DCRNN defaults; bold: the best mean "
              "validation AUC of its group, the choice made without looking at the test "
              "part (a difference within the standard deviations is noise; a line with one "
              "finished seed has none).", "", ablation_table(bench), ""]
  notes = (MEASUREMENT_NOTES + (SPEED_NOTES if measured_speed(bench["models"]) else ())
           + ((profile.NOTE,) if bench.get("profile") else ()))
  lines += ["### How it is measured", "", *[f"* {note}" for note in notes], ""]
  return "\n".join(lines)


MEASUREMENT_NOTES = (
    "Each (model, seed) trains in its own process; peak RSS is that process's maximum "
    "resident memory after training and evaluation (`ru_maxrss`).",
    "params: trainable parameters; params / added task: the same model built for the "
    "feature config plus one independent task, minus the model itself.",
    FLOPS_NOTE,
)
SPEED_NOTES = (
    "train ex/s (with input): rows per second of `fit` over the epochs after the "
    "first, from the input pipeline that training uses (held in memory or read from the "
    "files, see above; validation excluded); (model alone): the median over windows of "
    "`fit` on a few batches cached in memory (`take(n).cache().repeat()`, read once "
    "before timing). Both from the first seed's run. The pipeline alone is timed in "
    "its own process, drawing batches in the graph (`Dataset.reduce`) as `fit` does.",
    "latency: median wall time of a call of the SavedModel's `serving_default` "
    "signature (serialized `tf.Example`s of test rows) in a fresh process that imports "
    "only TensorFlow and loads the export with `tf.saved_model.load`, after 10 warm-up "
    "calls.",
    "The machine is shared with other jobs: compare speed ratios within one run.",
)


def pipeline_sentence(pipeline: Mapping[str, Any]) -> str:
  """What the input pipeline alone delivers, and which source training reads."""
  files = (f"Input pipeline alone (split, shuffle, targets; no model), reading and parsing "
           f"the files every epoch: {rate(pipeline['files_rows_per_s'])} rows/s")
  if pipeline["source"] == "files":
    text = (f"{files}. The training rows are over `--in_memory_max_mib`, so training "
            "reads them so")
  else:
    text = (f"{files}; held in memory, as training holds these rows: "
            f"{rate(pipeline['load_rows_per_s'])} rows/s for the one read of the files, "
            f"then {rate(pipeline['memory_rows_per_s'])} rows/s every epoch, each a new "
            "permutation of all rows")
  return (text + ". \"pipeline ÷ train\" divides the rate training reads at by the "
          "model's training rate alone; the design asks for at least 5×.")


# Plots.

def figure_links(bench: Mapping[str, Any], figures_dir: str, plots: Mapping[str, str],
                 keys: Optional[Sequence[str]] = None) -> List[str]:
  """Markdown lines linking the benchmark's plots (`keys` of `plots`: all by default)."""
  return [f"![{caption}]({figures_dir}/{bench['name']}_{key}.png)\n"
          for key, caption in plots.items() if keys is None or key in keys]


def save_figure(figure, bench: Mapping[str, Any], key: str, caption: str,
                out_dir: str) -> str:
  """Titles, writes (`<name>_<key>.png` in `out_dir`) and closes a figure; its path."""
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel
  path = os.path.join(out_dir, f"{bench['name']}_{key}.png")
  figure.suptitle(f"{bench['title']}:\n{caption}", fontsize=10)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)
  return path


def write_plots(bench: Mapping[str, Any], out_dir: str) -> List[str]:
  """Writes the PNG plots of `PLOTS` for one benchmark; returns their paths."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel

  rows = finished(bench["models"])
  outputs = bench["outputs"]
  paths = []

  def save(figure, key):
    paths.append(save_figure(figure, bench, key, PLOTS[key], out_dir))

  figure, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs), 3.6),
                              squeeze=False)
  for ax, name in zip(axes[0], outputs):
    metric, label = _kind(bench, name)[0]
    means = [r["metrics"][name][f"{metric}_mean"] for r in rows]
    stds = [r["metrics"][name][f"{metric}_std"] for r in rows]
    ax.errorbar(range(len(rows)), means, yerr=stds, fmt="o", capsize=4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_xticks(range(len(rows)), [r["label"] for r in rows], rotation=45, ha="right")
    low = min(m - s for m, s in zip(means, stds)) if means else 0.5
    high = max(m + s for m, s in zip(means, stds)) if means else 1.0
    margin = max(high - low, 0.002) * 0.3
    ax.set_ylim(low - margin, high + margin)
    ax.set_title(name)
    ax.set_ylabel(f"test {label}")
  save(figure, "auc")

  figure, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs), 3.6),
                              squeeze=False)
  for ax, name in zip(axes[0], outputs):
    metric, label = _kind(bench, name)[0]
    for r in rows:
      ax.errorbar(r["flops_per_example"], r["metrics"][name][f"{metric}_mean"],
                  yerr=r["metrics"][name][f"{metric}_std"], fmt="o", capsize=3)
      ax.annotate(r["label"], (r["flops_per_example"], r["metrics"][name][f"{metric}_mean"]),
                  fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("forward FLOPs per example")
    ax.set_ylabel(f"test {label}")
    ax.set_title(name)
  save(figure, "auc_vs_flops")

  columns = min(4, max(len(rows), 1))
  figure, axes = plt.subplots(math.ceil(len(rows) / columns) or 1, columns, sharex=True,
                              figsize=(3.2 * columns, 2.6 * math.ceil(len(rows) / columns)),
                              squeeze=False)
  for ax, r in zip(axes.flat, rows):
    for seed, curve in zip(r["seeds_done"], r["val_loss"]):
      ax.plot(range(1, len(curve) + 1), curve, marker="o", label=f"seed {seed}")
    ax.set_title(r["label"], fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
  for ax in axes.flat[len(rows):]:
    ax.axis("off")
  for ax in axes[:, 0]:
    ax.set_ylabel("validation loss")
  for ax in axes[-1]:
    ax.set_xlabel("epoch")
  axes.flat[0].legend(fontsize=7)
  save(figure, "curves")
  return paths
