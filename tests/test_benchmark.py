"""The benchmark: its plan of runs, FLOP counting, the report, and the smoke preset end to
end on a tiny file in the raw census format (one model and one ablation: every output
once; what differs between models is checked on the report and the worker directly)."""

import gzip
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import

from dcrnn_tf import models
from dcrnn_tf.benchmark import measure
from dcrnn_tf.benchmark import plan
from dcrnn_tf.benchmark import profile
from dcrnn_tf.benchmark import render
from dcrnn_tf.benchmark import report
from dcrnn_tf.benchmark import worker
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.features import FeatureConfig, Task

from conftest import funnel_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CENSUS_NUMERIC = (0, 5, 16, 17, 18, 30, 39)
DCRNN = {"embedding_dim": 8, "cross_axis": "depth", "cell": "gru", "depth": 3,
         "shared_units": 8, "private_units": 4, "residual": False, "layer_norm": True}


def independent_config() -> FeatureConfig:
  """`funnel_config` with two independent tasks (as the census tasks are)."""
  config = funnel_config()
  return FeatureConfig(features=config.features, labels=config.labels,
                       tasks=(Task("ctr", "click"), Task("cvr", "conversion")))


def test_ablation_rows_change_one_thing_of_the_defaults():
  rows = plan.ablation_rows(plan.ABLATION_GROUPS, DCRNN, ("shared_bottom", {}),
                            independent_config(), seeds=(1, 2), learning_rate=0.002)
  labels = lambda group: [row.label for row in rows if row.group == group]
  assert labels("cell") == ["cell=gru (default)", "cell=lstm", "cell=simple"]
  assert labels("depth") == ["depth=1", "depth=2", "depth=3 (default)", "depth=4"]
  assert labels("capacity") == ["state only (default)", "towers also read x0",
                                "parallel MLP (64,)", "no x0 projection, rank 32"]
  assert labels("state") == ["plain", "residual", "layer norm (default)",
                             "residual and layer norm"]
  assert labels("learning_rate") == ["learning rate 0.001", "learning rate 0.002 (default)",
                                     "learning rate 0.004"]
  rates = [row.learning_rate for row in rows if row.group == "learning_rate"]
  assert rates == [0.001, None, 0.004]
  assert [run.learning_rate for row in rows if row.group == "learning_rate"
          for run in row.runs()[:1]] == rates
  sharing = {row.label: row.options for row in rows if row.group == "sharing"}
  assert sharing["hard (shared 12, private 0)"]["private_units"] == 0
  assert sharing["separate (shared 0, private 12)"]["shared_units"] == 0
  transfer = [row for row in rows if row.group == "transfer"]
  assert [row.depends_on for row in transfer] == [{}, {"cvr": "ctr"}]
  assert rows[2].model == "shared_bottom" and rows[2].label == "no cross (shared_bottom)"
  # The default appears in every group but trains once per seed; so does the MLP.
  model_rows = plan.model_rows({"dcrnn": DCRNN, "shared_bottom": {}}, (1, 2, 3), {})
  assert [r.seed for r in plan.unique_runs(model_rows)] == [1, 1, 2, 2, 3, 3]
  runs = plan.unique_runs(model_rows + rows)
  assert len(runs) == 2 * 3 + 17 * 2
  assert sum(r.measure_speed for r in runs) == 2
  quality_only = plan.model_rows({"dcrnn": DCRNN}, (1, 2), {}, measure_speed=False)
  assert not any(r.measure_speed for r in plan.unique_runs(quality_only + rows))


def test_each_ablation_group_marks_the_models_actual_default_once():
  """Every group has exactly one line marked default, the one that builds DCRNN's
  constructor defaults, and no two lines build the same model (variants that assumed
  an old default would fail here)."""
  defaults = plan.dcrnn_defaults({})
  rows = plan.ablation_rows(plan.ABLATION_GROUPS, defaults, ("shared_bottom", {}),
                            independent_config(), seeds=(1,), learning_rate=0.002)
  for group in set(plan.ABLATION_GROUPS) - {"transfer", "learning_rate"}:
    lines = [row for row in rows if row.group == group and row.model == "dcrnn"]
    marked = [row for row in lines if row.label.endswith("(default)")]
    assert len(marked) == 1, (group, [row.label for row in lines])
    assert plan.dcrnn_defaults(marked[0].options) == defaults, group
    built = [json.dumps(plan.dcrnn_defaults(row.options), sort_keys=True) for row in lines]
    assert len(set(built)) == len(built), group


