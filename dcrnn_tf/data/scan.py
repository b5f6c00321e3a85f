"""One pass over data files: check every row, count bad ones, learn feature statistics.

`scan` accepts exactly the rows that training reads: CSV lines are split as
`tf.data.TextLineDataset` splits them and into fields by `tf.io.decode_csv`, numbers
must be what `tf.strings.to_number` reads (ASCII digits), and TFRecord records are parsed
by `tf.io.parse_example`, the input pipeline's own parsers. A bad row is reported with
its file, line (for TFRecord: record number) and column. With `bad_rows="fail"` the first
bad row raises a `DataError`; with `"skip"` every bad row is recorded in the returned
`ScanReport`, whose `skip_rows()` tells the input pipeline which rows to leave out.
Nothing valid is dropped.

With `learn=True` the same pass counts categorical values and collects numeric values,
and `prepare` turns that into a prepared `FeatureConfig` (vocabularies, means and
standard deviations, quantile boundaries).
"""

import collections
import dataclasses
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.data import pipeline
from dcrnn_tf.data.split import Split
from dcrnn_tf.errors import ConfigError, DataError
from dcrnn_tf.features import LOG1P, MULTI_CATEGORICAL, Feature, FeatureConfig, Label
from dcrnn_tf.layers.feature_encoder import normalize_numbers, normalize_strings

BAD_ROW_POLICIES = ("fail", "skip")
# ASCII digits only: what `tf.strings.to_number`, which training uses, reads.
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_NOT_FINITE = re.compile(r"^[+-]?(nan|inf|infinity)$", re.IGNORECASE)
# Magnitudes from here on round to infinity in float32, the type the model reads.
_FLOAT32_OVERFLOW = 2.0 ** 128 - 2.0 ** 103
_MAX_LISTED = 100
_SCAN_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class BadRow:
  """A row that cannot be used.

  Attributes:
    path: The file.
    line: 1-based line number (CSV; the header is line 1) or record number (TFRecord).
    row: 0-based data row number within the file (what the pipeline counts).
    column: 1-based column number (CSV) or None.
    kind: Short name of the problem (`field_count`, `quote`, `line_ending`, `encoding`,
      `number`, `not_finite`, `missing_label`, `label_value`, `funnel`,
      `missing_weight`, `weight_value`, `value_type`, `multiple_values`, `not_example`).
    reason: What is wrong, naming the column.
  """

  path: str
  line: int
  row: int
  column: Optional[int]
  kind: str
  reason: str

  def __str__(self) -> str:
    where = f"{self.path}:{self.line}" + (f":{self.column}" if self.column else "")
    return f"{where}: {self.reason}"


@dataclasses.dataclass
class ScanReport:
  """What a scan found.

  Attributes:
    files: The files read.
    rows: Data rows read (in the split, when there is one).
    bad_rows: The bad rows (with `bad_rows="skip"`).
    empty_files: Files without data rows (with `bad_rows="skip"`).
    positions: With `scan(positions=True)`, the line (CSV) or record number
      (TFRecord) of every valid row, per file, in the order the input pipeline reads
      them; else None.
  """

  files: List[str]
  rows: int = 0
  bad_rows: List[BadRow] = dataclasses.field(default_factory=list)
  empty_files: List[str] = dataclasses.field(default_factory=list)
  positions: Optional[Dict[str, List[int]]] = None

  def add_position(self, path: str, line: int) -> None:
    if self.positions is not None:
      self.positions.setdefault(path, []).append(line)

  @property
  def valid_rows(self) -> int:
    return self.rows - len(self.bad_rows)

  def skip_rows(self) -> Dict[str, List[int]]:
    """Per file, the data row numbers the pipeline must leave out."""
    out = collections.defaultdict(list)
    for bad in self.bad_rows:
      out[bad.path].append(bad.row)
    return dict(out)

  def to_dict(self) -> dict:
    return {
        "files": self.files,
        "rows": self.rows,
        "valid_rows": self.valid_rows,
        "bad_rows": len(self.bad_rows),
        "bad_rows_by_kind": dict(collections.Counter(b.kind for b in self.bad_rows)),
        "empty_files": self.empty_files,
        "first_bad_rows": [str(b) for b in self.bad_rows[:_MAX_LISTED]],
    }


