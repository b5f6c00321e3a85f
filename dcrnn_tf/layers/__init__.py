"""Public Keras layers of dcrnn_tf."""

from dcrnn_tf.layers.experts import CGC
from dcrnn_tf.layers.feature_encoder import (FeatureEmbedding, FeatureEncoder,
                                             FeaturePreprocessor)
from dcrnn_tf.layers.mlp import MLP
from dcrnn_tf.layers.partial_sharing import PartialSharing
from dcrnn_tf.layers.rnn_cross import RNNCross
from dcrnn_tf.layers.task_transfer import TaskTransfer
from dcrnn_tf.layers.tower import Tower

__all__ = ["CGC", "FeatureEmbedding", "FeatureEncoder", "FeaturePreprocessor", "MLP",
           "PartialSharing", "RNNCross", "TaskTransfer", "Tower"]
