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
  lists → float_list; an empty list → the key with no value (a missing value)."""
  example = tf.train.Example()
  for name, values in columns.items():
    feature = example.features.feature[name]
    if not values:
      continue
    if isinstance(values[0], float):
      feature.float_list.value.extend(values)
    elif isinstance(values[0], int):
      feature.int64_list.value.extend(values)
    else:
      feature.bytes_list.value.extend(v.encode() for v in values)
  return example.SerializeToString()


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
  """A small synthetic data set for the cluster and fault-tolerance tests."""
  from test_distributed import write_small_dataset  # pylint: disable=import-outside-toplevel
  return write_small_dataset(tmp_path_factory.mktemp("small") / "data")


@pytest.fixture(scope="session")
def single_process(small_data):  # pylint: disable=redefined-outer-name
  """A deterministic single-process run on the small data set: its directory and
  metrics (the reference of the cluster runs and the uninterrupted run of the
  fault-tolerance tests)."""
  # pylint: disable-next=import-outside-toplevel
  from test_distributed import REFERENCE_FLAGS, main_flags, read_metrics, run_main
  work = small_data.parent / "single"
  run_main(main_flags(small_data, work / "model", work / "export", *REFERENCE_FLAGS))
  return {"work": work, "metrics": read_metrics(work / "model")}


@pytest.fixture
def config():
  return funnel_config()


@pytest.fixture(autouse=True)
def _seed():
  tf.keras.utils.set_random_seed(1)
