"""A prepared model takes raw values: unseen categories, missing values and extreme
numbers give valid probabilities, in the model and through the exported SavedModel."""

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import serialize_example

from dcrnn_tf import objectives, saved_model
from dcrnn_tf.data import pipeline, scan
from dcrnn_tf.features import Feature, FeatureConfig, Task
from dcrnn_tf.models import DCRNN

RAW_CONFIG = FeatureConfig(
    features=(Feature("item", "categorical", min_count=2),
              Feature("user", "categorical", dtype="int64"),
              Feature("tags", "multi_categorical"),
              Feature("shop", "categorical", num_buckets=16),
              Feature("price", "numeric", log=True),
              Feature("age", "numeric", num_bins=4),
              Feature("score", "numeric")),
    labels=("click", "conversion"),
    tasks=(Task("ctr", "click"),
           Task("cvr", "conversion", depends_on="ctr", funnel_output="ctcvr")))
OUTPUTS = ("ctr", "cvr", "ctcvr")
NAN, INF = float("nan"), float("inf")


def _frame(rows, seed=0):
  rng = np.random.default_rng(seed)
  item = rng.integers(0, 30, rows)
  price = rng.lognormal(2.0, 1.5, rows)
  click = (rng.random(rows) < 1 / (1 + np.exp(-(item % 5 - 3.0)))).astype(np.int64)
  return pd.DataFrame({
      "item": [f"item{v}" for v in item],
      "user": rng.integers(0, 100, rows),
      "tags": ["|".join(f"t{t}" for t in rng.choice(8, rng.integers(1, 4), replace=False))
               for _ in range(rows)],
      "shop": [f"shop{v}" for v in rng.integers(0, 50, rows)],
      "price": price.astype(np.float32),
      "age": rng.integers(18, 80, rows).astype(np.float32),
      "score": rng.normal(5.0, 2.0, rows).astype(np.float32),
      "click": click,
      "conversion": click * (rng.random(rows) < 0.4),
  })


@pytest.fixture(scope="module", name="trained")
def _trained(tmp_path_factory):
  """A DCRNN prepared from and briefly trained on raw CSV rows; its config."""
  path = str(tmp_path_factory.mktemp("data") / "train.csv")
  pipeline.write_csv(_frame(2000), path)
  config = scan.prepare(RAW_CONFIG, scan.scan(path, RAW_CONFIG, learn=True)[1])
  tf.keras.utils.set_random_seed(0)
  model = DCRNN(config, shared_units=8, private_units=4, cross_dim=16, tower_units=(8,))
  objectives.compile_model(model, config, learning_rate=0.01)
  model.fit(pipeline.make_dataset(
      path, config, 128, shuffle=True, seed=0,
      transform=lambda f, l: (f, objectives.make_targets(l, config))), epochs=2, verbose=0)
  return model, config


def _inputs(**columns):
  """Raw model inputs as the pipeline yields them: strings and float32 numbers."""
  return {name: tf.constant(values, tf.float32 if name in ("price", "age", "score")
                            else tf.string) for name, values in columns.items()}


def _check_probabilities(outputs, rows):
  assert sorted(outputs) == sorted(OUTPUTS)
  for name in OUTPUTS:
    values = np.asarray(outputs[name])
    assert values.shape == (rows,), name
    assert np.all(np.isfinite(values)) and np.all((values > 0) & (values < 1)), (name, values)


def test_prepared_config_and_model_inputs(trained):
  model, config = trained
  item, user, tags, shop, price, age, score = config.features
  assert not config.needs_statistics
  assert len(item.vocabulary) == 30 and user.vocabulary[0].isdigit()
  assert sorted(tags.vocabulary) == [f"t{t}" for t in range(8)]
  assert shop.num_buckets == 16 and shop.vocabulary is None
  assert price.log and 1.5 < price.mean < 2.5 and 1.0 < price.std < 2.0
  assert len(age.boundaries) == 3 and age.num_bins is None
  assert 4.5 < score.mean < 5.5
  assert model.encoder.features == config.features


