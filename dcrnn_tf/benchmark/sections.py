r"""Runs sections of BENCHMARKS.md one after another: each section is a flagfile
`configs/benchmark_<section>.flags`, run as `python -m dcrnn_tf.benchmark
--flagfile=...`.

  python -m dcrnn_tf.benchmark.sections --sections=census_tasks,relatedness,frontier \
      --data_dir=../shared/data/census-income
  python -m dcrnn_tf.benchmark.sections --sections=all --data_dir=... -- --preset=smoke

`--data_dir` goes to the sections that read files (the synthetic ones, whose flagfile
says `--synthetic`, write their own data); flags after `--` go to every section. A
section resumes where it stopped (finished runs are reused), so an interrupted
command can simply be run again; a section that fails does not stop the others, and
the command then exits with an error.
"""

import glob
import os
import subprocess
import sys
from typing import Dict, List, Sequence

from absl import flags
from absl import logging

from dcrnn_tf import errors

FLAGS = flags.FLAGS

PREFIX = "benchmark_"


def available(configs_dir: str) -> Dict[str, str]:
  """The sections (name → flagfile) of `configs_dir`."""
  paths = sorted(glob.glob(os.path.join(configs_dir, f"{PREFIX}*.flags")))
  return {os.path.basename(p)[len(PREFIX):-len(".flags")]: p for p in paths}


def _flag_lines(flagfile: str) -> List[str]:
  """The flags of a flagfile, those of the flagfiles it names in place (paths as absl
  reads them: from the working directory).

  Raises:
    UsageError: A flagfile that is not there (the one given or one it names).
  """
  if not os.path.isfile(flagfile):
    raise errors.UsageError(f"{flagfile}: no such flagfile.")
  lines = []
  with open(flagfile, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if line.startswith("--flagfile="):
        lines += _flag_lines(line.split("=", 1)[1])
      elif line.startswith("--"):
        lines.append(line)
  return lines


def reads_files(flagfile: str) -> bool:
  """Whether a section reads data files: its flags (the last word wins) do not make it
  `--synthetic`."""
  synthetic = False
  for line in _flag_lines(flagfile):
    name, _, value = line[2:].partition("=")
    if name == "synthetic":
      synthetic = value.lower() in ("", "true", "1")
    elif name == "nosynthetic":
      synthetic = False
  return not synthetic


def commands(names: Sequence[str], configs_dir: str, data_dir: str,
             passed: Sequence[str]) -> List[List[str]]:
  """The benchmark command of each section.

  Raises:
    UsageError: An unknown section, or a section that reads files without `data_dir`.
  """
  known = available(configs_dir)
  if list(names) == ["all"]:
    names = list(known)
  unknown = [n for n in names if n not in known]
  if unknown:
    raise errors.UsageError(f"--sections: unknown {unknown}; known: {sorted(known)} (the "
                            f"flagfiles {configs_dir}/{PREFIX}<section>.flags).")
  out = []
  for name in names:
    command = [sys.executable, "-m", "dcrnn_tf.benchmark", f"--flagfile={known[name]}"]
    if reads_files(known[name]):
      if not data_dir:
        raise errors.UsageError(f"Section {name!r} reads data files: give --data_dir.")
      command.append(f"--data_dir={data_dir}")
    out.append(command + list(passed))
  return out


def main(argv):
  if not FLAGS.sections:
    raise errors.UsageError("Give --sections (or --sections=all).")
  failed = []
  for command in commands(FLAGS.sections, FLAGS.configs_dir, FLAGS.data_dir, argv[1:]):
    print("python " + " ".join(command[1:]), flush=True)
    if FLAGS.dry_run:
      continue
    if subprocess.run(command, check=False).returncode:
      failed.append(command[3])
  if failed:
    logging.error("Failed: %s", ", ".join(failed))
    sys.exit(1)


def define_flags() -> None:
  """The command's flags (defined only when it runs: its `--data_dir` is not the
  training flags' one, which a process importing both would define twice)."""
  flags.DEFINE_list("sections", None, "Sections to run, in order (`all`: every flagfile "
                    "configs/benchmark_*.flags, by name).")
  flags.DEFINE_string("data_dir", None, "The data files of the sections that read files.")
  flags.DEFINE_string("configs_dir", "configs", "Where the sections' flagfiles are.")
  flags.DEFINE_bool("dry_run", False, "Print the commands, run nothing.")


if __name__ == "__main__":
  define_flags()
  errors.run(main)
