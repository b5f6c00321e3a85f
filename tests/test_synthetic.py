"""Tests of the synthetic click → conversion data set."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from dcrnn_tf.data import pipeline, synthetic
from dcrnn_tf.features import FeatureConfig


def _auc(labels, scores):
  """Rank-based (Mann-Whitney) AUC, ties counted half."""
  ranks = pd.Series(scores).rank().to_numpy()
  positives = labels == 1
  n_pos, n_neg = positives.sum(), (~positives).sum()
  return (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@pytest.fixture(scope="module", name="large")
def _large():
  return synthetic.generate(100_000, seed=0, split="eval")


def test_same_seed_same_rows():
  frame = synthetic.generate(2000, seed=3)
  pd.testing.assert_frame_equal(frame, synthetic.generate(2000, seed=3))
  fresh = synthetic.make_structure.__wrapped__(3)  # Not the cached structure.
  pd.testing.assert_frame_equal(frame, fresh.sample(2000))


def test_different_seeds_and_splits_differ():
  train = synthetic.generate(2000, seed=0)
  assert not train.equals(synthetic.generate(2000, seed=1))
  evaluation = synthetic.generate(2000, seed=0, split="eval")
  assert not train.equals(evaluation)
  assert synthetic.make_structure(0).vocab_sizes != synthetic.make_structure(1).vocab_sizes
  # The config names the columns and types only; vocabularies are learned from the data.
  assert synthetic.feature_config(0) == synthetic.feature_config(1)


def test_columns_match_the_feature_config():
  frame = synthetic.generate(5000, seed=0)
  config = synthetic.feature_config(0)
  vocab_sizes = synthetic.make_structure(0).vocab_sizes
  assert list(frame.columns) == list(config.columns)
  assert [f.name for f in config.features] == [f"c{j}" for j in range(12)] + [
      f"n{i}" for i in range(6)]
  assert min(vocab_sizes) == 10 and max(vocab_sizes) == 1000
  # Unprepared, as a user writes it: integer ids, log-transformed skewed numbers.
  assert config.needs_statistics
  assert [(f.type, f.raw_dtype, f.log) for f in config.features] == (
      [("categorical", "int64", False)] * 12
      + [("numeric", "float32", i % 2 == 1) for i in range(6)])
  assert all(f.needs_statistics for f in config.features)
  for j, vocab_size in enumerate(vocab_sizes):
    column = frame[f"c{j}"]
    assert column.dtype == np.int64
    assert column.min() >= 0 and column.max() < vocab_size
  for i in range(6):
    column = frame[f"n{i}"]
    assert column.dtype == np.float32
    if i % 2 == 1:
      assert column.min() > 0  # Log-normal.
  assert frame["click"].dtype == frame["conversion"].dtype == np.int64
  assert [(t.name, t.label, t.depends_on, t.funnel_output) for t in config.tasks] == [
      ("ctr", "click", None, None), ("cvr", "conversion", "ctr", "ctcvr")]


def test_ids_are_skewed():
  frame = synthetic.generate(20_000, seed=0)
  vocab_sizes = synthetic.make_structure(0).vocab_sizes
  widest = f"c{int(np.argmax(vocab_sizes))}"
  counts = frame[widest].value_counts()
  assert counts.iloc[0] > 20 * counts.median()


def test_label_rates(large):
  assert 0.03 <= large["click"].mean() <= 0.05
  clicked = large["click"] == 1
  assert 0.05 <= large.loc[clicked, "conversion"].mean() <= 0.15
  assert not ((large["conversion"] == 1) & ~clicked).any()


def test_true_probabilities_rank_well(large):
  probabilities = synthetic.make_structure(0).probabilities(large)
  np.testing.assert_allclose(
      probabilities["conversion"],
      probabilities["click"] * probabilities["conversion_given_click"])
  click_auc = _auc(large["click"].to_numpy(), probabilities["click"].to_numpy())
  conversion_auc = _auc(large["conversion"].to_numpy(), probabilities["conversion"].to_numpy())
  assert 0.75 <= click_auc <= 0.85
  assert 0.75 <= conversion_auc <= 0.87


def test_noise_columns_do_not_change_the_probabilities():
  structure = synthetic.make_structure(0)
  assert len(structure.noise_columns) == 5
  frame = synthetic.generate(3000, seed=0)
  before = structure.probabilities(frame)
  other = synthetic.generate(3000, seed=0, split="test")
  noisy = frame.copy()
  noisy[list(structure.noise_columns)] = other[list(structure.noise_columns)]
  pd.testing.assert_frame_equal(structure.probabilities(noisy), before)
  for column in frame.columns[:18]:
    if column not in structure.noise_columns:
      changed = frame.copy()
      changed[column] = other[column]
      assert not np.allclose(structure.probabilities(changed)["click"], before["click"]), column


def test_invalid_arguments():
  with pytest.raises(ValueError, match="split"):
    synthetic.generate(10, split="validation")
  with pytest.raises(ValueError, match="informative categorical"):
    synthetic.make_structure(0, num_categorical=3, num_noise_categorical=2)
  with pytest.raises(ValueError, match="informative numeric"):
    synthetic.make_structure(0, num_numeric=1, num_noise_numeric=1)


def test_write_dataset(tmp_path):
  out_dir = str(tmp_path / "synthetic")
  config = synthetic.write_dataset(out_dir, train_rows=300, eval_rows=200, seed=2,
                                   num_categorical=4, num_numeric=3,
                                   num_noise_categorical=1, num_noise_numeric=1)
  assert sorted(os.listdir(out_dir)) == ["eval.csv", "eval.tfrecord.gz", "feature_config.json",
                                         "synthetic.json", "train.csv", "train.tfrecord.gz"]
  assert FeatureConfig.load(os.path.join(out_dir, "feature_config.json")) == config
  with open(os.path.join(out_dir, "synthetic.json"), encoding="utf-8") as f:
    assert json.load(f) == {"train_rows": 300, "eval_rows": 200, "seed": 2,
                            "num_categorical": 4, "num_numeric": 3, "num_noise_categorical": 1,
                            "num_noise_numeric": 1, "max_vocab_size": 1000,
                            "dwell_time": False, "task_cosine": 0.7}
  assert config == synthetic.feature_config(2, num_categorical=4, num_numeric=3,
                                            num_noise_categorical=1, num_noise_numeric=1)
  for split, rows in (("train", 300), ("eval", 200)):
    expected = synthetic.generate(rows, seed=2, split=split, num_categorical=4,
                                  num_numeric=3, num_noise_categorical=1,
                                  num_noise_numeric=1)
    pd.testing.assert_frame_equal(pd.read_csv(os.path.join(out_dir, f"{split}.csv")), expected,
                                  check_dtype=False)
    (features, labels), = pipeline.make_dataset(
        os.path.join(out_dir, f"{split}.tfrecord.gz"), config, 1000).as_numpy_iterator()
    for name, values in {**features, **labels}.items():
      if values.dtype == object:  # Categorical ids come out as their decimal strings.
        assert [v.decode() for v in values] == [str(v) for v in expected[name]], name
      else:
        np.testing.assert_array_equal(values, expected[name].to_numpy(), err_msg=name)


def test_ensure_dataset_does_not_rewrite(tmp_path, monkeypatch):
  out_dir = str(tmp_path / "synthetic")
  config = synthetic.ensure_dataset(out_dir, train_rows=100, eval_rows=50)
  stamps = {name: os.stat(os.path.join(out_dir, name)).st_mtime_ns
            for name in os.listdir(out_dir)}

  def fail(*args, **kwargs):
    raise AssertionError("write_dataset called again")

  monkeypatch.setattr(synthetic, "write_dataset", fail)
  assert synthetic.ensure_dataset(out_dir, train_rows=100, eval_rows=50) == config
  assert {name: os.stat(os.path.join(out_dir, name)).st_mtime_ns
          for name in os.listdir(out_dir)} == stamps


def test_incomplete_dataset_is_rewritten(tmp_path):
  out_dir = tmp_path / "synthetic"
  out_dir.mkdir()
  (out_dir / "train.csv").write_text("half a file")
  synthetic.ensure_dataset(str(out_dir), train_rows=100, eval_rows=50)
  assert len(pd.read_csv(out_dir / "train.csv")) == 100
  assert sorted(os.listdir(out_dir)) == ["eval.csv", "eval.tfrecord.gz", "feature_config.json",
                                         "synthetic.json", "train.csv", "train.tfrecord.gz"]


def test_the_dwell_time_of_clicks_is_an_optional_regression_target():
  plain = synthetic.generate(20_000, seed=3)
  with_dwell = synthetic.generate(20_000, seed=3, dwell_time=True)
  pd.testing.assert_frame_equal(with_dwell[plain.columns], plain)  # The rest is unchanged.
  dwell = with_dwell[synthetic.DWELL_LABEL].to_numpy()
  clicked = with_dwell["click"].to_numpy() == 1
  assert (dwell[~clicked] == 0).all() and (dwell[clicked] > 0).all()
  # Log-normal around 30 s; a click's is longer (its direction leans on the click's).
  assert 35 < np.median(dwell[clicked]) < 60
  config = synthetic.feature_config(seed=3, dwell_time=True)
  [task] = [t for t in config.tasks if t.name == "dwell"]
  assert (task.type, task.depends_on, task.transform) == ("regression", "ctr", "log1p")
  # The true expected dwell time explains the log dwell times' signal: log-space R²
  # of the true mean log is about 0.8² / (0.8² + 0.5²) = 0.72.
  structure = synthetic.make_structure(3, dwell_time=True)
  expected = structure.probabilities(with_dwell)["dwell_seconds_given_click"].to_numpy()
  logs = np.log(dwell[clicked])
  predicted = np.log(expected[clicked]) - 0.5 ** 2 / 2
  r2 = 1 - np.mean((logs - predicted) ** 2) / np.var(logs)
  assert 0.65 < r2 < 0.8


def test_a_data_dir_of_other_tasks_is_refused(tmp_path):
  synthetic.ensure_dataset(str(tmp_path), train_rows=100, eval_rows=50, seed=0)
  with pytest.raises(ValueError, match=r"holds a synthetic data set of other tasks "
                                       r"\(dwell_time False here, True asked\)"):
    synthetic.ensure_dataset(str(tmp_path), train_rows=100, eval_rows=50, seed=0,
                             dwell_time=True)
  with pytest.raises(ValueError, match=r"task_cosine 0.7 here, 0.2 asked"):
    synthetic.ensure_dataset(str(tmp_path), train_rows=100, eval_rows=50, task_cosine=0.2)
  # Rows, seed and fields are what the directory holds: the arguments only write.
  assert synthetic.ensure_dataset(str(tmp_path), train_rows=999, seed=4).tasks[0].name == "ctr"
  # A data set written before the settings file is told by its tasks.
  os.remove(tmp_path / synthetic.SETTINGS_FILE)
  with pytest.raises(ValueError, match=r"with the tasks \['ctr', 'cvr'\], not"):
    synthetic.ensure_dataset(str(tmp_path), dwell_time=True)


@pytest.mark.parametrize("cosine", [0.0, 0.5, 1.0])
def test_task_relatedness_is_the_cosine_of_the_task_directions(cosine):
  structure = synthetic.make_structure(5, task_cosine=cosine)
  a, b = structure.click.direction, structure.conversion.direction
  assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) == pytest.approx(cosine, abs=1e-9)
  # The rest of the structure does not depend on it.
  default = synthetic.make_structure(5)
  np.testing.assert_array_equal(structure.click.direction, default.click.direction)
  np.testing.assert_array_equal(structure.latents[0], default.latents[0])
  with pytest.raises(ValueError, match="task_cosine must be in"):
    synthetic.make_structure(5, task_cosine=1.5)
