"""Sweeps of the benchmark (`--sweep`): their points, the configs and options they
change, the report; the planning of every kind in-process (runs replaced by known
results), and one real sweep end to end on a tiny census file."""

import inspect
import json
import os
import time

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from dcrnn_tf import errors
from dcrnn_tf import models
from dcrnn_tf.benchmark import cli
from dcrnn_tf.benchmark import plan
from dcrnn_tf.benchmark import render
from dcrnn_tf.benchmark import report
from dcrnn_tf.benchmark import sections
from dcrnn_tf.benchmark import sweep
from dcrnn_tf.benchmark import sweep_report
from dcrnn_tf.benchmark import worker
from dcrnn_tf.data import scan
from dcrnn_tf.data import synthetic
from dcrnn_tf.features import FeatureConfig

from test_benchmark import ROOT, run_smoke, write_census_rows

SIX_TASKS = os.path.join(ROOT, "configs", "census_6tasks.json")


def test_parse_reads_the_kind_and_its_values_and_refuses_the_others():
  points = sweep.parse("tasks:2,4,6")
  assert [(p.label, p.number) for p in points] == [("tasks=2", 2.0), ("tasks=4", 4.0),
                                                   ("tasks=6", 6.0)]
  assert [p.number for p in sweep.parse("size:small,default,large")] == [0.5, 1.0, 2.0]
  assert [p.number for p in sweep.parse("task_cosine:0, 0.5,1")] == [0.0, 0.5, 1.0]
  for spec, message in (("nope:1", "kind one of"), ("tasks", "kind one of"),
                        ("tasks:", "no values"), ("tasks:2,2", "repeated"),
                        ("tasks:0", "an integer >= 1"), ("tasks:2.5", "an integer >= 1"),
                        ("task_cosine:1.5", "a number in [0, 1]"),
                        ("task_cosine:x", "a number in [0, 1]"),
                        ("size:huge", "one of ['small', 'default', 'large']")):
    with pytest.raises(errors.UsageError, match=message.replace("[", r"\[")):
      sweep.parse(spec)


def test_first_tasks_reads_the_same_rows_with_the_other_labels_ignored(tmp_path):
  path = str(tmp_path / "census-income.test.gz")
  write_census_rows(path, 200)
  config = FeatureConfig.load(SIX_TASKS)
  two = sweep.first_tasks(config, 2)
  assert [t.name for t in two.tasks] == ["income", "marital"]
  assert [label.name for label in two.labels] == ["income_over_50k", "never_married"]
  assert set(two.ignore) == set(config.ignore) | {
      "weeks_worked_in_year", "own_business_or_self_employed", "member_of_a_labor_union",
      "veterans_benefits"}
  assert (two.features, two.weight, two.csv) == (config.features, config.weight, config.csv)
  report_, _ = scan.scan(path, two, data_format="csv", learn=True)
  assert (report_.rows, report_.valid_rows) == (200, 200)
  assert sweep.first_tasks(config, 6) == config
  with pytest.raises(errors.UsageError, match="asks for 7 tasks; the feature config has 6"):
    sweep.first_tasks(config, 7)


def test_scaled_options_scale_every_width_and_nothing_else():
  options = {"embedding_dim": 16, "tower_units": [64, 32], "shared_units": 64,
             "private_units": 0, "cross_dim": 48, "rank": None, "num_experts": 4,
             "expert_units": [64], "depth": 2, "parallel_units": []}
  assert sweep.scaled_options(options, 0.5) == {
      "embedding_dim": 16, "tower_units": [32, 16], "shared_units": 32,
      "private_units": 0, "cross_dim": 24, "rank": None, "num_experts": 4,
      "expert_units": [32], "depth": 2, "parallel_units": []}
  assert sweep.scaled_options({"tower_units": [1], "hidden_units": [3]}, 0.5) == {
      "tower_units": [1], "hidden_units": [2]}


@pytest.mark.parametrize("name", ["dcrnn", "shared_bottom", "mmoe", "ple", "dcn",
                                  "single_task", "esmm"])
