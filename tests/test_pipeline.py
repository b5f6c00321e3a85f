"""Tests of the CSV and TFRecord input pipelines."""

import gzip
import os

import numpy as np
import pandas as pd
import pytest

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.data import pipeline
from dcrnn_tf.features import Feature, FeatureConfig, Task

CONFIG = FeatureConfig(
    features=(Feature("user", "categorical", vocab_size=50),
              Feature("item", "categorical", vocab_size=20),
              Feature("price", "numeric"),
              Feature("row", "numeric")),
    labels=("click", "conversion"),
    tasks=(Task("ctr", "click"),
           Task("cvr", "conversion", depends_on="ctr", funnel_output="ctcvr")),
    ignore=("request_id",))
# Deliberately not in config order, with an ignored column in the middle.
COLUMNS = ["click", "request_id", "price", "user", "conversion", "item", "row"]


def _frame(rows, start=0):
  rng = np.random.default_rng(start)
  click = rng.integers(0, 2, rows)
  return pd.DataFrame({
      "click": click,
      "request_id": [f"r{start + i}" for i in range(rows)],
      "price": rng.lognormal(0.0, 1.0, rows).astype(np.float32),
      "user": rng.integers(0, 50, rows),
      "conversion": click * rng.integers(0, 2, rows),
      "item": rng.integers(0, 20, rows),
      "row": np.arange(start, start + rows, dtype=np.float32),
  })[COLUMNS]


def _batches(dataset):
  return list(dataset.as_numpy_iterator())


def _concat(batches, key="row"):
  """All values of one feature (or label) over batches of (features, labels)."""
  parts = []
  for batch in batches:
    features, labels = batch if isinstance(batch, tuple) else (batch, {})
    parts.append({**features, **labels}[key])
  return np.concatenate(parts)


def _write_shards(frame, directory, shards, suffix):
  paths = []
  for i, rows in enumerate(np.array_split(np.arange(len(frame)), shards)):
    part = frame.iloc[rows]
    path = os.path.join(directory, f"part-{i:05d}{suffix}")
    if "tfrecord" in suffix:
      pipeline.write_tfrecord(part, path, CONFIG)
    else:
      pipeline.write_csv(part, path)
    paths.append(path)
  return paths


@pytest.mark.parametrize("csv_name,tfrecord_name", [("data.csv", "data.tfrecord.gz"),
                                                    ("data.csv.gz", "data.tfrecord")])
def test_csv_and_tfrecord_give_the_same_batches(tmp_path, csv_name, tfrecord_name):
  frame = _frame(70)
  pipeline.write_csv(frame, str(tmp_path / csv_name))
  pipeline.write_tfrecord(frame, str(tmp_path / tfrecord_name), CONFIG)
  from_csv = _batches(pipeline.make_dataset(str(tmp_path / csv_name), CONFIG, 32))
  from_tfrecord = _batches(pipeline.make_dataset(str(tmp_path / tfrecord_name), CONFIG, 32))
  assert len(from_csv) == len(from_tfrecord) == 3
  for (csv_features, csv_labels), (tf_features, tf_labels) in zip(from_csv, from_tfrecord):
    assert list(csv_features) == list(tf_features) == ["user", "item", "price", "row"]
    assert list(csv_labels) == list(tf_labels) == ["click", "conversion"]
    for name in csv_features:
      np.testing.assert_array_equal(csv_features[name], tf_features[name])
      assert csv_features[name].dtype == tf_features[name].dtype
      assert csv_features[name].ndim == 1
    for name in csv_labels:
      np.testing.assert_array_equal(csv_labels[name], tf_labels[name])
      assert csv_labels[name].dtype == tf_labels[name].dtype == np.float32
  features, _ = from_csv[0]
  assert features["user"].dtype == np.int64 and features["price"].dtype == np.float32
  for name in ["user", "item", "price", "row", "click", "conversion"]:
    np.testing.assert_array_equal(_concat(from_csv, name), frame[name].to_numpy())


@pytest.mark.parametrize("drop_remainder,sizes", [(False, [25, 25, 25, 25, 3]),
                                                  (True, [25, 25, 25, 25])])
def test_batch_sizes_and_remainder(tmp_path, drop_remainder, sizes):
  pipeline.write_csv(_frame(103), str(tmp_path / "data.csv"))
  dataset = pipeline.make_dataset(str(tmp_path / "data.csv"), CONFIG, 25,
                                  drop_remainder=drop_remainder)
  assert [len(labels["click"]) for _, labels in _batches(dataset)] == sizes
  if drop_remainder:
    assert dataset.element_spec[0]["user"].shape == [25]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tfrecord.gz", ".tfrecords"])
