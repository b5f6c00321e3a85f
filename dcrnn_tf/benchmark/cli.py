r"""The side-by-side benchmark: every registered model and the DCRNN ablations.

  python -m dcrnn_tf.benchmark --flagfile=configs/benchmark_census.flags \
      --data_dir=../shared/data/census-income
  python -m dcrnn_tf.benchmark --flagfile=configs/benchmark_synthetic.flags
  python -m dcrnn_tf.benchmark ... --preset=smoke      # the same in a few minutes

The data, training and model flags are those of `dcrnn_tf.main` (`dcrnn_tf.run_flags`:
`--data_dir`, `--split`, `--feature_config`, `--epochs`, `--steps_per_execution`,
`--early_stopping_patience`, `--loss_weighting`, `--embedding_dim`, `--shared_units`…;
one set of model flags for all models). The benchmark prepares the feature config from the training
part once, then trains every model of `--models` (default: all registered) for each of
`--seeds`, and the DCRNN variants of `--ablations` for the first `--ablation_seeds`
seeds, each run in its own process (`dcrnn_tf.benchmark.worker`), trained by
`dcrnn_tf.trainer.Trainer` with the training flags as `dcrnn_tf.main` trains: same split,
embedding size, batch size, optimizer, steps per execution and epoch budget for all,
early stopping as the flags ask (the benchmark configs: on the validation loss),
metrics on the test part. The first seed of each model also measures
throughput and the latency of its SavedModel (`dcrnn_tf.benchmark.latency`).

Writes to `--output_dir` (`--preset=smoke`: its `smoke` folder, so that a smoke run
never replaces the results of the full runs there): `<name>.json` (every row, see
`report.ROW_KEYS`), `<name>.md` (the tables) and the PNG plots; `--sweep` runs the
model table at several points of one setting (the number of tasks, the tasks'
relatedness, the models' size: `dcrnn_tf.benchmark.sweep`) instead of once. With
`--write_markdown=BENCHMARKS.md` it also copies the JSON and plots to `benchmarks/`
beside that file and rewrites the file from every `benchmarks/*.json` there
(`--render_only` does only that, redrawing the plots, after a change of the report's
layout). Runs stop being started once
`--time_budget_minutes` is spent; what did not finish is marked so.
"""

import datetime
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from absl import flags
from absl import logging

from dcrnn_tf import early_stopping
from dcrnn_tf import errors
from dcrnn_tf import flag_checks
from dcrnn_tf import model_dir
from dcrnn_tf import models
from dcrnn_tf import objectives
from dcrnn_tf import outputs
from dcrnn_tf import run_flags
from dcrnn_tf.benchmark import latency
from dcrnn_tf.benchmark import measure
from dcrnn_tf.benchmark import plan
from dcrnn_tf.benchmark import render
from dcrnn_tf.benchmark import report
from dcrnn_tf.benchmark import sweep
from dcrnn_tf.benchmark import worker
from dcrnn_tf.data import synthetic
from dcrnn_tf.data.roles import DataRoles
from dcrnn_tf.features import FeatureConfig

FLAGS = flags.FLAGS

flags.DEFINE_string("benchmark_name", "benchmark",
                    "Name of the benchmark: its JSON and plot file names.")
flags.DEFINE_string("title", None, "Title of its Markdown section (default: the name).")
flags.DEFINE_string("output_dir", "runs/benchmark", "Runs, JSON, tables and plots.")
flags.DEFINE_list("models", [], "Models of the table (default: every registered model).")
flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds of the model table.")
flags.DEFINE_list("ablations", list(plan.ABLATION_GROUPS),
                  f"DCRNN ablation groups, of {', '.join(plan.ABLATION_GROUPS)}.")
flags.DEFINE_integer("ablation_seeds", 2, "The ablations use the first this many seeds.")
flags.DEFINE_string("reference_model", "best_baseline",
                    "The model every other row is compared with, seed by seed (paired "
                    "differences of test AUC); `best_baseline`: the model other than "
                    "dcrnn with the best mean validation AUC.")
flags.DEFINE_bool("measure_speed", True,
                  "The first seed of each model also measures training throughput and "
                  "SavedModel latency (off: a quality-only benchmark, whose speed columns "
                  "stay empty, e.g. on a machine shared with other work).")