def test_every_model_grows_with_its_size(name):
  from conftest import funnel_config  # pylint: disable=import-outside-toplevel
  config = funnel_config()
  counts = []
  for factor in (0.5, 1.0, 2.0):
    options = sweep.scaled_options(constructor_defaults(name), factor)
    model = models.build_model(name, config, **options)
    model(synthetic_batch(config))
    counts.append(model.count_params())
  assert counts[0] < counts[1] < counts[2]


def constructor_defaults(name):
  parameters = inspect.signature(models.MODELS[name]).parameters.values()
  return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def synthetic_batch(config):
  from conftest import random_features  # pylint: disable=import-outside-toplevel
  return random_features(config, 2)


def test_pareto_front_keeps_what_nothing_dominates():
  assert sweep.pareto_front([1, 2, 3, 2, 4], [0.5, 0.7, 0.6, 0.7, 0.8]) == [
      True, True, False, True, True]
  assert sweep.pareto_front([1, 1], [0.5, 0.6]) == [False, True]


def test_the_synthetic_ceiling_is_the_true_probabilities_auc():
  ceiling = sweep.synthetic_ceiling(42)
  # The module's documented figures: clicks about 0.78, conversions over all rows 0.82.
  assert ceiling["ctr"] == pytest.approx(0.78, abs=0.02)
  assert ceiling["ctcvr"] == pytest.approx(0.82, abs=0.03)
  assert 0.5 < ceiling["cvr"] < 1.0
  assert sweep.synthetic_ceiling(42) == ceiling  # Deterministic.
  # The Bayes-optimal scores outrank a noisy copy of themselves on the same rows.
  structure = synthetic.make_structure(42)
  frame = structure.sample(sweep.CEILING_ROWS, "test")
  truth = structure.probabilities(frame)["click"].to_numpy()
  noisy = truth * np.exp(np.random.default_rng(0).normal(0, 0.5, truth.size))
  assert report_auc(frame["click"].to_numpy(), truth) == ceiling["ctr"]
  assert report_auc(frame["click"].to_numpy(), noisy) < ceiling["ctr"]


def report_auc(labels, scores):
  from dcrnn_tf.evaluation import roc_auc  # pylint: disable=import-outside-toplevel
  return roc_auc(labels, scores)


def test_a_metric_that_only_some_runs_have_is_left_out_not_a_crash():
  """Results of an older version (no positive rate) beside new ones, as a rerun that
  adds seeds reuses them."""
  row = plan.Row("models", "mmoe", "mmoe", {}, (1, 2))
  old, new = ({"auc": 0.7, "logloss": 0.3, "count": 10},
              {"auc": 0.8, "logloss": 0.2, "positive_rate": 0.1, "count": 10})
  results = {}
  for run, metrics in zip(row.runs(), (new, old)):
    results[run.key] = {"run": run.to_dict(), "metrics": {"ctr": metrics},
                        "validation_metrics": {"ctr": metrics},
                        "trainable_parameters": 1, "parameters_per_added_task": 1,
                        "flops_per_example": 1, "peak_rss_mib": 1.0, "epochs": 1,
                        "val_loss": [0.1]}
  metrics = report.aggregate(row, results, None)["metrics"]["ctr"]
  assert metrics["auc_mean"] == pytest.approx(0.75) and metrics["val_auc_mean"] == 0.75
  assert not any(key.startswith("positive_rate") for key in metrics)


def test_rows_without_a_mean_auc_are_on_no_front():
  rows = [{"metrics": {"dwell": {"rmse_mean": 1.0}}, "flops_per_example": 10,
           "train_rows_per_s_input": None},
          {"metrics": {"ctr": {"auc_mean": 0.7}}, "flops_per_example": 20,
           "train_rows_per_s_input": None}]
  assert report.fronts(rows, [])["flops"] == [False, False]
  assert report.fronts(rows[1:], ["ctr"]) == {"flops": [True]}


# The planning of every kind in-process: `cli.execute` replaced by known results.

