"""The side-by-side benchmark, `python -m dcrnn_tf.benchmark`.

* `cli`: the command: its flags (and those of `dcrnn_tf.run_flags`), the data checked
  and the feature config prepared once, every run started in its own process, the
  JSON, tables, plots and BENCHMARKS.md written.
* `plan`: which runs (model, options, seed, task dependencies) a benchmark makes: the
  model table and the DCRNN ablations.
* `sweep`: the points of `--sweep` (number of tasks, task relatedness, model size) and
  what each changes; the synthetic data's ceiling; the Pareto front.
* `worker`: one run in its own process (`python -m dcrnn_tf.benchmark.worker`):
  train through `dcrnn_tf.trainer.Trainer` as `dcrnn_tf.main` does, evaluate on the
  test part, count parameters and FLOPs, measure throughput and export a SavedModel.
* `latency`: a script that imports only TensorFlow and times an export's
  `serving_default` signature.
* `measure`: FLOPs, peak memory, timing callbacks, the machine's description.
* `report`: aggregates runs over seeds into the JSON rows; a model table's section, the
  summary line and plots; `sweep_report`: a sweep's section and plots; `render`:
  BENCHMARKS.md (the summary, then every section) from the JSON files.
* `sections`: runs sections (`configs/benchmark_<section>.flags`) one after another
  (`python -m dcrnn_tf.benchmark.sections`).
* `cli_rate`, `profile`: the training rate of `dcrnn_tf.main` against the benchmark's,
  and where a training step's time goes.
"""
