"""The feature config: validation, JSON and YAML files, round trips."""

import json

import pytest

import dcrnn_tf  # pylint: disable=unused-import

from dcrnn_tf.features import CsvFormat, Feature, FeatureConfig, Label, Task

YAML = """\
# The same config as JSON_CONFIG.
features:
  - {name: user, type: categorical, column: user_id, dtype: int64, min_count: 5}
  - name: item
    type: categorical
    num_buckets: 1000
  - {name: tags, type: multi_categorical, delimiter: ";", pooling: sum, max_tokens: 50}
  - {name: price, type: numeric, log: true}
  - {name: age, type: numeric, num_bins: 10}
  - {name: hour, type: numeric, boundaries: [6, 12, 18]}
labels:
  - click
  - {name: conversion, column: outcome, positive_values: [buy]}
tasks:
  - {name: ctr, label: click}
  - {name: cvr, label: conversion, depends_on: ctr, funnel_output: ctcvr, loss_weight: 2}
ignore: [request_id]
csv: {delimiter: "\\t", na_values: ["?", NULL_VALUE]}
"""

JSON_CONFIG = {
    "features": [
        {"name": "user", "type": "categorical", "column": "user_id", "dtype": "int64",
         "min_count": 5},
        {"name": "item", "type": "categorical", "num_buckets": 1000},
        {"name": "tags", "type": "multi_categorical", "delimiter": ";", "pooling": "sum",
         "max_tokens": 50},
        {"name": "price", "type": "numeric", "log": True},
        {"name": "age", "type": "numeric", "num_bins": 10},
        {"name": "hour", "type": "numeric", "boundaries": [6, 12, 18]},
    ],
    "labels": ["click", {"name": "conversion", "column": "outcome",
                         "positive_values": ["buy"]}],
    "tasks": [{"name": "ctr", "label": "click"},
              {"name": "cvr", "label": "conversion", "depends_on": "ctr",
               "funnel_output": "ctcvr", "loss_weight": 2}],
    "ignore": ["request_id"],
    "csv": {"delimiter": "\t", "na_values": ["?", "NULL_VALUE"]},
}

EXPECTED = FeatureConfig(
    features=(Feature("user", "categorical", column="user_id", dtype="int64", min_count=5),
              Feature("item", "categorical", num_buckets=1000),
              Feature("tags", "multi_categorical", delimiter=";", pooling="sum",
                      max_tokens=50),
              Feature("price", "numeric", log=True),
              Feature("age", "numeric", num_bins=10),
              Feature("hour", "numeric", boundaries=(6.0, 12.0, 18.0))),
    labels=(Label("click"), Label("conversion", column="outcome", positive_values=("buy",))),
    tasks=(Task("ctr", "click"),
           Task("cvr", "conversion", depends_on="ctr", funnel_output="ctcvr", loss_weight=2.0)),
    ignore=("request_id",),
    csv=CsvFormat(delimiter="\t", na_values=("?", "NULL_VALUE")))


def _config(features=None, labels=("click",), tasks=None, **kwargs):
  """A config dict with one categorical feature and a ctr task, parts replaced."""
  return {"features": [{"name": "item", "type": "categorical"}] if features is None
                      else features,
          "labels": list(labels),
          "tasks": [{"name": "ctr", "label": "click"}] if tasks is None else tasks, **kwargs}


def _error(config):
  with pytest.raises(ValueError) as error:
    FeatureConfig.from_dict(config)
  return str(error.value)


def test_json_and_yaml_files_give_equal_configs(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(JSON_CONFIG))
  (tmp_path / "config.yaml").write_text(YAML)
  (tmp_path / "config.yml").write_text(YAML)
  loaded = FeatureConfig.load(str(tmp_path / "config.json"))
  assert loaded == EXPECTED
  assert FeatureConfig.load(str(tmp_path / "config.yaml")) == EXPECTED
  assert FeatureConfig.load(str(tmp_path / "config.yml")) == EXPECTED