class _Statistics:
  """Value counts of categorical features and values of numeric ones, normalized as the
  model normalizes them (`normalize_strings`, `normalize_numbers`)."""

  def __init__(self, config: FeatureConfig):
    self.na_values = config.csv.na_values
    self.counts = {f.name: collections.Counter() for f in config.features if f.is_categorical}
    self.values = {f.name: [] for f in config.features if not f.is_categorical}
    self.chunks = {f.name: [] for f in config.features if not f.is_categorical}

  def add(self, feature: Feature, value) -> None:
    """Adds one row's value (a raw string, or a float)."""
    if feature.is_categorical:
      if feature.type == MULTI_CATEGORICAL:
        self.counts[feature.name].update(value.split(feature.delimiter))
      else:
        self.counts[feature.name][value] += 1
    elif not math.isnan(value):
      self.values[feature.name].append(value)

  def add_columns(self, columns: Dict[str, tf.RaggedTensor], config: FeatureConfig,
                  valid: np.ndarray) -> None:
    """Adds the valid rows of a batch of parsed `tf.Example` columns."""
    for feature in config.features:
      values = columns[feature.source]
      if feature.is_categorical:
        # Masked in numpy: tf.ragged.boolean_mask is slow eagerly.
        flat = values.flat_values.numpy()[np.repeat(valid, values.row_lengths().numpy())]
        if feature.type == MULTI_CATEGORICAL and flat.dtype == object:
          flat = tf.strings.split(flat, feature.delimiter).flat_values.numpy()
        tokens, counts = np.unique(flat, return_counts=True)
        self.counts[feature.name].update(
            {t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t): int(c)
             for t, c in zip(tokens, counts)})
      else:
        numbers = pipeline.first_values(values, np.nan).numpy()[valid]
        self.chunks[feature.name].append(numbers[~np.isnan(numbers)])

  def categorical_counts(self, feature: Feature) -> collections.Counter:
    """The counts of the feature's values as the model looks them up (missing left out)."""
    raw = self.counts[feature.name]
    if not raw:
      return collections.Counter()
    normalized = normalize_strings(tf.constant(list(raw)), feature.lowercase,
                                   self.na_values).numpy()
    counts = collections.Counter()
    for value, count in zip(normalized, raw.values()):
      if value:
        counts[value.decode("utf-8", "replace")] += count
    return counts

  def numeric_values(self, feature: Feature) -> np.ndarray:
    """The feature's values as the model reads them (float32, missing left out),
    log-transformed if `log`."""
    values = np.concatenate([np.asarray(self.values[feature.name], np.float32)]
                            + self.chunks[feature.name])
    values = normalize_numbers(tf.constant(values), self.na_values).numpy()
    values = values[~np.isnan(values)].astype(np.float64)
    return np.sign(values) * np.log1p(np.abs(values)) if feature.log else values


