"""The baselines (Shared-Bottom, MMoE, PLE, ESMM, DCN, single-task), their blocks and flags."""

import dataclasses
import inspect
import json

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from conftest import random_features
from dcrnn_tf import saved_model
from dcrnn_tf import run_flags
from dcrnn_tf import objectives
from dcrnn_tf.benchmark.measure import parameters_per_added_task
from dcrnn_tf.features import Task
from dcrnn_tf.layers import CGC, MLP
from dcrnn_tf.models import MODELS, build_model

# Small options per baseline; their parameter counts are worked out below.
SMALL = {
    "shared_bottom": dict(embedding_dim=4, bottom_units=(7, 6), tower_units=(5,)),
    "mmoe": dict(embedding_dim=4, num_experts=3, expert_units=(6,), tower_units=(5,)),
    "ple": dict(embedding_dim=4, num_levels=2, num_shared_experts=2, num_task_experts=1,
                expert_units=(7, 6), tower_units=(5,)),
    "esmm": dict(embedding_dim=4, hidden_units=(7, 6), tower_units=(5,)),
    "dcn": dict(embedding_dim=4, cross_layers=2, cross_rank=3, deep_units=(6,),
                tower_units=(5,)),
    "single_task": dict(embedding_dim=4, hidden_units=(7, 6), tower_units=(5,)),
}
BASELINES = sorted(SMALL)
# One SavedModel test per family of blocks (the serving signatures are the same code for
# every model): gated experts (two layers of their own), the entire-space funnel, the
# cross network. The MLP-only shared_bottom and single_task export as DCRNN's towers do
# (test_export, test_serving); every model's Keras reload is tested below.
EXPORT_FAMILIES = ("mmoe", "ple", "esmm", "dcn")


def dense(inputs, units):
  return inputs * units + units


