"""Shared fixtures: small feature configs and random features made in memory; the
session's small synthetic data set and the model trained on it once."""

import dataclasses
import os
import pathlib
import shutil
import subprocess
from typing import List, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import Feature, FeatureConfig, Task

import cli


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
  """The session's small synthetic data set (`cli.write_small_dataset`); read only."""
  return cli.write_small_dataset(tmp_path_factory.mktemp("small") / "data")


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """The session's trained model: `python -m dcrnn_tf.main --synthetic` with
  `cli.REFERENCE_FLAGS` on the small data set, run once as a user runs it.

  Attributes:
    data: The data directory.
    model_dir: Its model directory.
    export_dir: Its export directory (one version).
    result: The finished process (its stdout and stderr).
    metrics: Its `eval_metrics.json`.
  """
  data: pathlib.Path
  model_dir: pathlib.Path
  export_dir: pathlib.Path
  result: subprocess.CompletedProcess
  metrics: dict

  def copy(self, to: pathlib.Path) -> Tuple[pathlib.Path, pathlib.Path]:
    """Copies the model and export directories into `to` (for a test that changes
    them); returns their copies."""
    model_dir, export_dir = to / "model", to / "export"
    shutil.copytree(self.model_dir, model_dir)
    shutil.copytree(self.export_dir, export_dir)
    return model_dir, export_dir

  def flags(self, model_dir, export_dir, *more: str) -> List[str]:
    """The flags of its run with other directories, then `more`."""
    return cli.main_flags(self.data, model_dir, export_dir, *cli.REFERENCE_FLAGS, *more)


@pytest.fixture(scope="session")
def trained(small_data, tmp_path_factory):  # pylint: disable=redefined-outer-name
  """The session's trained model (deterministic, step checkpoints, early stopping,
  uncertainty weighting, TensorBoard): read it, or `copy` it to change it."""
  work = tmp_path_factory.mktemp("trained")
  result = cli.run("--synthetic", *cli.main_flags(small_data, work / "model",
                                                  work / "export", *cli.REFERENCE_FLAGS),
                   cwd=work, env=cli.user_env())
  return TrainedModel(small_data, work / "model", work / "export", result,
                      cli.read_metrics(work / "model"))


@pytest.fixture
def config():
  return funnel_config()


@pytest.fixture(autouse=True)
def _seed():
  tf.keras.utils.set_random_seed(1)
