"""Shared fixtures: small feature configs and random features made in memory."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import Feature, FeatureConfig, Task


def vocabulary(size: int):
  return tuple(str(i) for i in range(size))


def funnel_config(extra_tasks=()) -> FeatureConfig:
  """Two prepared categorical features (vocabularies of 20 and 50 ids: `"0"`…), one
  numeric; ctr → cvr funnel plus `extra_tasks`."""
  return FeatureConfig(
      features=(Feature("item", "categorical", vocabulary=vocabulary(20)),
                Feature("user", "categorical", vocabulary=vocabulary(50)),
                Feature("price", "numeric", mean=0.0, std=1.0)),
      labels=("click", "conversion") + tuple(t.label for t in extra_tasks),
      tasks=(Task("ctr", "click"),
             Task("cvr", "conversion", depends_on="ctr", funnel_output="ctcvr"))
      + tuple(extra_tasks))


def random_features(config: FeatureConfig, rows: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  return {f.name: (rng.integers(0, len(f.vocabulary), rows).astype(str).astype(object)
                   if f.type == "categorical" else rng.normal(size=rows).astype(np.float32))
          for f in config.features}


def serialize_example(**columns) -> bytes:
  """A serialized tf.Example: str lists → bytes_list, int lists → int64_list, float
  lists → float_list."""
  example = tf.train.Example()
  for name, values in columns.items():
    feature = example.features.feature[name]
    if isinstance(values[0], float):
      feature.float_list.value.extend(values)
    elif isinstance(values[0], int):
      feature.int64_list.value.extend(values)
    else:
      feature.bytes_list.value.extend(v.encode() for v in values)
  return example.SerializeToString()


@pytest.fixture
def config():
  return funnel_config()


@pytest.fixture(autouse=True)
def _seed():
  tf.keras.utils.set_random_seed(1)
