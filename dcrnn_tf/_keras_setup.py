"""Selects Keras 2 (tf-keras) for TensorFlow before TensorFlow is imported."""

import os
import sys

_TF_IMPORTED_EARLIER = "tensorflow" in sys.modules
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

if not tf.keras.__name__.startswith("tf_keras"):
  raise ImportError(
      "dcrnn_tf needs tf.keras to be Keras 2 (the tf-keras package), but tf.keras "
      f"resolved to {tf.keras.__name__!r} (Keras 3). "
      + ("TensorFlow was imported before dcrnn_tf: import dcrnn_tf first, or "
         if _TF_IMPORTED_EARLIER else "")
      + "set TF_USE_LEGACY_KERAS=1 before starting Python and install tf-keras==2.21.0.")