def test_transfer_ablation_is_skipped_when_the_tasks_already_depend():
  rows = plan.ablation_rows(["transfer"], DCRNN, ("shared_bottom", {}), funnel_config(),
                            learning_rate=0.001,
                            seeds=(1,))
  assert len(rows) == 1 and rows[0].skip_reason and not rows[0].runs()


def test_forward_flops_counts_the_dense_layers():
  config = funnel_config()
  small = models.build_model("shared_bottom", config, bottom_units=[16], tower_units=[8])
  large = models.build_model("shared_bottom", config, bottom_units=[64], tower_units=[8])
  small_flops = measure.forward_flops(small, config)
  # The bottom's MatMul alone: 2 · (3 fields · 8) · 16.
  assert small_flops > 2 * 24 * 16
  assert measure.forward_flops(large, config) - small_flops >= 2 * 24 * 48


def write_census_rows(path: str, rows: int, seed: int = 0) -> None:
  """Rows in the raw UCI census format (42 columns, ", "-separated, no header, gzip)
  whose labels depend on a few columns."""
  rng = np.random.default_rng(seed)
  with gzip.open(path, "wt", encoding="utf-8") as f:
    for _ in range(rows):
      values = [f"v{rng.integers(4)}" for _ in range(42)]
      for column in CENSUS_NUMERIC:
        values[column] = str(int(rng.integers(0, 90)))
      values[24] = f"{rng.uniform(100, 3000):.2f}"
      values[40] = str(int(rng.choice([94, 95])))
      rich = int(values[0]) > 45 and values[4] != "v0"
      values[41] = "50000+." if rng.random() < (0.6 if rich else 0.05) else "- 50000."
      single = int(values[0]) < 30 or values[12] == "v1"
      values[7] = "Never married" if rng.random() < (0.8 if single else 0.1) else "Widowed"
      if rng.random() < 0.05:
        values[9] = "?"
      f.write(", ".join(values) + "\n")


CENSUS_CONFIG = os.path.join(ROOT, "configs", "census_features.json")
SMOKE_FEATURES = 6  # The smoke run's first census features; the others are ignored.


def test_the_census_config_reads_raw_census_rows(tmp_path):
  """configs/census_features.json on rows in the raw format: every row valid, prepared,
  and a DCRNN on it predicts both tasks."""
  path = str(tmp_path / "census-income.test.gz")
  write_census_rows(path, 300)
  config = FeatureConfig.load(CENSUS_CONFIG)
  report, statistics = scan.scan(path, config, data_format="csv", learn=True)
  assert (report.rows, report.valid_rows) == (300, 300)
  prepared = scan.prepare(config, statistics)
  features, labels = next(iter(pipeline.make_dataset(path, prepared, 64, data_format="csv")))
  assert len(features) == len(config.features) == 39
  assert sorted(labels) == ["__weight__", "income_over_50k", "never_married"]
  outputs = models.build_model("dcrnn", prepared, **DCRNN)(features)
  assert {name: value.shape for name, value in outputs.items()} == {
      "income": [64], "marital": [64]}


def smoke_census_config(path) -> None:
  """The census config with its first `SMOKE_FEATURES` features (the others ignored):
  the raw format and both tasks, at a fraction of the model's size."""
  config = json.loads(pathlib.Path(CENSUS_CONFIG).read_text())
  config.setdefault("ignore", []).extend(
      f.get("column", f["name"]) for f in config["features"][SMOKE_FEATURES:])
  config["features"] = config["features"][:SMOKE_FEATURES]
  pathlib.Path(path).write_text(json.dumps(config))


def run_smoke(work, flagfile: str, *flags) -> pathlib.Path:
  """Runs a benchmark flagfile's smoke preset, DCRNN alone, on 1,500 raw census rows
  written into `work` (the census config on its first features); returns where it
  wrote (`<output_dir>/smoke`)."""
  write_census_rows(str(work / "census-income.test.gz"), 1500)
  smoke_census_config(work / "census_features.json")
  out = work / "out"
  command = [sys.executable, "-m", "dcrnn_tf.benchmark", f"--flagfile={flagfile}",
             f"--data_dir={work}", f"--feature_config={work / 'census_features.json'}",
             f"--output_dir={out}", "--preset=smoke", "--models=dcrnn", "--batch_size=256",
             *flags]
  result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
  if result.returncode:
    raise AssertionError(f"{command} failed:\n{result.stderr[-4000:]}")
  assert os.listdir(out) == ["smoke"]  # Never beside the full runs.
  return out / "smoke"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  """Runs the census benchmark's smoke preset: DCRNN, its transfer ablation and its step
  profile."""
  return run_smoke(tmp_path_factory.mktemp("benchmark"), "configs/benchmark_census.flags",
                   "--ablations=transfer", "--latency_batch_sizes=1,64", "--profile=on")


