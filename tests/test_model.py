"""DCRNN: outputs, funnel, parameter counts, losses, save and reload."""

import dataclasses

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import funnel_config, random_features
from dcrnn_tf import evaluation
from dcrnn_tf import objectives
from dcrnn_tf.benchmark.measure import parameters_per_added_task
from dcrnn_tf.features import CsvFormat, Task
from dcrnn_tf.models import DCRNN, build_model


def gru_cell_params(units, input_width):
  return 3 * units * (input_width + units) + 2 * 3 * units


def tower_params(width, hidden=(64, 32)):
  sizes = (width,) + hidden + (1,)
  return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


@pytest.mark.parametrize("axis", ["depth", "fields"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "simple"])
def test_outputs_are_named_probabilities_of_shape_batch(config, axis, cell):
  model = DCRNN(config, cross_axis=axis, cell=cell, shared_units=8, private_units=4)
  outputs = model(random_features(config, 5))
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"]
  for value in outputs.values():
    assert value.shape == (5,) and value.dtype == tf.float32
    assert np.all((value.numpy() > 0) & (value.numpy() < 1))
  np.testing.assert_array_equal(outputs["ctcvr"].numpy(),
                                (outputs["ctr"] * outputs["cvr"]).numpy())


def test_hard_sharing_parameter_count(config):
  # private_units=0: encoder + x0 projection + one shared cross (with the gain and bias
  # of its layer norm) + one tower per task.
  model = DCRNN(config, embedding_dim=4, cross_dim=10, cell="gru", shared_units=6,
                private_units=0)
  model(random_features(config, 2))
  # Vocabulary plus missing and out-of-vocabulary rows; numeric kernel, bias, missing.
  encoder = (20 + 2) * 4 + (50 + 2) * 4 + 3 * 4
  x0 = 3 * 4 * 10 + 10
  shared = 6 * 10 + 10 + gru_cell_params(6, 10) + 2 * 6
  assert model.count_params() == encoder + x0 + shared + 2 * tower_params(6)
  assert model.partial_sharing.private_crosses == {}


@pytest.mark.parametrize("depends_on", [None, "ctr"])
def test_an_added_task_adds_one_private_cell_and_one_tower(depends_on):
  options = dict(embedding_dim=4, cross_dim=10, cell="gru", shared_units=6, private_units=3)
  base = funnel_config()
  extended = funnel_config(extra_tasks=(Task("like", "liked", depends_on=depends_on),))
  counts = []
  for config in (base, extended):
    model = DCRNN(config, **options)
    model(random_features(config, 2))
    counts.append(model.count_params())
  transfer_width = 3 if depends_on else 0
  private_cell = 3 * 10 + 10 + gru_cell_params(3, 10 + 6 + transfer_width) + 2 * 3
  transfer = 3 * 3 + 3 if depends_on else 0
  assert counts[1] - counts[0] == private_cell + transfer + tower_params(6 + 3)


def test_separate_models_share_nothing_but_the_encoder(config):
  model = DCRNN(config, shared_units=0, private_units=4)
  features = random_features(config, 3)
  with tf.GradientTape() as tape:
    ctr = model(features)["ctr"]
  cvr_weights = (model.partial_sharing.private_crosses["cvr"].trainable_weights
                 + model.towers["cvr"].trainable_weights)
  assert all(g is None for g in tape.gradient(ctr, cvr_weights))


def test_make_targets_masks_the_conditional_stage(config):
  labels = {"click": tf.constant([1.0, 1.0, 0.0, 0.0]),
            "conversion": tf.constant([1.0, 0.0, 0.0, 0.0])}
  targets = objectives.make_targets(labels, config)
  np.testing.assert_array_equal(targets["ctr"], [1, 1, 0, 0])
  np.testing.assert_array_equal(targets["ctcvr"], [1, 0, 0, 0])
  np.testing.assert_array_equal(targets["cvr"], [1, 0, objectives.MASKED, objectives.MASKED])
  assert objectives.loss_weights(config) == {"ctr": 1.0, "cvr": 0.0, "ctcvr": 1.0}


def test_masked_loss_ignores_masked_rows():
  loss = objectives.MaskedBinaryCrossentropy()
  y_true = tf.constant([1.0, 0.0, objectives.MASKED, objectives.MASKED])
  first = loss(y_true, tf.constant([0.8, 0.3, 0.5, 0.5]))
  second = loss(y_true, tf.constant([0.8, 0.3, 0.01, 0.99]))
  expected = -(np.log(0.8) + np.log(0.7)) / 2
  np.testing.assert_allclose([first.numpy(), second.numpy()], [expected, expected], rtol=1e-6)
  everything_masked = loss(tf.fill([3], objectives.MASKED), tf.constant([0.2, 0.4, 0.6]))
  assert everything_masked.numpy() == 0.0
  with tf.GradientTape() as tape:
    y_pred = tf.constant([0.8, 0.3, 0.5, 0.5])
    tape.watch(y_pred)
    value = loss(y_true, y_pred)
  np.testing.assert_array_equal(tape.gradient(value, y_pred).numpy()[2:], [0.0, 0.0])


def test_masked_auc_ignores_masked_rows():
  metric = objectives.MaskedAUC(num_thresholds=1000)
  metric.update_state([1.0, 0.0, objectives.MASKED, objectives.MASKED], [0.9, 0.1, 0.95, 0.0])
  np.testing.assert_allclose(metric.result().numpy(), 1.0, atol=1e-3)


