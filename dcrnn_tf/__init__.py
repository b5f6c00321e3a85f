"""dcrnn_tf: DCRNN multi-task ranking (click → conversion) on TensorFlow and Keras 2.

Importing this package selects Keras 2 (`TF_USE_LEGACY_KERAS=1`, the tf-keras package)
before TensorFlow loads, and fails with a clear error if `tf.keras` already resolved to
Keras 3.
"""

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
from dcrnn_tf import evaluation
from dcrnn_tf import training
from dcrnn_tf.features import Feature, FeatureConfig, Task
from dcrnn_tf.layers import FeatureEncoder, PartialSharing, RNNCross, TaskTransfer, Tower
from dcrnn_tf.models import DCRNN, MultiTaskModel, build_model

__version__ = "0.1.0"

__all__ = [
    "DCRNN", "Feature", "FeatureConfig", "FeatureEncoder", "MultiTaskModel",
    "PartialSharing", "RNNCross", "Task", "TaskTransfer", "Tower", "build_model",
]
