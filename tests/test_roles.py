"""The flag-free objects of a run: its data by role (`DataOptions`, `DataRoles`) and its
model directory (`ModelDirectory`); and that the library defines no flags."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import

from dcrnn_tf import errors
from dcrnn_tf import model_dir
from dcrnn_tf.data import scan
from dcrnn_tf.data.roles import DataOptions, DataRoles
from dcrnn_tf.features import Feature, FeatureConfig, Task

CONFIG = FeatureConfig(features=(Feature("user", "categorical"), Feature("price", "numeric")),
                       labels=("click",), tasks=(Task("ctr", "click"),))


def write_rows(path, rows: int, bad_line: int = 0) -> str:
  """A CSV of `rows` data rows; data row `bad_line` (1-based, 0: none) has a price
  that is no number."""
  lines = ["user,price,click"]
  for i in range(rows):
    price = "cheap" if i + 1 == bad_line else f"{i % 7}.5"
    lines.append(f"u{i % 5},{price},{i % 2}")
  path.write_text("\n".join(lines) + "\n")
  return str(path)


def batches(dataset):
  return [{name: values.numpy() for name, values in {**features, **labels}.items()}
          for features, labels in dataset]


def test_paths_are_taken_inside_the_data_dir():
  options = DataOptions(data_dir="/d", train_path="a.csv, b.csv", feature_config="c.json")
  assert options.path("train_path") == "/d/a.csv,/d/b.csv"
  assert options.path("eval_path") == "/d/eval.tfrecord.gz"
  assert options.path("test_path") == options.path("eval_path")
  assert options.path("feature_config") == "c.json"
  assert DataOptions(train_path="a.csv").path("train_path") == "a.csv"
  with pytest.raises(errors.UsageError, match=r"^Give --data_dir or --eval_path\.$"):
    DataOptions(train_path="a.csv").path("eval_path")


def test_roles_of_a_split():
  split = DataRoles(DataOptions(train_path="t.csv"), "80,10,10", split_seed=3)
  assert split.path("validation") == split.path("test") == "t.csv"
  assert [str(split.split(role)) for role in ("train", "validation", "test")] == [
      str(split.split("train")), str(split.split("validation")), str(split.split("test"))]
  assert (split.split("validation").part, split.split("validation").seed) == ("validation", 3)
  given = DataRoles(DataOptions(train_path="t.csv", eval_path="e.csv"), "80,10,10")
  assert given.source("validation") == ("e.csv", None)
  no_test = DataRoles(DataOptions(train_path="t.csv"), "90,10")
  assert no_test.source("test") == no_test.source("validation")
  stored = DataRoles(DataOptions(train_path="t.csv"), "90,10",
                     stored={"test": {"path": "/abs/t.csv", "part": "validation"}})
  assert stored.path("test") == "/abs/t.csv" and stored.split("test").part == "validation"
  with pytest.raises(errors.UsageError, match="--mode=predict needs --predict_path"):
    split.path("predict")


def test_the_dict_form_reads_the_same_rows_without_scanning(tmp_path, monkeypatch):
  train = write_rows(tmp_path / "train.csv", 300, bad_line=17)
  options = DataOptions(train_path=train, eval_path=write_rows(tmp_path / "eval.csv", 50),
                        bad_rows="skip", batch_size=64, seed=5)
  roles = DataRoles(options, report_path=str(tmp_path / "report.json"))
  for role in ("train", "validation", "test"):
    roles.check(role, CONFIG)
  assert roles.rows("train") == 299 and roles.rows("test") == 50
  assert json.load(open(tmp_path / "report.json", encoding="utf-8"))["train"]["bad_rows"] == 1
  state = json.loads(json.dumps(roles.to_dict()))

  def no_scan(*args, **kwargs):
    raise AssertionError("scanned again")

  monkeypatch.setattr(scan, "scan", no_scan)
  copy = DataRoles.from_dict(state)
  assert copy.options == options and copy.reports["train"].skip_rows() == {train: [16]}
  for role in ("train", "validation", "test"):
    expected, got = batches(roles.dataset(role, CONFIG)), batches(copy.dataset(role, CONFIG))
    assert len(expected) == len(got)
    for a, b in zip(expected, got):
      assert a.keys() == b.keys()
      for name in a:
        np.testing.assert_array_equal(a[name], b[name])
  reseeded = DataRoles.from_dict(state, seed=6, in_memory_max_mib=0)
  assert reseeded.options.seed == 6 and reseeded.in_memory("train", CONFIG) is None


def test_the_model_directory_keeps_the_split_of_its_first_run(tmp_path):
  directory = model_dir.ModelDirectory(str(tmp_path / "model"))
  assert directory.split_choice("80,10,10", 1, given=True) == ("80,10,10", 1)
  directory.save_prepared_feature_config(CONFIG, write_config(tmp_path), "80,10,10", 1)
  assert directory.split_choice(None, 0, given=False) == ("80,10,10", 1)
  assert directory.split_choice("80, 10, 10", 1, given=True) == ("80,10,10", 1)
  with pytest.raises(errors.UsageError) as error:
    directory.split_choice("90,10", 1, given=True)
  assert str(error.value) == (
      f"{directory.path} was prepared with --split=80,10,10 --split_seed=1 "
      f"({directory.path}/split.json), but the flags ask for --split=90,10 --split_seed=1: "
      "leave the split flags out, or use a new --model_dir.")


def test_the_model_directory_records_its_run(tmp_path):
  directory = model_dir.ModelDirectory(str(tmp_path / "model"))
  assert directory.trained_run_config(CONFIG, "fixed") is None
  assert directory.latest_export() == {}
  os.makedirs(directory.path)
  run_config = {"model": "mmoe", "options": {"num_experts": 2}, "loss_weighting": "fixed"}
  directory.save_run_config(run_config, CONFIG)
  assert directory.trained_run_config(CONFIG, "fixed") == run_config
  other = FeatureConfig(features=CONFIG.features[:1], labels=CONFIG.labels,
                        tasks=CONFIG.tasks)
  with pytest.raises(errors.UsageError, match="feature 'price' is gone"):
    directory.trained_run_config(other, "fixed")
  directory.record_export("ckpt-7", "/exports/3")
  assert directory.latest_export() == {"checkpoint": "ckpt-7", "export": "/exports/3"}
  assert directory.report_path("train").endswith("/data_report.json")
  assert directory.report_path("predict").endswith("/data_report_predict.json")


def write_config(tmp_path) -> str:
  path = str(tmp_path / "features.json")
  CONFIG.save(path)
  return path


LIBRARY_DEFINES_NO_FLAGS = r"""
import importlib, pkgutil, sys
import dcrnn_tf
from absl import flags
entries = {"dcrnn_tf.main", "dcrnn_tf.run_flags", "dcrnn_tf.benchmark.cli",
           "dcrnn_tf.benchmark.__main__"}
