r"""Latency of an exported model's `serving_default` signature, in a fresh process.

  python dcrnn_tf/benchmark/latency.py --saved_model=DIR --requests=FILE \
      --batch_sizes=1,512 --calls=200 --output=latency.json

Run as a script, it imports only TensorFlow (not `dcrnn_tf`), as a server would: it
loads the SavedModel with `tf.saved_model.load`, builds each batch from the serialized
`tf.Example`s in `--requests` (a TFRecord file, repeated to the batch size), calls the
signature `--calls` times after 10 warm-up calls and writes the median and the 90th
percentile of the wall time of a call, in milliseconds, per batch size.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

WARMUP_CALLS = 10


def measure(saved_model: str, requests: str, batch_sizes, calls: int):
  """`{batch size: {"median_ms", "p90_ms"}}` of the `serving_default` signature."""
  records = [r.numpy() for r in tf.data.TFRecordDataset(requests)]
  signature = tf.saved_model.load(saved_model).signatures["serving_default"]
  results = {}
  for size in batch_sizes:
    examples = tf.constant([records[i % len(records)] for i in range(size)])
    for _ in range(WARMUP_CALLS):
      signature(examples=examples)
    times = []
    for _ in range(calls):
      start = time.perf_counter()
      signature(examples=examples)
      times.append((time.perf_counter() - start) * 1000.0)
    results[str(size)] = {"median_ms": float(np.median(times)),
                          "p90_ms": float(np.percentile(times, 90))}
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--saved_model", required=True)
  parser.add_argument("--requests", required=True)
  parser.add_argument("--batch_sizes", default="1,512")
  parser.add_argument("--calls", type=int, default=200)
  parser.add_argument("--output", required=True)
  args = parser.parse_args()
  sizes = [int(s) for s in args.batch_sizes.split(",")]
  with open(args.output, "w", encoding="utf-8") as f:
    json.dump(measure(args.saved_model, args.requests, sizes, args.calls), f, indent=2)


if __name__ == "__main__":
  main()