flags.DEFINE_integer("max_train_batches", 0, "If > 0, train on this many batches per epoch.")
flags.DEFINE_integer("speed_batches", 30, "Batches per window of the in-memory training rate.")
flags.DEFINE_integer("speed_windows", 5, "Timed windows of the in-memory training rate.")
flags.DEFINE_list("latency_batch_sizes", ["1", "512"], "Batch sizes of the latency.")
flags.DEFINE_integer("latency_calls", 200, "Timed calls per latency batch size.")
flags.DEFINE_float("time_budget_minutes", 45.0,
                   "No run starts after this many minutes (the benchmark then reports "
                   "what finished).")
flags.DEFINE_integer("run_timeout_s", 900, "A run taking longer is stopped (and fails).")
flags.DEFINE_enum("profile", "off", ["off", "on", "only"],
                  "Profile one training step of each model (where its time goes): "
                  "`on` beside the training runs, `only` instead of them (the Markdown then "
                  "goes under --output_dir, never the committed one).")
flags.DEFINE_integer("profile_calls", 20, "Calls per timed repeat of the profile.")
flags.DEFINE_integer("profile_repeats", 5, "Timed repeats of the profile (the minimum counts).")
flags.DEFINE_enum("preset", "full", ["full", "smoke"],
                  "smoke: one seed, one epoch of at most 20 batches, few timing calls, "
                  "everything (the Markdown too, never the committed one) under "
                  "<output_dir>/smoke, apart from the full runs' results.")
flags.DEFINE_string("sweep", None,
                    "Run the model table at several points of one setting instead of once: "
                    "`tasks:2,4,6` (the feature config's first N tasks), "
                    "`task_cosine:0,0.5,0.9,1` (synthetic data: the tasks' relatedness), "
                    "`size:small,default,large` (every model's widths scaled); see "
                    "`dcrnn_tf.benchmark.sweep`. No ablations, no profile.")
flags.DEFINE_string("write_markdown", None,
                    "Also write this Markdown file (e.g. BENCHMARKS.md) from the JSON files "
                    "in benchmarks/ beside it, after copying this benchmark's there.")
flags.DEFINE_bool("render_only", False,
                  "Run nothing: redraw the plots and rewrite --write_markdown from the JSON "
                  "files already in benchmarks/ beside it.")

for _name in ("ablation_seeds", "speed_batches", "speed_windows", "latency_calls",
              "run_timeout_s", "profile_calls", "profile_repeats"):
  flag_checks.at_least(_name, 1)
flag_checks.at_least("max_train_batches", 0)
flag_checks.greater_than("time_budget_minutes", 0)
flag_checks.widths("latency_batch_sizes")

SMOKE = {"seeds": ["1"], "ablation_seeds": 1, "epochs": 1, "max_train_batches": 20,
         "speed_batches": 5, "speed_windows": 2, "latency_calls": 20, "profile_calls": 2,
         "profile_repeats": 2}
FIGURES_DIR = "benchmarks"
ROLES = ("train", "validation", "test")


def setting(name: str) -> Any:
  """A flag's value, or the `--preset=smoke` value where the preset sets one."""
  if FLAGS.preset == "smoke" and name in SMOKE:
    return SMOKE[name]
  return FLAGS[name].value


def output_dir() -> str:
  """Where the runs and outputs go: `--output_dir`, or its `smoke` folder under
  `--preset=smoke` (a smoke run's jobs differ from the full runs', so in the same place
  each would replace the other's finished runs)."""
  return os.path.join(FLAGS.output_dir, "smoke") if FLAGS.preset == "smoke" else (
      FLAGS.output_dir)