@pytest.mark.slow
def test_smoke_writes_every_output(smoke):
  for name in ("census.json", "census.md", "BENCHMARKS.md", "census_auc.png",
               "census_auc_vs_flops.png", "census_curves.png",
               "benchmarks/census.json", "benchmarks/census_auc.png"):
    assert (smoke / name).stat().st_size > 0, name
  markdown = (smoke / "BENCHMARKS.md").read_text()
  assert "python -m dcrnn_tf.benchmark --flagfile=configs/benchmark_census.flags" in markdown
  assert "](benchmarks/census_auc.png)" in markdown and "| `dcrnn` |" in markdown
  assert "### Where a training step's time goes" in markdown
  assert "| shared cross |" in markdown


@pytest.mark.slow
def test_smoke_json_has_the_documented_keys_and_sane_values(smoke):
  bench = json.loads((smoke / "census.json").read_text())
  assert render.has_current_layout(bench)
  assert bench["outputs"] == ["income", "marital"]
  assert bench["runs"] == {"planned": 2, "failed": 0, "not_started": 0, "reused": 0}
  assert bench["wall_seconds"] > bench["run_seconds"] > 0
  assert {"cpu", "cores", "tensorflow"} <= set(bench["machine"])
  assert bench["settings"]["rows"]["train"] > 1000
  pipeline = bench["pipeline"]
  assert pipeline["source"] == "memory"  # The census rows fit under the default limit.
  assert pipeline["rows_per_s"] == pipeline["memory_rows_per_s"]
  assert pipeline["load_rows_per_s"] > 0 and pipeline["files_rows_per_s"] > 0
  assert [row["label"] for row in bench["models"]] == ["dcrnn"]
  for row in bench["models"] + bench["ablations"]:
    assert set(row) == set(report.ROW_KEYS)
    assert row["seeds_done"] == [1]
    for metrics in row["metrics"].values():
      assert 0.0 <= metrics["auc_mean"] <= 1.0 and metrics["logloss_mean"] > 0.0
    assert 0 < row["parameters_per_added_task"] < row["trainable_parameters"]
    assert row["flops_per_example"] > 0 and row["peak_rss_mib"] > 100
    assert len(row["val_loss"][0]) == row["epochs"][0] == 1
  for row in bench["models"]:
    assert row["train_rows_per_s_input"] > 0 and row["train_rows_per_s_cached"] > 0
    assert row["pipeline_ratio"] > 0
    assert all(row["latency_ms"][size]["median_ms"] > 0 for size in ("1", "64"))
  assert list(bench["profile"]) == ["dcrnn"]
  assert set(bench["profile"]["dcrnn"]["step_ms"]) == set(profile.STEP_PARTS) | {
      "train_step", "fit"}
  # The step as it trains (on ids) and on raw values (the model preprocessing them).
  assert bench["profile"]["dcrnn"]["step_ms_raw_input"].keys() == bench["profile"][
      "dcrnn"]["step_ms"].keys()
  assert "private cross marital" in bench["profile"]["dcrnn"]["block_ms"]
  off, on = bench["ablations"]
  assert (off["depends_on"], on["depends_on"]) == ({}, {"marital": "income"})
  assert off["metrics"] == bench["models"][0]["metrics"]  # The same run, reused.
  assert on["trainable_parameters"] > off["trainable_parameters"]


def test_pipeline_sentence_names_the_source_training_reads():
  files = report.pipeline_sentence({"source": "files", "files_rows_per_s": 123_456.0,
                                    "rows_per_s": 123_456.0})
  assert "every epoch: 123.5k rows/s" in files and "over `--in_memory_max_mib`" in files
  memory = report.pipeline_sentence({"source": "memory", "files_rows_per_s": 100_000.0,
                                     "load_rows_per_s": 90_000.0,
                                     "memory_rows_per_s": 400_000.0, "rows_per_s": 400_000.0})
  assert "90.0k rows/s for the one read of the files, then 400.0k rows/s every epoch" in memory


@pytest.mark.slow
def test_the_profile_of_another_model_has_its_step_parts_only(smoke):
  """The worker's profile job for MMoE on the smoke's data: step parts, no block layers
  (those are DCRNN's)."""
  [job_path] = (smoke / "runs").glob("profile-dcrnn-*/job.json")
  job = json.loads(job_path.read_text())
  run = dict(job["run"], model="mmoe", options={"embedding_dim": 4, "num_experts": 2,
                                                "expert_units": [4], "tower_units": [4]})
  result = worker.profile_step(job["settings"], run)
  assert set(result["step_ms"]) == set(profile.STEP_PARTS) | {"train_step", "fit"}
  assert "block_ms" not in result