def test_properties():
  assert EXPECTED.columns == ("user_id", "item", "tags", "price", "age", "hour", "click",
                              "outcome")
  assert EXPECTED.label_names == ("click", "conversion")
  assert EXPECTED.output_names == ("ctr", "cvr", "ctcvr")
  assert EXPECTED.funnels() == [(Label("click"), EXPECTED.label("conversion"))]
  assert EXPECTED.task("cvr").depends_on == "ctr"
  with pytest.raises(KeyError):
    EXPECTED.task("nope")
  assert [f.raw_dtype for f in EXPECTED.features] == ["int64", "string", "string", "float32",
                                                      "float32", "float32"]
  assert [f.bucketized for f in EXPECTED.features] == [False] * 4 + [True, True]
  # Everything but the hashed and the explicitly bucketized feature learns statistics.
  assert [f.needs_statistics for f in EXPECTED.features] == [True, False, True, True, True,
                                                             False]
  assert EXPECTED.needs_statistics
  assert not Feature("x", "numeric", mean=1.0, std=2.0).needs_statistics
  assert Feature("x", "numeric", mean=1.0).needs_statistics
  assert not Feature("x", "categorical", vocabulary=("a",)).needs_statistics


def test_round_trip_of_a_prepared_config(tmp_path):
  prepared = EXPECTED.replace_features([
      Feature("user", "categorical", column="user_id", dtype="int64", min_count=5,
              vocabulary=("17", "3", "250")),
      EXPECTED.features[1],
      Feature("tags", "multi_categorical", delimiter=";", pooling="sum", max_tokens=50,
              vocabulary=("a", "b c", "ü")),
      Feature("price", "numeric", log=True, mean=1.2345678901234567, std=0.1),
      Feature("age", "numeric", boundaries=(18.5, 30.0, 45.25)),
      EXPECTED.features[5],
  ])
  assert not prepared.needs_statistics
  assert FeatureConfig.from_dict(prepared.to_dict()) == prepared
  assert FeatureConfig.from_dict(EXPECTED.to_dict()) == EXPECTED
  prepared.save(str(tmp_path / "prepared.json"))
  assert FeatureConfig.load(str(tmp_path / "prepared.json")) == prepared
  stored = json.loads((tmp_path / "prepared.json").read_text())
  assert stored["features"][0] == {"name": "user", "type": "categorical", "column": "user_id",
                                   "dtype": "int64", "vocabulary": ["17", "3", "250"],
                                   "min_count": 5}
  assert stored["features"][3] == {"name": "price", "type": "numeric",
                                   "mean": 1.2345678901234567, "std": 0.1, "log": True}
  assert stored["features"][4] == {"name": "age", "type": "numeric",
                                   "boundaries": [18.5, 30.0, 45.25]}


def test_to_dict_leaves_out_defaults():
  config = FeatureConfig(features=(Feature("item", "categorical"),), labels=("click",),
                         tasks=(Task("ctr", "click"),))
  assert config.to_dict() == {"features": [{"name": "item", "type": "categorical"}],
                              "labels": ["click"], "tasks": [{"name": "ctr", "label": "click"}],
                              "ignore": []}
  assert EXPECTED.to_dict()["labels"] == [
      "click", {"name": "conversion", "column": "outcome", "positive_values": ["buy"]}]
  assert EXPECTED.to_dict()["csv"] == {"delimiter": "\t", "na_values": ["?", "NULL_VALUE"]}


def test_vocabulary_files_are_relative_to_the_config_file(tmp_path, monkeypatch):
  (tmp_path / "configs" / "vocab").mkdir(parents=True)
  (tmp_path / "configs" / "vocab" / "items.txt").write_text("shoe\n\nhat\n42\n")
  (tmp_path / "items.txt").write_text("wrong\n")
  config = _config(features=[{"name": "item", "type": "categorical",
                              "vocabulary": "vocab/items.txt"}])
  (tmp_path / "configs" / "config.json").write_text(json.dumps(config))
  (tmp_path / "elsewhere").mkdir()
  monkeypatch.chdir(tmp_path / "elsewhere")
  loaded = FeatureConfig.load(str(tmp_path / "configs" / "config.json"))
  assert loaded.features[0].vocabulary == ("shoe", "hat", "42")
  assert not loaded.needs_statistics
  # The prepared copy holds the values themselves.
  assert loaded.to_dict()["features"][0]["vocabulary"] == ["shoe", "hat", "42"]


