"""The fused FeatureEncoder against a numpy reference of the former per-field layout, and
the refusal of weights written in that layout."""

import zipfile

import h5py
import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import random_features
from dcrnn_tf import trainer
from dcrnn_tf import objectives
from dcrnn_tf.features import Feature
from dcrnn_tf.layers import FeatureEmbedding, FeatureEncoder, FeaturePreprocessor
from dcrnn_tf.layers.feature_encoder import IDS, NUMBERS, preprocessed_key
from dcrnn_tf.models import DCRNN

DIM = 3
CLIP = 2.5
FEATURES = (
    Feature("age", "numeric", mean=40.0, std=12.0),
    Feature("item", "categorical", vocabulary=("a", "b", "c")),
    Feature("city", "categorical", num_buckets=5),
    Feature("income", "numeric", mean=1.0, std=0.5, log=True),
    Feature("user", "categorical", dtype="int64", vocabulary=("7", "9", "11")),
    Feature("tags", "multi_categorical", vocabulary=("x", "y", "z"), pooling="mean"),
    Feature("hours", "numeric", boundaries=(10.0, 20.0, 40.0)),
    Feature("words", "multi_categorical", num_buckets=4, delimiter=",", pooling="sum"),
    Feature("shop", "categorical", dtype="int64", num_buckets=3),
    Feature("spend", "numeric", boundaries=(0.0, 1.0), log=True),
    Feature("visits", "numeric", mean=0.0, std=2.0),
)
NAN, INF = float("nan"), float("inf")
INPUTS = {
    "age": np.array([40.0, NAN, INF, -INF, 76.0, 10.0], np.float32),
    "item": np.array(["a", "c", "", "zzz", "b", "a"], object),
    "city": np.array(["x", "", "y", "x", "z", "w"], object),
    "income": np.array([np.e - 1, 0.0, NAN, -1e30, 1e30, 3.0], np.float32),
    "user": np.array([9, 7, 8, -1, 11, 9], np.int64),
    "tags": np.array(["x|y", "zz", "", "z|x|x", "y", "q|"], object),
    "hours": np.array([5.0, 10.0, 39.9, 40.0, NAN, INF], np.float32),
    "words": np.array(["p,q", "", "r", "p,p,s", "t,", "u"], object),
    "shop": np.array([1, 5, 900, 1, -3, 2], np.int64),
    "spend": np.array([-INF, 0.0, np.e - 1, 1e30, NAN, INF], np.float32),
    "visits": np.array([1.0, -10.0, NAN, 0.0, 4.0, INF], np.float32),
}


def per_field_tables(seed=0):
  """Random weights of the former layout: one table per categorical or bucketized
  feature, one kernel, bias and missing vector per standardized one."""
  rng = np.random.default_rng(seed)
  tables = {}
  for feature in FEATURES:
    if feature.num_buckets is not None:
      rows = feature.num_buckets + 1
    elif feature.is_categorical:
      rows = len(feature.vocabulary) + 2
    elif feature.boundaries is not None:
      rows = len(feature.boundaries) + 2
    else:
      for name in ("numeric_kernel", "numeric_bias", "numeric_missing"):
        tables[f"{name}_{feature.name}"] = rng.normal(size=DIM).astype(np.float32)
      continue
    tables[f"embedding_{feature.name}"] = rng.normal(size=(rows, DIM)).astype(np.float32)
  return tables


def reference_row(feature, value: str) -> int:
  """The former encoder's row of a categorical value in the feature's own table."""
  if feature.num_buckets is not None:
    if value == "":
      return feature.num_buckets
    return int(tf.strings.to_hash_bucket_fast(value, feature.num_buckets))
  if value == "":
    return 0
  return feature.vocabulary.index(value) + 2 if value in feature.vocabulary else 1


def reference_numeric(feature, values):
  values = values.astype(np.float32)
  missing = np.isnan(values)
  if feature.log:
    values = np.sign(values) * np.log1p(np.abs(values))
  return values, missing


