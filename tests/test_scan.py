"""What `scan.prepare` learns from training data: vocabularies, means and standard
deviations, quantile boundaries; from CSV and TFRecord alike, from the train part only."""

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import errors
from dcrnn_tf.data import pipeline, scan, synthetic
from dcrnn_tf.data.split import Split
from dcrnn_tf.features import CsvFormat, Feature, FeatureConfig, Label, Task


def _config(*features, **kwargs):
  return FeatureConfig(features=features, labels=("click",), tasks=(Task("ctr", "click"),),
                       **kwargs)


def _prepare(path, config, **kwargs):
  return scan.prepare(config, scan.scan(str(path), config, learn=True, **kwargs)[1])


def _write(tmp_path, frame, config, name="data"):
  """The frame as CSV and TFRecord; their paths."""
  csv_path, tfrecord_path = str(tmp_path / f"{name}.csv"), str(tmp_path / f"{name}.tfrecord")
  pipeline.write_csv(frame, csv_path)
  pipeline.write_tfrecord(frame, tfrecord_path, config)
  return csv_path, tfrecord_path


# Counts: b 5, a 5, c 3, d 2, e 1; three missing values ("", "?", spaces).
CATEGORIES = ["b", "a", "c", "b", "", "a", "d", "b", "c", "a", "?", "e", "b", "a", "d", "c",
              "b", "  ", "a"]


def _categorical_csv(tmp_path):
  path = tmp_path / "data.csv"
  path.write_text("x,click\n" + "".join(f"{v},0\n" for v in CATEGORIES))
  return path


@pytest.mark.parametrize("options,vocabulary", [
    ({}, ("a", "b", "c", "d", "e")),  # By count, ties by value; missing values left out.
    ({"min_count": 2}, ("a", "b", "c", "d")),
    ({"min_count": 3}, ("a", "b", "c")),
    ({"max_tokens": 3}, ("a", "b", "c")),
    ({"max_tokens": 1}, ("a",)),
    ({"min_count": 2, "max_tokens": 10}, ("a", "b", "c", "d")),
])
def test_vocabulary_with_min_count_and_max_tokens(tmp_path, options, vocabulary):
  config = _config(Feature("x", "categorical", **options), csv=CsvFormat(na_values=("?",)))
  prepared = _prepare(_categorical_csv(tmp_path), config)
  assert prepared.features == (Feature("x", "categorical", vocabulary=vocabulary, **options),)
  assert prepared.labels == config.labels and prepared.tasks == config.tasks


def test_an_empty_learned_vocabulary_is_refused(tmp_path):
  config = _config(Feature("x", "categorical", min_count=6), csv=CsvFormat(na_values=("?",)))
  with pytest.raises(errors.ConfigError) as error:
    _prepare(_categorical_csv(tmp_path), config)
  assert str(error.value) == (
      "feature 'x': no value occurs min_count=6 times in the training rows (the most "
      "frequent occurs 5 times), so the learned vocabulary would be empty; lower min_count.")
  path = tmp_path / "missing.csv"
  path.write_text("x,click\n?,0\n,1\n")
  with pytest.raises(errors.ConfigError, match="^feature 'x': the training rows hold no "
                     "value of it"):
    _prepare(path, config)


def test_vocabulary_order_by_count_then_value(tmp_path):
  config = _config(Feature("id", "categorical", dtype="int64"))
  frame = pd.DataFrame({"id": [9, 10, 9, 100, 10, 7, 9, 10, 7, 3],
                        "click": [0] * 10})
  for path in _write(tmp_path, frame, config):
    # 9 and 10 thrice, 7 twice, 3 and 100 once; ties in the order of the strings.
    assert _prepare(path, config).features[0].vocabulary == ("10", "9", "7", "100", "3"), path