class _RowChecker:
  """Checks the values of one row, given as a mapping column → raw value."""

  def __init__(self, config: FeatureConfig, with_labels: bool, missing: Sequence[str]):
    self.config = config
    self.with_labels = with_labels
    self.missing = set(missing)
    self.regression = _regression_labels(config)

  def features(self, get) -> Tuple[Optional[Tuple[str, str, str]], list]:
    """((column, kind, reason) of the first problem or None, parsed feature values)."""
    values = []
    for feature in self.config.features:
      raw = get(feature.source)
      if feature.is_categorical:
        values.append(raw)
        continue
      if raw in self.missing:
        number = float("nan")
      elif _NUMBER.match(raw):
        number = float(raw)
      elif _NOT_FINITE.match(raw):
        return (feature.source, "not_finite", f"column {feature.source!r}: NaN or infinite "
                f"value {raw!r} (leave the value empty to mark it missing)"), values
      else:
        return (feature.source, "number",
                f"column {feature.source!r}: cannot parse {raw!r} as a number"), values
      if abs(number) >= _FLOAT32_OVERFLOW:
        return (feature.source, "not_finite", f"column {feature.source!r}: {raw!r} is "
                "infinite as a float32"), values
      values.append(number)
    return None, values

  def labels(self, get) -> Optional[Tuple[str, str, str]]:
    """(column, kind, reason) of the first label problem, or None."""
    if not self.with_labels:
      return None
    values = {}
    for label in self.config.labels:
      raw = get(label.source)
      if raw in self.missing:
        return label.source, "missing_label", f"label column {label.source!r} is missing"
      if label.name in self.regression:
        number = float(raw) if _NUMBER.match(raw) else math.nan
        problem = _regression_label_problem(label, self.regression[label.name], number,
                                            repr(raw))
        if problem:
          return label.source, "label_value", problem
        values[label.name] = number
      elif label.positive_values:
        values[label.name] = int(raw in label.positive_values)
      elif _NUMBER.match(raw) and float(raw) in (0.0, 1.0):
        # A 0/1 label is any number equal to 0 or 1, as training reads it (`1.0`, `-0`).
        values[label.name] = int(float(raw))
      else:
        return label.source, "label_value", (f"label column {label.source!r}: value "
                                             f"{raw!r} is outside {{0, 1}}")
    for parent, stage in self.config.funnels():
      if values[stage.name] == 1 and values[parent.name] == 0:
        return stage.source, "funnel", (f"column {stage.source!r}: {stage.name} without "
                                        f"{parent.name} ({parent.source!r} is 0)")
    weight = self.config.weight
    if weight is not None:
      raw = get(weight)
      if raw in self.missing:
        return weight, "missing_weight", f"weight column {weight!r} is missing"
      problem = _weight_problem(weight, float(raw) if _NUMBER.match(raw) else math.nan,
                                repr(raw))
      if problem:
        return weight, "weight_value", problem
    return None


def scan(file_pattern: str,
         config: FeatureConfig,
         *,
         data_format: str = "auto",
         with_labels: bool = True,
         bad_rows: str = "fail",
         split: Optional[Split] = None,
         learn: bool = False,
         positions: bool = False) -> Tuple[ScanReport, Optional[_Statistics]]:
  """Checks every row of the files, and optionally learns feature statistics.

  Args:
    file_pattern: A glob or comma-separated globs.
    config: The feature config.
    data_format: `"auto"`, `"csv"` or `"tfrecord"`.
    with_labels: Whether rows must carry valid labels.
    bad_rows: `"fail"` (raise on the first bad row or empty file) or `"skip"` (record).
    split: Only rows of this part count (and are learned from).
    learn: Whether to collect statistics for `prepare`.
    positions: Whether to list the position of every valid row (`ScanReport.positions`).

  Returns:
    The report, and the statistics (None unless `learn`).

  Raises:
    DataError: On a bad row or empty file (with `"fail"`), or when no valid row is left.
    MissingFileError: If a glob matches no file.
    DataError: On a CSV header that does not fit the config, a truncated GZIP file or a
      corrupted TFRecord file (in both modes).
  """
  if bad_rows not in BAD_ROW_POLICIES:
    raise ValueError(f"bad_rows must be one of {BAD_ROW_POLICIES}, got {bad_rows!r}.")
  files = pipeline.list_files(file_pattern)
  data_format = pipeline.data_format_of(files, data_format)
  report = ScanReport(files=files, positions={} if positions else None)
  statistics = _Statistics(config) if learn else None
  checker = _RowChecker(config, with_labels, [""] + list(config.csv.na_values))
  read = _scan_csv if data_format == pipeline.CSV else _scan_tfrecord
  for index, path in enumerate(files):
    rows_before = report.rows
    for bad in read(path, index, config, checker, report, statistics, split, with_labels):
      if bad_rows == "fail":
        raise DataError(f"{bad} (use --bad_rows=skip to skip such rows)")
      report.bad_rows.append(bad)
    if report.rows == rows_before and split is None:
      if bad_rows == "fail":
        raise DataError(f"{path}:1: the file holds no data rows.")
      report.empty_files.append(path)
  if report.valid_rows == 0:
    of = f" in {split}" if split is not None else ""
    raise DataError(f"No valid data rows in {file_pattern!r}{of} ({report.rows} rows read, "
                    f"{len(report.bad_rows)} bad).")
  return report, statistics


