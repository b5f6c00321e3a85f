"""The side-by-side benchmark, `python -m dcrnn_tf.benchmark`.

* `cli`: the command: its flags (and those of `dcrnn_tf.run_flags`), the data checked
  and the feature config prepared once, every run started in its own process, the
  JSON, tables, plots and BENCHMARKS.md written.
* `plan`: which runs (model, options, seed, task dependencies) a benchmark makes: the
  model table and the DCRNN ablations.
* `worker`: one run in its own process (`python -m dcrnn_tf.benchmark.worker`):
  train through `dcrnn_tf.trainer.Trainer` as `dcrnn_tf.main` does, evaluate on the
  test part, count parameters and FLOPs, measure throughput and export a SavedModel.
* `latency`: a script that imports only TensorFlow and times an export's
  `serving_default` signature.
* `measure`: FLOPs, peak memory, timing callbacks, the machine's description.
* `report`: aggregates runs over seeds into the JSON, the Markdown and the plots.
"""
