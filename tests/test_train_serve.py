"""Training and serving run the same normalization of raw values and one naming rule.

The same raw rows, with values padded by whitespace, in another case and marked missing
by `na_values`, go through the CSV input pipeline, `serving_default` (tf.Examples) and
`predict_features`, and give identical predictions.
"""

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import saved_model
from dcrnn_tf import serving
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.features import CsvFormat, Feature, FeatureConfig, Task
from dcrnn_tf.models import DCRNN

RAW = FeatureConfig(
    features=(Feature("workclass", "categorical"),
              Feature("city", "categorical", column="home city", lowercase=True),
              Feature("tags", "multi_categorical"),
              Feature("age", "numeric"),
              Feature("hours", "numeric", num_bins=2)),
    labels=("click",), tasks=(Task("ctr", "click"),),
    csv=CsvFormat(na_values=("?", "-1")))
HEADER = "workclass, home city, tags, age, hours, click\n"
# ", "-separated, as a plain split on "," leaves them: every value but the first padded.
ROWS = ["Private, Paris, a| b, 39, 40, 1",
        "State-gov, PARIS , ?, 50, -1, 0",
        "?, ?, b, ?, 20, 1",
        " Private ,  Lyon, a|?, -1, 60, 0",
        "Self-emp, lyon, , 28, ?, 1"]