def test_build_model_registry(config):
  assert isinstance(build_model("dcrnn", config, shared_units=4), DCRNN)
  with pytest.raises(ValueError, match="Unknown model"):
    build_model("transformer", config)


def test_model_config_round_trip(config):
  model = DCRNN(config, cross_axis="fields", cell="lstm", shared_units=5, private_units=2,
                rank=2, transfer_stop_gradient=True, tower_units=(7,), dropout=0.1)
  clone = DCRNN.from_config(model.get_config())
  assert clone.get_config() == model.get_config()
  wide = DCRNN(config, cross_dim=0, rank=4, x0_skip=True, parallel_units=(6, 3))
  assert DCRNN.from_config(wide.get_config()).get_config() == wide.get_config()


@pytest.mark.parametrize("save_format", ["keras", "tf"])
def test_save_and_reload_gives_identical_predictions(tmp_path, config, save_format):
  model = DCRNN(config, shared_units=8, private_units=4, tower_units=(8,), x0_skip=True,
                parallel_units=(4,))
  objectives.compile_model(model, config)
  features = random_features(config, 64)
  labels = {"click": np.tile([1.0, 0.0], 32), "conversion": np.tile([1.0, 0.0, 0.0, 0.0], 16)}
  model.fit(features, objectives.make_targets(labels, config), epochs=1, verbose=0)
  path = str(tmp_path / ("model.keras" if save_format == "keras" else "saved"))
  model.save(path, save_format=save_format)
  reloaded = tf.keras.models.load_model(path)
  assert isinstance(reloaded, DCRNN)
  expected = model.predict(features, verbose=0)
  actual = reloaded.predict(features, verbose=0)
  for name in config.output_names:
    np.testing.assert_array_equal(actual[name], expected[name])


def test_config_rejects_a_task_depending_on_a_later_one():
  with pytest.raises(ValueError, match="not an earlier task"):
    funnel_config(extra_tasks=(Task("late", "late_label", depends_on="future"),))


def test_single_task_trains_funnel_stages_on_their_own_labels(config):
  assert objectives.loss_weights(config, entire_space=False) == {
      "ctr": 1.0, "cvr": 1.0, "ctcvr": 0.0}
  single, esmm = build_model("single_task", config), build_model("esmm", config)
  for model in (single, esmm):
    objectives.compile_model(model, config)
  assert single.compiled_loss._loss_weights == {"ctr": 1.0, "cvr": 1.0, "ctcvr": 0.0}
  assert esmm.compiled_loss._loss_weights == {"ctr": 1.0, "cvr": 0.0, "ctcvr": 1.0}


def test_parameters_per_added_task_with_a_fixed_csv_layout(config):
  headerless = dataclasses.replace(config, csv=CsvFormat(header=False, columns=config.columns))
  assert (parameters_per_added_task("shared_bottom", headerless)
          == parameters_per_added_task("shared_bottom", config))


def test_towers_read_the_state_then_x0_then_the_parallel_mlp(config):
  model = DCRNN(config, shared_units=6, private_units=2, cross_dim=5, x0_skip=True,
                parallel_units=(7, 3), tower_units=(4,))
  features = random_features(config, 8)
  model(features)
  embeddings = model.encoder(features)
  x0 = model.cross_input(embeddings)
  states = model.task_states(embeddings)
  blocks = model.partial_sharing(x0)
  parallel = model.parallel(tf.reshape(embeddings, [8, -1]))
  for task in model.task_names:
    assert states[task].shape == (8, 6 + 2 + 5 + 3)
    np.testing.assert_array_equal(states[task].numpy(), tf.concat(
        [blocks[task], x0, parallel], axis=-1).numpy())
  assert model.towers["ctr"].hidden.dense_layers[0].kernel.shape == (16, 4)


def test_cross_dim_zero_crosses_the_flattened_embeddings(config):
  model = DCRNN(config, embedding_dim=4, shared_units=6, private_units=2, cross_dim=0,
                rank=3)
  features = random_features(config, 8)
  model(features)
  assert model.x0_projection is None
  embeddings = model.encoder(features)
  np.testing.assert_array_equal(model.cross_input(embeddings).numpy(),
                                tf.reshape(embeddings, [8, 3 * 4]).numpy())
  assert model.partial_sharing.shared_cross.cross_kernel_v.shape == (3, 3 * 4)
  with pytest.raises(ValueError, match="x0_skip needs"):
    DCRNN(config, cross_axis="fields", x0_skip=True)


def test_masked_auc_agrees_with_the_exact_auc_at_low_prevalence():
  rng = np.random.default_rng(0)
  probabilities = 1.0 / (1.0 + np.exp(-rng.normal(-7.5, 1.0, 50_000)))
  labels = (rng.random(probabilities.size) < probabilities).astype(np.float32)
  assert 0.0005 < labels.mean() < 0.001
  metric = objectives.MaskedAUC()
  metric.update_state(labels, probabilities.astype(np.float32))
  exact = evaluation.roc_auc(labels, probabilities)
  assert abs(float(metric.result()) - exact) < 0.005
  keras_default = objectives.MaskedAUC(num_thresholds=200)
  keras_default.update_state(labels, probabilities.astype(np.float32))
  assert abs(float(keras_default.result()) - exact) > 0.1