def test_multi_categorical_tokens(tmp_path):
  config = _config(Feature("tags", "multi_categorical", delimiter=";"),
                   Feature("ids", "multi_categorical", dtype="int64", min_count=2))
  csv_path = tmp_path / "data.csv"
  csv_path.write_text("tags,ids,click\n"
                      "a;b,1|2,0\n"
                      "b,2,1\n"
                      ",,0\n"
                      "b;c;c,3|2|1,0\n"
                      "d,,1\n")
  tfrecord_path = str(tmp_path / "data.tfrecord")
  rows = [(["a", "b"], [1, 2]), (["b"], [2]), ([], []), (["b", "c", "c"], [3, 2, 1]),
          (["d"], [])]
  with tf.io.TFRecordWriter(tfrecord_path) as writer:
    for i, (tags, ids) in enumerate(rows):
      example = tf.train.Example()
      example.features.feature["tags"].bytes_list.value.extend(t.encode() for t in tags)
      example.features.feature["ids"].int64_list.value.extend(ids)
      example.features.feature["click"].int64_list.value.append(i % 2)
      writer.write(example.SerializeToString())
  for path in (csv_path, tfrecord_path):
    tags, ids = _prepare(path, config).features
    # Every occurrence counts: b 3, c 2, a 1, d 1.
    assert tags.vocabulary == ("b", "c", "a", "d"), path
    assert ids.vocabulary == ("2", "1"), path  # 2 thrice, 1 twice, 3 once.


def test_mean_and_std(tmp_path):
  config = _config(Feature("x", "numeric"), Feature("skewed", "numeric", log=True),
                   Feature("known_mean", "numeric", mean=10.0),
                   Feature("known", "numeric", mean=1.0, std=2.0),
                   Feature("constant", "numeric"))
  path = tmp_path / "data.csv"
  path.write_text("x,skewed,known_mean,known,constant,click\n"
                  "1,-3,1,5,7,0\n"
                  ",0,2,5,7,1\n"
                  "2.5,1e6,3,5,,0\n"
                  "4.5,99,,5,7,0\n")
  x, skewed, known_mean, known, constant = _prepare(path, config).features
  values = np.array([1.0, 2.5, 4.5])  # The missing value is left out.
  assert (x.mean, x.std) == pytest.approx((values.mean(), values.std()), rel=1e-12)
  assert (x.mean, x.std) == pytest.approx((8 / 3, 1.4337208778404381), rel=1e-12)
  logs = np.sign([-3.0, 0.0, 1e6, 99.0]) * np.log1p([3.0, 0.0, 1e6, 99.0])
  assert skewed.log
  assert (skewed.mean, skewed.std) == pytest.approx((logs.mean(), logs.std()), rel=1e-12)
  # A given mean or std is kept; the missing one is learned.
  assert (known_mean.mean, known_mean.std) == pytest.approx((10.0, np.std([1.0, 2.0, 3.0])))
  assert known == Feature("known", "numeric", mean=1.0, std=2.0)
  assert (constant.mean, constant.std) == (7.0, 1.0)  # No spread: std 1.


def test_quantile_boundaries(tmp_path):
  config = _config(Feature("x", "numeric", num_bins=4),
                   Feature("mostly_zero", "numeric", num_bins=4),
                   Feature("skewed", "numeric", num_bins=2, log=True),
                   Feature("fixed", "numeric", boundaries=(0.0, 1.0)))
  frame = pd.DataFrame({
      "x": np.arange(1, 101, dtype=np.float32),
      "mostly_zero": np.r_[np.zeros(90), np.arange(1, 11)].astype(np.float32),
      "skewed": np.r_[np.full(50, 9.0), np.full(50, 99.0)].astype(np.float32),
      "fixed": np.zeros(100, np.float32),
      "click": np.zeros(100, np.int64)})
  for path in _write(tmp_path, frame, config):
    x, mostly_zero, skewed, fixed = _prepare(path, config).features
    assert x == Feature("x", "numeric", boundaries=(25.75, 50.5, 75.25))
    assert x.num_bins is None and not x.needs_statistics
    assert mostly_zero.boundaries == (0.0,)  # Equal quantiles collapse.
    # Midway between the values in log space, log(10 ** 1.5).
    assert skewed.boundaries == pytest.approx((1.5 * np.log(10.0),), rel=1e-12)
    assert skewed.log
    assert fixed == config.features[3]


def test_features_with_statistics_are_unchanged(tmp_path):
  config = _config(Feature("x", "categorical", vocabulary=("q",)),
                   Feature("h", "categorical", num_buckets=7),
                   Feature("n", "numeric", mean=0.0, std=1.0))
  path = tmp_path / "data.csv"
  path.write_text("x,h,n,click\na,b,5,0\n")
  assert _prepare(path, config) == config
  assert scan.scan(str(path), config)[1] is None  # Nothing learned without learn=True.