def mlp(inputs, units):
  sizes = (inputs,) + tuple(units)
  return sum(dense(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


def tower(width):
  return mlp(width, (5, 1))


def low_rank_cross(width, rank):
  return width * rank + rank * width + width


def trainable(weights):
  return sum(int(w.shape.num_elements()) for w in weights)


def built(name, config, **options):
  model = build_model(name, config, **(options or SMALL[name]))
  model(random_features(config, 2))
  return model


def fit(model, config, rows=64):
  objectives.compile_model(model, config)
  features = random_features(config, rows)
  labels = {"click": np.tile([1.0, 0.0], rows // 2),
            "conversion": np.tile([1.0, 0.0, 0.0, 0.0], rows // 4)}
  history = model.fit(features, objectives.make_targets(labels, config), epochs=1,
                      batch_size=32, verbose=0)
  return features, history.history["loss"][-1]


def test_registry_holds_dcrnn_and_every_baseline():
  assert sorted(MODELS) == sorted(["dcrnn"] + BASELINES)


@pytest.mark.parametrize("name", BASELINES)
def test_outputs_are_named_probabilities_with_the_funnel_product(config, name):
  outputs = build_model(name, config, **SMALL[name])(random_features(config, 5))
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"]
  for value in outputs.values():
    assert value.shape == (5,) and value.dtype == tf.float32
    assert np.all((value.numpy() > 0) & (value.numpy() < 1))
  np.testing.assert_array_equal(outputs["ctcvr"].numpy(),
                                (outputs["ctr"] * outputs["cvr"]).numpy())


def block_parameters(name, x):
  """Parameters between the encoder and the towers of a SMALL model, two tasks, input x."""
  return {
      "shared_bottom": mlp(x, (7, 6)),
      "mmoe": 3 * mlp(x, (6,)) + 2 * dense(x, 3),
      # Level 0: 2 shared + 2×1 task experts, 2 task gates over 3, a shared gate over 4.
      # Level 1 (input width 6): the same experts and task gates, no shared gate.
      "ple": (4 * mlp(x, (7, 6)) + 2 * dense(x, 3) + dense(x, 4)
              + 4 * mlp(6, (7, 6)) + 2 * dense(6, 3)),
      "esmm": 2 * mlp(x, (7, 6)),
      "dcn": 2 * (2 * low_rank_cross(x, 3) + mlp(x, (6,))),
      "single_task": 2 * mlp(x, (7, 6)),
  }[name]


@pytest.mark.parametrize("name", BASELINES)
def test_parameter_count(config, name):
  model = built(name, config)
  width = len(config.features) * 4
  expected = (trainable(model.encoder.trainable_weights) + block_parameters(name, width)
              + 2 * tower(6))
  assert trainable(model.trainable_weights) == expected


def test_full_rank_dcn_parameter_count(config):
  model = built("dcn", config, embedding_dim=4, cross_layers=1, cross_rank=None,
                deep_units=(), tower_units=(5,))
  width = len(config.features) * 4
  assert trainable(model.trainable_weights) == (trainable(model.encoder.trainable_weights)
                                                + 2 * (dense(width, width) + tower(width)))


def gru_cell(units, input_width):
  return 3 * units * (input_width + units) + 2 * 3 * units


DCRNN_SMALL = dict(embedding_dim=4, cross_dim=10, cell="gru", shared_units=6, private_units=3,
                   tower_units=(5,))


@pytest.mark.parametrize("name", ["dcrnn"] + BASELINES)
def test_parameters_per_added_task(config, name):
  x = len(config.features) * 4
  added = {
      # A private cell and its layer norm, a tower.
      "dcrnn": 3 * 10 + 10 + gru_cell(3, 10 + 6) + 2 * 3 + tower(6 + 3),
      "shared_bottom": tower(6),                                     # a tower
      "mmoe": dense(x, 3) + tower(6),                                # a gate, a tower
      # Per level: a task expert and a task gate; level 0's shared gate mixes one
      # more expert; a tower.
      "ple": (mlp(x, (7, 6)) + dense(x, 3) + (x + 1)
              + mlp(6, (7, 6)) + dense(6, 3) + tower(6)),
      "esmm": mlp(x, (7, 6)) + tower(6),                             # a whole network
      "dcn": 2 * low_rank_cross(x, 3) + mlp(x, (6,)) + tower(6),
      "single_task": mlp(x, (7, 6)) + tower(6),
  }[name]
  options = DCRNN_SMALL if name == "dcrnn" else SMALL[name]
  assert parameters_per_added_task(name, config, **options) == added


@pytest.mark.parametrize("name", BASELINES)
def test_config_round_trip(config, name):
  model = MODELS[name](config, dropout=0.1, name=f"my_{name}", **SMALL[name])
  clone = type(model).from_config(model.get_config())
  assert clone.get_config() == model.get_config()
  assert json.loads(json.dumps(model.get_config())) == model.get_config()


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.slow
def test_fit_then_keras_reload_gives_identical_predictions(tmp_path, config, name):
  model = build_model(name, config, **SMALL[name])
  features, loss = fit(model, config)
  assert np.isfinite(loss)
  path = str(tmp_path / "model.keras")
  model.save(path)
  reloaded = tf.keras.models.load_model(path)
  assert type(reloaded) is type(model)
  expected = model.predict(features, verbose=0)
  actual = reloaded.predict(features, verbose=0)
  for output in config.output_names:
    np.testing.assert_array_equal(actual[output], expected[output])


@pytest.mark.parametrize("name", EXPORT_FAMILIES)
def test_saved_model_export_reloads_with_the_same_outputs(tmp_path, config, name):
  model = built(name, config)
  features = random_features(config, 8, seed=5)
  expected = model(features)
  path = saved_model.export_saved_model(model, config, str(tmp_path / "export"))
  loaded = tf.saved_model.load(path)
  actual = loaded.signatures[saved_model.PREDICT_FEATURES](
      **{k: tf.constant(v) for k, v in features.items()})
  assert sorted(actual) == sorted(config.output_names)
  for output in config.output_names:
    np.testing.assert_allclose(actual[output].numpy(), expected[output].numpy(), rtol=1e-6)


def test_esmm_needs_a_funnel(config):
  no_funnel = dataclasses.replace(config, tasks=(Task("ctr", "click"),
                                                 Task("cvr", "conversion")))
  with pytest.raises(ValueError, match="ESMM needs a funnel"):
    build_model("esmm", no_funnel)
  assert sorted(build_model("single_task", no_funnel, **SMALL["single_task"])(
      random_features(no_funnel, 2))) == ["ctr", "cvr"]


def test_single_task_networks_share_nothing_but_the_encoder(config):
  model = built("single_task", config)
  with tf.GradientTape() as tape:
    ctr = model(random_features(config, 3))["ctr"]
  cvr_weights = model.networks["cvr"].trainable_weights + model.towers["cvr"].trainable_weights
  assert all(g is None for g in tape.gradient(ctr, cvr_weights))


def options_from_flags(*argv):
  """The options that `dcrnn_tf.main` gives its `--model` from these flags."""
  model = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--model="))
  with flagsaver.flagsaver():
    flags.FLAGS(["prog"] + [arg for arg in argv if not arg.startswith("--model=")])
    return run_flags.model_options(model)


def constructor_options(name):
  return [p for p in inspect.signature(MODELS[name]).parameters
          if p not in ("feature_config", "kwargs")]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_flag_defaults_are_the_constructor_defaults(name):
  options = options_from_flags(f"--model={name}")
  assert list(options) == constructor_options(name)
  defaults = {p: v.default for p, v in inspect.signature(MODELS[name]).parameters.items()
              if p in options}
  assert options == {p: list(v) if isinstance(v, tuple) else v for p, v in defaults.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_options_build_the_model_after_a_json_round_trip(config, name):
  options = json.loads(json.dumps(options_from_flags(f"--model={name}", "--embedding_dim=4",
                                                     "--tower_units=5")))
  model = build_model(name, config, **options)
  assert isinstance(model, MODELS[name])
  assert model.embedding_dim == 4 and model.tower_units == (5,)
  assert sorted(model(random_features(config, 2))) == ["ctcvr", "ctr", "cvr"]


def test_model_options_read_the_flags_of_the_model():
  ple = options_from_flags("--model=ple", "--num_levels=1", "--expert_units=8,4",
                           "--cross_rank=0", "--num_experts=9")
  assert ple["num_levels"] == 1 and ple["expert_units"] == [8, 4]
  assert "cross_rank" not in ple and "num_experts" not in ple
  assert options_from_flags("--model=dcn", "--cross_rank=0", "--deep_units=")[
      "cross_rank"] is None
  assert options_from_flags("--model=dcn", "--deep_units=")["deep_units"] == []
  assert options_from_flags("--model=dcrnn", "--rank=2")["rank"] == 2


def test_cgc_with_task_experts_only_shared_is_mmoe():
  x = tf.random.normal([5, 12])
  states = CGC(3, num_shared_experts=4, num_task_experts=0, expert_units=(6,))(x)
  assert len(states) == 3 and all(s.shape == (5, 6) for s in states)


def test_cgc_levels_stack():
  x = tf.random.normal([5, 12])
  first = CGC(2, num_shared_experts=1, num_task_experts=2, expert_units=(6,),
              shared_output=True)
  second = CGC(2, num_shared_experts=1, num_task_experts=2, expert_units=(3,))
  middle = first(x)
  assert len(middle) == 3 and all(s.shape == (5, 6) for s in middle)
  last = second(middle)
  assert len(last) == 2 and all(s.shape == (5, 3) for s in last)
  with pytest.raises(ValueError, match="list of 3"):
    CGC(2)(middle[:2])


def test_cgc_outputs_are_convex_mixtures_of_the_experts():
  layer = CGC(1, num_shared_experts=2, num_task_experts=1, expert_units=(4,))
  x = tf.random.normal([6, 5])
  (state,) = layer(x)
  experts = tf.stack([layer.task_experts[0](x)] + [e(x) for e in layer.shared_experts],
                     axis=1)
  gate = layer.task_gates[0](x)
  np.testing.assert_allclose(gate.numpy().sum(axis=1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(state.numpy(),
                             tf.reduce_sum(gate[:, :, None] * experts, axis=1).numpy(),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_shared_experts=0, num_task_experts=0), "not both 0"),
    (dict(num_shared_experts=0, shared_output=True), "shared_output needs"),
    (dict(expert_units=()), "at least one layer"),
])
def test_cgc_rejects_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    CGC(2, **kwargs)


def test_layer_configs_round_trip():
  for layer in (MLP((8, 4), activation="tanh"),
                CGC(3, num_shared_experts=2, num_task_experts=1, expert_units=(8, 4),
                    shared_output=True)):
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_mlp_without_units_is_the_identity():
  x = tf.random.normal([3, 4])
  np.testing.assert_array_equal(MLP(())(x).numpy(), x.numpy())
