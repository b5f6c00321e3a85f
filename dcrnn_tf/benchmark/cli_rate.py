r"""The benchmark's training rate beside the rate of `dcrnn_tf.main`, one after the other;
or `main`'s rate with and without some flags (`--variant`).

  python -m dcrnn_tf.benchmark.cli_rate --work_dir=/tmp/rates --model=mmoe --seed=1 -- \
      --flagfile=configs/census_data.flags --data_dir=DIR --epochs=3
  python -m dcrnn_tf.benchmark.cli_rate --work_dir=/tmp/rates --model=mmoe \
      --variant=--jit_compile -- --flagfile=configs/census_data.flags --data_dir=DIR

The flags after `--` are the data, training and model flags (`dcrnn_tf.run_flags`) that
both commands get. It runs `python -m dcrnn_tf.benchmark` for `--model` and `--seed`
alone (no ablations, no profile; its worker trains through `Trainer`), then
`python -m dcrnn_tf.main --mode=train` with the same flags and seed, each `--repeats`
times, alternating, and prints the training rates of each: the benchmark's
`train_rows_per_s_input` and the rate `main` logs after every epoch (both over the
epochs after the first, which traces the step functions). The two should agree within
the machine's noise: they time the same `Trainer` on the same data. With `--variant`
(space-separated flags), it runs `main` with the shared flags and `main` with the
variant's flags added, alternating, and prints the variant's rate over the plain one.
"""

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from typing import List, Sequence

_EPOCH_RATE = re.compile(r"Epoch (\d+) trained on (\d+) rows in ([0-9.]+) s")


def benchmark_rate(work_dir: str, model: str, seed: int, flags: Sequence[str]) -> float:
  """The training rate of one benchmark run."""
  out = os.path.join(work_dir, "benchmark")
  shutil.rmtree(out, ignore_errors=True)
  _run([sys.executable, "-m", "dcrnn_tf.benchmark", *flags, f"--output_dir={out}",
        f"--models={model}", f"--seeds={seed}", "--ablations=", "--profile=off",
        "--latency_calls=1"], os.path.join(work_dir, "benchmark.log"))
  [result] = [path for path in glob.glob(os.path.join(out, "runs", "*", "result.json"))
              if os.path.basename(os.path.dirname(path)) != "pipeline"]
  with open(result, encoding="utf-8") as f:
    return json.load(f)["train_rows_per_s_input"]


def main_rate(work_dir: str, model: str, seed: int, flags: Sequence[str]) -> float:
  """The training rate `dcrnn_tf.main` logs, over the epochs after the first."""
  model_dir = os.path.join(work_dir, "main")
  shutil.rmtree(model_dir, ignore_errors=True)
  log = os.path.join(work_dir, "main.log")
  _run([sys.executable, "-m", "dcrnn_tf.main", *flags, f"--model_dir={model_dir}",
        f"--export_dir={os.path.join(work_dir, 'export')}", f"--model={model}",
        f"--seed={seed}", "--verbose=0"], log)
  with open(log, encoding="utf-8") as f:
    epochs = [(int(e), int(rows), float(seconds))
              for e, rows, seconds in _EPOCH_RATE.findall(f.read())]
  timed = epochs[1:] or epochs
  return sum(rows for _, rows, _ in timed) / sum(seconds for _, _, seconds in timed)


def _run(command: List[str], log_path: str) -> None:
  with open(log_path, "w", encoding="utf-8") as log:
    code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")).returncode
  if code:
    raise SystemExit(f"{' '.join(command[:3])} failed ({code}); see {log_path}")


def main(argv: Sequence[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--work_dir", required=True)
  parser.add_argument("--model", default="dcrnn")
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--variant", default="",
                      help="flags to add to main's (instead of running the benchmark)")
  parser.add_argument("flags", nargs="*", help="after --: the shared flags")
  args = parser.parse_args(argv)
  os.makedirs(args.work_dir, exist_ok=True)
  if args.variant:
    runs = {"main": lambda: main_rate(args.work_dir, args.model, args.seed, args.flags),
            f"main {args.variant}": lambda: main_rate(
                args.work_dir, args.model, args.seed, [*args.flags, *args.variant.split()])}
  else:
    runs = {"main": lambda: main_rate(args.work_dir, args.model, args.seed, args.flags),
            "benchmark": lambda: benchmark_rate(args.work_dir, args.model, args.seed,
                                                args.flags)}
  rates = {name: [] for name in runs}
  for _ in range(args.repeats):
    for name, run in runs.items():
      rates[name].append(run())
  for name, values in rates.items():
    print(f"{name} {args.model}: training rows/s "
          + ", ".join(f"{v:,.0f}" for v in values)
          + f" (median {statistics.median(values):,.0f})")
  first, second = rates
  ratio = statistics.median(rates[second]) / statistics.median(rates[first])
  print(f"{second} / {first}: {ratio:.3f}")


if __name__ == "__main__":
  main(sys.argv[1:])
