"""Selects Keras 2 (tf-keras) for TensorFlow before TensorFlow is imported.

A command of this package (`python -m dcrnn_tf.main`, `python export/client.py`, ...)
also loads TensorFlow quietly: its C++ start-up lines (CPU instruction sets, CUDA
probes, the oneDNN banner, twice) are written before its logging is set up, so
`TF_CPP_MIN_LOG_LEVEL` alone
cannot hide them. Unless `--tf_logs` is on the command line or `TF_CPP_MIN_LOG_LEVEL`
is set, the standard error stream is muted while TensorFlow loads, and its C++ logging
is set to errors that stop the program only (`TF_CPP_MIN_LOG_LEVEL=3`: it must be set
before TensorFlow is imported). Errors reach Python as exceptions either way. A program
that imports the package as a library keeps TensorFlow's logging as it is.
"""

import os
import sys

_TF_IMPORTED_EARLIER = "tensorflow" in sys.modules
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


_PACKAGE = os.path.dirname(os.path.abspath(__file__))
# The repository's scripts that are commands of the package (the serving client).
_COMMAND_DIRS = (_PACKAGE, os.path.join(os.path.dirname(_PACKAGE), "export"))


def _is_package_command() -> bool:
  """Whether Python runs a command of this package: `python -m dcrnn_tf.x` imports the
  package while `sys.argv[0]` is still "-m"; a script run directly lies in the package
  or in the repository's `export/`."""
  program = sys.argv[0] if sys.argv else ""
  return program == "-m" or os.path.dirname(os.path.abspath(program)) in _COMMAND_DIRS


def _quiet() -> bool:
  shown = any(arg in ("--tf_logs", "--tf_logs=true", "--tf_logs=1") for arg in sys.argv[1:])
  return (_is_package_command() and not shown and not _TF_IMPORTED_EARLIER
          and "TF_CPP_MIN_LOG_LEVEL" not in os.environ)


if _quiet():
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
  _stderr = os.dup(2)
  _null = os.open(os.devnull, os.O_WRONLY)
  os.dup2(_null, 2)
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position
  finally:
    os.dup2(_stderr, 2)
    os.close(_stderr)
    os.close(_null)
else:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

if not tf.keras.__name__.startswith("tf_keras"):
  raise ImportError(
      "dcrnn_tf needs tf.keras to be Keras 2 (the tf-keras package), but tf.keras "
      f"resolved to {tf.keras.__name__!r} (Keras 3). "
      + ("TensorFlow was imported before dcrnn_tf: import dcrnn_tf first, or "
         if _TF_IMPORTED_EARLIER else "")
      + "set TF_USE_LEGACY_KERAS=1 before starting Python and install tf-keras==2.21.0.")