def known_result(job):
  """A run's result made up from its job: AUC 0.7 + 0.01 * seed (+ 0.02 for DCRNN), the
  parameters from the widths of its options."""
  run = job["run"]
  config = FeatureConfig.load(job["settings"]["feature_config"])
  widths = sum(sum(v) if isinstance(v, list) else v for k, v in run["options"].items()
               if k in sweep.WIDTH_OPTIONS and v)
  auc = 0.7 + 0.01 * run["seed"] + (0.02 if run["model"] == "dcrnn" else 0.0)
  metrics = {name: {"auc": auc + 0.001 * i, "logloss": 0.3, "positive_rate": 0.1,
                    "count": 100} for i, name in enumerate(config.output_names)}
  result = {"run": run, "metrics": metrics, "validation_metrics": metrics,
            "trainable_parameters": 1000 * len(config.tasks) + 10 * widths,
            "parameters_per_added_task": 1000, "flops_per_example": 20 * widths,
            "peak_rss_mib": 200.0, "epochs": 1, "val_loss": [0.3],
            # What `cli.execute` adds (the test's stand-in for it runs now, in no time).
            "run_seconds": 0.0, "finished_at": time.time()}
  if run["measure_speed"]:
    result.update(train_rows_per_s_input=1e6 / widths, train_rows_per_s_cached=2e6 / widths)
  return result


def run_in_process(monkeypatch, *argv):
  """Runs `python -m dcrnn_tf.benchmark` with these flags in this process, every run
  answered by `known_result`; returns the benchmark's JSON and the jobs in run order."""
  jobs = []

  def execute(job, run_dir):
    jobs.append({**job, "run_dir": run_dir})
    return known_result(job)

  monkeypatch.setattr(cli, "execute", execute)
  with flagsaver.flagsaver():
    flags.FLAGS(["prog", *argv])
    bench = cli.run_benchmark()
    cli.write_outputs(bench)
  return bench, jobs


def test_a_task_cosine_sweep_writes_a_data_set_per_point_and_its_ceiling(tmp_path,
                                                                        monkeypatch):
  bench, jobs = run_in_process(
      monkeypatch, "--flagfile=configs/benchmark_relatedness.flags",
      f"--data_dir={tmp_path / 'data'}", "--synthetic_train_rows=2000",
      "--synthetic_eval_rows=100", "--sweep=task_cosine:0,1", "--models=dcrnn,mmoe",
      "--seeds=1,2", f"--output_dir={tmp_path / 'out'}",
      f"--write_markdown={tmp_path / 'BENCHMARKS.md'}")
  for value in ("0", "1"):
    settings = json.loads((tmp_path / "data" / f"task_cosine={value}" / "synthetic.json"
                           ).read_text())
    assert settings["task_cosine"] == float(value)
  # Seed by seed across the points: a budget that runs out leaves no point empty.
  assert [(j["run"]["seed"], j["settings"]["data"]["options"]["data_dir"][-1],
           j["run"]["model"]) for j in jobs] == [
      (1, "0", "dcrnn"), (1, "0", "mmoe"), (1, "1", "dcrnn"), (1, "1", "mmoe"),
      (2, "0", "dcrnn"), (2, "0", "mmoe"), (2, "1", "dcrnn"), (2, "1", "mmoe")]
  assert all(not j["run"]["measure_speed"] for j in jobs)  # A quality-only section.
  points = bench["sweep"]["points"]
  assert [p["label"] for p in points] == ["task_cosine=0", "task_cosine=1"]
  assert points[1]["ceiling"] == sweep.synthetic_ceiling(42, task_cosine=1.0)
  assert bench["settings"]["train_path"].endswith(
      os.path.join("task_cosine=<value>", "train.tfrecord.gz"))
  assert render.has_current_layout(bench)
  markdown = (tmp_path / "BENCHMARKS.md").read_text()
  assert "## Summary" in markdown.split("## Synthetic funnel")[0]
  # DCRNN's mean AUC is 0.02 above MMoE's at every seed: a win with a zero-width interval.
  assert ("| Synthetic funnel: task relatedness (cosine 0, 0.5, 0.9, 1), five seeds, "
          "task_cosine=0 | `mmoe` (best baseline) | +0.0200 [+0.0200, +0.0200] win | ctr win, cvr win, "
          "ctcvr win | `dcrnn`, `mmoe` |") in markdown  # MMoE: fewer FLOPs.
  assert "Ceiling (true probabilities' AUC): ctr " in markdown
  assert (tmp_path / "benchmarks" / "relatedness_sweep.png").stat().st_size > 0
  assert not (tmp_path / "benchmarks" / "relatedness_cost.png").exists()