@pytest.mark.slow
def test_the_tables_have_a_row_per_model(smoke):
  bench = json.loads((smoke / "census.json").read_text())
  other = dict(bench["models"][0], label="mmoe", model="mmoe")
  bench["models"].append(other)
  markdown = render.document([bench], "benchmarks")
  assert "| `dcrnn` |" in markdown and "| `mmoe` |" in markdown
  assert markdown.index("| `dcrnn` |") < markdown.index("| `mmoe` |")


@pytest.mark.slow
def test_a_json_of_an_older_layout_gets_a_rerun_note_and_loses_no_other_section(smoke):
  bench = json.loads((smoke / "census.json").read_text())
  old = {"name": "old", "title": "Old data", "command": "python -m dcrnn_tf.benchmark --x",
         "pipeline_rows_per_s": 1.0, "models": [], "ablations": []}
  assert not render.has_current_layout(old)
  markdown = render.document([bench, old], "benchmarks")
  assert "| `dcrnn` |" in markdown
  assert "## Old data" in markdown and "`benchmarks/old.json` was written by an older" in markdown
  assert "python -m dcrnn_tf.benchmark --x" in markdown


def test_paired_difference_is_a_t_interval_over_the_common_seeds():
  tie = report.paired_difference({"1": 0.5, "2": 0.7, "3": 0.6, "9": 0.0},
                                 {"1": 0.4, "2": 0.5, "3": 0.5})
  half = 4.303 * np.std([0.1, 0.2, 0.1], ddof=1) / np.sqrt(3)
  assert tie["seeds"] == 3 and tie["call"] == "tie"
  assert tie["mean"] == pytest.approx(0.4 / 3)
  assert (tie["low"], tie["high"]) == pytest.approx((0.4 / 3 - half, 0.4 / 3 + half))
  win = report.paired_difference({"1": 0.51, "2": 0.52, "3": 0.515},
                                 {"1": 0.50, "2": 0.50, "3": 0.50})
  assert win["call"] == "win" and win["low"] > 0
  loss = report.paired_difference({"1": 0.40, "2": 0.41, "3": 0.40},
                                  {"1": 0.50, "2": 0.50, "3": 0.51})
  assert loss["call"] == "loss" and loss["high"] < 0
  assert report.paired_difference({"1": 0.5}, {"1": 0.4}) is None


def _row(group, label, model, aucs, val_auc=None):
  row = {key: None for key in report.ROW_KEYS}
  row.update(group=group, label=label, model=model, seeds=list(aucs),
             seeds_done=list(aucs), metrics={"income": {
      "auc_mean": float(np.mean(list(aucs.values()))),
      "auc_std": float(np.std(list(aucs.values()), ddof=1)),
      "auc_by_seed": {str(seed): auc for seed, auc in aucs.items()}}})
  if val_auc is not None:
    row["metrics"]["income"]["val_auc_mean"] = val_auc
  return row


def test_choices_look_at_the_validation_auc_never_the_test_auc():
  bench = {"outputs": ["income"], "reference_model": report.BEST_BASELINE, "models": [
      _row("models", "dcrnn", "dcrnn", {1: 0.95, 2: 0.96}, val_auc=0.99),
      _row("models", "mmoe", "mmoe", {1: 0.94, 2: 0.94}, val_auc=0.96),
      _row("models", "ple", "ple", {1: 0.97, 2: 0.98}, val_auc=0.95)], "ablations": [
      _row("state", "plain (default)", "dcrnn", {1: 0.95, 2: 0.96}, val_auc=0.94),
      _row("state", "residual", "dcrnn", {1: 0.93, 2: 0.93}, val_auc=0.95)]}
  assert report.reference_row(bench)["label"] == "mmoe"
  assert report.best_by_group(bench["ablations"], ["income"]) == {"state": "residual"}
  table = report.ablation_table(bench)
  assert "| state | **residual** | 0.9300 ± 0.0000 | 0.9300 | 0.9500 |" in table
  assert report.dcrnn_verdict(bench) == (
      "**In short:** `dcrnn` against `mmoe` (test AUC, paired): income tie. The DCRNN "
      "ablation lines chosen on validation AUC: state `residual`: income loss.")