for module in pkgutil.walk_packages(dcrnn_tf.__path__, "dcrnn_tf."):
  if module.name not in entries:
    importlib.import_module(module.name)
ours = [m for m in flags.FLAGS.flags_by_module_dict() if m.startswith("dcrnn_tf")]
assert not ours, ours
assert not entries & set(sys.modules), entries & set(sys.modules)
flags.DEFINE_bool("debug", False, "An application's own --debug.")
delattr(flags.FLAGS, "debug")
import dcrnn_tf.benchmark.cli
assert "dcrnn_tf.main" not in sys.modules
print("ok")
"""


def test_the_library_defines_no_flags_and_the_benchmark_does_not_import_main():
  result = subprocess.run([sys.executable, "-c", LIBRARY_DEFINES_NO_FLAGS], text=True,
                          capture_output=True, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines()[-1] == "ok"


def test_test_rows_that_are_the_validation_rows_are_read_once(tmp_path, monkeypatch):
  from dcrnn_tf.data import in_memory  # pylint: disable=import-outside-toplevel
  options = DataOptions(train_path=write_rows(tmp_path / "train.csv", 100),
                        eval_path=write_rows(tmp_path / "eval.csv", 40), batch_size=16)
  roles = DataRoles(options)
  for role in ("train", "validation", "test"):
    roles.check(role, CONFIG)
  loads = []
  load = in_memory.InMemoryRows.load
  monkeypatch.setattr(in_memory.InMemoryRows, "load",
                      lambda *args, **kwargs: loads.append(args) or load(*args, **kwargs))
  held = roles.in_memory("validation", CONFIG)
  assert held is not None and roles.in_memory("test", CONFIG) is held and len(loads) == 1
  from_files = DataRoles.from_dict(roles.to_dict(), in_memory_max_mib=0)
  expected = batches(from_files.dataset("test", CONFIG))
  for a, b in zip(expected, batches(roles.dataset("test", CONFIG)), strict=True):
    for name in a:
      np.testing.assert_array_equal(a[name], b[name])


def test_the_export_warms_up_on_the_first_test_batch_of_the_evaluation(tmp_path):
  from dcrnn_tf import main  # pylint: disable=import-outside-toplevel
  options = DataOptions(train_path=write_rows(tmp_path / "train.csv", 100),
                        test_path=write_rows(tmp_path / "test.csv", 40), batch_size=16)
  roles = DataRoles(options)
  roles.check("test", CONFIG)
  test = main.TestBatches(roles, CONFIG)
  passes = []

  class Counted:
    def __init__(self, dataset):
      self.dataset = dataset

    def __iter__(self):
      passes.append(1)
      return iter(self.dataset)

  test.dataset = Counted(test.dataset)
  rows = sum(int(features["user"].shape[0]) for features, _ in test)
  assert rows == 40 and len(passes) == 1
  first = test.first_features()
  assert len(passes) == 1 and first["user"].numpy().tolist() == [b"u0", b"u1", b"u2", b"u3",
                                                                  b"u4"] * 3 + [b"u0"]
  fresh = main.TestBatches(roles, CONFIG)
  np.testing.assert_array_equal(fresh.first_features()["price"], first["price"])


def test_preprocessed_batches_held_or_streamed_are_the_same(tmp_path):
  from dcrnn_tf.layers import FeaturePreprocessor  # pylint: disable=import-outside-toplevel
  train = write_rows(tmp_path / "train.csv", 100)
  prepared = scan.prepare(CONFIG, scan.scan(train, CONFIG, learn=True)[1])
  preprocessor = FeaturePreprocessor(prepared.features)
  options = DataOptions(train_path=train, eval_path=write_rows(tmp_path / "eval.csv", 40),
                        batch_size=16)
  held = DataRoles(options)
  held.check("validation", prepared)
  streamed = DataRoles.from_dict(held.to_dict(), in_memory_max_mib=0)
  assert held.in_memory("validation", prepared) is not None
  assert streamed.in_memory("validation", prepared) is None
  pairs = zip(batches(held.dataset("validation", prepared, preprocessor=preprocessor)),
              batches(streamed.dataset("validation", prepared, preprocessor=preprocessor)),
              strict=True)
  for a, b in pairs:
    assert sorted(a) == sorted(b) == ["click", "preprocessed/ids", "preprocessed/numbers"]
    for name in a:
      np.testing.assert_array_equal(a[name], b[name])