def _scan_csv(path, index, config, checker, report, statistics, split, with_labels):
  """Reads the lines as the input pipeline does (`pipeline.read_lines`, `csv_line`) and
  splits them into fields with TensorFlow's own `decode_csv`, so that a row the scan
  accepts is a row training reads."""
  if config.csv.header and pipeline.is_empty_text(path):
    return  # Not even a header: an empty file.
  columns = pipeline.csv_columns([path], config, with_labels)
  first_line = 2 if config.csv.header else 1
  selected = _selected_rows(split, index)
  lines = pipeline.read_lines(path)
  if config.csv.header:
    next(lines, None)
  batch = []
  for row_number, raw in enumerate(lines):
    line = pipeline.csv_line(raw, first=row_number == 0 and not config.csv.header)
    if not line or (selected is not None and not selected(row_number)):
      continue  # A blank line holds no row.
    report.rows += 1
    batch.append(_CsvLine(path, first_line + row_number, row_number, raw, line))
    if len(batch) == _SCAN_BATCH:
      yield from _check_csv_lines(batch, columns, config, checker, report, statistics)
      batch = []
  yield from _check_csv_lines(batch, columns, config, checker, report, statistics)


@dataclasses.dataclass(frozen=True)
class _CsvLine:
  path: str
  line: int
  row: int
  raw: bytes  # As in the file.
  text: bytes  # As TensorFlow reads it (see `pipeline.csv_line`).

  def bad(self, column, kind, reason) -> BadRow:
    return BadRow(self.path, self.line, self.row, column, kind, reason)


def _check_csv_lines(lines: List[_CsvLine], columns, config, checker, report, statistics):
  """The bad rows of a batch of lines; the valid ones go into the statistics and the
  report's positions."""
  delimiter = config.csv.delimiter
  bad = {}
  for i, line in enumerate(lines):
    if pipeline.has_inner_carriage_return(line.raw):
      bad[i] = line.bad(line.raw[:line.raw.index(b"\r")].count(delimiter.encode()) + 1,
                        "line_ending", pipeline.CARRIAGE_RETURN)
      continue
    try:
      line.text.decode("utf-8")
    except UnicodeDecodeError as e:
      bad[i] = line.bad(line.text[:e.start].count(delimiter.encode()) + 1, "encoding",
                        pipeline.not_utf8(line.text, e))
  good = [i for i in range(len(lines)) if i not in bad]
  fields = _decode_csv([lines[i].text for i in good], len(columns), delimiter)
  if fields is None:  # Some line does not parse: find which, one by one.
    parsed = []
    for i in good:
      line_fields = _decode_csv([lines[i].text], len(columns), delimiter)
      if line_fields is None:
        bad[i] = lines[i].bad(*_csv_syntax_problem(lines[i].text.decode("utf-8"),
                                                   delimiter, len(columns)))
      else:
        parsed.append((i, line_fields))
    good = [i for i, _ in parsed]
    fields = [[f for _, line_fields in parsed for f in line_fields[c]]
              for c in range(len(columns))]
  position = {name: c for c, name in enumerate(columns)}
  for j, i in enumerate(good):
    line = lines[i]
    get = lambda name, j=j: fields[position[name]][j].decode("utf-8").strip(
        pipeline.ASCII_WHITESPACE)
    problem, values = checker.features(get)
    problem = problem or checker.labels(get)
    if problem:
      bad[i] = line.bad(position[problem[0]] + 1, *problem[1:])
      continue
    report.add_position(line.path, line.line)
    if statistics is not None:
      for feature, value in zip(config.features, values):
        statistics.add(feature, value)
  yield from (bad[i] for i in sorted(bad))