def test_learns_only_from_the_train_part_of_a_split(tmp_path):
  config = _config(Feature("row_id", "categorical"), Feature("value", "numeric"))
  rows = 2000
  frame = pd.DataFrame({"row_id": [f"r{i}" for i in range(rows)],
                        "value": np.arange(rows, dtype=np.float32),
                        "click": np.zeros(rows, np.int64)})
  split = Split((0.7, 0.2, 0.1), "train", seed=4)
  selected = np.flatnonzero(split.selects_np(0, np.arange(rows)))
  for path in _write(tmp_path, frame, config):
    report, statistics = scan.scan(path, config, split=split, learn=True)
    assert report.rows == len(selected) and not report.bad_rows
    row_id, value = scan.prepare(config, statistics).features
    assert sorted(row_id.vocabulary) == sorted(f"r{i}" for i in selected), path
    assert (value.mean, value.std) == pytest.approx(
        (selected.mean(), selected.std()), rel=1e-12), path


def test_learns_from_every_file_and_not_from_bad_rows(tmp_path):
  config = _config(Feature("x", "categorical"), Feature("n", "numeric"))
  (tmp_path / "a.csv").write_text("x,n,click\nu,1,0\nv,2,0\nbad,3,2\n")
  (tmp_path / "b.csv").write_text("x,n,click\nu,3,1\nalso_bad,nan,0\n")
  report, statistics = scan.scan(str(tmp_path / "*.csv"), config, bad_rows="skip",
                                 learn=True)
  assert [(b.path, b.line, b.kind) for b in report.bad_rows] == [
      (str(tmp_path / "a.csv"), 4, "label_value"),
      (str(tmp_path / "b.csv"), 3, "not_finite")]
  x, n = scan.prepare(config, statistics).features
  assert x.vocabulary == ("u", "v")
  assert (n.mean, n.std) == pytest.approx((2.0, np.std([1.0, 2.0, 3.0])))


def test_census_without_header(tmp_path):
  config = FeatureConfig(
      features=(Feature("age", "numeric"), Feature("workclass", "categorical")),
      labels=(Label("income", positive_values=(">50K", ">50K.")),),
      tasks=(Task("high_income", "income"),),
      csv=CsvFormat(header=False, columns=("age", "workclass", "income"), na_values=("?",)))
  path = tmp_path / "adult.data"
  path.write_text("39, State-gov, <=50K\n50, ?, >50K\n?, Private, >50K.\n28, Private, <=50K\n")
  report, statistics = scan.scan(str(path), config, data_format="csv", learn=True)
  assert (report.rows, report.valid_rows) == (4, 4)
  age, workclass = scan.prepare(config, statistics).features
  assert workclass.vocabulary == ("Private", "State-gov")
  assert (age.mean, age.std) == pytest.approx((39.0, np.std([39.0, 50.0, 28.0])))


def test_csv_and_tfrecord_learn_the_same(tmp_path):
  """On the synthetic data (int64 ids, float32 and log-normal numbers), with a split."""
  config = synthetic.feature_config()
  config = config.replace_features(
      [Feature(f.name, f.type, dtype=f.dtype, min_count=3) if f.is_categorical
       else Feature(f.name, f.type, log=f.log, num_bins=5 if f.name == "n0" else None)
       for f in config.features])
  csv_path, tfrecord_path = _write(tmp_path, synthetic.generate(6000, seed=1), config)
  split = Split(part="train", seed=9)
  from_csv = _prepare(csv_path, config, split=split)
  from_tfrecord = _prepare(tfrecord_path, config, split=split)
  assert from_csv == from_tfrecord
  assert not from_csv.needs_statistics
  assert len(from_csv.features[12].boundaries) == 4  # n0
  assert from_csv != _prepare(tfrecord_path, config)  # The split matters.


def test_report(tmp_path):
  config = _config(Feature("x", "categorical"))
  (tmp_path / "a.csv").write_text("x,click\nu,0\nv,7\n")
  (tmp_path / "b.csv").write_text("x,click\n")
  report, _ = scan.scan(str(tmp_path / "*.csv"), config, bad_rows="skip")
  assert report.to_dict() == {
      "files": [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")],
      "rows": 2, "valid_rows": 1, "bad_rows": 1, "bad_rows_by_kind": {"label_value": 1},
      "empty_files": [str(tmp_path / "b.csv")],
      "first_bad_rows": [f"{tmp_path / 'a.csv'}:3:2: label column 'click': value '7' is "
                         "outside {0, 1}"]}
  assert report.skip_rows() == {str(tmp_path / "a.csv"): [1]}
  with pytest.raises(ValueError, match="bad_rows must be one of"):
    scan.scan(str(tmp_path / "a.csv"), config, bad_rows="ignore")