def test_missing_vocabulary_file(tmp_path):
  config = _config(features=[{"name": "item", "type": "categorical",
                              "vocabulary": "missing.txt"}])
  (tmp_path / "config.json").write_text(json.dumps(config))
  with pytest.raises(ValueError, match=r"config\.json: invalid feature config: .*missing\.txt"):
    FeatureConfig.load(str(tmp_path / "config.json"))


def test_invalid_json_names_file_line_and_column(tmp_path):
  path = tmp_path / "config.json"
  path.write_text('{\n  "features": [\n    {"name": "a", "type": "categorical",}\n  ]\n}\n')
  with pytest.raises(ValueError) as error:
    FeatureConfig.load(str(path))
  assert str(error.value) == (f"{path}:3:41: invalid JSON: Expecting property name enclosed "
                              "in double quotes")


def test_invalid_yaml_names_file_line_and_column(tmp_path):
  path = tmp_path / "config.yaml"
  path.write_text("features:\n  - name: a\n   type: categorical\n")
  with pytest.raises(ValueError) as error:
    FeatureConfig.load(str(path))
  assert str(error.value).startswith(f"{path}:3:4: invalid YAML: ")


def test_invalid_config_in_a_file_names_the_file(tmp_path):
  path = tmp_path / "config.yaml"
  path.write_text("- a\n- b\n")
  with pytest.raises(ValueError, match=r"config\.yaml: invalid feature config: A feature "
                     "config must be a mapping"):
    FeatureConfig.load(str(path))
  path = tmp_path / "config.json"
  path.write_text(json.dumps(_config(labels=[{"name": "click", "kolumn": "c"}])))
  with pytest.raises(ValueError, match=r"config\.json: invalid feature config: .*'kolumn'"):
    FeatureConfig.load(str(path))
  with pytest.raises(FileNotFoundError, match="nothing.json does not exist"):
    FeatureConfig.load(str(tmp_path / "nothing.json"))