def prepare_data(point: Optional[sweep.Point] = None
                 ) -> Tuple[str, FeatureConfig, DataRoles]:
  """Checks the files of every role and prepares the feature config, once, in
  `<output_dir>/data` (a sweep's point: `<output_dir>/<point>/data`; a rerun reuses the
  prepared config).

  Returns:
    (the prepared feature config's file, the config, the data roles, checked).
  """
  out = output_dir() if point is None else os.path.join(output_dir(), point.label)
  changes: Dict[str, Any] = {}
  if FLAGS.synthetic:
    if not FLAGS.data_dir:
      raise errors.UsageError("--synthetic needs --data_dir.")
    cosine = FLAGS.synthetic_task_cosine
    if point is not None and point.kind == "task_cosine":
      cosine = float(point.value)
      changes["data_dir"] = sweep.point_data_dir(FLAGS.data_dir, point)
    synthetic.ensure_dataset(changes.get("data_dir", FLAGS.data_dir),
                             train_rows=FLAGS.synthetic_train_rows,
                             eval_rows=FLAGS.synthetic_eval_rows, seed=FLAGS.seed,
                             dwell_time=FLAGS.synthetic_dwell, task_cosine=cosine)
  elif point is not None and point.kind == "task_cosine":
    raise errors.UsageError("--sweep=task_cosine:... needs --synthetic.")
  if point is not None and point.kind == "tasks":
    source = run_flags.data_options().path("feature_config")
    os.makedirs(out, exist_ok=True)
    changes["feature_config"] = os.path.abspath(os.path.join(out, "feature_config.json"))
    sweep.first_tasks(FeatureConfig.load(source), int(point.value)).save(
        changes["feature_config"])
  directory = model_dir.ModelDirectory(os.path.join(out, "data"))
  data = DataRoles(run_flags.data_options(**changes), FLAGS.split, FLAGS.split_seed,
                   report_path=directory.report_path("train"))
  feature_config = directory.prepared_feature_config(data, may_prepare=True)
  directory.save_prepared_feature_config(feature_config, data.options.path("feature_config"),
                                         FLAGS.split, FLAGS.split_seed)
  if FLAGS.early_stopping_patience:
    early_stopping.check_monitor(FLAGS.early_stopping_monitor,
                                 objectives.output_metrics(feature_config))
  for role in ROLES:
    if role not in data.reports:
      data.check(role, feature_config)
  return os.path.abspath(directory.file(model_dir.FEATURE_CONFIG)), feature_config, data


def plan_rows(feature_config: FeatureConfig, point: Optional[sweep.Point] = None
              ) -> List[plan.Row]:
  """The model table's rows, then the ablations' (models that refuse the config are
  listed as not run, with the reason); at a `size` point, every model's widths scaled."""
  names = FLAGS.models or list(models.MODELS)
  options, skip = {}, {}
  for name in names:
    options[name] = run_flags.model_options(name)
    if point is not None and point.kind == "size":
      options[name] = sweep.scaled_options(options[name], point.number)
    try:
      models.build_model(name, feature_config, **options[name])
    except ValueError as e:
      skip[name] = str(e)
  seeds = [int(s) for s in setting("seeds")]
  rows = plan.model_rows(options, seeds, skip, measure_speed=FLAGS.measure_speed)
  if FLAGS.ablations:
    rows += plan.ablation_rows(FLAGS.ablations, run_flags.model_options("dcrnn"),
                               ("shared_bottom", run_flags.model_options("shared_bottom")),
                               feature_config, seeds[:setting("ablation_seeds")],
                               FLAGS.learning_rate)
  return rows


def execute(job: Mapping[str, Any], run_dir: str) -> Optional[Dict[str, Any]]:
  """Runs one worker job in a fresh process (reusing a finished identical one)."""
  os.makedirs(run_dir, exist_ok=True)
  job_path = os.path.join(run_dir, "job.json")
  result_path = os.path.join(run_dir, worker.RESULT)
  text = json.dumps(job, indent=2, sort_keys=True)
  if os.path.exists(result_path) and os.path.exists(job_path):
    with open(job_path, encoding="utf-8") as f:
      if f.read() == text:
        with open(result_path, encoding="utf-8") as r:
          return json.load(r)
  if os.path.exists(result_path):
    os.remove(result_path)
  with open(job_path, "w", encoding="utf-8") as f:
    f.write(text)
  log_path = os.path.join(run_dir, "log.txt")
  started = time.time()
  if not _subprocess([sys.executable, "-m", "dcrnn_tf.benchmark.worker", job_path],
                     log_path):
    return None
  with open(result_path, encoding="utf-8") as f:
    result = json.load(f)
  if job["run"] and job["run"]["measure_speed"] and not job.get("profile"):
    latency_path = os.path.join(run_dir, "latency.json")
    if _subprocess([sys.executable, latency.__file__, f"--saved_model={result['saved_model']}",
                    f"--requests={os.path.join(run_dir, worker.REQUESTS)}",
                    f"--batch_sizes={','.join(FLAGS.latency_batch_sizes)}",
                    f"--calls={setting('latency_calls')}", f"--output={latency_path}"],
                   os.path.join(run_dir, "latency_log.txt")):
      with open(latency_path, encoding="utf-8") as f:
        result["latency_ms"] = json.load(f)
  # What the run cost (its processes' wall time) and when it finished: a section done
  # in pieces reports its runs' time in all and how many an invocation reused.
  result.update(run_seconds=time.time() - started, finished_at=time.time())
  with open(result_path, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
  return result


def _subprocess(command: List[str], log_path: str) -> bool:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  with open(log_path, "w", encoding="utf-8") as log:
    try:
      code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                            timeout=FLAGS.run_timeout_s, check=False).returncode
    except subprocess.TimeoutExpired:
      code = "timeout"
  if code != 0:
    with open(log_path, encoding="utf-8") as log:
      logging.error("%s failed (%s); the end of %s:\n%s", command[2:4], code, log_path,
                    log.read()[-3000:])
  return code == 0


