"""Bad input, one test per case: `--bad_rows=fail` stops with the file, line and column;
`--bad_rows=skip` counts the row and the pipeline still reads every valid row."""

import collections
import dataclasses
import gzip
import json
import zlib

import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

import cli
from dcrnn_tf.data import pipeline, scan
from dcrnn_tf.features import CsvFormat, Feature, FeatureConfig, Task

CONFIG = FeatureConfig(
    features=(Feature("id", "categorical"),
              Feature("price", "numeric"),
              Feature("user", "categorical", dtype="int64")),
    labels=("click", "conversion"),
    tasks=(Task("ctr", "click"),
           Task("cvr", "conversion", depends_on="ctr", funnel_output="ctcvr")))
HEADER = "id,price,user,click,conversion"
ROWS = 6
BAD_ROW = 3  # 0-based data row: CSV line 5 (after the header), TFRecord record 4.


def _good_line(i):
  return f"r{i},{i * 0.5},{i % 3},{i % 2},{int(i % 4 == 1)}"


def _write_csv(path, bad_line):
  """ROWS rows with `bad_line` as data row BAD_ROW."""
  lines = [_good_line(i) if i != BAD_ROW else bad_line for i in range(ROWS)]
  path.write_text("\n".join([HEADER] + lines) + "\n")
  return str(path)


def _example(i, **overrides):
  """Row i as a tf.Example; `overrides` replace a column's feature (None: leave it out)."""
  columns = {"id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"r{i}".encode()])),
             "price": tf.train.Feature(float_list=tf.train.FloatList(value=[i * 0.5])),
             "user": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
             "click": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
             "conversion": tf.train.Feature(int64_list=tf.train.Int64List(
                 value=[int(i % 4 == 1)]))}
  columns.update(overrides)
  return tf.train.Example(features=tf.train.Features(
      feature={k: v for k, v in columns.items() if v is not None})).SerializeToString()


def _write_tfrecord(path, **overrides):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in range(ROWS):
      writer.write(_example(i, **overrides) if i == BAD_ROW else _example(i))
  return str(path)


def _ids_read(pattern, report):
  batches = pipeline.make_dataset(pattern, CONFIG, 4, skip_rows=report.skip_rows())
  return [v.decode() for features, _ in batches.as_numpy_iterator() for v in features["id"]]


def _check_fail(path, prefix, column_name, reason):
  with pytest.raises(scan.DataError) as error:
    scan.scan(path, CONFIG, bad_rows="fail")
  message = str(error.value)
  assert message == f"{path}:{prefix}: {reason} (use --bad_rows=skip to skip such rows)"
  if column_name:
    assert repr(column_name) in message


def _check_skip(path, line, column, kind, reason):
  report, _ = scan.scan(path, CONFIG, bad_rows="skip")
  assert report.bad_rows == [scan.BadRow(path, line, BAD_ROW, column, kind, reason)]
  assert (report.rows, report.valid_rows) == (ROWS, ROWS - 1)
  assert report.to_dict()["bad_rows_by_kind"] == {kind: 1}
  assert report.skip_rows() == {path: [BAD_ROW]}
  assert _ids_read(path, report) == [f"r{i}" for i in range(ROWS) if i != BAD_ROW]