def _decode_csv(lines: List[bytes], width: int, delimiter: str) -> Optional[List[list]]:
  """Each column's fields of the lines, as `tf.io.decode_csv` reads them (the input
  pipeline's parser), or None if some line does not parse."""
  if not lines:
    return [[] for _ in range(width)]
  try:
    columns = tf.io.decode_csv(tf.constant(lines, tf.string), [""] * width,
                               field_delim=delimiter)
  except tf.errors.InvalidArgumentError:
    return None
  return [column.numpy().tolist() for column in columns]


def _csv_syntax_problem(text: str, delimiter: str, width: int):
  """(column, kind, reason) of a line that `decode_csv` refuses, found the way it reads
  a line: a field that starts with a quote is quoted up to a quote followed by the
  delimiter or the line's end (a doubled quote stands for one); any other field may
  hold no quote."""
  column, i = 1, 0
  while True:
    if text[i:i + 1] == '"':
      i += 1
      while True:
        end = text.find('"', i)
        if end < 0:
          return column, "quote", ("a quoted field does not end on its line (TensorFlow "
                                   "reads CSV a line at a time: a field cannot hold a line "
                                   "break)")
        if text[end + 1:end + 2] == '"':
          i = end + 2
          continue
        i = end + 1
        if i < len(text) and text[i] != delimiter:
          return column, "quote", ("a quote inside a quoted field must be doubled "
                                   '(write "" for ")')
        break
    else:
      end = text.find(delimiter, i)
      field = text[i:] if end < 0 else text[i:end]
      if '"' in field:
        return column, "quote", (f"a quote inside the unquoted field {field!r} (quote the "
                                 'field and double its quotes: "a""b")')
      i = len(text) if end < 0 else end
    if i >= len(text):
      break
    i += 1  # The delimiter.
    column += 1
  return None, "field_count", f"expected {width} fields, found {column}"


def _scan_tfrecord(path, index, config, checker, report, statistics, split, with_labels):
  """Parses records in batches with TensorFlow and checks the values with numpy; a
  batch that does not parse is parsed record by record to find the bad ones."""
  spec = pipeline.example_feature_spec(config, with_labels)
  compression = pipeline.compression_of(path)
  batches = tf.data.TFRecordDataset(path, compression).batch(_SCAN_BATCH)
  first_row = 0
  iterator = iter(batches)
  while True:
    try:
      records = next(iterator).numpy()
    except StopIteration:
      return
    except tf.errors.DataLossError as e:
      record = first_row + _intact_records(path, compression, first_row) + 1
      raise DataError(f"{path}:{record}: corrupted or truncated TFRecord: record {record} "
                      f"cannot be read ({e.message.split(chr(10))[0]}); the {record - 1} "
                      "records before it are intact.") from e
    rows = np.arange(first_row, first_row + len(records))
    first_row += len(records)
    if split is not None:
      keep = split.selects_np(index, rows)
      records, rows = records[keep], rows[keep]
    report.rows += len(records)
    good = np.ones(len(records), dtype=bool)
    bad = []
    columns = _parse(records, spec)
    if columns is None:
      for i, record in enumerate(records):
        if _parse(records[i:i + 1], spec) is None:
          good[i] = False
          bad.append(BadRow(path, int(rows[i]) + 1, int(rows[i]), None,
                            *_record_problem(record, spec)))
      columns = _parse(records[good], spec) if good.any() else None
    if columns is not None:
      parsed_rows = rows[good]
      valid = np.ones(len(parsed_rows), dtype=bool)
      for i, kind, reason in _value_problems(columns, config, with_labels):
        valid[i] = False
        bad.append(BadRow(path, int(parsed_rows[i]) + 1, int(parsed_rows[i]), None, kind,
                          reason))
      if statistics is not None:
        statistics.add_columns(columns, config, valid)
      for row in parsed_rows[valid]:
        report.add_position(path, int(row) + 1)
    yield from sorted(bad, key=lambda b: b.row)


def _intact_records(path: str, compression: str, start: int) -> int:
  """How many records from record `start` (0-based) on read before the data breaks."""
  count = 0
  try:
    for _ in tf.data.TFRecordDataset(path, compression).skip(start):
      count += 1
  except tf.errors.DataLossError:
    pass
  return count