def profile_models(rows: List[plan.Row], settings: Mapping[str, Any],
                   runs_dir: str) -> Dict[str, Dict[str, Any]]:
  """The step profile of each model of the table (its first seed), by model label."""
  profiles = {}
  for row in rows:
    if row.group == plan.MODELS_GROUP and row.seeds:
      run = row.runs()[0]
      logging.info("Profiling %s", row.label)
      result = execute({"settings": settings, "run": run.to_dict(), "profile": True},
                       os.path.join(runs_dir, f"profile-{run.key}"))
      if result is not None:
        profiles[row.label] = result
  return profiles


def run_settings(feature_config_path: str, data: DataRoles) -> Dict[str, Any]:
  """What every worker job of one data set shares."""
  return {"feature_config": feature_config_path, "data": data.to_dict(),
          "training": run_flags.training_options(),
          "epochs": setting("epochs"), "max_train_batches": setting("max_train_batches"),
          "speed_batches": setting("speed_batches"),
          "speed_windows": setting("speed_windows"),
          "latency_rows": max(int(s) for s in FLAGS.latency_batch_sizes),
          "profile_calls": setting("profile_calls"),
          "profile_repeats": setting("profile_repeats")}


def ordered_runs(rows: List[plan.Row]) -> List[plan.Run]:
  """The rows' runs, each once: the model table's (seed by seed), then the ablations'."""
  model_runs = plan.unique_runs([r for r in rows if r.group == plan.MODELS_GROUP])
  return model_runs + [run for run in plan.unique_runs(rows)
                       if run.key not in {r.key for r in model_runs}]


def run_jobs(jobs: List[Tuple[plan.Run, Mapping[str, Any], str]], deadline: float,
             counts: Dict[str, int]) -> Dict[str, Dict[str, Any]]:
  """Runs (run, settings, runs directory) jobs in order until `deadline`; returns the
  results by run directory and adds to `counts` (planned, failed, not started)."""
  results: Dict[str, Dict[str, Any]] = {}
  counts["planned"] += len(jobs)
  for i, (run, settings, runs_dir) in enumerate(jobs):
    if time.time() > deadline:
      counts["not_started"] += len(jobs) - i
      logging.warning("Time budget spent: %d runs of %d not started.", len(jobs) - i,
                      len(jobs))
      break
    logging.info("Run %d of %d: %s %s seed %d", i + 1, len(jobs), run.model,
                 dict(run.options), run.seed)
    run_dir = os.path.join(runs_dir, run.key)
    result = execute({"settings": settings, "run": run.to_dict()}, run_dir)
    if result is not None:
      results[run_dir] = result
    else:
      counts["failed"] += 1
  return results


def _by_key(results: Mapping[str, Dict[str, Any]], runs_dir: str) -> Dict[str, Dict[str, Any]]:
  """The results of the runs in `runs_dir`, by run key."""
  return {os.path.basename(d): r for d, r in results.items()
          if os.path.dirname(d) == runs_dir}