CSV_CASES = {
    # name: (bad line, column number, column name, kind, reason)
    "too_few_fields": ("r3,1.5,0,1", None, None, "field_count",
                       "expected 5 fields, found 4"),
    "too_many_fields": ("r3,1.5,0,1,0,7", None, None, "field_count",
                        "expected 5 fields, found 6"),
    "unparseable_number": ("r3,1.5.1,0,1,0", 2, "price", "number",
                           "column 'price': cannot parse '1.5.1' as a number"),
    "label_outside_0_1": ("r3,1.5,0,2,0", 4, "click", "label_value",
                          "label column 'click': value '2' is outside {0, 1}"),
    "label_not_a_number": ("r3,1.5,0,yes,0", 4, "click", "label_value",
                           "label column 'click': value 'yes' is outside {0, 1}"),
    "missing_label": ("r3,1.5,0,1,", 5, "conversion", "missing_label",
                      "label column 'conversion' is missing"),
    "conversion_without_click": ("r3,1.5,0,0,1", 5, "conversion", "funnel",
                                 "column 'conversion': conversion without click ('click' "
                                 "is 0)"),
    "nan": ("r3,nan,0,1,0", 2, "price", "not_finite",
            "column 'price': NaN or infinite value 'nan' (leave the value empty to mark it "
            "missing)"),
    "inf": ("r3, -Infinity ,0,1,0", 2, "price", "not_finite",
            "column 'price': NaN or infinite value '-Infinity' (leave the value empty to "
            "mark it missing)"),
    "float32_overflow": ("r3,1e39,0,1,0", 2, "price", "not_finite",
                         "column 'price': '1e39' is infinite as a float32"),
    # Digits that Python's float() reads and tf.strings.to_number does not.
    "non_ascii_digits": ("r3,\uff11\uff12,0,1,0", 2, "price", "number",
                         "column 'price': cannot parse '\uff11\uff12' as a number"),
    # Python's csv reads `r"3` as it stands; TensorFlow's decode_csv refuses it.
    "stray_quote": ('r"3,1.5,0,1,0', 1, None, "quote",
                    "a quote inside the unquoted field 'r\"3' (quote the field and double "
                    'its quotes: "a""b")'),
    "quote_inside_a_quoted_field": ('r3,"1.5"x,0,1,0', 2, None, "quote",
                                    'a quote inside a quoted field must be doubled (write "" '
                                    'for ")'),
    "fields_in_quotes_counted": ('r3,"1,5",0,1', None, None, "field_count",
                                 "expected 5 fields, found 4"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_csv_fail(tmp_path, case):
  line, column, name, _, reason = CSV_CASES[case]
  prefix = f"5:{column}" if column else "5"
  _check_fail(_write_csv(tmp_path / "data.csv", line), prefix, name, reason)


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_csv_skip(tmp_path, case):
  line, column, _, kind, reason = CSV_CASES[case]
  _check_skip(_write_csv(tmp_path / "data.csv", line), 5, column, kind, reason)


def test_latin1_byte(tmp_path):
  path = tmp_path / "data.csv"
  lines = [_good_line(i).encode() for i in range(ROWS)]
  lines[BAD_ROW] = "r3,1.5,caf\xe9,1,0".encode("latin-1")
  path.write_bytes(b"\n".join([HEADER.encode()] + lines) + b"\n")
  reason = "byte 0xe9 is not UTF-8 text (a Latin-1 file? convert it to UTF-8)"
  _check_fail(str(path), "5:3", None, reason)
  _check_skip(str(path), 5, 3, "encoding", reason)


def test_quoted_field_with_a_line_break(tmp_path):
  """TensorFlow reads CSV a line at a time: both halves of the row are bad rows."""
  path = _write_csv(tmp_path / "data.csv", '"r\n3",1.5,0,1,0')
  first = ("a quoted field does not end on its line (TensorFlow reads CSV a line at a "
           "time: a field cannot hold a line break)")
  _check_fail(path, "5:1", None, first)
  report, _ = scan.scan(path, CONFIG, bad_rows="skip")
  assert [(b.line, b.row, b.column, b.kind) for b in report.bad_rows] == [
      (5, 3, 1, "quote"), (6, 4, 1, "quote")]
  assert (report.rows, report.valid_rows) == (ROWS + 1, ROWS - 1)
  assert _ids_read(path, report) == [f"r{i}" for i in range(ROWS) if i != BAD_ROW]


@pytest.mark.parametrize("header", [True, False])
def test_cr_only_line_endings(tmp_path, header):
  path = tmp_path / "data.csv"
  lines = ([HEADER] if header else []) + [_good_line(i) for i in range(ROWS)]
  path.write_bytes("\r".join(lines).encode() + b"\r")
  reason = ("a carriage return (\\r) inside the line: the file has CR-only (old Mac) line "
            "endings, which TensorFlow reads as one line; convert them to \\n")
  config = CONFIG if header else dataclasses.replace(
      CONFIG, csv=CsvFormat(header=False, columns=tuple(HEADER.split(","))))
  with pytest.raises(scan.DataError) as error:
    scan.scan(str(path), config, bad_rows="fail")
  if header:
    assert str(error.value) == f"{path}:1: {reason}."
  else:
    assert str(error.value) == f"{path}:1:5: {reason} (use --bad_rows=skip to skip such rows)"


def test_truncated_gzip_csv(tmp_path):
  text = "\n".join([HEADER] + [_good_line(i) for i in range(20000)]) + "\n"
  data = gzip.compress(text.encode(), mtime=0)
  path = tmp_path / "data.csv.gz"
  path.write_bytes(data[:len(data) // 2])
  intact_lines = zlib.decompressobj(wbits=31).decompress(data[:len(data) // 2]).count(b"\n")
  for bad_rows in ("fail", "skip"):
    with pytest.raises(scan.DataError) as error:
      scan.scan(str(path), CONFIG, bad_rows=bad_rows)
    line, message = str(error.value).split(": ", 1)
    assert line == f"{path}:{intact_lines + 1}"
    assert message.startswith("the GZIP data is truncated or corrupt (")
    assert message.endswith("); nothing from here on can be read.")


def test_truncated_tfrecord_names_the_broken_record(tmp_path):
  path = tmp_path / "data.tfrecord"
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in range(5000):  # More than one batch of the scan.
      writer.write(_example(i))
  path.write_bytes(path.read_bytes()[:-5])
  for bad_rows in ("fail", "skip"):
    with pytest.raises(scan.DataError) as error:
      scan.scan(str(path), CONFIG, bad_rows=bad_rows)
    assert str(error.value).startswith(
        f"{path}:5000: corrupted or truncated TFRecord: record 5000 cannot be read (")
    assert str(error.value).endswith("); the 4999 records before it are intact.")


@pytest.mark.parametrize("case", ["crlf", "bom_with_header", "bom_without_header",
                                  "quoted_fields", "spaces", "label_spellings"])
def test_rows_the_check_accepts_are_read_the_same_by_training(tmp_path, case):
  """What the scan accepts, the pipeline reads as the scan saw it."""
  ids = [f"r{i}" for i in range(ROWS)]
  lines = [f"{v},{i * 0.5},{i % 3},{i % 2},{int(i % 4 == 1)}" for i, v in enumerate(ids)]
  header, config = HEADER, CONFIG
  ending, prefix = "\n", ""
  if case == "crlf":
    ending = "\r\n"
  elif case.startswith("bom"):
    prefix = "\ufeff"
  if case == "bom_without_header":  # The raw census layout: a number first.
    header, config = None, dataclasses.replace(CONFIG, csv=CsvFormat(
        header=False, columns=("price", "id", "user", "click", "conversion")))
    lines = [f"{i * 0.5},{v},{i % 3},{i % 2},{int(i % 4 == 1)}" for i, v in enumerate(ids)]
  if case == "quoted_fields":
    ids[1], ids[2] = "r,1", 'r"2'
    lines[1] = '"r,1",0.5,1,1,1'
    lines[2] = '"r""2",1.0,2,0,0'
  if case == "spaces":
    lines[1] = "  r1 ,\t0.5 , 1,1 ,1\t"
  if case == "label_spellings":  # A 0/1 label is any number equal to 0 or 1.
    for i, (click, conversion) in enumerate([("-0", "0.0"), ("1.0", "1e0"), ("0.00", "-0.0"),
                                             ("+1", "0")]):
      lines[i] = f"{ids[i]},{i * 0.5},{i % 3},{click},{conversion}"
  path = tmp_path / "data.csv"
  path.write_bytes((prefix + ending.join(([header] if header else []) + lines)
                    + ending).encode())
  report, statistics = scan.scan(str(path), config, bad_rows="fail", learn=True)
  assert (report.rows, report.bad_rows) == (ROWS, [])
  assert sorted(statistics.counts["id"]) == sorted(ids)
  batches = list(pipeline.make_dataset(str(path), config, ROWS).as_numpy_iterator())
  features, labels = batches[0]
  # Categorical values reach the model as written; its encoder strips them, as serving's.
  assert [v.decode().strip() for v in features["id"]] == ids
  np.testing.assert_array_equal(features["price"], np.arange(ROWS) * 0.5)
  np.testing.assert_array_equal(labels["click"], np.arange(ROWS) % 2)


def test_blank_csv_lines_hold_no_row(tmp_path):
  path = tmp_path / "data.csv"
  lines = [_good_line(i) for i in range(ROWS)]
  path.write_text("\n".join([HEADER] + lines[:2] + [""] + lines[2:]) + "\n\n")
  report, _ = scan.scan(str(path), CONFIG, bad_rows="fail")
  assert (report.rows, report.bad_rows) == (ROWS, [])
  assert _ids_read(str(path), report) == [f"r{i}" for i in range(ROWS)]


def _floats(*values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _ints(*values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


TFRECORD_CASES = {
    # name: (overrides of the bad record, column name, kind, reason)
    "label_outside_0_1": ({"click": _ints(2)}, "click", "label_value",
                          "label column 'click': value 2 is outside {0, 1}"),
    "missing_label": ({"click": None}, "click", "missing_label",
                      "label column 'click' is missing"),
    "conversion_without_click": ({"click": _ints(0), "conversion": _ints(1)}, "conversion",
                                 "funnel",
                                 "column 'conversion': conversion without click ('click' "
                                 "is 0)"),
    "nan": ({"price": _floats(float("nan"))}, "price", "not_finite",
            "column 'price': NaN or infinite value nan"),
    "inf": ({"price": _floats(float("-inf"))}, "price", "not_finite",
            "column 'price': NaN or infinite value -inf"),
    "float_for_int64": ({"user": _floats(1.0)}, "user", "value_type",
                        "column 'user': expected int64_list, found float_list"),
    "int64_for_string": ({"id": _ints(3)}, "id", "value_type",
                         "column 'id': expected bytes_list, found int64_list"),
    "float_label": ({"click": _floats(1.0)}, "click", "value_type",
                    "column 'click': expected int64_list, found float_list"),
    "two_numbers": ({"price": _floats(1.0, 2.0)}, "price", "multiple_values",
                    "column 'price' holds 2 values, expected 1"),
    "two_categories": ({"user": _ints(1, 2, 3)}, "user", "multiple_values",
                       "column 'user' holds 3 values, expected 1"),
    "two_labels": ({"click": _ints(0, 1)}, "click", "multiple_values",
                   "column 'click' holds 2 values, expected 1"),
}


@pytest.mark.parametrize("case", sorted(TFRECORD_CASES))
def test_tfrecord_fail(tmp_path, case):
  overrides, name, _, reason = TFRECORD_CASES[case]
  _check_fail(_write_tfrecord(tmp_path / "data.tfrecord", **overrides), "4", name, reason)


@pytest.mark.parametrize("case", sorted(TFRECORD_CASES))
def test_tfrecord_skip(tmp_path, case):
  overrides, _, kind, reason = TFRECORD_CASES[case]
  _check_skip(_write_tfrecord(tmp_path / "data.tfrecord", **overrides), 4, None, kind, reason)


def test_tfrecord_bad_rows_in_order_across_kinds(tmp_path):
  path = str(tmp_path / "data.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for i in range(8):
      overrides = {1: {"user": _floats(1.0)}, 2: {"price": _floats(float("nan"))},
                   6: {"id": _ints(1)}}.get(i, {})
      writer.write(_example(i, **overrides))
  report, _ = scan.scan(path, CONFIG, bad_rows="skip")
  assert [(b.line, b.kind) for b in report.bad_rows] == [
      (2, "value_type"), (3, "not_finite"), (7, "value_type")]
  assert _ids_read(path, report) == ["r0", "r3", "r4", "r5", "r7"]
  with pytest.raises(scan.DataError, match=f"^{path}:2: column 'user'"):
    scan.scan(path, CONFIG)  # The first bad row.


@pytest.mark.parametrize("empty", ["no_bytes.csv", "header_only.csv", "no_bytes.csv.gz",
                                   "no_records.tfrecord"])
def test_empty_file_fail(tmp_path, empty):
  path = _write_empty(tmp_path, empty)
  with pytest.raises(scan.DataError) as error:
    scan.scan(path, CONFIG, bad_rows="fail")
  assert str(error.value) == f"{path}:1: the file holds no data rows."


@pytest.mark.parametrize("empty", ["no_bytes.csv", "header_only.csv", "no_bytes.csv.gz",
                                   "no_records.tfrecord"])
def test_empty_file_skip(tmp_path, empty):
  path = _write_empty(tmp_path, empty)
  suffix = ".tfrecord" if empty.endswith(".tfrecord") else ".csv"
  if suffix == ".csv":
    (tmp_path / "full.csv").write_text("\n".join([HEADER] + [_good_line(i) for i in range(3)]))
  else:
    with tf.io.TFRecordWriter(str(tmp_path / "full.tfrecord")) as writer:
      for i in range(3):
        writer.write(_example(i))
  pattern = f"{path},{tmp_path}/full{suffix}"
  report, _ = scan.scan(pattern, CONFIG, bad_rows="skip")
  assert report.empty_files == [path]
  assert (report.rows, report.bad_rows) == (3, [])
  assert sorted(_ids_read(pattern, report)) == ["r0", "r1", "r2"]
  # Only empty files: no valid row at all.
  with pytest.raises(scan.DataError, match=r"No valid data rows in .* \(0 rows read, 0 bad\)"):
    scan.scan(path, CONFIG, bad_rows="skip")


def _write_empty(tmp_path, name):
  path = tmp_path / name
  if name == "header_only.csv":
    path.write_text(HEADER + "\n")
  elif name.endswith(".gz"):
    with gzip.open(path, "wb"):
      pass
  else:
    path.write_bytes(b"")
  return str(path)


@pytest.mark.parametrize("bad_rows", ["fail", "skip"])
def test_missing_file(tmp_path, bad_rows):
  pattern = str(tmp_path / "nothing-*.csv")
  with pytest.raises(FileNotFoundError) as error:
    scan.scan(pattern, CONFIG, bad_rows=bad_rows)
  assert str(error.value) == f"No file matches {pattern!r}."
  good = _write_csv(tmp_path / "good.csv", _good_line(BAD_ROW))
  with pytest.raises(FileNotFoundError, match="nothing-"):
    scan.scan(f"{good},{pattern}", CONFIG, bad_rows=bad_rows)


@pytest.mark.parametrize("bad_rows", ["fail", "skip"])
def test_column_missing_from_the_header(tmp_path, bad_rows):
  path = tmp_path / "data.csv"
  path.write_text("id,user,click,conversion\nr0,1,0,0\n")
  with pytest.raises(ValueError) as error:
    scan.scan(str(path), CONFIG, bad_rows=bad_rows)
  assert str(error.value) == f"{path}:1: feature column 'price' is missing."


@pytest.mark.parametrize("bad_rows", ["fail", "skip"])
def test_unknown_column_in_the_header(tmp_path, bad_rows):
  path = tmp_path / "data.csv"
  path.write_text("id,price,user,click,conversion,colour\nr0,1,1,0,0,red\n")
  with pytest.raises(ValueError) as error:
    scan.scan(str(path), CONFIG, bad_rows=bad_rows)
  assert str(error.value) == (f"{path}:1:6: column 'colour' is not a feature, label or "
                              "ignored column of the feature config.")


def test_several_bad_rows_in_several_files(tmp_path):
  first = _write_csv(tmp_path / "a.csv", "r3,x,0,1,0")
  (tmp_path / "c.csv").write_text("\n".join(
      [HEADER, "r0,1,0,0,0", "r1,2,0,3,0", "r2,3,0,1,1", "r3,,,1,1"]))
  report, _ = scan.scan(str(tmp_path / "*.csv"), CONFIG, bad_rows="skip")
  assert report.skip_rows() == {first: [BAD_ROW], str(tmp_path / "c.csv"): [1]}
  assert sorted(_ids_read(str(tmp_path / "*.csv"), report)) == sorted(
      [f"r{i}" for i in range(ROWS) if i != BAD_ROW] + ["r0", "r2", "r3"])


TINY_FLAGS = ["--epochs=1", "--batch_size=64", "--shared_units=4", "--private_units=2",
              "--cross_dim=8", "--tower_units=8", "--verbose=0"]


@pytest.mark.slow
def test_command_line(tmp_path):
  """`python -m dcrnn_tf.main` on 300 CSV rows, 3 of them bad."""
  rng = np.random.default_rng(0)
  lines = []
  for i in range(300):
    click = int(rng.random() < 0.3)
    lines.append(f"u{rng.integers(0, 20)},{rng.lognormal():.4f},{click},"
                 f"{click * int(rng.random() < 0.5)}")
  lines[10] = "u1,cheap,0,0"  # Line 12: an unparseable number.
  lines[100] = "u2,1.5,7,0"  # Line 102: a label outside {0, 1}.
  lines[200] = "u3,2.5,0,1"  # Line 202: a conversion without a click.
  data = tmp_path / "data.csv"
  data.write_text("user,price,click,conversion\n" + "\n".join(lines) + "\n")
  config = tmp_path / "features.json"
  config.write_text(json.dumps({
      "features": [{"name": "user", "type": "categorical"},
                   {"name": "price", "type": "numeric", "log": True}],
      "labels": ["click", "conversion"],
      "tasks": [{"name": "ctr", "label": "click"},
                {"name": "cvr", "label": "conversion", "depends_on": "ctr",
                 "funnel_output": "ctcvr"}]}))

  def flags(bad_rows):
    return [f"--feature_config={config}", f"--train_path={data}", "--split=80,10,10",
            f"--model_dir={tmp_path / bad_rows}", f"--export_dir={tmp_path}/export",
            f"--bad_rows={bad_rows}"] + TINY_FLAGS

  failed = cli.in_process(*flags("fail"))
  assert failed.returncode == 2
  assert failed.stderr.splitlines()[-1] == (
      f"dcrnn_tf: error: {data}:12:2: column 'price': cannot parse 'cheap' as a number (use "
      "--bad_rows=skip to skip such rows)")
  assert not (tmp_path / "fail" / "feature_config.json").exists()

  assert cli.in_process(*flags("skip")).returncode == 0
  report = json.loads((tmp_path / "skip" / "data_report.json").read_text())
  assert report["bad_rows_policy"] == "skip"
  roles = [report[role] for role in ("train", "validation", "test")]
  # The split's parts share the rows out, the bad ones among them.
  assert sum(r["rows"] for r in roles) == 300
  assert sum(r["valid_rows"] for r in roles) == 297
  assert sum((collections.Counter(r["bad_rows_by_kind"]) for r in roles),
             collections.Counter()) == {"number": 1, "label_value": 1, "funnel": 1}
  assert sorted(line.split(": ")[0] for r in roles for line in r["first_bad_rows"]) == [
      f"{data}:102:3", f"{data}:12:2", f"{data}:202:4"]
  metrics = json.loads((tmp_path / "skip" / "eval_metrics.json").read_text())
  assert metrics["ctr"]["count"] == report["test"]["valid_rows"]

  # Predictions: one per valid row, each with its file and line; the skipped row listed.
  output = tmp_path / "predictions.csv"
  assert cli.in_process("--mode=predict", f"--predict_path={data}",
                        f"--model_dir={tmp_path / 'skip'}", "--bad_rows=skip",
                        f"--predict_output={output}").returncode == 0
  predictions = pd.read_csv(output)
  assert list(predictions.columns) == ["file", "line", "ctr", "cvr", "ctcvr"]
  # Without labels only the unparseable number is bad.
  assert predictions["line"].tolist() == [line for line in range(2, 302) if line != 12]
  assert (predictions["file"] == str(data)).all()
  assert pd.read_csv(tmp_path / "predictions.skipped.csv").to_dict("records") == [
      {"file": str(data), "line": 12, "column": 2, "kind": "number",
       "reason": "column 'price': cannot parse 'cheap' as a number"}]
