"""The places a run writes, checked before it reads data or trains.

A run that would fail only when it writes (a model directory that is a file, an export
directory that cannot be created, a prediction file that is a directory) fails at once
with one line instead, and an output that is one of the run's inputs (predictions
written over the file they are read from) is refused, so that nothing the user had is
lost.

Each check names the output as the caller does (for the command line, its flag).
"""

import os
import tempfile
from typing import Iterable

from dcrnn_tf.errors import UsageError


def _existing_ancestor(path: str) -> str:
  """`path` if it exists, else its nearest existing ancestor."""
  path = os.path.abspath(path)
  while not os.path.lexists(path):
    path = os.path.dirname(path)
  return path


def _probe(directory: str, name: str, path: str) -> None:
  """Creates and removes a file in `directory`: the only sure test that it is writable
  (permissions, a read-only file system, quotas)."""
  try:
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".dcrnn-probe-"):
      pass
  except OSError as e:
    raise UsageError(f"{name} {path}: cannot write in {directory}: {e.strerror}.") from None


def check_directory(path: str, name: str) -> None:
  """Makes sure that `path` is, or can be created as, a directory this process can write
  in. Creates nothing (a run that fails later leaves no empty directory behind).

  Raises:
    UsageError: If `path` is a file, or cannot be created or written in.
  """
  existing = _existing_ancestor(path)
  if not os.path.isdir(existing):
    if existing == os.path.abspath(path):
      raise UsageError(f"{name} {path} is a file, not a directory: give a directory (it "
                       "is created if missing).")
    raise UsageError(f"{name} {path}: cannot create the directory: {existing} is a file.")
  _probe(existing, name, path)


def check_file(path: str, name: str) -> None:
  """Makes sure that the file `path` can be written (its directory may be missing: the
  writer creates it).

  Raises:
    UsageError: If `path` is a directory, or cannot be written.
  """
  if os.path.isdir(path):
    raise UsageError(f"{name} {path} is a directory: give a file name, such as "
                     f"{os.path.join(path, 'predictions.csv')}.")
  check_directory(os.path.dirname(os.path.abspath(path)), name)
  if os.path.exists(path) and not os.access(path, os.W_OK):
    raise UsageError(f"{name} {path}: the file cannot be written (permission denied).")


def check_not_an_input(path: str, name: str, inputs: Iterable[str]) -> None:
  """Refuses an output that is one of the run's input files.

  Raises:
    UsageError: If `path` is (a link to) one of `inputs`.
  """
  real = os.path.realpath(path)
  for source in inputs:
    if os.path.realpath(source) == real:
      raise UsageError(f"{name} {path} is also an input of this run ({source}): writing "
                       "it would destroy that input; give another file.")
