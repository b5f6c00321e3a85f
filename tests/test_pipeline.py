"""Tests of the CSV and TFRecord input pipelines: raw values, splits, skipped rows."""

import gzip
import os

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import serialize_example

from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.data.split import PARTS, Split
from dcrnn_tf.features import CsvFormat, Feature, FeatureConfig, Label, Task
from dcrnn_tf.layers.feature_encoder import normalize_strings

CONFIG = FeatureConfig(
    features=(Feature("user", "categorical", dtype="int64"),
              Feature("item", "categorical"),
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
      "item": [f"i{v}" for v in rng.integers(0, 20, rows)],
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


def _strings(values):
  return [v.decode("utf-8") for v in values]


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


def _write_examples(path, examples):
  with tf.io.TFRecordWriter(path) as writer:
    for example in examples:
      writer.write(example)


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
  # Categorical values are strings (int64 ids as their decimal strings).
  assert features["user"].dtype == features["item"].dtype == object
  assert features["price"].dtype == np.float32
  for batches in (from_csv, from_tfrecord):
    assert _strings(_concat(batches, "user")) == [str(v) for v in frame["user"]]
    assert _strings(_concat(batches, "item")) == list(frame["item"])
    for name in ["price", "row", "click", "conversion"]:
      np.testing.assert_array_equal(_concat(batches, name), frame[name].to_numpy())


def test_feature_tensor_specs():
  specs = pipeline.feature_tensor_specs(CONFIG)
  # Categorical features are strings, whatever their dtype in tf.Examples.
  assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in specs.items()} == {
      "user": (tf.string, [None]), "item": (tf.string, [None]),
      "price": (tf.float32, [None]), "row": (tf.float32, [None])}


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
  assert _strings(_concat(batches, "user")) == [str(v) for v in frame["user"]]


def test_missing_csv_values_are_empty_strings_and_nan(tmp_path):
  path = tmp_path / "data.csv"
  path.write_text("user,item,price,row,click,conversion\n"
                  "3,,1.5,,1,0\n"
                  ", i7 ,,2,0,0\n")
  (features, labels), = _batches(pipeline.make_dataset(str(path), CONFIG, 8))
  assert _strings(features["user"]) == ["3", ""]
  assert _strings(features["item"]) == ["", " i7 "]  # As in the file: the model strips.
  assert _strings(normalize_strings(features["item"]).numpy()) == ["", "i7"]
  np.testing.assert_array_equal(features["price"], [1.5, np.nan])
  np.testing.assert_array_equal(features["row"], [np.nan, 2.0])
  np.testing.assert_array_equal(labels["click"], [1.0, 0.0])


def test_missing_tfrecord_values_are_empty_strings_and_nan(tmp_path):
  path = str(tmp_path / "data.tfrecord")
  _write_examples(path, [
      serialize_example(user=[4], price=[2.5], click=[1], conversion=[1]),
      serialize_example(item=["i1"], row=[7.0], click=[0], conversion=[0]),
  ])
  (features, labels), = _batches(pipeline.make_dataset(path, CONFIG, 8))
  assert _strings(features["user"]) == ["4", ""]
  assert _strings(features["item"]) == ["", "i1"]
  np.testing.assert_array_equal(features["price"], [2.5, np.nan])
  np.testing.assert_array_equal(features["row"], [np.nan, 7.0])
  np.testing.assert_array_equal(labels["conversion"], [1.0, 0.0])


def test_example_feature_spec():
  spec = pipeline.example_feature_spec(CONFIG)
  assert {name: s.dtype for name, s in spec.items()} == {
      "user": tf.int64, "item": tf.string, "price": tf.float32, "row": tf.float32,
      "click": tf.int64, "conversion": tf.int64}
  assert all(isinstance(s, tf.io.RaggedFeature) for s in spec.values())
  assert list(pipeline.example_feature_spec(CONFIG, with_labels=False)) == [
      "user", "item", "price", "row"]
  labelled = FeatureConfig(features=CONFIG.features,
                           labels=(Label("click", positive_values=("yes",)), "conversion"),
                           tasks=CONFIG.tasks)
  assert pipeline.example_feature_spec(labelled)["click"].dtype == tf.string


def test_parse_examples_of_serving_requests():
  features = pipeline.parse_examples(tf.constant([
      serialize_example(user=[12], item=["a", "b"], price=[1.0, 9.0]),
      serialize_example(row=[3.0]),
  ]), CONFIG, with_labels=False)
  assert list(features) == ["user", "item", "price", "row"]
  assert _strings(features["user"].numpy()) == ["12", ""]
  assert _strings(features["item"].numpy()) == ["a", ""]  # A categorical's first value.
  np.testing.assert_array_equal(features["price"].numpy(), [1.0, np.nan])
  np.testing.assert_array_equal(features["row"].numpy(), [np.nan, 3.0])


def _write_split_data(tmp_path, rows_per_file=(400, 333, 267)):
  """The same rows as 3 CSV and 3 TFRecord shards; the rows of each shard."""
  frame = _frame(sum(rows_per_file))
  starts = np.cumsum((0,) + rows_per_file)
  for i, (start, end) in enumerate(zip(starts[:-1], starts[1:])):
    pipeline.write_csv(frame.iloc[start:end], str(tmp_path / f"part-{i}.csv"))
    pipeline.write_tfrecord(frame.iloc[start:end], str(tmp_path / f"part-{i}.tfrecord"), CONFIG)
  return [np.arange(start, end) for start, end in zip(starts[:-1], starts[1:])]


def test_split_parts_are_disjoint_cover_all_rows_and_match_numpy(tmp_path):
  shards = _write_split_data(tmp_path)
  rows = {}
  for part in PARTS:
    split = Split((0.6, 0.25, 0.15), part, seed=5)
    from_csv = _concat(_batches(pipeline.make_dataset(
        str(tmp_path / "part-*.csv"), CONFIG, 64, split=split)))
    from_tfrecord = _concat(_batches(pipeline.make_dataset(
        str(tmp_path / "part-*.tfrecord"), CONFIG, 64, split=split)))
    np.testing.assert_array_equal(from_csv, from_tfrecord)
    expected = np.concatenate([shard[split.selects_np(i, np.arange(len(shard)))]
                               for i, shard in enumerate(shards)])
    np.testing.assert_array_equal(np.sort(from_csv), expected)  # Files are interleaved.
    rows[part] = set(from_csv.astype(int).tolist())
  assert not rows["train"] & rows["validation"]
  assert not rows["train"] & rows["test"]
  assert not rows["validation"] & rows["test"]
  assert rows["train"] | rows["validation"] | rows["test"] == set(range(1000))
  assert [len(rows[part]) for part in PARTS] == pytest.approx([600, 250, 150], abs=45)


def test_split_is_the_same_when_shuffled(tmp_path):
  _write_split_data(tmp_path)
  split = Split((0.5, 0.5, 0.0), "validation", seed=1)
  pattern = str(tmp_path / "part-*.tfrecord")
  plain = _concat(_batches(pipeline.make_dataset(pattern, CONFIG, 64, split=split)))
  shuffled = _concat(_batches(pipeline.make_dataset(pattern, CONFIG, 64, split=split,
                                                    shuffle=True, seed=3)))
  assert not np.array_equal(plain, shuffled)
  np.testing.assert_array_equal(np.sort(shuffled), np.sort(plain))


def test_split_seeds_differ():
  rows = np.arange(1000)
  first = Split(part="test", seed=0).selects_np(0, rows)
  assert not np.array_equal(first, Split(part="test", seed=1).selects_np(0, rows))
  assert not np.array_equal(first, Split(part="test", seed=0).selects_np(1, rows))
  np.testing.assert_array_equal(first, Split(part="test", seed=0).selects_tf(0, rows).numpy())


def test_split_parse_and_validation():
  assert Split.parse("80,10,10", "test", 2) == Split((0.8, 0.1, 0.1), "test", 2)
  assert Split.parse("3,1,0", "train", 0).fractions == (0.75, 0.25, 0.0)
  with pytest.raises(ValueError, match="sum to 1"):
    Split((0.5, 0.2, 0.2))
  with pytest.raises(ValueError, match="three numbers"):
    Split((0.5, 0.5))
  with pytest.raises(ValueError, match="part must be one of"):
    Split(part="eval")


def test_two_split_numbers_mean_no_test_part():
  split = Split.parse("90,10", "test", 0)
  assert split.fractions == (0.9, 0.1, 0.0) and split.fraction == 0.0
  assert str(split) == "the test part of --split=90,10,0 --split_seed=0"


@pytest.mark.parametrize("text", ["80", "80,10,5,5", "a,b", "-10,110", "0,0"])
def test_split_values_that_are_refused(text):
  with pytest.raises(ValueError) as error:
    Split.parse(text, "train", 0)
  assert str(error.value) == (f"--split={text}: expected two or three numbers >= 0 (train, "
                              "validation[, test]) such as 80,10,10 or 90,10.")


def test_an_empty_part_is_named_in_the_error(tmp_path):
  path = tmp_path / "data.csv"
  path.write_text("user,item,price,row,click,conversion\n3,a,1.5,1,1,0\n")
  with pytest.raises(scan.DataError) as error:
    scan.scan(str(path), CONFIG, split=Split.parse("100,0,0", "test", 3))
  assert str(error.value) == (f"No valid data rows in '{path}' in the test part of "
                              "--split=100,0,0 --split_seed=3 (0 rows read, 0 bad).")


@pytest.mark.parametrize("suffix", [".csv", ".tfrecord"])
def test_skip_rows_leaves_out_exactly_those_rows(tmp_path, suffix):
  shards = _write_split_data(tmp_path)
  paths = [str(tmp_path / f"part-{i}{suffix}") for i in range(3)]
  skip = {paths[0]: [0, 5, 399], paths[2]: [10], str(tmp_path / "other.csv"): [1]}
  rows = _concat(_batches(pipeline.make_dataset(str(tmp_path / f"part-*{suffix}"), CONFIG,
                                                50, skip_rows=skip)))
  expected = np.delete(np.arange(1000), [0, 5, 399, shards[2][10]])
  np.testing.assert_array_equal(np.sort(rows), expected)
  # Together with a split: the split's rows less the skipped ones.
  split = Split(part="train", seed=2)
  rows = _concat(_batches(pipeline.make_dataset(str(tmp_path / f"part-*{suffix}"), CONFIG,
                                                50, skip_rows=skip, split=split)))
  in_split = np.concatenate([shard[split.selects_np(i, np.arange(len(shard)))]
                             for i, shard in enumerate(shards)])
  np.testing.assert_array_equal(np.sort(rows),
                                np.setdiff1d(in_split, [0, 5, 399, shards[2][10]]))


CENSUS_COLUMNS = ("age", "workclass", "fnlwgt", "education", "occupation", "income")
CENSUS = FeatureConfig(
    features=(Feature("age", "numeric"), Feature("workclass", "categorical"),
              Feature("fnlwgt", "numeric", log=True), Feature("education", "categorical"),
              Feature("occupation", "categorical")),
    labels=(Label("income", positive_values=(">50K", ">50K.")),),
    tasks=(Task("high_income", "income"),),
    csv=CsvFormat(header=False, columns=CENSUS_COLUMNS, na_values=("?",)))


def test_census_format_without_header(tmp_path):
  """The UCI census layout: no header, ", "-separated, "?" for missing values."""
  path = tmp_path / "adult.csv"
  path.write_text("39, State-gov, 77516, Bachelors, Adm-clerical, <=50K\n"
                  "50, ?, 83311, Bachelors, ?, >50K\n"
                  "?, Private, 215646, HS-grad, Handlers-cleaners, >50K.\n"
                  "  28 ,Private,338409,  Some college ,Prof-specialty,  <=50K.  \n")
  (features, labels), = _batches(pipeline.make_dataset(str(path), CENSUS, 8))
  np.testing.assert_array_equal(features["age"], [39.0, 50.0, np.nan, 28.0])
  assert _strings(features["workclass"]) == [" State-gov", " ?", " Private", "Private"]
  normalized = lambda name: _strings(
      normalize_strings(features[name], na_values=("?",)).numpy())
  assert normalized("workclass") == ["State-gov", "", "Private", "Private"]
  np.testing.assert_array_equal(features["fnlwgt"], [77516.0, 83311.0, 215646.0, 338409.0])
  assert normalized("education") == ["Bachelors", "Bachelors", "HS-grad", "Some college"]
  assert normalized("occupation") == ["Adm-clerical", "", "Handlers-cleaners",
                                      "Prof-specialty"]
  np.testing.assert_array_equal(labels["income"], [0.0, 1.0, 1.0, 0.0])


def test_custom_delimiter_and_na_values_with_header(tmp_path):
  config = FeatureConfig(
      features=(Feature("city", "categorical"), Feature("score", "numeric")),
      labels=("click",), tasks=(Task("ctr", "click"),),
      csv=CsvFormat(delimiter=";", na_values=("NULL", "-")))
  path = tmp_path / "data.csv"
  path.write_text("score ; city ; click\n"
                  "1.5;Paris, France;1\n"
                  "NULL;-;0\n"
                  " - ; NULLS ;1\n")
  (features, labels), = _batches(pipeline.make_dataset(str(path), config, 8))
  assert _strings(features["city"]) == ["Paris, France", "-", " NULLS "]
  assert _strings(normalize_strings(features["city"], na_values=("NULL", "-")).numpy()) == [
      "Paris, France", "", "NULLS"]
  np.testing.assert_array_equal(features["score"], [1.5, np.nan, np.nan])
  np.testing.assert_array_equal(labels["click"], [1.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["data.csv", "data.tfrecord"])
def test_labels_with_positive_values(tmp_path, name):
  config = FeatureConfig(
      features=(Feature("item", "categorical"),),
      labels=(Label("bought", column="outcome", positive_values=("buy", "BUY")),),
      tasks=(Task("cvr", "bought"),))
  frame = pd.DataFrame({"item": ["a", "b", "c", "d", "e"],
                        "outcome": ["buy", "view", "BUY", "Buy", "buyer"]})
  path = str(tmp_path / name)
  if name.endswith(".csv"):
    pipeline.write_csv(frame, path)
  else:
    pipeline.write_tfrecord(frame, path, config)
  (_, labels), = _batches(pipeline.make_dataset(path, config, 8))
  assert list(labels) == ["bought"]
  np.testing.assert_array_equal(labels["bought"], [1.0, 0.0, 1.0, 0.0, 0.0])


def test_multi_categorical_values(tmp_path):
  config = FeatureConfig(
      features=(Feature("tags", "multi_categorical", delimiter=";"),
                Feature("ids", "multi_categorical", dtype="int64")),
      labels=("click",), tasks=(Task("ctr", "click"),))
  csv_path = tmp_path / "data.csv"
  csv_path.write_text("tags,ids,click\n"
                      "a;b;c,1|22,1\n"
                      ",7,0\n"
                      " x ,,1\n")
  tfrecord_path = str(tmp_path / "data.tfrecord")
  _write_examples(tfrecord_path, [
      serialize_example(tags=["a", "b", "c"], ids=[1, 22], click=[1]),
      serialize_example(ids=[7], click=[0]),
      serialize_example(tags=["x"], click=[1]),
  ])
  for path in (str(csv_path), tfrecord_path):
    (features, labels), = _batches(pipeline.make_dataset(path, config, 8))
    # The CSV's " x " as in the file: the model strips each value.
    assert _strings(normalize_strings(features["tags"]).numpy()) == ["a;b;c", "", "x"], path
    assert _strings(features["ids"]) == ["1|22", "7", ""], path
    np.testing.assert_array_equal(labels["click"], [1.0, 0.0, 1.0])


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


def test_empty_file_beside_others_holds_no_rows(tmp_path):
  (tmp_path / "shard0.csv").write_text("")
  pipeline.write_csv(_frame(5), str(tmp_path / "shard1.csv"))
  rows = _concat(_batches(pipeline.make_dataset(str(tmp_path / "shard*.csv"), CONFIG, 8)))
  np.testing.assert_array_equal(rows, np.arange(5))


def test_no_matching_file(tmp_path):
  pattern = str(tmp_path / "nothing-*.csv")
  with pytest.raises(FileNotFoundError, match="nothing-"):
    pipeline.make_dataset(pattern, CONFIG, 8)
  pipeline.write_csv(_frame(3), str(tmp_path / "data.csv"))
  with pytest.raises(FileNotFoundError, match="nothing-"):
    pipeline.make_dataset(f"{tmp_path}/data.csv,{pattern}", CONFIG, 8)


def test_data_format(tmp_path):
  # A name that does not say the format: the content does (GZIP too, whatever the name).
  pipeline.write_csv(_frame(5), str(tmp_path / "data.txt"))
  pipeline.write_csv(_frame(6), str(tmp_path / "adult.csv.gz"))
  os.rename(tmp_path / "adult.csv.gz", tmp_path / "adult.data")
  pipeline.write_tfrecord(_frame(7), str(tmp_path / "records.tfrecord.gz"), CONFIG)
  os.rename(tmp_path / "records.tfrecord.gz", tmp_path / "records.bin")
  for name, rows in (("data.txt", 5), ("adult.data", 6), ("records.bin", 7)):
    assert len(_concat(_batches(pipeline.make_dataset(str(tmp_path / name), CONFIG, 8)))) == rows
  assert pipeline.compression_of(str(tmp_path / "adult.data")) == "GZIP"
  assert pipeline.compression_of(str(tmp_path / "data.txt")) == ""
  (tmp_path / "latin1.dat").write_bytes(b"\xe9t\xe9,1\n")
  with pytest.raises(ValueError) as error:
    pipeline.make_dataset(str(tmp_path / "latin1.dat"), CONFIG, 8)
  assert str(error.value) == (
      f"{tmp_path}/latin1.dat: cannot tell the data format from the file name (.csv, "
      ".tfrecord) or from the content (neither a tf.Example record nor UTF-8 text); give "
      "it: --data_format=csv or tfrecord (data_format= in Python).")
  dataset = pipeline.make_dataset(str(tmp_path / "data.txt"), CONFIG, 8, data_format="csv")
  assert len(_concat(_batches(dataset))) == 5
  pipeline.write_tfrecord(_frame(5), str(tmp_path / "data.tfrecord"), CONFIG)
  pipeline.write_csv(_frame(5), str(tmp_path / "data.csv"))
  with pytest.raises(ValueError, match=r"data\.tfrecord: is tfrecord but .*data\.csv is csv"):
    pipeline.make_dataset(f"{tmp_path}/data.csv,{tmp_path}/data.tfrecord", CONFIG, 8)
  with pytest.raises(ValueError, match="data_format"):
    pipeline.make_dataset(str(tmp_path / "data.txt"), CONFIG, 8, data_format="parquet")


@pytest.mark.parametrize("suffix", [".csv", ".tfrecord.gz"])
def test_unshuffled_files_are_read_one_after_the_other(tmp_path, suffix):
  _write_shards(_frame(250), str(tmp_path), 4, suffix)
  rows = _concat(_batches(pipeline.make_dataset(str(tmp_path / f"part-*{suffix}"), CONFIG, 32)))
  np.testing.assert_array_equal(rows, np.arange(250))