def test_shards_are_read_exactly_once(tmp_path, suffix):
  _write_shards(_frame(203), str(tmp_path), 5, suffix)
  dataset = pipeline.make_dataset(str(tmp_path / f"part-*{suffix}"), CONFIG, 16)
  np.testing.assert_array_equal(np.sort(_concat(_batches(dataset))), np.arange(203))


def test_comma_separated_globs(tmp_path):
  paths = _write_shards(_frame(90), str(tmp_path), 3, ".csv")
  pattern = f"{paths[0]}, {tmp_path}/part-0000[12].csv,{paths[1]}"
  dataset = pipeline.make_dataset(pattern, CONFIG, 16)
  np.testing.assert_array_equal(np.sort(_concat(_batches(dataset))), np.arange(90))
  assert pipeline.list_files(pattern) == paths


@pytest.mark.parametrize("suffix", [".csv", ".tfrecord.gz"])
def test_seeded_shuffle_is_a_deterministic_permutation(tmp_path, suffix):
  _write_shards(_frame(300), str(tmp_path), 3, suffix)
  pattern = str(tmp_path / f"part-*{suffix}")

  def rows(seed):
    return _concat(_batches(pipeline.make_dataset(
        pattern, CONFIG, 32, shuffle=True, shuffle_buffer=64, seed=seed)))

  first = rows(7)
  np.testing.assert_array_equal(first, rows(7))
  np.testing.assert_array_equal(np.sort(first), np.arange(300))
  assert not np.array_equal(first, np.sort(first))
  assert not np.array_equal(first, rows(8))


def test_repeat_and_transform(tmp_path):
  pipeline.write_csv(_frame(10), str(tmp_path / "data.csv"))

  def transform(features, labels):
    return {**features, "row": features["row"] * 2}, labels["click"]

  dataset = pipeline.make_dataset(str(tmp_path / "data.csv"), CONFIG, 4, repeat=True,
                                  transform=transform)
  batches = _batches(dataset.take(7))
  assert [len(labels) for _, labels in batches] == [4, 4, 2, 4, 4, 2, 4]
  rows = np.concatenate([features["row"] for features, _ in batches])
  np.testing.assert_array_equal(rows, 2 * np.r_[np.arange(10), np.arange(10), np.arange(4)])
  assert batches[0][1].dtype == np.float32


@pytest.mark.parametrize("name", ["data.csv", "data.tfrecord.gz"])
def test_without_labels(tmp_path, name):
  frame = _frame(20)
  path = str(tmp_path / name)
  if name.endswith(".csv"):
    pipeline.write_csv(frame.drop(columns=["click", "conversion"]), path)
  else:
    pipeline.write_tfrecord(frame, path, CONFIG)
  batches = _batches(pipeline.make_dataset(path, CONFIG, 8, with_labels=False))
  assert all(isinstance(b, dict) and list(b) == ["user", "item", "price", "row"]
             for b in batches)
  np.testing.assert_array_equal(_concat(batches, "user"), frame["user"].to_numpy())


def test_missing_csv_values_take_the_defaults(tmp_path):
  path = tmp_path / "data.csv"
  path.write_text("user,item,price,row,click,conversion\n"
                  "3,,1.5,,1,0\n"
                  ",7,,2,0,0\n")
  (features, labels), = _batches(pipeline.make_dataset(str(path), CONFIG, 8))
  np.testing.assert_array_equal(features["user"], [3, pipeline.MISSING_ID])
  np.testing.assert_array_equal(features["item"], [pipeline.MISSING_ID, 7])
  np.testing.assert_array_equal(features["price"], [1.5, 0.0])
  np.testing.assert_array_equal(labels["click"], [1.0, 0.0])


def test_missing_csv_label_is_an_error(tmp_path):
  path = tmp_path / "data.csv"
  path.write_text("user,item,price,row,click,conversion\n3,4,1.5,1,,0\n")
  with pytest.raises(tf.errors.InvalidArgumentError):
    _batches(pipeline.make_dataset(str(path), CONFIG, 8))


def _header_error(tmp_path, *headers, with_labels=True):
  """The error of reading CSV files with these header lines (None: an empty file)."""
  for i, header in enumerate(headers):
    (tmp_path / f"shard{i}.csv").write_text("" if header is None else header + "\n")
  with pytest.raises(ValueError) as error:
    pipeline.make_dataset(str(tmp_path / "shard*.csv"), CONFIG, 8, with_labels=with_labels)
  return str(error.value)