def test_paired_table_compares_every_row_with_the_reference_seed_by_seed():
  bench = {"outputs": ["income"], "reference_model": "mmoe", "models": [
      _row("models", "dcrnn", "dcrnn", {1: 0.95, 2: 0.96, 3: 0.955}),
      _row("models", "mmoe", "mmoe", {1: 0.94, 2: 0.94, 3: 0.94}),
      _row("models", "ple", "ple", {1: 0.97, 2: 0.98, 3: 0.975})], "ablations": [
      _row("depth", "depth=2 (default)", "dcrnn", {1: 0.95, 2: 0.96, 3: 0.955}),
      _row("depth", "depth=1", "dcrnn", {1: 0.93, 2: 0.93}),
      # The reference's own runs under an ablation's name: no line of +0.0000.
      _row("cross_axis", "no cross (mmoe)", "mmoe", {1: 0.94, 2: 0.94, 3: 0.94})]}
  table = report.paired_table(bench)
  assert "| `dcrnn` | +0.0150 [" in table and "] win |" in table
  assert "| `dcrnn` depth: depth=1 | -0.0100 [" in table
  assert "(default)" not in table and "| `mmoe` |" not in table
  assert "no cross" not in table
  bench["reference_model"] = report.BEST_BASELINE
  assert report.reference_row(bench)["label"] == "ple"
  assert "| `mmoe` | -0.0350 [" in report.paired_table(bench)


def _regression_row(label, rmses, r2s):
  row = {key: None for key in report.ROW_KEYS}
  row.update(group="models", label=label, model=label, seeds=list(rmses),
             seeds_done=list(rmses), metrics={"dwell": {
      "rmse_mean": float(np.mean(list(rmses.values()))),
      "rmse_std": float(np.std(list(rmses.values()), ddof=1)),
      "rmse_by_seed": {str(seed): value for seed, value in rmses.items()},
      "r2_mean": float(np.mean(r2s)), "r2_std": float(np.std(r2s, ddof=1)),
      "val_r2_mean": float(np.mean(r2s))}})
  return row


def test_a_regression_output_is_compared_on_its_rmse_lower_being_better():
  bench = {"outputs": ["dwell"], "reference_model": report.BEST_BASELINE, "ablations": [],
           "models": [_regression_row("dcrnn", {1: 10.0, 2: 10.2, 3: 10.1}, [0.5, 0.5, 0.5]),
                      _regression_row("mmoe", {1: 12.0, 2: 12.1, 3: 12.0}, [0.4, 0.4, 0.4]),
                      _regression_row("ple", {1: 11.0, 2: 11.2, 3: 11.1}, [0.45, 0.46, 0.45])]}
  assert report.headline(bench, "dwell") == "rmse"
  assert report.reference_row(bench)["label"] == "ple"  # The best validation R².
  table = report.paired_table(bench)
  assert "| model | dwell RMSE − `ple` |" in table
  assert "| `dcrnn` | -1 [" in table and "] win |" in table
  assert "| `mmoe` | +0.9333 [" in table and "] loss |" in table
  assert "| model | dwell RMSE | dwell R² |" in report.model_table(bench)
  assert report.dcrnn_verdict(bench) == (
      "**In short:** `dcrnn` against `ple` (test AUC, RMSE of a regression, paired): "
      "dwell win.")


def test_the_six_task_census_config_reads_raw_census_rows_without_leaks(tmp_path):
  """configs/census_6tasks.json: six tasks, no feature from a label's column or from a
  column that gives a label away."""
  path = str(tmp_path / "census-income.test.gz")
  write_census_rows(path, 300)
  config = FeatureConfig.load(os.path.join(ROOT, "configs", "census_6tasks.json"))
  assert [t.name for t in config.tasks] == ["income", "marital", "full_year",
                                            "self_employed", "union", "veterans"]
  features = {f.source for f in config.features}
  leaks = {"tax_filer_stat", "detailed_household_and_family_stat",
           "detailed_household_summary_in_household", "class_of_worker",
           "fill_inc_questionnaire_for_veterans_admin"}
  assert not features & ({label.source for label in config.labels} | leaks)
  assert set(config.ignore) == leaks and config.weight == "instance_weight"
  report, statistics = scan.scan(path, config, data_format="csv", learn=True)
  assert (report.rows, report.valid_rows) == (300, 300)
  prepared = scan.prepare(config, statistics)
  features, labels = next(iter(pipeline.make_dataset(path, prepared, 64, data_format="csv")))
  outputs = models.build_model("mmoe", prepared)(features)
  assert sorted(outputs) == sorted(t.name for t in config.tasks)
