"""Trainer: several steps per execution train as one step per execution does, and step
checkpoints keep one step per execution."""

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import random_features
from dcrnn_tf import distribute
from dcrnn_tf import trainer
from dcrnn_tf import objectives

pytestmark = pytest.mark.slow

ROWS, BATCH = 80, 8  # 10 steps an epoch.
OPTIONS = {"shared_units": 4, "private_units": 2, "cross_dim": 8, "tower_units": [4]}


def rows(config):
  features = random_features(config, ROWS)
  labels = {"click": np.tile([1.0, 0.0], ROWS // 2),
            "conversion": np.tile([1.0, 0.0, 0.0, 0.0], ROWS // 4)}
  return tf.data.Dataset.from_tensor_slices((features, objectives.make_targets(labels, config)))


def trained(config, model_dir, **kwargs):
  tf.keras.utils.set_random_seed(3)
  run = trainer.Trainer("dcrnn", OPTIONS, config, str(model_dir), keep_checkpoints=10,
                        **kwargs)
  data = rows(config)
  # Validation batches of unknown size, which Keras accepts with several steps per
  # execution only when told how many there are.
  validation = data.batch(BATCH).filter(lambda features, targets: True)
  run.fit(distribute.TrainingInput(lambda seed: data.shuffle(ROWS, seed=seed).batch(BATCH),
                                   seed=1, files=1, rows=ROWS, batch_size=BATCH),
          epochs=2, validation_data=validation, validation_steps=ROWS // BATCH, verbose=0)
  return run


def test_steps_per_execution_trains_every_step(tmp_path, config):
  one = trained(config, tmp_path / "one")
  four = trained(config, tmp_path / "four", steps_per_execution=4)
  assert (one.steps_per_execution, four.steps_per_execution) == (1, 4)
  assert int(four.model._steps_per_execution) == 4  # pylint: disable=protected-access
  assert one.step == four.step == 20
  # Each epoch's rate is timed over its 80 rows, with either steps per execution.
  for run in (one, four):
    assert [(epoch, rows) for epoch, rows, _ in run.rates.epochs] == [(0, 80), (1, 80)]
    assert all(seconds > 0 for _, _, seconds in run.rates.epochs)
    assert run.rates.rows_per_s() == 80 / run.rates.epochs[1][2]
  assert four.manager.checkpoints[-2:] == [str(tmp_path / "four" / "checkpoints" / "ckpt-10"),
                                           str(tmp_path / "four" / "checkpoints" / "ckpt-20")]
  for a, b in zip(one.model.get_weights(), four.model.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_step_checkpoints_keep_one_step_per_execution(tmp_path, config):
  run = trained(config, tmp_path, steps_per_execution=4, checkpoint_every_steps=3)
  assert run.steps_per_execution == 1
  assert int(run.model._steps_per_execution) == 1  # pylint: disable=protected-access
  assert [int(path.rsplit("-", 1)[1]) for path in run.manager.checkpoints] == [
      3, 6, 9, 10, 12, 15, 18, 20]


def test_an_xla_compiled_step_trains_as_the_plain_step(tmp_path, config):
  runs = []
  for jit_compile in (False, True):
    tf.keras.utils.set_random_seed(3)
    run = trainer.Trainer("dcrnn", OPTIONS, config, str(tmp_path / str(jit_compile)),
                          jit_compile=jit_compile)
    preprocess = trainer.input_preprocessor(run.model)
    batches = rows(config).batch(BATCH).map(lambda features, targets: (preprocess(features),
                                                                       targets))
    run.fit(distribute.TrainingInput(lambda seed, b=batches: b, seed=1, files=1, rows=ROWS,
                                     batch_size=BATCH), epochs=2, verbose=0)
    runs.append(run)
  assert [bool(run.model._jit_compile) for run in runs] == [False, True]  # pylint: disable=protected-access
  for a, b in zip(runs[0].model.get_weights(), runs[1].model.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
