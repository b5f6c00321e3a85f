"""Layers: known weights give known outputs; configs round-trip; shapes and options."""

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import Feature
from dcrnn_tf.layers import FeatureEncoder, PartialSharing, RNNCross, TaskTransfer, Tower


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def simple_step(x, h, kernel, recurrent, bias):
  return np.tanh(x @ kernel + h @ recurrent + bias)


def gru_step(x, h, kernel, recurrent, bias):
  """Keras GRUCell with reset_after=True: bias[0] on inputs, bias[1] on the state."""
  units = h.shape[-1]
  xz, xr, xh = np.split(x @ kernel + bias[0], 3, axis=-1)
  hz, hr, hh = np.split(h @ recurrent + bias[1], 3, axis=-1)
  z = sigmoid(xz + hz)
  r = sigmoid(xr + hr)
  candidate = np.tanh(xh + r * hh)
  assert candidate.shape[-1] == units
  return z * h + (1.0 - z) * candidate


def lstm_step(x, state, kernel, recurrent, bias):
  """Keras LSTMCell; `state` is `[h ‖ c]`, and so is the result."""
  h, c = np.split(state, 2, axis=-1)
  i, f, g, o = np.split(x @ kernel + h @ recurrent + bias, 4, axis=-1)
  c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
  return np.concatenate([sigmoid(o) * np.tanh(c), c], axis=-1)


def layer_norm(h, gamma, beta, epsilon=1e-3):
  """Keras LayerNormalization over the last axis."""
  mean = h.mean(axis=-1, keepdims=True)
  variance = h.var(axis=-1, keepdims=True)
  return (h - mean) / np.sqrt(variance + epsilon) * gamma + beta


def reference_cross(xs, cross_kernel, cross_bias, cell_step, cell_weights, context=None,
                    residual=False, norm=None):
  """h_t = cell(x_t ⊙ (W h_{t-1} + b) [‖ c_t], h_{t-1}) [+ h_{t-1}], h_0 = 0, then
  `layer_norm(h_t, *norm)` if `norm` (gamma, beta) is given; all states."""
  units = cross_kernel.shape[0]
  state = np.zeros((xs[0].shape[0], units * (2 if cell_step is lstm_step else 1)))
  states = []
  for t, x in enumerate(xs):
    cell_input = x * (state[:, :units] @ cross_kernel + cross_bias)
    if context is not None:
      cell_input = np.concatenate([cell_input, context[:, t]], axis=-1)
    previous, state = state, cell_step(cell_input, state, *cell_weights)
    if residual:
      state[:, :units] += previous[:, :units]
    if norm is not None:
      state[:, :units] = layer_norm(state[:, :units], *norm)
    states.append(state[:, :units].copy())
  return np.stack(states, axis=1)


def set_random_weights(layer, rng):
  for weight in layer.weights:
    weight.assign(rng.normal(scale=0.5, size=weight.shape).astype(np.float32))
  return [w.numpy() for w in layer.weights]


CELL_STEPS = [("simple", simple_step), ("gru", gru_step), ("lstm", lstm_step)]


