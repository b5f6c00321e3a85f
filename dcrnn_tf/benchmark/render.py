"""BENCHMARKS.md and the plots, from the benchmarks' JSON files: a summary, then one
section per benchmark (`report` for a model table, `sweep_report` for a sweep)."""

from typing import Any, List, Mapping, Sequence

from dcrnn_tf.benchmark import report
from dcrnn_tf.benchmark import sweep_report


def has_current_layout(bench: Mapping[str, Any]) -> bool:
  """Whether a benchmark's JSON holds every key this version's report reads."""
  rows = bench.get("models", []) + bench.get("ablations", [])
  points = bench.get("sweep", {}).get("points", [])
  rows += [row for point in points for row in point.get("models", [])]
  return (set(report.BENCH_KEYS) <= set(bench)
          and all(set(sweep_report.POINT_KEYS) <= set(point) for point in points)
          and all(set(report.ROW_KEYS) <= set(row) for row in rows))


def section(bench: Mapping[str, Any], figures_dir: str) -> str:
  """The Markdown section of one benchmark (figures linked under `figures_dir`)."""
  if "sweep" in bench:
    return sweep_report.section(bench, figures_dir)
  return report.section(bench, figures_dir)


def write_plots(bench: Mapping[str, Any], out_dir: str) -> List[str]:
  """Writes one benchmark's PNG plots into `out_dir`; returns their paths."""
  if "sweep" in bench:
    return sweep_report.write_plots(bench, out_dir)
  return report.write_plots(bench, out_dir) if bench["models"] else []


def summary(benches: Sequence[Mapping[str, Any]]) -> List[str]:
  """The summary that BENCHMARKS.md opens with: per section (per point of a sweep),
  DCRNN's paired result against the reference and the models on the front."""
  lines = []
  for bench in benches:
    if "sweep" in bench:
      lines += sweep_report.summary_lines(bench)
    elif bench["models"]:
      lines.append(report.summary_line(bench, bench["title"]))
  if not lines:
    return []
  return ["## Summary", "",
          "Per section (per point of a sweep): the reference model (the best baseline by "
          "mean validation AUC, where the section compares with it), `dcrnn`'s test AUC "
          "averaged over the tasks minus the reference's, paired over the seeds (mean, 95 % "
          "interval, win / tie / loss), its call per task, and the models on the Pareto "
          "front of mean test AUC against forward FLOPs per example (no model has both "
          "fewer FLOPs and a higher mean AUC). Details in each section.", "",
          report.SUMMARY_HEAD, *lines, ""]


def outdated_section(bench: Mapping[str, Any], figures_dir: str) -> str:
  """The section of a JSON written by an older version: what to rerun, no figures."""
  name = bench.get("name", "?")
  return "\n".join([
      f"## {bench.get('title', name)}", "",
      f"`{figures_dir}/{name}.json` was written by an older version of the benchmark, "
      "whose layout this version does not read; to show it, rerun:", "",
      "```sh", bench.get("command", "python -m dcrnn_tf.benchmark ..."), "```", ""])


def document(benches: Sequence[Mapping[str, Any]], figures_dir: str) -> str:
  """The whole BENCHMARKS.md: the summary, then one section per benchmark
  (`outdated_section` for a JSON of an older layout, so that one stale file does not
  lose the others)."""
  head = ("# Benchmarks\n\n"
          "Written by `python -m dcrnn_tf.benchmark` (`--write_markdown`); do not edit by "
          "hand. Each section names the command that produced it; its figures and full "
          f"results (JSON) are in `{figures_dir}/`.\n")
  current = [b for b in benches if has_current_layout(b)]
  return "\n".join([head] + summary(current) + [
      section(b, figures_dir) if has_current_layout(b) else outdated_section(b, figures_dir)
      for b in benches])