def test_a_tasks_sweep_trains_on_the_first_tasks_and_reports_the_growth(tmp_path,
                                                                       monkeypatch):
  write_census_rows(str(tmp_path / "census-income.test.gz"), 300)
  bench, jobs = run_in_process(
      monkeypatch, "--flagfile=configs/benchmark_census_tasks.flags",
      f"--data_dir={tmp_path}", "--sweep=tasks:2,6", "--models=dcrnn,mmoe", "--seeds=1,2",
      f"--output_dir={tmp_path / 'out'}", "--write_markdown=")
  tasks = {len(FeatureConfig.load(j["settings"]["feature_config"]).tasks) for j in jobs}
  assert tasks == {2, 6}
  # The same model, options and seed at two points: two runs, each in its point's place.
  run_dirs = [j["run_dir"] for j in jobs]
  assert len(set(run_dirs)) == len(jobs) == 8
  assert {os.path.basename(os.path.dirname(os.path.dirname(d))) for d in run_dirs} == {
      "tasks=2", "tasks=6"}
  two, six = bench["sweep"]["points"]
  assert two["outputs"] == ["income", "marital"] and len(six["outputs"]) == 6
  assert two["rows"] == six["rows"]  # The same rows and split at every point.
  text = sweep_report.section(bench, "benchmarks")
  # 1000 parameters per task in the known results; the widths do not change.
  assert ("Per task added from tasks=2 to tasks=6 (the difference divided by 4): `dcrnn` "
          "1,000 params and 0 FLOPs; `mmoe` 1,000 params and 0 FLOPs.") in text
  assert "| model | tasks=2: mean AUC | tasks=6: mean AUC | tasks=2: params |" in text
  assert "Test positive rate: income 10.00%, marital 10.00%." in text


def test_a_size_sweep_scales_every_model_and_marks_the_front(tmp_path, monkeypatch):
  write_census_rows(str(tmp_path / "census-income.test.gz"), 300)
  bench, jobs = run_in_process(
      monkeypatch, "--flagfile=configs/benchmark_frontier.flags", f"--data_dir={tmp_path}",
      "--sweep=size:small,large", "--models=dcrnn,mmoe", "--seeds=1,2",
      f"--output_dir={tmp_path / 'out'}", f"--write_markdown={tmp_path / 'BENCHMARKS.md'}")
  by_size = {}
  for job in jobs:
    by_size.setdefault(job["run"]["model"], []).append(job["run"]["options"])
  small, large = by_size["mmoe"][0], by_size["mmoe"][1]
  assert (small["expert_units"], large["expert_units"]) == ([32], [128])
  assert small["num_experts"] == large["num_experts"] == 4
  assert [j["run"]["measure_speed"] for j in jobs] == [True] * 4 + [False] * 4
  table = sweep_report.frontier_table(bench)
  # Small models cost less; DCRNN has the higher AUC at each size.
  assert "| `dcrnn` | small |" in table and "| `mmoe` | large |" in table
  fronts = {tuple(line.split(" | ")[:2]): line.split(" | ")[-2:] for line in
            table.splitlines()[2:]}
  assert fronts[("| `mmoe`", "large")] == ["", " |"]
  for name in ("frontier_sweep.png", "frontier_cost.png", "frontier_frontier.png"):
    assert (tmp_path / "benchmarks" / name).stat().st_size > 0