# What the model sees of the same rows as a client sends them: the strings as a split
# on "," gives them, the numbers as floats (a "?" of a float column is NaN).
NAN = float("nan")
REQUEST = {
    "workclass": [r.split(",")[0] for r in ROWS],
    "city": [r.split(",")[1] for r in ROWS],
    "tags": [r.split(",")[2] for r in ROWS],
    "age": np.array([39, 50, NAN, -1, 28], np.float32),
    "hours": np.array([40, -1, 20, 60, NAN], np.float32),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("skew")
  path = tmp / "train.csv"
  path.write_text(HEADER + "\n".join(ROWS) + "\n")
  config = scan.prepare(RAW, scan.scan(str(path), RAW, learn=True)[1])
  model = DCRNN(config, shared_units=8, private_units=4, tower_units=(8,))
  features, _ = next(iter(pipeline.make_dataset(str(path), config, 8)))
  from_csv = {name: values.numpy() for name, values in model(features).items()}
  export_path = saved_model.export_saved_model(model, config, str(tmp / "export"))
  return {"config": config, "from_csv": from_csv, "loaded": tf.saved_model.load(export_path)}


def test_vocabularies_and_statistics_hold_normalized_values(served):
  features = {f.name: f for f in served["config"].features}
  assert features["workclass"].vocabulary == ("Private", "Self-emp", "State-gov")
  assert features["city"].vocabulary == ("lyon", "paris")
  assert features["tags"].vocabulary == ("a", "b")
  assert features["age"].mean == pytest.approx((39 + 50 + 28) / 3)  # "?" and -1 missing.
  assert features["hours"].boundaries == (40.0,)


def test_csv_rows_and_both_signatures_give_identical_predictions(served):
  config, loaded = served["config"], served["loaded"]
  for signature in serving.SIGNATURES:
    inputs = serving.signature_inputs(signature, REQUEST, config)
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    for name, expected in served["from_csv"].items():
      np.testing.assert_allclose(outputs[name].numpy(), expected, rtol=1e-6, err_msg=signature)


def test_padded_and_cased_values_are_the_values_themselves(served):
  """Row 0 written plainly and row 3's padded " Private " predict as the same values."""
  config, loaded = served["config"], served["loaded"]
  by_features = loaded.signatures[serving.PREDICT_FEATURES]
  plain = {"workclass": ["Private", "Private"], "city": ["paris", "lyon"],
           "tags": ["a|b", "a|"], "age": [39.0, NAN], "hours": [40.0, 60.0]}
  padded = {"workclass": [" Private", " Private "], "city": [" PARIS ", "  Lyon"],
            "tags": [" a | b ", " a | ? "], "age": [39.0, -1.0], "hours": [40.0, 60.0]}
  outputs = [by_features(**{k: tf.constant(v) for k, v in serving.signature_inputs(
      serving.PREDICT_FEATURES, rows, config).items()})["ctr"].numpy()
             for rows in (plain, padded)]
  np.testing.assert_array_equal(outputs[0], outputs[1])
  np.testing.assert_allclose(outputs[0], served["from_csv"]["ctr"][[0, 3]], rtol=1e-6)


def _example(**columns) -> bytes:
  example = tf.train.Example()
  for key, values in columns.items():
    field = example.features.feature[key]  # With no values: present, of no type.
    if not values:
      continue
    if isinstance(values[0], float):
      field.float_list.value.extend(values)
    else:
      field.bytes_list.value.extend(v.encode() for v in values)
  return example.SerializeToString()


GOOD = {"workclass": ["Private"], "home city": ["paris"], "tags": ["a"], "age": [39.0],
        "hours": [40.0]}


def test_examples_may_name_a_feature_by_its_column_or_its_name(served):
  by_examples = served["loaded"].signatures[serving.SERVING_DEFAULT]
  by_column = _example(**GOOD)
  by_name = _example(**{("city" if k == "home city" else k): v for k, v in GOOD.items()})
  with_label = _example(**GOOD, click=[])
  outputs = by_examples(examples=tf.constant([by_column, by_name, with_label]))["ctr"].numpy()
  assert outputs[0] == outputs[1] == outputs[2]


UNKNOWN_KEYS = ("serving_default: example 1 has unknown keys {} (known keys: `age`, `city`, "
                "`click`, `home city`, `hours`, `tags`, `workclass`)")


@pytest.mark.parametrize("columns, messages", [
    ({k: v for k, v in GOOD.items() if k != "age"},
     ("serving_default: example 1 lacks the feature `age` (key `age`; send a missing value "
      "as the key with no value, an empty string or NaN)",)),
    # Unknown keys are named in the order the example carries them, which protobuf's map
    # serialization does not fix.
    ({**GOOD, "colour": ["red"], "size": ["L"]},
     (UNKNOWN_KEYS.format("`colour`, `size`"), UNKNOWN_KEYS.format("`size`, `colour`"))),
    ({**GOOD, "city": ["lyon"]},
     ("serving_default: example 1 carries the feature `city` twice, as `home city` or "
      "`city`",)),
    ({**GOOD, "age": [39.0, 40.0]},
     ("serving_default: example 1 holds 2 values of the feature `age`, expected at most 1",)),
    ({**GOOD, "workclass": ["Private", "State-gov", "Never-worked"]},
     ("serving_default: example 1 holds 3 values of the feature `workclass`, expected at "
      "most 1",)),
])
def test_examples_with_missing_unknown_or_doubled_keys_are_refused(served, columns, messages):
  by_examples = served["loaded"].signatures[serving.SERVING_DEFAULT]
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    by_examples(examples=tf.constant([_example(**GOOD), _example(**columns)]))
  assert any(message in error.value.message for message in messages), error.value.message


def test_the_first_failing_check_of_the_first_failing_example_is_named(served):
  by_examples = served["loaded"].signatures[serving.SERVING_DEFAULT]
  no_age = _example(**{k: v for k, v in GOOD.items() if k != "age"})
  two_hours = _example(**{**GOOD, "hours": [1.0, 2.0]})
  unknown = _example(**GOOD, colour=["red"])
  cases = [
      # Unknown keys come first, whichever example carries them.
      ([two_hours, no_age, unknown], UNKNOWN_KEYS.format("`colour`").replace(
          "example 1", "example 2")),
      # Then the features in the config's order (`age` before `hours`), each example.
      ([two_hours, no_age], "serving_default: example 1 lacks the feature `age`"),
      ([_example(**GOOD), two_hours, two_hours],
       "serving_default: example 1 holds 2 values of the feature `hours`, expected at most 1"),
      # An example with no feature at all lacks the first one.
      ([_example(**GOOD), b""], "serving_default: example 1 lacks the feature `workclass`"),
  ]
  for examples, message in cases:
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
      by_examples(examples=tf.constant(examples))
    assert message in error.value.message, error.value.message


def test_a_request_that_is_no_example_fails_with_the_parser_error(served):
  by_examples = served["loaded"].signatures[serving.SERVING_DEFAULT]
  with pytest.raises(tf.errors.InvalidArgumentError, match="Could not parse example input"):
    by_examples(examples=tf.constant([_example(**GOOD), b"not a proto"]))


def test_a_multi_categorical_feature_takes_several_values(served):
  by_examples = served["loaded"].signatures[serving.SERVING_DEFAULT]
  outputs = by_examples(examples=tf.constant([_example(**{**GOOD, "tags": ["a", "b"]})]))
  assert outputs["ctr"].shape == [1]


def test_an_empty_batch_gets_empty_outputs_from_both_signatures(served):
  signatures = served["loaded"].signatures
  by_examples = signatures[serving.SERVING_DEFAULT](examples=tf.constant([], tf.string))
  by_features = signatures[serving.PREDICT_FEATURES](**{
      name: tf.zeros([0], spec.dtype)
      for name, spec in pipeline.feature_tensor_specs(served["config"]).items()})
  for outputs in (by_examples, by_features):
    assert sorted(outputs) == sorted(served["config"].output_names)
    assert all(values.shape == [0] for values in outputs.values())


def test_a_feature_present_without_a_value_is_missing(served):
  by_examples = served["loaded"].signatures[serving.SERVING_DEFAULT]
  empty = _example(**{**GOOD, "age": []})
  nan = _example(**{**GOOD, "age": [NAN]})
  outputs = by_examples(examples=tf.constant([empty, nan]))["ctr"].numpy()
  assert outputs[0] == outputs[1]