def run_sweep(points: List[sweep.Point], deadline: float, counts: Dict[str, int]
              ) -> Tuple[List[Dict[str, Any]], FeatureConfig, DataRoles,
                         Dict[str, Dict[str, Any]]]:
  """The model table at every point (see `sweep_report.POINT_KEYS`), run seed by seed
  across the points (a budget that runs out leaves seeds missing at every point, not a
  point missing), with the last point's feature config and data."""
  prepared = []
  for point in points:
    feature_config_path, feature_config, data = prepare_data(point)
    prepared.append((point, feature_config, data, plan_rows(feature_config, point),
                     run_settings(feature_config_path, data),
                     os.path.join(output_dir(), point.label, "runs")))
  seeds = [int(s) for s in setting("seeds")]
  jobs = sorted(((run, settings, runs_dir)
                 for _, _, _, rows, settings, runs_dir in prepared
                 for run in ordered_runs(rows)),
                key=lambda job: seeds.index(job[0].seed))  # Stable: point, then model.
  results = run_jobs(jobs, deadline, counts)
  out = []
  for point, feature_config, data, rows, _, runs_dir in prepared:
    ceiling = None
    if point.kind == "task_cosine":
      # The structure the point's data set was written with (a reused directory keeps
      # its own seed and fields).
      written = synthetic.read_settings(data.options.data_dir) or {
          "seed": FLAGS.seed, "dwell_time": FLAGS.synthetic_dwell,
          "task_cosine": float(point.value)}
      ceiling = sweep.synthetic_ceiling(
          written["seed"], **{k: v for k, v in written.items()
                              if k not in ("seed", "train_rows", "eval_rows")})
    point_results = _by_key(results, runs_dir)
    out.append({"label": point.label, "value": point.value, "number": point.number,
                "outputs": list(feature_config.output_names),
                "rows": {role: data.rows(role) for role in ROLES}, "ceiling": ceiling,
                "models": [report.aggregate(row, point_results, None) for row in rows]})
  return out, feature_config, data, results


def run_benchmark() -> Dict[str, Any]:
  """Runs every row's runs within the budget (at every point of a sweep) and returns
  the benchmark's JSON."""
  start = time.time()
  deadline = start + FLAGS.time_budget_minutes * 60
  counts = {"planned": 0, "failed": 0, "not_started": 0}
  points, aggregated, profiles, pipeline = [], [], {}, None
  if FLAGS.sweep:
    if FLAGS.ablations or FLAGS.profile != "off":
      raise errors.UsageError("--sweep runs the model table only: give --ablations= and "
                              "--profile=off.")
    sweep_points = sweep.parse(FLAGS.sweep)
    points, feature_config, data, results = run_sweep(sweep_points, deadline, counts)
  else:
    feature_config_path, feature_config, data = prepare_data()
    settings = run_settings(feature_config_path, data)
    rows = plan_rows(feature_config)
    runs_dir = os.path.join(output_dir(), "runs")
    profiles = profile_models(rows, settings, runs_dir) if FLAGS.profile != "off" else {}
    if FLAGS.profile == "only":
      rows = []
    if FLAGS.measure_speed:  # A speed figure, like the runs' rates.
      pipeline = execute({"settings": settings, "run": None},
                         os.path.join(runs_dir, "pipeline"))
    results = run_jobs([(run, settings, runs_dir) for run in ordered_runs(rows)],
                       deadline, counts)
    aggregated = [report.aggregate(row, _by_key(results, runs_dir),
                                   pipeline and pipeline["rows_per_s"]) for row in rows]
  counts["reused"] = sum(1 for r in results.values() if r.get("finished_at", 0) < start)
  # Every process's time: the runs', the profiles' and the pipeline's (None when some
  # result is older than this record).
  spent = [r.get("run_seconds") for r in [*results.values(), *profiles.values(), pipeline]
           if r is not None]
  bench = {
      "name": FLAGS.benchmark_name,
      "title": FLAGS.title or FLAGS.benchmark_name,
      "command": " ".join(["python -m dcrnn_tf.benchmark"]
                          + [shlex.quote(a) for a in sys.argv[1:]]),
      "machine": measure.machine(),
      "date": datetime.date.today().isoformat(),
      "wall_seconds": time.time() - start,
      "run_seconds": None if None in spent else sum(spent),
      "time_budget_minutes": FLAGS.time_budget_minutes,
      "runs": counts,
      "preset": FLAGS.preset,
      "settings": {
          "train_path": _shown_train_path(data),
          "split": FLAGS.split or "none",
          "rows": {role: data.rows(role) for role in ROLES},
          "embedding_dim": FLAGS.embedding_dim, "batch_size": FLAGS.batch_size,
          "learning_rate": FLAGS.learning_rate, "epochs": setting("epochs"),
          "patience": FLAGS.early_stopping_patience,
          "early_stopping_monitor": FLAGS.early_stopping_monitor,
          "steps_per_execution": FLAGS.steps_per_execution,
          "weight": feature_config.weight,
          "max_train_batches": setting("max_train_batches"),
          "seeds": [int(s) for s in setting("seeds")],
          "ablation_seeds": [int(s) for s in setting("seeds")][:setting("ablation_seeds")]},
      "outputs": list(feature_config.output_names),
      "reference_model": FLAGS.reference_model,
      "pipeline": pipeline,
      "flops_note": measure.FLOPS_NOTE,
      "models": [r for r in aggregated if r["group"] == plan.MODELS_GROUP],
      "ablations": [r for r in aggregated if r["group"] != plan.MODELS_GROUP],
      "profile": profiles,
  }
  if FLAGS.sweep:
    bench["sweep"] = {"kind": sweep_points[0].kind, "points": points}
  return bench