@pytest.mark.parametrize("cell,step", CELL_STEPS)
def test_rnn_cross_depth_known_weights(cell, step):
  rng = np.random.default_rng(0)
  x0 = rng.normal(size=(4, 5)).astype(np.float32)
  layer = RNNCross(units=3, depth=3, cell=cell, return_sequences=True)
  layer(x0)
  set_random_weights(layer, rng)
  expected = reference_cross(
      [x0] * 3, layer.cross_kernel.numpy(), layer.cross_bias.numpy(), step,
      [layer.cell.kernel.numpy(), layer.cell.recurrent_kernel.numpy(), layer.cell.bias.numpy()])
  np.testing.assert_allclose(layer(x0).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell,step", CELL_STEPS)
@pytest.mark.parametrize("residual,normalized", [(True, False), (False, True), (True, True)])
def test_rnn_cross_residual_and_layer_norm_known_weights(cell, step, residual, normalized):
  rng = np.random.default_rng(2)
  x0 = rng.normal(size=(4, 5)).astype(np.float32)
  layer = RNNCross(units=3, depth=3, cell=cell, return_sequences=True, residual=residual,
                   layer_norm=normalized)
  layer(x0)
  set_random_weights(layer, rng)
  norm = ((layer.state_norm.gamma.numpy(), layer.state_norm.beta.numpy())
          if normalized else None)
  expected = reference_cross(
      [x0] * 3, layer.cross_kernel.numpy(), layer.cross_bias.numpy(), step,
      [layer.cell.kernel.numpy(), layer.cell.recurrent_kernel.numpy(), layer.cell.bias.numpy()],
      residual=residual, norm=norm)
  np.testing.assert_allclose(layer(x0).numpy(), expected, rtol=1e-5, atol=1e-5)
  assert len(layer.trainable_weights) == 5 + 2 * normalized


@pytest.mark.parametrize("cell,step", CELL_STEPS)
def test_rnn_cross_fields_known_weights_with_context(cell, step):
  rng = np.random.default_rng(1)
  fields = rng.normal(size=(4, 6, 2)).astype(np.float32)
  context = rng.normal(size=(4, 6, 3)).astype(np.float32)
  layer = RNNCross(units=2, cell=cell, cross_axis="fields")
  layer(fields, context=context)
  set_random_weights(layer, rng)
  expected = reference_cross(
      [fields[:, i] for i in range(6)], layer.cross_kernel.numpy(), layer.cross_bias.numpy(),
      step, [layer.cell.kernel.numpy(), layer.cell.recurrent_kernel.numpy(),
             layer.cell.bias.numpy()], context=context)
  np.testing.assert_allclose(layer(fields, context=context).numpy(), expected[:, -1],
                             rtol=1e-5, atol=1e-6)


def test_rnn_cross_hand_computed_single_unit():
  # units=1, width 2, simple cell, W = [[1, 2]], b = [1, 1], K = [[1], [1]], R = [[0]].
  layer = RNNCross(units=1, depth=2, cell="simple")
  x0 = np.array([[0.5, -0.25]], np.float32)
  layer(x0)
  layer.cross_kernel.assign([[1.0, 2.0]])
  layer.cross_bias.assign([1.0, 1.0])
  layer.cell.kernel.assign([[1.0], [1.0]])
  layer.cell.recurrent_kernel.assign([[0.0]])
  layer.cell.bias.assign([0.0])
  h1 = np.tanh(0.5 - 0.25)                                # x0 ⊙ b = x0
  h2 = np.tanh(0.5 * (h1 + 1.0) - 0.25 * (2.0 * h1 + 1.0))
  np.testing.assert_allclose(layer(x0).numpy(), [[h2]], rtol=1e-6)


def test_rnn_cross_low_rank_equals_full_rank_with_product_kernel():
  rng = np.random.default_rng(2)
  x0 = rng.normal(size=(4, 6)).astype(np.float32)
  low = RNNCross(units=4, depth=2, rank=2)
  full = RNNCross(units=4, depth=2)
  low(x0)
  full(x0)
  set_random_weights(low, rng)
  full.cross_kernel.assign(low.cross_kernel_u.numpy() @ low.cross_kernel_v.numpy())
  full.cross_bias.assign(low.cross_bias)
  for name in ("kernel", "recurrent_kernel", "bias"):
    getattr(full.cell, name).assign(getattr(low.cell, name))
  np.testing.assert_allclose(low(x0).numpy(), full(x0).numpy(), rtol=1e-5, atol=1e-6)
  assert low.count_params() < full.count_params()


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple"])
@pytest.mark.parametrize("axis,shape", [("depth", (3, 7)), ("fields", (3, 5, 4))])
def test_rnn_cross_shapes(cell, axis, shape):
  layer = RNNCross(units=6, depth=2, cell=cell, cross_axis=axis, return_sequences=True)
  steps = 2 if axis == "depth" else shape[1]
  assert layer(tf.random.normal(shape)).shape == (3, steps, 6)


def test_rnn_cross_parameter_count_does_not_grow_with_depth():
  x0 = tf.random.normal([2, 8])
  counts = []
  for depth in (1, 2, 4):
    layer = RNNCross(units=5, depth=depth, cell="gru")
    layer(x0)
    counts.append(layer.count_params())
  # W (5×8) + b (8) + GRU (3·5·(8+5) + 2·3·5).
  assert counts == [5 * 8 + 8 + 3 * 5 * 13 + 30] * 3


def test_rnn_cross_rejects_bad_arguments():
  with pytest.raises(ValueError, match="cell"):
    RNNCross(4, cell="transformer")
  with pytest.raises(ValueError, match="cross_axis"):
    RNNCross(4, cross_axis="time")
  with pytest.raises(ValueError, match="rank 3"):
    RNNCross(4, cross_axis="fields")(tf.zeros([2, 5]))


def test_feature_encoder_categorical_rows_missing_and_out_of_vocabulary():
  encoder = FeatureEncoder(
      [Feature("item", "categorical", vocabulary=("a", "b", "c")),
       Feature("user", "categorical", dtype="int64", vocabulary=("7", "9")),
       Feature("city", "categorical", num_buckets=4)], embedding_dim=2)
  inputs = {"item": tf.constant(["a", "c", "", "zzz", "b"]),
            "user": tf.constant([9, 7, 8, -1, 9], tf.int64),
            "city": tf.constant(["x", "", "y", "x", "z"])}
  encoder(inputs)
  encoder.set_weights(encoder.weights_from_per_field_tables(
      {f"embedding_{name}": np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
       for name, rows in (("item", 5), ("user", 4), ("city", 5))}))
  out = encoder(inputs).numpy()
  # Rows: 0 missing, 1 out of vocabulary, 2.. the vocabulary in order.
  np.testing.assert_array_equal(out[:, 0, 0] / 2, [2, 4, 0, 1, 3])
  np.testing.assert_array_equal(out[:, 1, 0] / 2, [3, 2, 1, 1, 3])
  city = out[:, 2, 0] / 2
  assert city[1] == 4                       # missing: the row after the 4 buckets
  assert city[0] == city[3] and set(city) <= {0, 1, 2, 3, 4}


def test_feature_encoder_multi_categorical_pooling():
  for pooling, expected in (("mean", [[3.0], [2.0], [0.0]]), ("sum", [[6.0], [2.0], [0.0]])):
    encoder = FeatureEncoder([Feature("tags", "multi_categorical", vocabulary=("x", "y"),
                                      pooling=pooling)], embedding_dim=1)
    inputs = {"tags": tf.constant(["x|y", "zz", ""])}
    encoder(inputs)
    encoder.embedding.assign([[0.0], [2.0], [2.0], [4.0]])  # missing, oov, x, y
    np.testing.assert_allclose(encoder(inputs).numpy()[:, 0], expected)


def test_feature_encoder_numeric_standardization_missing_and_extremes():
  encoder = FeatureEncoder([Feature("price", "numeric", mean=10.0, std=2.0),
                            Feature("views", "numeric", mean=1.0, std=0.5, log=True)],
                           embedding_dim=2, clip_value=3.0)
  inputs = {"price": tf.constant([12.0, float("nan"), float("inf"), -1e30]),
            "views": tf.constant([np.e - 1, 0.0, -(np.e - 1), 1e30], tf.float32)}
  encoder(inputs)
  encoder.numeric_kernel.assign([[1.0, 2.0], [1.0, 1.0]])      # price, views
  encoder.numeric_bias.assign([[0.0, 0.5], [0.0, 0.0]])
  encoder.numeric_missing.assign([[7.0, 7.0], [0.0, 0.0]])
  out = encoder(inputs).numpy()
  standardized = np.array([1.0, 0.0, 3.0, -3.0])          # (12 - 10) / 2; missing; clipped
  np.testing.assert_allclose(out[:, 0], standardized[:, None] * [1.0, 2.0] + [0.0, 0.5]
                             + np.array([0, 1, 0, 0])[:, None] * 7.0, rtol=1e-6)
  # log1p(e - 1) = 1 → (1 - 1) / 0.5 = 0; log1p(0) = 0 → -2; sign-symmetric → -4 → -3.
  np.testing.assert_allclose(out[:, 1, 0], [0.0, -2.0, -3.0, 3.0], rtol=1e-5, atol=1e-6)


def test_feature_encoder_bucketized_numeric():
  encoder = FeatureEncoder([Feature("age", "numeric", boundaries=(18.0, 65.0))],
                           embedding_dim=1)
  inputs = {"age": tf.constant([10.0, 18.0, 70.0, float("nan")])}
  encoder(inputs)
  encoder.embedding.assign([[0.0], [1.0], [2.0], [3.0]])   # missing, 3 buckets
  np.testing.assert_array_equal(encoder(inputs).numpy()[:, 0, 0], [1.0, 2.0, 3.0, 0.0])


def test_feature_encoder_refuses_unprepared_features():
  with pytest.raises(ValueError, match="prepare the feature config"):
    FeatureEncoder([Feature("item", "categorical")])


def test_feature_encoder_embedding_tables_are_initialized_independently():
  vocabulary = tuple(str(i) for i in range(30))
  encoder = FeatureEncoder([Feature("a", "categorical", vocabulary=vocabulary),
                            Feature("b", "categorical", vocabulary=vocabulary)])
  encoder({"a": tf.constant(["0"]), "b": tf.constant(["0"])})
  assert encoder.offsets == {"a": 0, "b": 32}
  table = encoder.embedding.numpy()
  assert not np.allclose(table[:32], table[32:])


def test_feature_encoder_names_missing_inputs():
  encoder = FeatureEncoder([Feature("a", "categorical", num_buckets=3),
                            Feature("b", "numeric", mean=0.0, std=1.0)])
  with pytest.raises(KeyError, match="'b'"):
    encoder({"a": tf.constant(["x"])})


def test_task_transfer_known_output_and_stop_gradient():
  parent = tf.constant([[1.0, -2.0]])
  for stop in (False, True):
    transfer = TaskTransfer(units=1, stop_gradient=stop, activation="linear")
    transfer(parent)
    transfer.kernel.assign([[2.0], [0.5]])
    transfer.bias.assign([0.25])
    with tf.GradientTape() as tape:
      tape.watch(parent)
      out = transfer(parent)
    np.testing.assert_allclose(out.numpy(), [[2.0 - 1.0 + 0.25]])
    gradient = tape.gradient(out, parent)
    if stop:
      assert gradient is None
    else:
      np.testing.assert_allclose(gradient.numpy(), [[2.0, 0.5]])


def test_tower_known_output_and_shape():
  tower = Tower(hidden_units=())
  x = tf.constant([[1.0, 2.0], [0.0, -1.0]])
  tower(x)
  tower.logit.kernel.assign([[0.5], [-1.0]])
  tower.logit.bias.assign([0.1])
  np.testing.assert_allclose(tower(x).numpy(), sigmoid(np.array([-1.4, 1.1])), rtol=1e-6)
  assert Tower((8, 4), dropout=0.5)(tf.random.normal([6, 3]), training=True).shape == (6,)


def test_partial_sharing_extremes():
  x0 = tf.random.normal([4, 10])
  hard = PartialSharing(["a", "b"], shared_units=6, private_units=0)
  states = hard(x0)
  assert states["a"].shape == (4, 6)
  np.testing.assert_array_equal(states["a"].numpy(), states["b"].numpy())

  separate = PartialSharing(["a", "b"], shared_units=0, private_units=5)
  with tf.GradientTape() as tape:
    states = separate(x0)
  assert states["a"].shape == (4, 5)
  grads = tape.gradient(states["a"], separate.private_crosses["b"].trainable_weights)
  assert all(g is None for g in grads)  # task a does not touch task b's parameters

  with pytest.raises(ValueError, match="not both 0"):
    PartialSharing(["a"], shared_units=0, private_units=0)


def test_partial_sharing_transfer_reads_parent_state():
  x0 = tf.random.normal([4, 10])
  block = PartialSharing(["ctr", "cvr"], shared_units=6, private_units=3,
                         depends_on={"cvr": "ctr"})
  with tf.GradientTape(persistent=True) as tape:
    states = block(x0)
  assert states["cvr"].shape == (4, 9)
  parent_weights = block.private_crosses["ctr"].trainable_weights
  assert all(g is not None for g in tape.gradient(states["cvr"], parent_weights))
  assert all(g is None for g in tape.gradient(states["ctr"],
                                              block.private_crosses["cvr"].trainable_weights))
  with pytest.raises(ValueError, match="earlier task"):
    PartialSharing(["cvr", "ctr"], depends_on={"cvr": "ctr"})


def reference_partial_sharing(block, x0, step):
  """The numpy computation of `PartialSharing` from its weights: the shared cross, then
  each task's private cross reading the shared states and its parent's transferred
  private states."""
  def cross(layer, context=None):
    cell = layer.cell
    norm = ((layer.state_norm.gamma.numpy(), layer.state_norm.beta.numpy())
            if block.layer_norm else None)
    return reference_cross(
        [x0] * block.depth, layer.cross_kernel.numpy(), layer.cross_bias.numpy(), step,
        [cell.kernel.numpy(), cell.recurrent_kernel.numpy(), cell.bias.numpy()], context,
        residual=block.residual, norm=norm)
  shared = cross(block.shared_cross) if block.shared_units else None
  if not block.private_units:
    return {task: shared[:, -1] for task in block.task_names}
  private, outputs = {}, {}
  for task in block.task_names:
    context = [] if shared is None else [shared]
    if task in block.transfers:
      transfer = block.transfers[task]
      context.append(np.tanh(private[block.depends_on[task]] @ transfer.kernel.numpy()
                             + transfer.bias.numpy()))
    private[task] = cross(block.private_crosses[task],
                          np.concatenate(context, axis=-1) if context else None)
    parts = ([] if shared is None else [shared[:, -1]]) + [private[task][:, -1]]
    outputs[task] = np.concatenate(parts, axis=-1)
  return outputs


@pytest.mark.parametrize("cell,step", CELL_STEPS)
@pytest.mark.parametrize("shared,private,depends_on,residual", [
    (5, 3, {}, False), (5, 3, {"b": "a", "c": "a"}, False), (6, 0, {}, False),
    (0, 4, {"b": "a"}, False), (5, 3, {"b": "a"}, True)])
def test_partial_sharing_known_weights(cell, step, shared, private, depends_on, residual):
  rng = np.random.default_rng(3)
  x0 = rng.normal(size=(4, 7)).astype(np.float32)
  block = PartialSharing(["a", "b", "c"], shared_units=shared, private_units=private,
                         depends_on=depends_on, depth=3, cell=cell, residual=residual,
                         layer_norm=residual)
  block(x0)
  set_random_weights(block, rng)
  expected = reference_partial_sharing(block, x0, step)
  states = block(x0)
  for task in ("a", "b", "c"):
    np.testing.assert_allclose(states[task].numpy(), expected[task], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer,inputs", [
    (RNNCross(4, depth=2, cell="lstm", cross_axis="depth", rank=2,
              kernel_regularizer="l2"), tf.random.normal([2, 6])),
    (RNNCross(3, depth=3, cell="gru", residual=True, layer_norm=True),
     tf.random.normal([2, 5])),
    (FeatureEncoder([Feature("a", "categorical", vocabulary=("x", "y")),
                     Feature("t", "multi_categorical", num_buckets=7, pooling="sum"),
                     Feature("b", "numeric", mean=1.0, std=2.0, log=True),
                     Feature("c", "numeric", boundaries=(0.0, 1.0))], 4, clip_value=5.0),
     {"a": tf.constant(["x", "q"]), "t": tf.constant(["u|v", ""]),
      "b": tf.constant([0.5, 1.0]), "c": tf.constant([0.5, -1.0])}),
    (TaskTransfer(3, stop_gradient=True, activation="relu"), tf.random.normal([2, 4])),
    (Tower((5,), activation="tanh", dropout=0.2), tf.random.normal([2, 4])),
    (PartialSharing(["a", "b"], 4, 2, depends_on={"b": "a"}, transfer_stop_gradient=True,
                    depth=2, cell="simple", cross_axis="fields", rank=1),
     tf.random.normal([2, 3, 4])),
    (PartialSharing(["a", "b"], 4, 2, depth=3, residual=True, layer_norm=True),
     tf.random.normal([2, 5])),
])
def test_get_config_round_trip(layer, inputs):
  config = layer.get_config()
  clone = type(layer).from_config(config)
  assert clone.get_config() == config
  restored = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
  assert type(restored) is type(layer) and restored.get_config() == config
  layer(inputs)
  clone(inputs)
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(tf.nest.flatten(clone(inputs)), tf.nest.flatten(layer(inputs)))


