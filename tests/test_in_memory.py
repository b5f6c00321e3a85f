"""Tests of rows held in memory: the same rows as the files, a new order every pass."""

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import

from test_pipeline import CONFIG, _batches, _concat, _frame, _write_shards

from dcrnn_tf.data import in_memory, pipeline
from dcrnn_tf.data.split import Split


@pytest.fixture(name="shards")
def _shards(tmp_path):
  _write_shards(_frame(300), str(tmp_path), 3, ".csv")
  return str(tmp_path / "part-*.csv")


def test_holds_exactly_the_rows_the_files_give_in_file_order(shards):
  split = Split((0.6, 0.4, 0.0), "train", seed=2)
  skip = {pipeline.list_files(shards)[1]: [0, 5]}
  held = in_memory.InMemoryRows.load(shards, CONFIG, split=split, skip_rows=skip)
  streamed = _batches(pipeline.make_dataset(shards, CONFIG, 32, split=split, skip_rows=skip))
  held_batches = _batches(held.dataset(32))
  assert held.rows == len(_concat(streamed)) < 200
  assert len(held_batches) == len(streamed)
  for (held_features, held_labels), (features, labels) in zip(held_batches, streamed):
    for name, values in {**features, **labels}.items():
      np.testing.assert_array_equal({**held_features, **held_labels}[name], values)


def test_every_shuffled_pass_is_a_new_permutation_reproducible_by_seed(shards):
  held = in_memory.InMemoryRows.load(shards, CONFIG)
  dataset = held.dataset(64, shuffle=True, seed=7)
  first, second = _concat(_batches(dataset)), _concat(_batches(dataset))
  for order in (first, second):
    np.testing.assert_array_equal(np.sort(order), np.arange(300))
  assert not np.array_equal(first, second)
  assert not np.array_equal(first, np.arange(300))
  again = held.dataset(64, shuffle=True, seed=7)
  np.testing.assert_array_equal(_concat(_batches(again)), first)
  np.testing.assert_array_equal(_concat(_batches(again)), second)
  other = _concat(_batches(held.dataset(64, shuffle=True, seed=8)))
  assert not np.array_equal(other, first)
  repeated = _concat(_batches(held.dataset(64, shuffle=True, seed=7, repeat=True).take(10)))
  np.testing.assert_array_equal(repeated[:300], first)
  np.testing.assert_array_equal(repeated[300:600], second)


def test_batches_features_labels_transform_and_remainder(shards):
  held = in_memory.InMemoryRows.load(shards, CONFIG)
  batches = _batches(held.dataset(128, shuffle=True, seed=1))
  assert [len(labels["click"]) for _, labels in batches] == [128, 128, 44]
  features, labels = batches[0]
  assert features["item"].dtype == object and features["row"].dtype == np.float32
  assert labels["conversion"].dtype == np.float32
  rows = features["row"].astype(int)  # Every column of a row stays with it.
  frame = _frame(300)
  np.testing.assert_array_equal(labels["click"], frame["click"].to_numpy()[rows])
  np.testing.assert_array_equal(features["item"].astype(str), frame["item"].to_numpy()[rows])
  dropped = _batches(held.dataset(128, drop_remainder=True))
  assert [len(labels["click"]) for _, labels in dropped] == [128, 128]
  transformed = _batches(held.dataset(100, transform=lambda f, l: (f["row"] * 2, l["click"])))
  np.testing.assert_array_equal(np.concatenate([f for f, _ in transformed]),
                                2 * np.arange(300))


def test_features_alone(shards):
  held = in_memory.InMemoryRows.load(shards, CONFIG, with_labels=False)
  assert held.labels is None
  batch = next(iter(held.dataset(50)))
  assert isinstance(batch, dict) and set(batch) == {"user", "item", "price", "row"}


def test_memory_estimate_and_limit():
  # 2 categorical features (24 bytes), 2 numeric features and 2 labels (4 bytes each).
  assert in_memory.estimated_bytes(1000, CONFIG) == 1000 * (2 * 24 + 4 * 4)
  assert in_memory.estimated_bytes(1000, CONFIG, with_labels=False) == 1000 * (2 * 24 + 2 * 4)
  rows = in_memory.MIB // 64
  assert in_memory.fits_in_memory(rows, CONFIG, max_mib=1)
  assert not in_memory.fits_in_memory(rows + 1, CONFIG, max_mib=1)
  assert not in_memory.fits_in_memory(1, CONFIG, max_mib=0)


def test_no_rows_is_an_error(tmp_path):
  path = tmp_path / "empty.csv"
  pipeline.write_csv(_frame(0), str(path))
  with pytest.raises(ValueError, match="empty.csv: no rows"):
    in_memory.InMemoryRows.load(str(path), CONFIG)


def test_batches_have_the_specs_of_the_files_batches(shards):
  held = in_memory.InMemoryRows.load(shards, CONFIG)
  assert held.dataset(64).element_spec == pipeline.make_dataset(shards, CONFIG, 64).element_spec


def test_string_columns_are_held_as_distinct_values_and_indices(shards):
  held = in_memory.InMemoryRows.load(shards, CONFIG)
  distinct, indices = held.features["item"]
  assert indices.dtype == "int32" and indices.shape == (300,)
  assert sorted(distinct.numpy().astype(str)) == sorted(set(_frame(300)["item"]))
  np.testing.assert_array_equal(distinct.numpy()[indices.numpy()].astype(str),
                                _frame(300)["item"].to_numpy())
  assert held.features["row"].dtype == "float32"


def test_hold_if_fits_holds_only_epoch_roles_that_fit(shards):
  one_mib = in_memory.MIB  # A row of CONFIG takes 64 bytes.
  for role in ("train", "validation"):
    held = in_memory.hold_if_fits(role, 300, shards, CONFIG, max_mib=1)
    assert held is not None and held.rows == 300
  assert in_memory.hold_if_fits("test", 300, shards, CONFIG, max_mib=1) is None
  assert in_memory.hold_if_fits("predict", 300, shards, CONFIG, max_mib=1) is None
  assert in_memory.hold_if_fits("train", one_mib // 64 + 1, shards, CONFIG, max_mib=1) is None
  assert in_memory.hold_if_fits("train", 300, shards, CONFIG, max_mib=0) is None


def test_preprocessed_rows_are_the_preprocessed_batches():
  """Rows preprocessed once (each distinct string once) give the batches that
  preprocessing every batch gives, for every kind of feature."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from test_feature_encoder import CLIP, FEATURES, INPUTS  # pylint: disable=import-outside-toplevel
  from dcrnn_tf.layers import FeaturePreprocessor  # pylint: disable=import-outside-toplevel
  preprocessor = FeaturePreprocessor(FEATURES, clip_value=CLIP, na_values=("-1",))
  columns = {name: tf.constant(np.concatenate([values] * 5)) for name, values in INPUTS.items()}
  rows = in_memory.InMemoryRows(columns, {"click": tf.zeros([30])})
  preprocessed = rows.preprocessed(preprocessor)
  assert isinstance(preprocessed.features["preprocessed/tags"], tuple)  # Distinct ids.
  for (got, _), (raw, _) in zip(preprocessed.dataset(8), rows.dataset(8), strict=True):
    expected = preprocessor(raw)
    assert sorted(got) == sorted(expected)
    for key, values in expected.items():
      if isinstance(values, tf.RaggedTensor):
        assert got[key].to_list() == values.to_list()
      else:
        np.testing.assert_array_equal(got[key], values)
