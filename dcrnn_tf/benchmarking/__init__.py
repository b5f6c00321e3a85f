"""The side-by-side benchmark behind `python -m dcrnn_tf.benchmark`.

* `plan`: which runs (model, options, seed, task dependencies) a benchmark makes: the
  model table and the DCRNN ablations.
* `worker`: one run in its own process (`python -m dcrnn_tf.benchmarking.worker`):
  train with early stopping, evaluate on the test part, count parameters and FLOPs,
  measure throughput and export a SavedModel.
* `latency`: a script that imports only TensorFlow and times an export's
  `serving_default` signature.
* `measure`: FLOPs, peak memory, timing callbacks, the machine's description.
* `report`: aggregates runs over seeds into the JSON, the Markdown and the plots.
"""