def test_unseen_missing_and_extreme_values_give_probabilities(trained):
  model, _ = trained
  inputs = _inputs(
      item=["item3", "never-seen", "", "item3", "item3", "item3", "item3", "item3"],
      user=["5", "123456789", "", "5", "5", "5", "5", "-1"],
      tags=["t1|t2", "unseen|t1", "", "t1|t2", "t1|t2", "t1|t2", "t1|t2", "||"],
      shop=["shop1", "unseen shop", "", "shop1", "shop1", "shop1", "shop1", "shop1"],
      price=[10.0, 10.0, NAN, 1e30, -1e30, INF, -INF, 0.0],
      age=[30.0, 30.0, NAN, 1e30, -1e30, INF, -INF, 30.0],
      score=[5.0, 5.0, NAN, 1e30, -1e30, INF, -INF, 5.0])
  _check_probabilities(model(inputs), 8)


def test_out_of_range_values_are_clipped_and_unseen_values_share_a_row(trained):
  model, _ = trained
  base = dict(item=["item3"] * 4, user=["5"] * 4, tags=["t1|t2"] * 4, shop=["shop1"] * 4,
              price=[10.0] * 4, age=[30.0] * 4, score=[5.0] * 4)

  def predict(**changes):
    return model(_inputs(**{**base, **changes}))["ctcvr"].numpy()

  # +1e30 and +inf land on the same clipped value (or last bucket), as do -1e30 and -inf.
  for name in ("price", "age", "score"):
    outputs = predict(**{name: [1e30, INF, -1e30, -INF]})
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3], name
    assert outputs[0] != outputs[2], name
  # Every value outside the vocabulary is the same out-of-vocabulary value.
  outputs = predict(item=["unseen", "other unseen", "item3", ""])
  assert outputs[0] == outputs[1] and len(set(outputs[1:].tolist())) == 3
  outputs = predict(user=["1000000000000", "1000000000001", "5", ""])
  assert outputs[0] == outputs[1] and len(set(outputs[1:].tolist())) == 3
  # Integer ids are looked up as their decimal strings.
  ids = _inputs(**base)
  ids["user"] = tf.constant([5, 10**12, 7, 0], tf.int64)
  np.testing.assert_array_equal(model(ids)["ctcvr"].numpy(),
                                predict(user=["5", "1000000000000", "7", "0"]))


def test_saved_model_takes_raw_examples(trained, tmp_path):
  model, config = trained
  path = saved_model.export_saved_model(model, config, str(tmp_path / "export"))
  loaded = tf.saved_model.load(path)
  # Every feature is in every example; a missing value is the key with no value.
  missing = {name: [] for name in ("item", "user", "tags", "shop", "price", "age", "score")}
  examples = [
      serialize_example(item=["item3"], user=[5], tags=["t1", "t2"], shop=["shop1"], price=[10.0],
               age=[30.0], score=[5.0]),
      serialize_example(item=["never-seen"], user=[987654321], tags=["unseen", "t1"],
               shop=["unseen shop"], price=[1e30], age=[-1e30], score=[1e30]),
      serialize_example(**missing),  # Every feature missing.
      serialize_example(**{**missing, "item": ["item3"], "price": [INF], "age": [INF],
                           "score": [-INF]}),
      serialize_example(**{**missing, "tags": ["unseen"], "price": [NAN], "age": [NAN],
                           "score": [NAN]}, conversion=[1]),  # Labels are ignored.
  ]
  served = loaded.signatures["serving_default"](examples=tf.constant(examples))
  _check_probabilities({name: served[name].numpy() for name in OUTPUTS}, len(examples))
  # The same as the model on the parsed raw values.
  expected = model(pipeline.parse_examples(tf.constant(examples), config, with_labels=False))
  for name in OUTPUTS:
    np.testing.assert_allclose(served[name].numpy(), expected[name].numpy(), rtol=1e-6)
  # The raw values of the second example, given as tensors.
  direct = loaded.signatures["predict_features"](**_inputs(
      item=["never-seen"], user=["987654321"], tags=["unseen|t1"], shop=["unseen shop"],
      price=[1e30], age=[-1e30], score=[1e30]))
  for name in OUTPUTS:
    np.testing.assert_allclose(direct[name].numpy(), served[name].numpy()[1:2], rtol=1e-6)