class ScaledCross(RNNCross):
  """An `RNNCross` subclass (doubles its states) for the `make_cross` hook's tests."""

  def call(self, inputs, context=None, training=None):
    return 2.0 * super().call(inputs, context=context, training=training)


class ScaledSharing(PartialSharing):
  """A `PartialSharing` whose `make_cross` override passes the block's options on."""

  def make_cross(self, units, name, **options):
    return ScaledCross(units, name=name, **options)


def scaled_sharing():
  return ScaledSharing(["a", "b"], shared_units=5, private_units=3, depends_on={"b": "a"},
                       depth=3, cell="gru", rank=2, residual=True, layer_norm=True,
                       kernel_regularizer=tf.keras.regularizers.l2(0.01))


def test_make_cross_override_gets_every_configured_option():
  block = scaled_sharing()
  block(tf.random.normal([2, 6]))
  crosses = {"shared_cross": (block.shared_cross, 5),
             "private_cross_a": (block.private_crosses["a"], 3),
             "private_cross_b": (block.private_crosses["b"], 3)}
  regularizer = tf.keras.regularizers.serialize(tf.keras.regularizers.l2(0.01))
  for name, (cross, units) in crosses.items():
    assert type(cross) is ScaledCross
    config = cross.get_config()
    assert {key: config[key] for key in ("name", "units", "depth", "cell", "cross_axis", "rank",
                                         "return_sequences", "residual", "layer_norm",
                                         "kernel_regularizer")} == {
        "name": name, "units": units, "depth": 3, "cell": "gru", "cross_axis": "depth",
        "rank": 2, "return_sequences": True, "residual": True, "layer_norm": True,
        "kernel_regularizer": regularizer}
    assert cross.state_norm is not None
  assert len(block.losses) == 3 * 2  # l2 on the low-rank factors of each of the 3 crosses


def test_make_cross_override_saves_and_reloads(tmp_path):
  x0 = np.random.default_rng(5).normal(size=(4, 6)).astype(np.float32)
  inputs = tf.keras.Input(shape=(6,))
  model = tf.keras.Model(inputs, scaled_sharing()(inputs))
  set_random_weights(model, np.random.default_rng(6))
  path = str(tmp_path / "model.keras")
  model.save(path)
  custom_objects = {"ScaledSharing": ScaledSharing}
  reloaded = tf.keras.models.load_model(path, custom_objects=custom_objects)
  [block] = [layer for layer in reloaded.layers if isinstance(layer, ScaledSharing)]
  assert type(block.shared_cross) is ScaledCross
  assert all(type(cross) is ScaledCross for cross in block.private_crosses.values())
  expected, actual = model(x0), reloaded(x0)
  for task in ("a", "b"):
    np.testing.assert_array_equal(actual[task].numpy(), expected[task].numpy())
  clone = tf.keras.layers.deserialize(tf.keras.layers.serialize(model.layers[-1]),
                                      custom_objects=custom_objects)
  assert type(clone) is ScaledSharing and clone.get_config() == model.layers[-1].get_config()