def reference(tables, inputs):
  """The former per-field encoder's output `[batch, features, dim]`, in numpy."""
  fields = []
  for feature in FEATURES:
    raw = inputs[feature.name]
    if feature.type == "categorical":
      table = tables[f"embedding_{feature.name}"]
      fields.append(np.stack([table[reference_row(feature, str(v))] for v in raw]))
    elif feature.type == "multi_categorical":
      table = tables[f"embedding_{feature.name}"]
      pool = np.mean if feature.pooling == "mean" else np.sum
      fields.append(np.stack([
          pool([table[reference_row(feature, v)] for v in str(value).split(feature.delimiter)],
               axis=0) for value in raw]))
    elif feature.boundaries is not None:
      values, missing = reference_numeric(feature, raw)
      buckets = np.searchsorted(np.array(feature.boundaries, np.float32),
                                np.where(missing, 0.0, values), side="right") + 1
      fields.append(tables[f"embedding_{feature.name}"][np.where(missing, 0, buckets)])
    else:
      values, missing = reference_numeric(feature, raw)
      standardized = np.clip((values - np.float32(feature.mean)) / np.float32(feature.std),
                             -CLIP, CLIP)
      standardized = np.where(missing, 0.0, standardized)[:, None]
      fields.append(standardized * tables[f"numeric_kernel_{feature.name}"]
                    + tables[f"numeric_bias_{feature.name}"]
                    + missing[:, None] * tables[f"numeric_missing_{feature.name}"])
  return np.stack(fields, axis=1)


def fused_encoder(tables):
  encoder = FeatureEncoder(FEATURES, DIM, clip_value=CLIP)
  encoder({name: tf.constant(values) for name, values in INPUTS.items()})
  encoder.set_weights(encoder.weights_from_per_field_tables(tables))
  return encoder


def test_fused_encoder_equals_the_per_field_reference():
  tables = per_field_tables()
  encoder = fused_encoder(tables)
  assert [w.name.split("/")[-1] for w in encoder.weights] == [
      "embedding:0", "numeric_kernel:0", "numeric_bias:0", "numeric_missing:0"]
  assert encoder.embedding.shape == (5 + 6 + 5 + 5 + 5 + 5 + 4 + 4, DIM)
  assert encoder.numeric_kernel.shape == (3, DIM)
  expected = reference(tables, INPUTS)
  assert np.all(np.isfinite(expected))
  inputs = {name: tf.constant(values) for name, values in INPUTS.items()}
  np.testing.assert_allclose(encoder(inputs).numpy(), expected, rtol=0, atol=1e-6)
  column = {name: tf.constant(values[:, None]) for name, values in INPUTS.items()}
  np.testing.assert_allclose(encoder(column).numpy(), expected, rtol=0, atol=1e-6)


def test_the_embedding_gradient_is_one_sparse_update():
  encoder = fused_encoder(per_field_tables())
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(encoder({n: tf.constant(v) for n, v in INPUTS.items()}) ** 2)
  gradients = tape.gradient(loss, encoder.trainable_weights)
  assert isinstance(gradients[0], tf.IndexedSlices)
  assert not any(isinstance(g, tf.IndexedSlices) for g in gradients[1:])
  optimizer = tf.keras.optimizers.Adam()
  before = encoder.embedding.numpy()
  optimizer.apply_gradients(zip(gradients, encoder.trainable_weights))
  touched = np.unique(gradients[0].indices.numpy())
  changed = np.flatnonzero(np.any(encoder.embedding.numpy() != before, axis=1))
  np.testing.assert_array_equal(changed, touched)


def old_layout_variables(config):
  """Variables named as the former encoder named its per-field weights."""
  variables = {}
  for feature in config.features:
    if feature.is_categorical:
      variables[f"embedding_{feature.name}"] = tf.Variable(
          tf.zeros([len(feature.vocabulary) + 2, 8]))
    else:
      for name in ("numeric_kernel", "numeric_bias", "numeric_missing"):
        variables[f"{name}_{feature.name}"] = tf.Variable(tf.zeros([8]))
  return variables