def test_a_rerun_reuses_every_finished_run_and_reports_the_time_of_all(tmp_path,
                                                                        monkeypatch):
  """`cli.execute` for real, its worker process replaced by one that writes
  `known_result`: the first invocation runs everything, the second reuses it all."""
  workers = []

  def worker_process(command, log_path):
    with open(command[-1], encoding="utf-8") as f:
      job = json.load(f)
    workers.append(job["run"])
    with open(os.path.join(os.path.dirname(command[-1]), worker.RESULT), "w",
              encoding="utf-8") as f:
      json.dump(known_result(job), f)
    return True

  monkeypatch.setattr(cli, "_subprocess", worker_process)
  argv = ["prog", "--flagfile=configs/benchmark_relatedness.flags",
          f"--data_dir={tmp_path / 'data'}", "--synthetic_train_rows=2000",
          "--synthetic_eval_rows=100", "--sweep=task_cosine:0,1", "--models=dcrnn,mmoe",
          "--seeds=1,2", f"--output_dir={tmp_path / 'out'}"]
  benches = []
  for _ in range(2):
    with flagsaver.flagsaver():
      flags.FLAGS(argv)
      benches.append(cli.run_benchmark())
  first, again = benches
  assert len(workers) == 8  # The second invocation started no process.
  assert first["runs"] == {"planned": 8, "failed": 0, "not_started": 0, "reused": 0}
  assert again["runs"] == {"planned": 8, "failed": 0, "not_started": 0, "reused": 8}
  assert again["run_seconds"] == first["run_seconds"] > 0
  assert again["sweep"]["points"] == first["sweep"]["points"]
  head = " ".join(report.section_head(again))
  assert ("8 finished runs reused from earlier invocations (every process's time in "
          "all: 0.0 minutes); this invocation 0.0 minutes of a 40-minute budget; 8 runs"
          ) in head


def test_a_sweep_refuses_ablations_and_the_profile(tmp_path, monkeypatch):
  with pytest.raises(errors.UsageError, match="--sweep runs the model table only"):
    run_in_process(monkeypatch, "--flagfile=configs/benchmark_relatedness.flags",
                   f"--data_dir={tmp_path}", "--ablations=cell",
                   f"--output_dir={tmp_path / 'out'}")


@pytest.mark.parametrize("section", sorted(sections.available(os.path.join(ROOT, "configs"))))
def test_every_section_plans_and_reports_under_its_smoke_preset(section, tmp_path,
                                                                monkeypatch):
  """Each committed section's flagfile with `--preset=smoke`, in-process on small data,
  every run answered by `known_result` (the census smoke and the tasks-sweep smoke below
  train for real): its data, plan, JSON, section and plots."""
  flagfile = os.path.join(ROOT, "configs", f"benchmark_{section}.flags")
  data = tmp_path / "synthetic"  # Written by the section itself.
  if sections.reads_files(flagfile):
    data = tmp_path / "census"
    data.mkdir()
    write_census_rows(str(data / "census-income.test.gz"), 300)
  jobs = []

  def execute(job, run_dir):
    jobs.append(job)
    return None if job["run"] is None or job.get("profile") else known_result(job)

  monkeypatch.setattr(cli, "execute", execute)
  with flagsaver.flagsaver():
    flags.FLAGS(["prog", f"--flagfile={flagfile}", f"--data_dir={data}",
                 "--synthetic_train_rows=2000", "--synthetic_eval_rows=100",
                 "--preset=smoke", f"--output_dir={tmp_path / 'out'}",
                 f"--write_markdown={tmp_path / 'BENCHMARKS.md'}"])
    bench = cli.run_benchmark()
    cli.write_outputs(bench)
    quality_only = not flags.FLAGS.measure_speed
  runs = [j["run"] for j in jobs if j["run"] and not j.get("profile")]
  assert runs and {r["seed"] for r in runs} == {1}  # The smoke preset: one seed.
  assert all(j["settings"]["epochs"] == 1 for j in jobs)
  assert bench["runs"] == {"planned": len(runs), "failed": 0, "not_started": 0, "reused": 0}
  assert render.has_current_layout(bench)
  text = render.section(bench, "benchmarks")
  if quality_only:  # No speed measured, none shown (not even the input pipeline's).
    assert not any(r["measure_speed"] for r in runs)
    assert all(j["run"] is not None for j in jobs) and bench["pipeline"] is None
    assert "ex/s" not in text
  else:  # Each model's first run measures speed, and the tables show it.
    assert any(r["measure_speed"] for r in runs) and "train ex/s" in text
  # Everything in the smoke folder, apart from full runs; never the committed Markdown.
  assert os.listdir(tmp_path / "out") == ["smoke"]
  markdown = (tmp_path / "out" / "smoke" / "BENCHMARKS.md").read_text()
  assert bench["title"] in markdown and "## Summary" in markdown
  assert not (tmp_path / "BENCHMARKS.md").exists()
  (tmp_path / "plots").mkdir()
  plots = render.write_plots(bench, str(tmp_path / "plots"))
  assert plots and all(os.path.getsize(plot) > 0 for plot in plots)