@pytest.mark.parametrize("config,message", [
    (_config(extra=1), "unknown key 'extra' in the feature config (known keys: features, "
     "labels, tasks, ignore, csv, weight)"),
    ({"features": [], "labels": []}, "The feature config lacks 'tasks'"),
    (_config(features=[{"name": "item", "type": "categorical", "vocab_size": 5}]),
     "unknown key 'vocab_size' in features[0] (known keys: name, type, column, dtype, "
     "vocabulary, lowercase, min_count, max_tokens, num_buckets, delimiter, pooling, mean, "
     "std, log, boundaries, num_bins)"),
    (_config(features=[{"name": "item", "typ": "categorical"}]),
     "unknown key 'typ' in features[0] (did you mean 'type'?)"),
    (_config(features=[{"name": "item", "type": "categorical", "vocabulary": ["a", "b", "a"]}]),
     "Feature 'item': the vocabulary lists 'a' more than once."),
    (_config(features=[{"name": "item", "type": "categorical", "vocabulary": ["a", ""]}]),
     "Feature 'item': the vocabulary lists the empty string (it means missing)."),
    (_config(features=[{"name": "item", "type": "categorical", "max_tokens": -1}]),
     "Feature 'item': max_tokens must be >= 1, got -1."),
    (_config(features=[{"name": "tags", "type": "multi_categorical", "delimiter": ""}]),
     "Feature 'tags': delimiter must not be empty."),
    (_config(features=[{"name": "x", "type": "numeric", "mean": float("inf")}]),
     "Feature 'x': mean must be finite, got inf."),
    (_config(features=[{"name": "x", "type": "numeric", "boundaries": [0, float("inf")]}]),
     "Feature 'x': boundaries must be finite."),
    (_config(tasks=[{"name": "ctr", "label": "click", "loss_weight": -1}]),
     "Task 'ctr': loss_weight must be >= 0 and finite, got -1."),
    (_config(features=[{"name": "item", "type": "categorical", "vocabulary": ["a"],
                        "num_buckets": 10}]),
     "Feature 'item': give vocabulary or num_buckets, not both."),
    (_config(features=[{"name": "x", "type": "numeric", "boundaries": [1], "num_bins": 4}]),
     "Feature 'x': give boundaries or num_bins, not both."),
    (_config(features=[{"name": "x", "type": "numeric", "boundaries": [1, 1]}]),
     "Feature 'x': boundaries must increase strictly."),
    (_config(features=[{"name": "x", "type": "numeric", "std": 0.0}]),
     "Feature 'x': std must be > 0 and finite, got 0.0."),
    (_config(features=[{"name": "x", "type": "numeric", "num_bins": 1}]),
     "Feature 'x': num_bins must be >= 2."),
    (_config(features=[{"name": "x", "type": "numeric", "vocabulary": ["a"]}]),
     "Feature 'x' (numeric) cannot have ['vocabulary']."),
    (_config(features=[{"name": "x", "type": "categorical", "mean": 1.0, "num_bins": 3}]),
     "Feature 'x' (categorical) cannot have ['mean', 'num_bins']."),
    (_config(features=[{"name": "x", "type": "categorical", "num_buckets": 0}]),
     "Feature 'x': num_buckets must be >= 1."),
    (_config(features=[{"name": "x", "type": "categorical", "min_count": 0}]),
     "Feature 'x': min_count must be >= 1."),
    (_config(features=[{"name": "x", "type": "multi_categorical", "pooling": "max"}]),
     "Feature 'x': pooling must be one of ('mean', 'sum')."),
    (_config(features=[{"name": "x", "type": "numeric", "dtype": "int64"}]),
     "Feature 'x': dtype must be one of ('float32',), got 'int64'."),
    (_config(features=[{"name": "x", "type": "categorical", "dtype": "float32"}]),
     "Feature 'x': dtype must be one of ('string', 'int64'), got 'float32'."),
    (_config(features=[{"name": "x", "type": "text"}]),
     "Feature 'x': type must be one of ('categorical', 'multi_categorical', 'numeric'), "
     "got 'text'."),
    (_config(features=[{"name": "user-id", "type": "categorical"}]),
     "Feature name 'user-id' must be a letter or underscore"),
    (_config(features=[{"name": "x", "type": "categorical"},
                       {"name": "x", "type": "numeric", "column": "y"}]),
     "Feature names must be unique, got ['x', 'x']."),
    (_config(features=[{"name": "click", "type": "numeric"}]),
     "Columns declared more than once (a label's column must not also be a feature): "
     "['click']."),
    (_config(features=[{"name": "a", "type": "numeric", "column": "c"},
                       {"name": "b", "type": "numeric", "column": "c"}]),
     "Columns declared more than once"),
    (_config(ignore=["item"]), "Columns declared more than once"),
    (_config(features=[]), "A feature config needs at least one feature."),
    (_config(tasks=[]), "A feature config needs at least one task."),
    (_config(tasks=[{"name": "ctr", "label": "buy"}]),
     "Task 'ctr': label 'buy' is not among the labels ['click']."),
    (_config(labels=["click", "buy"], tasks=[
        {"name": "cvr", "label": "buy", "depends_on": "ctr"},
        {"name": "ctr", "label": "click"}]),
     "Task 'cvr' depends on 'ctr', which is not an earlier task (earlier: [])."),
    (_config(labels=["click", "buy"], tasks=[
        {"name": "ctr", "label": "click"},
        {"name": "cvr", "label": "buy", "depends_on": "cvr"}]),
     "Task 'cvr' depends on 'cvr', which is not an earlier task (earlier: ['ctr'])."),
    (_config(tasks=[{"name": "ctr", "label": "click", "funnel_output": "ctcvr"}]),
     "Task 'ctr': funnel_output needs depends_on."),
    (_config(tasks=[{"name": "ctr", "label": "click", "masked_loss_weight": 1.0}]),
     "Task 'ctr': masked_loss_weight applies to funnel stages only."),
    (_config(labels=["click", "buy"], tasks=[
        {"name": "ctr", "label": "click"},
        {"name": "cvr", "label": "buy", "depends_on": "ctr", "funnel_output": "ctr"}]),
     "Task and funnel output names must be unique, got ['ctr', 'cvr', 'ctr']."),
    (_config(labels=[""]), "Label name must be a non-empty string, got ''."),
    (_config(csv={"header": False}), "csv: files without a header need `columns`."),
    (_config(csv={"delimiter": ", "}), "csv.delimiter must be one character other than a "
     "quote or a line break, got ', '."),
    (_config(csv={"delimiter": ""}), "csv.delimiter must be one character other than a "
     "quote or a line break, got ''."),
    (_config(csv={"header": False, "columns": ["item"]}),
     "Columns ['click'] are not among csv.columns."),
    (_config(csv={"header": False, "columns": ["item", "click", "id"]}),
     "csv.columns ['id'] are neither features, labels nor ignored."),
    (_config(csv={"quote": "'"}), "unknown key 'quote' in csv (known keys: header, columns, "
     "delimiter, na_values)"),
    (_config(labels=[{"name": "click", "kolumn": "c"}]),
     "unknown key 'kolumn' in labels[0] (did you mean 'column'?)"),
    (_config(tasks=[{"name": "ctr"}]),
     "tasks[0] lacks the key 'label'"),
])
def test_validation_errors(config, message):
  assert message in _error(config)