def test_header_unknown_column(tmp_path):
  message = _header_error(tmp_path, "user,item,price,row,click,conversion,foo")
  assert "shard0.csv:1:7:" in message and "'foo'" in message


def test_header_duplicate_column(tmp_path):
  message = _header_error(tmp_path, "user,item,price,row,user,click,conversion")
  assert "shard0.csv:1:5:" in message and "duplicate" in message and "'user'" in message


def test_header_missing_feature(tmp_path):
  message = _header_error(tmp_path, "user,price,row,click,conversion")
  assert "shard0.csv:1:" in message and "'item'" in message and "missing" in message


def test_header_missing_label(tmp_path):
  message = _header_error(tmp_path, "user,item,price,row,click")
  assert "shard0.csv:1:" in message and "'conversion'" in message


def test_header_mismatch_across_shards(tmp_path):
  message = _header_error(tmp_path, "user,item,price,row,click,conversion",
                          "user,item,row,price,click,conversion")
  assert "shard1.csv:1:3:" in message and "shard0.csv" in message
  assert "'row'" in message and "'price'" in message


def test_header_shorter_in_a_later_shard(tmp_path):
  message = _header_error(tmp_path, "user,item,price,row,click,conversion,request_id",
                          "user,item,price,row,click,conversion")
  assert "shard1.csv:1:7:" in message and "'request_id'" in message


def test_empty_file(tmp_path):
  message = _header_error(tmp_path, None)
  assert "shard0.csv:1:" in message and "empty" in message


def test_empty_gzip_file(tmp_path):
  with gzip.open(tmp_path / "data.csv.gz", "wb"):
    pass
  with pytest.raises(ValueError, match=r"data\.csv\.gz:1: empty"):
    pipeline.make_dataset(str(tmp_path / "data.csv.gz"), CONFIG, 8)


def test_no_matching_file(tmp_path):
  pattern = str(tmp_path / "nothing-*.csv")
  with pytest.raises(FileNotFoundError, match="nothing-"):
    pipeline.make_dataset(pattern, CONFIG, 8)
  pipeline.write_csv(_frame(3), str(tmp_path / "data.csv"))
  with pytest.raises(FileNotFoundError, match="nothing-"):
    pipeline.make_dataset(f"{tmp_path}/data.csv,{pattern}", CONFIG, 8)


def test_data_format(tmp_path):
  pipeline.write_csv(_frame(5), str(tmp_path / "data.txt"))
  with pytest.raises(ValueError, match=r"data\.txt: cannot tell the data format"):
    pipeline.make_dataset(str(tmp_path / "data.txt"), CONFIG, 8)
  dataset = pipeline.make_dataset(str(tmp_path / "data.txt"), CONFIG, 8, data_format="csv")
  assert len(_concat(_batches(dataset))) == 5
  pipeline.write_tfrecord(_frame(5), str(tmp_path / "data.tfrecord"), CONFIG)
  pipeline.write_csv(_frame(5), str(tmp_path / "data.csv"))
  with pytest.raises(ValueError, match=r"data\.tfrecord: is tfrecord but .*data\.csv is csv"):
    pipeline.make_dataset(f"{tmp_path}/data.csv,{tmp_path}/data.tfrecord", CONFIG, 8)
  with pytest.raises(ValueError, match="data_format"):
    pipeline.make_dataset(str(tmp_path / "data.txt"), CONFIG, 8, data_format="parquet")


def test_example_feature_spec_defaults():
  spec = pipeline.example_feature_spec(CONFIG)
  assert list(spec) == ["user", "item", "price", "row", "click", "conversion"]
  assert list(pipeline.example_feature_spec(CONFIG, with_labels=False)) == [
      "user", "item", "price", "row"]
  example = tf.train.Example(features=tf.train.Features(feature={
      "item": tf.train.Feature(int64_list=tf.train.Int64List(value=[4])),
      "click": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
      "conversion": tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
  }))
  parsed = tf.io.parse_example([example.SerializeToString()], spec)
  assert parsed["user"].numpy().tolist() == [pipeline.MISSING_ID] == [-1]
  assert parsed["item"].numpy().tolist() == [4]
  assert parsed["price"].numpy().tolist() == [0.0]
  without_label = tf.train.Example()
  without_label.CopyFrom(example)
  del without_label.features.feature["click"]
  with pytest.raises(tf.errors.InvalidArgumentError):
    tf.io.parse_example([without_label.SerializeToString()], spec)
