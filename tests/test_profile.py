"""The step profile: every part of a training step timed, DCRNN's block by layer."""

import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import models, objectives
from dcrnn_tf.benchmark import profile

from conftest import random_features

ROWS = 64


def batches(config):
  features = random_features(config, ROWS)
  labels = {"click": tf.constant([1, 0] * (ROWS // 2)),
            "conversion": tf.constant([1, 0, 0, 0] * (ROWS // 4))}
  targets = objectives.make_targets(labels, config)
  return tf.data.Dataset.from_tensors((features, targets)).repeat()


@pytest.mark.slow
def test_step_parts_add_up_to_a_batch_of_fit(config):
  model = models.build_model("mmoe", config, num_experts=2, expert_units=[4],
                             tower_units=[4])
  objectives.compile_model(model, config)
  data = batches(config)
  features, targets = next(iter(data))
  step = profile.step_profile(model, features, targets, data, ROWS, calls=2, repeats=2)
  assert set(step) == set(profile.STEP_PARTS) | {"train_step", "fit"}
  assert sum(step[part] for part in profile.STEP_PARTS) == pytest.approx(step["fit"])
  assert step["train_step"] == pytest.approx(
      sum(step[part] for part in profile.STEP_PARTS[:-1]))
  assert step["encoder"] > 0 and step["fit"] > 0


def test_dcrnn_block_profile_times_every_layer(config):
  model = models.build_model("dcrnn", config, shared_units=4, private_units=2, depth=2,
                             tower_units=[4])
  features = next(iter(batches(config)))[0]
  timings = profile.dcrnn_block_profile(model, features, calls=2, repeats=2)
  # cvr reads ctr's private state through a transfer.
  assert list(timings) == ["x0 projection", "shared cross", "private cross ctr",
                           "transfer cvr", "private cross cvr", "tower ctr", "tower cvr"]
  assert all(ms > 0 for ms in timings.values())