def _regression_labels(config: FeatureConfig) -> Dict[str, bool]:
  """The regression tasks' labels, each with whether its task trains on `log1p` of it
  (so it must not be negative)."""
  return {task.label: task.transform == LOG1P for task in config.tasks if task.is_regression}


def _regression_label_problem(label: Label, log1p: bool, number: float,
                              shown: str) -> Optional[str]:
  """What is wrong with `number`, the value (`shown`) of a regression label, or None."""
  if not abs(number) < _FLOAT32_OVERFLOW:  # NaN too.
    return f"label column {label.source!r}: value {shown} is not a finite number"
  if number < 0 and log1p:
    return (f"label column {label.source!r}: value {shown} is negative, and its task "
            "trains on log1p(label)")
  return None


def _weight_problem(column: str, number: float, shown: str) -> Optional[str]:
  """What is wrong with `number`, the value (`shown`) of the weight column, or None."""
  if not 0 <= number < _FLOAT32_OVERFLOW:  # NaN too.
    return f"weight column {column!r}: value {shown} is not a finite number >= 0"
  return None


def _value_problems(columns, config: FeatureConfig, with_labels: bool):
  """(row, kind, reason) of the first value problem of each row of parsed columns."""
  problems = {}

  def flag(mask, kind, describe):
    for i in np.flatnonzero(mask):
      problems.setdefault(int(i), (kind, describe(int(i))))

  single = [f.source for f in config.features if f.type != MULTI_CATEGORICAL]
  if with_labels:
    single += [label.source for label in config.labels]
    single += [config.weight] if config.weight is not None else []
  for column in single:
    lengths = columns[column].row_lengths().numpy()
    flag(lengths > 1, "multiple_values",
         lambda i, c=column, n=lengths: f"column {c!r} holds {n[i]} values, expected 1")
  for feature in config.features:
    if feature.is_categorical:
      continue
    values = columns[feature.source]
    first = pipeline.first_values(values, np.nan).numpy()
    flag((values.row_lengths().numpy() > 0) & ~np.isfinite(first), "not_finite",
         lambda i, c=feature.source, v=first: f"column {c!r}: NaN or infinite value {v[i]}")
  if with_labels:
    labels = {}
    regression = _regression_labels(config)
    for label in config.labels:
      values = columns[label.source]
      present = values.row_lengths().numpy() > 0
      flag(~present, "missing_label", lambda i, c=label.source: f"label column {c!r} is missing")
      if label.name in regression:
        raw = pipeline.first_values(values, 0.0).numpy().astype(np.float64)
        log1p = regression[label.name]
        with np.errstate(invalid="ignore"):
          bad = ~(np.abs(raw) < _FLOAT32_OVERFLOW) | ((raw < 0) & log1p)
        flag(present & bad, "label_value", lambda i, l=label, g=log1p, v=raw:
             _regression_label_problem(l, g, v[i], str(v[i])))
        labels[label.name] = raw
      elif label.positive_values:
        raw = pipeline.first_values(values, b"").numpy()
        labels[label.name] = np.isin(
            np.char.strip(raw.astype(str)), list(label.positive_values)).astype(int)
      else:
        raw = pipeline.first_values(values, 0).numpy()
        flag(present & ~np.isin(raw, (0, 1)), "label_value",
             lambda i, c=label.source, v=raw: f"label column {c!r}: value {v[i]} is "
             "outside {0, 1}")
        labels[label.name] = raw
    for parent, stage in config.funnels():
      flag((labels[stage.name] == 1) & (labels[parent.name] == 0), "funnel",
           lambda i, p=parent, s=stage: f"column {s.source!r}: {s.name} without "
           f"{p.name} ({p.source!r} is 0)")
    if config.weight is not None:
      values = columns[config.weight]
      present = values.row_lengths().numpy() > 0
      flag(~present, "missing_weight",
           lambda i, c=config.weight: f"weight column {c!r} is missing")
      weights = pipeline.first_values(values, 0.0).numpy().astype(np.float64)
      with np.errstate(invalid="ignore"):
        bad = ~((weights >= 0) & (weights < _FLOAT32_OVERFLOW))
      flag(present & bad, "weight_value",
           lambda i, v=weights: _weight_problem(config.weight, v[i], str(v[i])))
  return [(i,) + problems[i] for i in sorted(problems)]