def test_a_checkpoint_of_the_per_field_layout_is_refused(tmp_path, config):
  checkpoint = tf.train.Checkpoint(model=tf.train.Checkpoint(
      encoder=tf.train.Checkpoint(**old_layout_variables(config))))
  path = tf.train.CheckpointManager(
      checkpoint, str(tmp_path / trainer.CHECKPOINTS), max_to_keep=1).save()
  with pytest.raises(ValueError, match=(
      f"Checkpoint {path} holds .*'embedding_item'.*one embedding table .*per feature.*"
      "fused.*retrain.*weights_from_per_field_tables")):
    trainer.Trainer("dcrnn", {"shared_units": 4, "private_units": 2}, config, str(tmp_path))


def test_a_keras_file_of_the_per_field_layout_is_refused(tmp_path, config):
  model = DCRNN(config, shared_units=4, private_units=2, tower_units=(4,))
  objectives.compile_model(model, config)
  model(random_features(config, 2))
  path = str(tmp_path / "model.keras")
  model.save(path)
  with zipfile.ZipFile(path) as archive:
    members = {name: archive.read(name) for name in archive.namelist()}
  weights_path = str(tmp_path / "model.weights.h5")
  with open(weights_path, "wb") as f:
    f.write(members["model.weights.h5"])
  with h5py.File(weights_path, "r+") as weights:
    names = []
    weights.visit(names.append)
    [encoder] = [name for name in names if name.endswith("feature_encoder/vars")]
    del weights[encoder]
    for i, variable in enumerate(old_layout_variables(config).values()):
      weights.create_dataset(f"{encoder}/{i}", data=variable.numpy())
  with open(weights_path, "rb") as f:
    members["model.weights.h5"] = f.read()
  old = str(tmp_path / "old.keras")
  with zipfile.ZipFile(old, "w") as archive:
    for name, data in members.items():
      archive.writestr(name, data)
  with pytest.raises(ValueError, match="'encoder' weights being loaded have shapes "
                     r"\[\(22, 8\), \(52, 8\), \(8,\), \(8,\), \(8,\)\].*fused"):
    tf.keras.models.load_model(old)


def test_infinite_serving_values_act_as_the_largest_finite_ones():
  """Training refuses ±inf (the scan); a served ±inf gets the encoding of ±3.4e38: a
  standardized value clips to ±clip_value, a bucketized one falls in the outermost
  bucket. NaN is missing."""
  numeric = [f for f in FEATURES if not f.is_categorical]
  encoder = FeatureEncoder(numeric, DIM, clip_value=CLIP)
  largest = np.finfo(np.float32).max

  def encode(value):
    return encoder({f.name: tf.constant([value], tf.float32) for f in numeric}).numpy()

  np.testing.assert_array_equal(encode(INF), encode(largest))
  np.testing.assert_array_equal(encode(-INF), encode(-largest))
  assert not np.array_equal(encode(NAN), encode(largest))
  assert not np.array_equal(encode(NAN), encode(-largest))


