"""dcrnn_tf: DCRNN multi-task ranking (click → conversion) on TensorFlow and Keras 2.

Importing this package selects Keras 2 (`TF_USE_LEGACY_KERAS=1`, the tf-keras package)
before TensorFlow loads, and fails with a clear error if `tf.keras` already resolved to
Keras 3.
"""

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
from dcrnn_tf import evaluation
from dcrnn_tf import objectives
from dcrnn_tf.features import Feature, FeatureConfig, Task
from dcrnn_tf.layers import (CGC, MLP, FeatureEmbedding, FeatureEncoder,
                             FeaturePreprocessor, PartialSharing, RNNCross, TaskTransfer,
                             Tower)
from dcrnn_tf.models import (DCN, DCRNN, ESMM, PLE, MMoE, MultiTaskModel, SharedBottom,
                             SingleTask, build_model)

__version__ = "0.1.0"

__all__ = [
    "CGC", "DCN", "DCRNN", "ESMM", "Feature", "FeatureConfig", "FeatureEmbedding",
    "FeatureEncoder", "FeaturePreprocessor", "MLP",
    "MMoE", "MultiTaskModel", "PLE", "PartialSharing", "RNNCross", "SharedBottom",
    "SingleTask", "Task", "TaskTransfer", "Tower", "build_model",
]