@pytest.mark.parametrize("config,message", [
    (_config(features=[{"name": "x", "type": "numeric", "log": "false"}]),
     "Feature 'x': log must be boolean, got 'false'."),
    (_config(features=[{"name": "x", "type": "categorical", "min_count": "5"}]),
     "Feature 'x': min_count must be integer, got '5'."),
    (_config(features=[{"name": "x", "type": "categorical", "min_count": 2.5}]),
     "Feature 'x': min_count must be integer, got 2.5."),
    (_config(features=[{"name": "x", "type": "categorical", "num_buckets": True}]),
     "Feature 'x': num_buckets must be integer or null, got True."),
    (_config(features=[{"name": "x", "type": "categorical", "vocabulary": 5}]),
     "Feature 'x': vocabulary must be a list of strings or string or null, got 5."),
    (_config(features=[{"name": "x", "type": "numeric", "mean": "1"}]),
     "Feature 'x': mean must be number or null, got '1'."),
    (_config(features=[{"name": "x", "type": "numeric", "boundaries": "1,2"}]),
     "Feature 'x': boundaries must be a list of numbers or null, got '1,2'."),
    (_config(features=[{"name": "x", "type": "numeric", "column": 3}]),
     "Feature 'x': column must be string or null, got 3."),
    (_config(features=[{"name": 3, "type": "numeric"}]), "Feature name 3 must be a letter"),
    (_config(labels=[{"name": "click", "positive_values": 1}]),
     "Label 'click': positive_values must be a list of strings or null, got 1."),
    (_config(tasks=[{"name": "ctr", "label": "click", "loss_weight": "2"}]),
     "Task 'ctr': loss_weight must be number, got '2'."),
    (_config(csv={"header": "no", "columns": ["item", "click"]}),
     "csv: header must be boolean, got 'no'."),
    (_config(csv={"na_values": "?"}), "csv: na_values must be a list of strings, got '?'."),
    (_config(features={"item": "categorical"}),
     "features must be a list, got {'item': 'categorical'}."),
    ({**_config(), "labels": "click"}, "labels must be a list, got 'click'."),
    (_config(ignore="id"), "ignore must be a list, got 'id'."),
    (_config(features=["item"]), "features[0] must be a mapping, got 'item'"),
])
def test_bad_types(config, message):
  assert message in _error(config)


def test_numbers_are_accepted_where_floats_are_expected():
  feature = Feature("x", "numeric", mean=1, std=2)
  assert (feature.mean, feature.std) == (1, 2)
  assert Task("t", "y", loss_weight=3).loss_weight == 3
  # Vocabulary values (integer ids) and positive values become strings.
  assert Feature("c", "categorical", vocabulary=[3, 1]).vocabulary == ("3", "1")
  assert Label("y", positive_values=[1, "yes"]).positive_values == ("1", "yes")
  assert Label("y", positive_values="yes").positive_values == ("yes",)


def test_feature_column_defaults_to_its_name():
  assert Feature("x", "numeric").source == "x"
  assert Feature("x", "numeric", column="X col").source == "X col"
  assert Label("y", column="Y").source == "Y"
  assert FeatureConfig.from_dict(_config(
      features=[{"name": "x", "type": "numeric", "column": "x value"}])).columns == (
          "x value", "click")