def _parse(records: np.ndarray, spec) -> Optional[Dict[str, tf.RaggedTensor]]:
  try:
    return tf.io.parse_example(records, spec)
  except tf.errors.InvalidArgumentError:
    return None


def _record_problem(record: bytes, spec) -> Tuple[str, str]:
  """(kind, reason) of a record that does not parse, naming the column."""
  try:
    example = tf.train.Example.FromString(record)
  except Exception as e:  # pylint: disable=broad-except
    return "not_example", f"not a tf.Example: {e}"
  expected = {tf.string: "bytes_list", tf.int64: "int64_list", tf.float32: "float_list"}
  for column, feature_spec in spec.items():
    feature = example.features.feature.get(column)
    found = feature.WhichOneof("kind") if feature is not None else None
    if found is not None and found != expected[feature_spec.dtype]:
      return "value_type", (f"column {column!r}: expected {expected[feature_spec.dtype]}, "
                            f"found {found}")
  return "value_type", "the record does not parse as the feature config's tf.Example"


def _selected_rows(split: Optional[Split], index: int):
  if split is None:
    return None
  cache = {}

  def selected(row: int) -> bool:
    block = row // 4096
    if block not in cache:
      cache.clear()
      cache[block] = split.selects_np(index, np.arange(block * 4096, (block + 1) * 4096))
    return bool(cache[block][row % 4096])

  return selected


def prepare_from_frame(config: FeatureConfig, frame) -> FeatureConfig:
  """The config prepared from rows held in a pandas DataFrame (one column per source
  column), learning what `scan(..., learn=True)` learns from files; missing values
  (NaN, None, empty strings) are left out as there."""
  statistics = _Statistics(config)
  for feature in config.features:
    for value in frame[feature.source]:
      if value is None or (isinstance(value, float) and math.isnan(value)):
        continue
      statistics.add(feature, str(value) if feature.is_categorical else float(value))
  return prepare(config, statistics)


def _empty_vocabulary(feature: Feature, counts: collections.Counter) -> str:
  if not counts:
    return (f"feature {feature.name!r}: the training rows hold no value of it (all "
            "missing), so no vocabulary can be learned; give a vocabulary or num_buckets, "
            "or leave the feature out.")
  return (f"feature {feature.name!r}: no value occurs min_count={feature.min_count} times "
          f"in the training rows (the most frequent occurs {max(counts.values())} times), "
          "so the learned vocabulary would be empty; lower min_count.")


def prepare(config: FeatureConfig, statistics: _Statistics) -> FeatureConfig:
  """The config with every missing statistic filled in from `statistics`.

  Raises:
    ConfigError: If a learned vocabulary would be empty.
  """
  features = []
  for feature in config.features:
    if not feature.needs_statistics:
      features.append(feature)
    elif feature.is_categorical:
      ranked = sorted(((c, v) for v, c in statistics.categorical_counts(feature).items()
                       if c >= feature.min_count), key=lambda cv: (-cv[0], cv[1]))
      if not ranked:
        raise ConfigError(_empty_vocabulary(feature, statistics.categorical_counts(feature)))
      if feature.max_tokens is not None:
        ranked = ranked[:feature.max_tokens]
      features.append(dataclasses.replace(feature, vocabulary=tuple(v for _, v in ranked)))
    else:
      values = statistics.numeric_values(feature)
      if feature.num_bins is not None:
        quantiles = np.quantile(values, np.linspace(0, 1, feature.num_bins + 1)[1:-1]) \
            if values.size else np.zeros(0)
        boundaries = tuple(float(b) for b in np.unique(quantiles))
        features.append(dataclasses.replace(feature, boundaries=boundaries, num_bins=None))
      else:
        mean = float(values.mean()) if values.size else 0.0
        std = float(values.std()) if values.size else 0.0
        features.append(dataclasses.replace(
            feature, mean=mean if feature.mean is None else feature.mean,
            std=(std if std > 0 else 1.0) if feature.std is None else feature.std))
  return config.replace_features(features)