def _shown_train_path(data: DataRoles) -> str:
  """The training file as the report shows it: a `task_cosine` sweep's, one per point, as
  one pattern (`<data_dir>/task_cosine=<value>/<train_path>`)."""
  if FLAGS.sweep and sweep.parse(FLAGS.sweep)[0].kind == "task_cosine":
    pattern = sweep.point_data_dir(FLAGS.data_dir, sweep.Point("task_cosine", "<value>"))
    return run_flags.data_options(data_dir=pattern).path("train_path")
  return data.options.path("train_path")


def write_outputs(bench: Mapping[str, Any]) -> None:
  """Writes the JSON, the tables and the plots; and the Markdown file if asked."""
  out = output_dir()
  json_path = os.path.join(out, f"{bench['name']}.json")
  with open(json_path, "w", encoding="utf-8") as f:
    json.dump(bench, f, indent=2)
  plots = render.write_plots(bench, out)
  with open(os.path.join(out, f"{bench['name']}.md"), "w", encoding="utf-8") as f:
    f.write(render.section(bench, "."))
  markdown = FLAGS.write_markdown
  if (FLAGS.preset == "smoke" or FLAGS.profile == "only") and markdown:
    markdown = os.path.join(out, os.path.basename(markdown))
  if not markdown:
    return
  figures = os.path.join(os.path.dirname(os.path.abspath(markdown)), FIGURES_DIR)
  os.makedirs(figures, exist_ok=True)
  for path in [json_path] + plots:
    shutil.copy(path, figures)
  write_markdown(markdown, redraw=False)


def write_markdown(markdown: str, redraw: bool) -> None:
  """Writes `markdown` from every benchmark JSON in `benchmarks/` beside it (redrawing
  their plots there first if `redraw`)."""
  figures = os.path.join(os.path.dirname(os.path.abspath(markdown)), FIGURES_DIR)
  benches = []
  for path in sorted(glob.glob(os.path.join(figures, "*.json"))):
    with open(path, encoding="utf-8") as f:
      benches.append(json.load(f))
    if redraw and render.has_current_layout(benches[-1]):
      render.write_plots(benches[-1], figures)
  with open(markdown, "w", encoding="utf-8") as f:
    f.write(render.document(benches, FIGURES_DIR))
  logging.info("Wrote %s", markdown)


def main(argv):
  if len(argv) > 1:
    raise errors.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.render_only:
    if not FLAGS.write_markdown:
      raise errors.UsageError("--render_only needs --write_markdown.")
    write_markdown(FLAGS.write_markdown, redraw=True)
    return
  outputs.check_directory(FLAGS.output_dir, "--output_dir")
  if FLAGS.write_markdown:
    outputs.check_file(FLAGS.write_markdown, "--write_markdown")
  os.makedirs(output_dir(), exist_ok=True)
  bench = run_benchmark()
  write_outputs(bench)
  logging.info("Wrote %s", output_dir())


def run() -> None:
  """The command (`python -m dcrnn_tf.benchmark`)."""
  errors.run(main)