# The sections runner.

def test_sections_run_each_flagfile_with_the_data_dir_where_it_reads_files(tmp_path):
  (tmp_path / "benchmark_real.flags").write_text("# Reads files.\n--benchmark_name=real\n")
  (tmp_path / "benchmark_made.flags").write_text("--synthetic\n--data_dir=runs/made\n")
  (tmp_path / "other.flags").write_text("--synthetic\n")
  (tmp_path / "benchmark_nested.flags").write_text(
      f"--flagfile={tmp_path / 'other.flags'}\n--benchmark_name=nested\n")
  (tmp_path / "benchmark_undone.flags").write_text(
      f"--flagfile={tmp_path / 'other.flags'}\n--synthetic=false\n")
  assert list(sections.available(str(tmp_path))) == ["made", "nested", "real", "undone"]
  assert [sections.reads_files(str(tmp_path / f"benchmark_{name}.flags"))
          for name in ("made", "nested", "real", "undone")] == [False, False, True, True]
  commands = sections.commands(["made", "real"], str(tmp_path), "/data", ["--preset=smoke"])
  assert [c[1:] for c in commands] == [
      ["-m", "dcrnn_tf.benchmark", f"--flagfile={tmp_path / 'benchmark_made.flags'}",
       "--preset=smoke"],
      ["-m", "dcrnn_tf.benchmark", f"--flagfile={tmp_path / 'benchmark_real.flags'}",
       "--data_dir=/data", "--preset=smoke"]]
  with pytest.raises(errors.UsageError,
                     match=r"unknown \['nope'\]; known: \['made', 'nested', 'real', 'undone'\]"):
    sections.commands(["real", "nope"], str(tmp_path), "/data", [])
  (tmp_path / "benchmark_broken.flags").write_text(f"--flagfile={tmp_path / 'gone.flags'}\n")
  with pytest.raises(errors.UsageError, match=r"gone\.flags: no such flagfile"):
    sections.commands(["broken"], str(tmp_path), "/data", [])
  (tmp_path / "benchmark_broken.flags").unlink()
  with pytest.raises(errors.UsageError, match="Section 'real' reads data files: give --data_dir"):
    sections.commands(["made", "real"], str(tmp_path), None, [])


def test_every_committed_section_is_a_flagfile_the_runner_finds():
  assert set(sections.available(os.path.join(ROOT, "configs"))) >= {
      "census", "census_e16", "census_quality", "synthetic", "census_tasks", "relatedness",
      "frontier"}


# One real sweep, end to end.

@pytest.mark.slow
def test_smoke_of_a_tasks_sweep_on_raw_census_rows(tmp_path):
  """The census tasks section's smoke preset at 2 tasks of the smoke's census config
  (DCRNN, one seed; one point: the in-process tests plan several): the run trains on
  the point's config, and the section and plots are written."""
  out = run_smoke(tmp_path, "configs/benchmark_census_tasks.flags", "--sweep=tasks:2")
  bench = json.loads((out / "census_tasks.json").read_text())
  [point] = bench["sweep"]["points"]
  [row] = point["models"]
  assert row["seeds_done"] == [1] and list(row["metrics"]) == ["income", "marital"]
  assert 0.0 < row["metrics"]["income"]["positive_rate_mean"] < 1.0
  assert row["trainable_parameters"] > row["parameters_per_added_task"] > 0
  markdown = (out / "BENCHMARKS.md").read_text()
  assert "### tasks=2" in markdown and "](benchmarks/census_tasks_sweep.png)" in markdown