def test_preprocessed_inputs_give_the_raw_inputs_outputs_exactly():
  """The split: the preprocessor's output, embedded, is what the encoder gives for raw
  values (every kind of feature, missing and extreme values); the preprocessor and the
  embedding are layers of their own that save and reload through their configs."""
  tables = per_field_tables()
  encoder = fused_encoder(tables)
  raw = {name: tf.constant(values) for name, values in INPUTS.items()}
  preprocessed = encoder.preprocessor(raw)
  assert sorted(preprocessed) == sorted([IDS, NUMBERS, preprocessed_key("tags"),
                                         preprocessed_key("words")])
  # Categorical and bucketized ids packed in one tensor, the standardized in another.
  assert preprocessed[IDS].dtype == tf.int64 and preprocessed[IDS].shape == (6, 6)
  assert preprocessed[NUMBERS].shape == (6, 3)
  assert isinstance(preprocessed[preprocessed_key("tags")], tf.RaggedTensor)
  np.testing.assert_array_equal(encoder(preprocessed), encoder(raw))
  np.testing.assert_allclose(encoder(preprocessed).numpy(), reference(tables, INPUTS),
                             rtol=0, atol=1e-6)
  # The two pieces on their own, rebuilt from their configs.
  preprocessor = FeaturePreprocessor.from_config(encoder.preprocessor.get_config())
  embedding = FeatureEmbedding.from_config(
      {k: v for k, v in encoder.get_config().items() if k not in ("clip_value", "na_values")})
  embedding(preprocessor(raw))
  embedding.set_weights(encoder.get_weights())
  np.testing.assert_array_equal(embedding(preprocessor(raw)), encoder(raw))
  assert not preprocessor.weights and len(embedding.weights) == 4


def test_checkpoints_keep_the_encoders_variable_names(tmp_path, config):
  """The encoder's weights are still its own (`encoder/embedding`, ...): checkpoints
  written before the preprocessing was split off load."""
  model = trainer.build_model("dcrnn", {}, config, 1e-3)
  path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
  keys = {key for key, _ in tf.train.list_variables(path) if "/encoder/" in key
          and "OPTIMIZER_SLOT" not in key}
  assert keys == {f"model/encoder/{name}/.ATTRIBUTES/VARIABLE_VALUE"
                  for name in ("embedding", "numeric_kernel", "numeric_bias",
                               "numeric_missing")}


def test_integer_columns_of_any_width_look_up_as_their_decimal_strings():
  features = [Feature("a", "categorical", dtype="int64", vocabulary=("1", "2")),
              Feature("b", "categorical", dtype="int64", vocabulary=("7",)),
              Feature("c", "categorical", vocabulary=("x",))]
  preprocessor = FeaturePreprocessor(features)
  ids = preprocessor({"a": tf.constant([2, 5], tf.int32), "b": tf.constant([7, 7], tf.int64),
                      "c": tf.constant(["x", ""])})[IDS]
  as_strings = preprocessor({"a": tf.constant(["2", "5"]), "b": tf.constant(["7", "7"]),
                             "c": tf.constant(["x", ""])})[IDS]
  np.testing.assert_array_equal(ids, as_strings)
  # Rows: a's block (missing, unknown, "1", "2"), then b's, then c's.
  assert ids.numpy().tolist() == [[3, 6, 9], [1, 6, 7]]


def test_a_value_of_na_values_is_missing_even_where_a_vocabulary_holds_it():
  features = [Feature("a", "categorical", vocabulary=("?", "x")),
              Feature("b", "categorical", vocabulary=("x", "none"), lowercase=True),
              Feature("c", "categorical", vocabulary=("x",))]
  preprocessor = FeaturePreprocessor(features, na_values=["?", " NONE "])
  ids = preprocessor({"a": tf.constant(["?", " x", "y", ""]),
                      "b": tf.constant(["None", "X ", "?", "y"]),
                      "c": tf.constant(["NONE", "x", "none", "?"])})[IDS]
  # Rows: a's block (missing 0, unknown 1, "?" 2, "x" 3), b's from 4, c's from 8.
  assert ids.numpy().tolist() == [[0, 4, 8], [3, 6, 10], [1, 4, 9], [0, 5, 8]]


def test_the_same_value_in_two_fields_gets_each_fields_row():
  features = [Feature(name, "categorical", vocabulary=("x", "y")) for name in "abc"]
  ids = FeaturePreprocessor(features)({name: tf.constant(["y", "x"]) for name in "abc"})[IDS]
  assert ids.numpy().tolist() == [[3, 7, 11], [2, 6, 10]]
