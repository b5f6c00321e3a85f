"""Shared fixtures: small feature configs and random features made in memory."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import Feature, FeatureConfig, Task


def funnel_config(extra_tasks=()) -> FeatureConfig:
  """Two categorical and one numeric feature; ctr → cvr funnel plus `extra_tasks`."""
  return FeatureConfig(
      features=(Feature("item", "categorical", 20), Feature("user", "categorical", 50),
                Feature("price", "numeric")),
      labels=("click", "conversion") + tuple(t.label for t in extra_tasks),
      tasks=(Task("ctr", "click"),
             Task("cvr", "conversion", depends_on="ctr", funnel_output="ctcvr"))
      + tuple(extra_tasks))


def random_features(config: FeatureConfig, rows: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  return {f.name: (rng.integers(0, f.vocab_size, rows) if f.type == "categorical"
                   else rng.normal(size=rows).astype(np.float32))
          for f in config.features}


@pytest.fixture
def config():
  return funnel_config()


@pytest.fixture(autouse=True)
def _seed():
  tf.keras.utils.set_random_seed(1)
