"""tf.data input pipelines for CSV and TFRecord files described by a `FeatureConfig`.

Both formats batch the raw records first and parse whole batches (`tf.io.decode_csv`,
`tf.io.parse_example`): parsing row by row is several times slower (docs/design.md §4).

A batch is `(features, labels)`: `features` maps every feature name, in config order,
to a raw `[batch]` tensor — a string for categorical features, the value as it is in the
file (integer ids become their decimal strings; an absent value is the empty string),
and a float32 for numeric ones (CSV fields are stripped, and the empty string and the
`na_values` become NaN, before they are parsed) — and `labels` maps every label name to
a float32 0/1 `[batch]` tensor. The model normalizes the raw values (whitespace, case,
`na_values`) and does all further preprocessing in its graph (see `FeatureEncoder`), so
that files and serving requests run the same code. A regression task's label is its
float32 number; the config's `weight` column, if any, is among the labels as
`WEIGHT_KEY`.

CSV files have a header line naming their columns, or the config lists the columns
(`csv.columns`). TFRecord files hold `tf.train.Example` records: categorical features as
`bytes_list` or (`dtype: int64`) `int64_list`, numeric features as `float_list`, labels
as `int64_list` (`bytes_list` for labels with `positive_values`, `float_list` for the
labels of regression tasks; `label_dtype`). A file is read as GZIP
when its content is (`compression_of`), whatever its name; its format is told by its
name (`.csv`, `.tfrecord`) or, where the name does not say, by its content.

Rows are expected to be valid: `dcrnn_tf.data.scan` checks them first, and its list of
bad rows (with `--bad_rows=skip`) is passed here as `skip_rows` to leave them out.
"""

import csv
import gzip
import os
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence
import zlib

from google.protobuf import message
import numpy as np
import pandas as pd

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.data.split import Split
from dcrnn_tf.errors import DataError, MissingFileError
from dcrnn_tf.features import MULTI_CATEGORICAL, WEIGHT_KEY, FeatureConfig, Label

CSV = "csv"
TFRECORD = "tfrecord"
DATA_FORMATS = ("auto", CSV, TFRECORD)
_MAX_PARALLEL_FILES = 16
_FILTER_BLOCK = 4096
_TF_DTYPES = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}


def feature_tensor_specs(config: FeatureConfig) -> Dict[str, tf.TensorSpec]:
  """The `[batch]` tensor spec of every feature as the pipeline yields it: strings for
  categorical features (whatever their `dtype` in `tf.Example`s), float32 for numeric
  ones. The `predict_features` signature takes these."""
  return {f.name: tf.TensorSpec([None], tf.string if f.is_categorical else tf.float32,
                                name=f.name)
          for f in config.features}


def dummy_features(config: FeatureConfig) -> Dict[str, tf.Tensor]:
  """One row of zeros (empty strings) per feature, to create a model's weights."""
  return {name: tf.zeros([1], spec.dtype) for name, spec in feature_tensor_specs(config).items()}


def example_feature_spec(config: FeatureConfig,
                         with_labels: bool = True) -> Dict[str, tf.io.RaggedFeature]:
  """The `tf.io.parse_example` spec of the config's columns (features, then labels).

  Every column is parsed as a `tf.io.RaggedFeature`, so that a missing value can be
  told from any real one; `parse_examples` turns the result into model inputs.
  """
  spec = {f.source: tf.io.RaggedFeature(_TF_DTYPES[f.raw_dtype]) for f in config.features}
  if with_labels:
    for label in config.labels:
      spec[label.source] = tf.io.RaggedFeature(_TF_DTYPES[label_dtype(config, label)])
    if config.weight is not None:
      spec[config.weight] = tf.io.RaggedFeature(tf.float32)
  return spec


def label_dtype(config: FeatureConfig, label: Label) -> str:
  """How a label column is stored in a `tf.Example`: `"string"` (a label with
  `positive_values`), `"float32"` (a regression task's) or `"int64"` (0/1)."""
  if label.positive_values:
    return "string"
  return "float32" if config.is_regression_label(label.name) else "int64"


def parse_examples(serialized: tf.Tensor, config: FeatureConfig, with_labels: bool = True):
  """Parses a `[batch]` string tensor of serialized `tf.Example`s.

  Returns:
    `(features, labels)` as described in the module docstring, or `features` alone
    when `with_labels` is false.
  """
  columns = tf.io.parse_example(serialized, example_feature_spec(config, with_labels))
  features = feature_values(columns, config)
  if not with_labels:
    return features
  labels = {}
  for label in config.labels:
    values = columns[label.source]
    if label.positive_values:
      labels[label.name] = _is_positive(first_values(values, ""), label.positive_values)
    else:
      labels[label.name] = tf.cast(first_values(values, 0), tf.float32)
  if config.weight is not None:
    labels[WEIGHT_KEY] = first_values(columns[config.weight], 0.0)
  return features, labels


def feature_values(columns: Mapping[str, tf.RaggedTensor],
                   config: FeatureConfig) -> Dict[str, tf.Tensor]:
  """The model inputs of parsed `tf.Example` columns (`tf.io.RaggedFeature`s keyed by
  data column): per feature, its first value, or for a multi-categorical feature its
  values joined by the delimiter; an absent value is `""` or NaN."""
  features = {}
  for feature in config.features:
    values = columns[feature.source]
    if feature.is_categorical:
      if values.dtype != tf.string:
        values = tf.strings.as_string(values)
      if feature.type == MULTI_CATEGORICAL:
        features[feature.name] = tf.strings.reduce_join(values, axis=1,
                                                        separator=feature.delimiter)
      else:
        features[feature.name] = first_values(values, "")
    else:
      features[feature.name] = first_values(values, float("nan"))
  return features


def list_files(file_pattern: str) -> List[str]:
  """The sorted files matching a glob or a comma-separated list of globs.

  Raises:
    FileNotFoundError: If a glob matches no file.
    DataError: If one matches a directory.
  """
  files = set()
  for pattern in file_pattern.split(","):
    pattern = pattern.strip()
    if not pattern:
      continue
    matches = tf.io.gfile.glob(pattern)
    if not matches:
      raise MissingFileError(f"No file matches {pattern!r}.")
    for match in matches:
      if tf.io.gfile.isdir(match):
        raise DataError(f"{match} is a directory, not a data file: give its files, such as "
                        f"{os.path.join(match, '*.csv')} (a glob, or comma-separated globs).")
    files.update(matches)
  if not files:
    raise MissingFileError(f"No file matches {file_pattern!r}.")
  return sorted(files)


def data_format_of(files: Sequence[str], data_format: str = "auto") -> str:
  """Checks `data_format`, or tells it from the file names if it is "auto"."""
  if data_format not in DATA_FORMATS:
    raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}.")
  if data_format != "auto":
    return data_format
  formats = {f: _format_of(f) for f in files}
  first = files[0]
  for path, fmt in formats.items():
    if fmt != formats[first]:
      raise DataError(f"{path}: is {fmt} but {first} is {formats[first]}; "
                      "all files of one pattern must have one format.")
  return formats[first]


def make_dataset(file_pattern: str,
                 config: FeatureConfig,
                 batch_size: int,
                 *,
                 data_format: str = "auto",
                 shuffle: bool = False,
                 shuffle_buffer: int = 10_000,
                 repeat: bool = False,
                 seed: Optional[int] = None,
                 with_labels: bool = True,
                 transform: Optional[Callable] = None,
                 drop_remainder: bool = False,
                 split: Optional[Split] = None,
                 skip_rows: Optional[Mapping[str, Sequence[int]]] = None) -> tf.data.Dataset:
  """Reads batches of CSV or TFRecord files.

  Args:
    file_pattern: A glob or a comma-separated list of globs.
    config: The feature config that describes the files.
    batch_size: Rows per batch.
    data_format: `"csv"`, `"tfrecord"`, or `"auto"` to tell by the file names
      (`.csv`, `.csv.gz`; `.tfrecord`, `.tfrecords` and sharded
      `.tfrecord-00000-of-00010` names, optionally followed by `.gz`).
    shuffle: Whether to shuffle the file order and the rows (through a buffer);
      without, the files are read one after the other in the order of their sorted
      names, and each file's rows in order.
    shuffle_buffer: Rows in the shuffle buffer.
    repeat: Whether to repeat the batches forever; each pass reshuffles (when
      shuffling) and ends with its own smaller batch (unless `drop_remainder`).
    seed: Seed of the shuffles; with a seed the order is the same on every run.
    with_labels: Whether to yield `(features, labels)`; if false, only `features`
      (label columns may then be absent from the files).
    transform: Optional function mapped over the batches, called as
      `transform(features, labels)` (`transform(features)` without labels).
    drop_remainder: Whether to drop a last batch smaller than `batch_size`.
    split: Read only the rows of this part of a train/validation/test split.
    skip_rows: Per file path, 0-based data row numbers to leave out (bad rows).

  Returns:
    A dataset of batches, prefetched.

  Raises:
    FileNotFoundError: If a glob matches no file.
    ValueError: On an unknown data format, or a CSV header that does not fit the
      config (the message names the file, line and column).
  """
  files = list_files(file_pattern)
  data_format = data_format_of(files, data_format)
  if data_format == CSV:
    columns = csv_columns(files, config, with_labels)
    read = _csv_lines if config.csv.header else _csv_lines_without_header
    parse = _csv_parser(columns, config, with_labels)
  else:
    read = tf.data.TFRecordDataset
    parse = lambda serialized: parse_examples(serialized, config, with_labels)
  compressions = [compression_of(f) for f in files]
  indices = list(range(len(files)))
  dataset = tf.data.Dataset.from_tensor_slices((files, compressions, indices))
  if shuffle:
    dataset = dataset.shuffle(len(files), seed=seed)
  keep = _row_filter(files, split, skip_rows)
  blank = data_format == CSV  # Blank lines (e.g. at the end of a file) hold no row.

  def read_blocks(path, compression, index):
    """The file's kept records, in blocks of up to `_FILTER_BLOCK`: rows move through
    the interleave and the filter a block at a time (row by row is several times
    slower)."""
    blocks = read(path, compression).batch(_FILTER_BLOCK)
    if keep is None and not blank:
      return blocks

    def kept(block_index, records):
      mask = tf.strings.length(records) > 0 if blank else tf.ones_like(records, tf.bool)
      if keep is not None:
        rows = block_index * _FILTER_BLOCK + tf.range(tf.size(records, tf.int64))
        mask &= keep(index, rows)
      return tf.boolean_mask(records, mask)

    return blocks.enumerate().map(kept)

  if shuffle:  # Files in parallel, rows mixed through the buffer.
    dataset = dataset.interleave(read_blocks, cycle_length=min(len(files), _MAX_PARALLEL_FILES),
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.unbatch().shuffle(shuffle_buffer, seed=seed).batch(
        batch_size, drop_remainder=drop_remainder)
  else:  # Files one after the other, rows in order.
    dataset = dataset.flat_map(read_blocks).rebatch(batch_size, drop_remainder=drop_remainder)
  dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
  if transform is not None:
    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
  if repeat:
    dataset = dataset.repeat()
  return dataset.prefetch(tf.data.AUTOTUNE)


BOM = b"\xef\xbb\xbf"
# What `tf.strings.strip` strips (and Python's `str.strip` would strip more).
ASCII_WHITESPACE = " \t\n\v\f\r"
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
GZIP_MAGIC = b"\x1f\x8b"


def _open_binary(path: str):
  """The file opened for reading bytes (remote paths, `gs://…`, through `tf.io.gfile`)."""
  return open(path, "rb") if "://" not in path else tf.io.gfile.GFile(path, "rb")  # pylint: disable=consider-using-with


def compression_of(path: str) -> str:
  """`"GZIP"` if the file's content is GZIP (its first two bytes), else `""`."""
  with _open_binary(path) as f:
    return "GZIP" if f.read(len(GZIP_MAGIC)) == GZIP_MAGIC else ""


def read_lines(path: str) -> Iterator[bytes]:
  """The raw lines of a (possibly GZIP) text file, split at `\n` as
  `tf.data.TextLineDataset` splits them, without the `\n`; `csv_line` turns one into
  what `TextLineDataset` yields.

  Remote paths (`gs://…`) are read through `tf.io.gfile`.

  Raises:
    DataError: If the GZIP data is truncated or corrupt (naming the line it breaks on).
  """
  number = 0
  with _open_binary(path) as raw:
    gzipped = raw.read(len(GZIP_MAGIC)) == GZIP_MAGIC  # As `compression_of`, one open.
    raw.seek(0)
    source = gzip.GzipFile(fileobj=raw) if gzipped else raw
    try:
      for number, line in enumerate(source, 1):
        yield line[:-1] if line.endswith(b"\n") else line
    except _GZIP_ERRORS as e:
      raise DataError(f"{path}:{number + 1}: the GZIP data is truncated or corrupt ({e}); "
                      "nothing from here on can be read.") from e


def csv_line(raw: bytes, first: bool) -> bytes:
  """A raw line as `TextLineDataset` yields it (every `\r` dropped), without the byte
  order mark of the file's `first` line (which the pipeline drops too)."""
  if first and raw.startswith(BOM):
    raw = raw[len(BOM):]
  return raw.replace(b"\r", b"")


def has_inner_carriage_return(raw: bytes) -> bool:
  """Whether a raw line holds a `\r` before its end (a file with CR-only line endings
  reads as one line, since `TextLineDataset` splits at `\n` and drops every `\r`)."""
  return b"\r" in raw.rstrip(b"\r")


CARRIAGE_RETURN = ("a carriage return (\\r) inside the line: the file has CR-only (old Mac) "
                   "line endings, which TensorFlow reads as one line; convert them to \\n")


def not_utf8(raw: bytes, error: UnicodeDecodeError) -> str:
  return (f"byte 0x{raw[error.start]:02x} is not UTF-8 text (a Latin-1 file? convert it "
          "to UTF-8)")


def read_csv_header(path: str, delimiter: str = ",") -> List[str]:
  """The column names on the first line of a (possibly GZIP) CSV file.

  Raises:
    DataError: If the file is empty or the line is not UTF-8 or holds a `\r`.
  """
  raw = next(read_lines(path), b"")
  if has_inner_carriage_return(raw):
    raise DataError(f"{path}:1: {CARRIAGE_RETURN}.")
  line = csv_line(raw, first=True)
  try:
    text = line.decode("utf-8")
  except UnicodeDecodeError as e:
    raise DataError(f"{path}:1:{line[:e.start].count(delimiter.encode()) + 1}: "
                    f"{not_utf8(line, e)}.") from e
  if not text:
    raise DataError(f"{path}:1: empty file: expected a header line naming the columns.")
  return [name.strip() for name in next(csv.reader([text], delimiter=delimiter))]


def is_empty_text(path: str) -> bool:
  """Whether a (possibly GZIP) text file holds no byte at all."""
  return next(read_lines(path), None) is None


def csv_columns(files: Sequence[str], config: FeatureConfig, with_labels: bool) -> List[str]:
  """The columns of CSV files (from the config or the shared header), checked."""
  if not config.csv.header:
    return list(config.csv.columns)
  # A file without even a header holds no rows (the scan reports it as empty).
  files = [path for path in files if not is_empty_text(path)] or files[:1]
  header = read_csv_header(files[0], config.csv.delimiter)
  _check_header(files[0], header, config, with_labels)
  for path in files[1:]:
    other = read_csv_header(path, config.csv.delimiter)
    if other == header:
      continue
    column = next((i for i, (a, b) in enumerate(zip(header, other)) if a != b),
                  min(len(header), len(other)))
    here = repr(other[column]) if column < len(other) else "missing"
    there = repr(header[column]) if column < len(header) else "missing"
    raise DataError(f"{path}:1:{column + 1}: header differs from {files[0]}: column "
                    f"{column + 1} is {here} here and {there} there.")
  return header


def write_csv(frame: pd.DataFrame, path: str) -> None:
  """Writes a frame as CSV with a header (GZIP if the path ends in .gz)."""
  frame.to_csv(path, index=False)


def write_tfrecord(frame: pd.DataFrame, path: str, config: FeatureConfig) -> None:
  """Writes the config's columns of a frame as `tf.train.Example` records.

  Categorical features become `bytes_list` values (`int64_list` for `dtype: int64`),
  numeric features `float_list` values, labels as `label_dtype` says. The frame must
  have no missing values.

  Args:
    frame: One row per example; must hold every feature and label column.
    path: Output file; GZIP-compressed if it ends in `.gz`.
    config: Which columns to write, and their types.
  """
  kinds = [(f.source, f.raw_dtype) for f in config.features]
  kinds += [(label.source, label_dtype(config, label)) for label in config.labels]
  if config.weight is not None:
    kinds.append((config.weight, "float32"))
  # One Example, updated in place for every row: about 6x faster than building new ones.
  example = tf.train.Example()
  lists = []
  for column, dtype in kinds:
    feature = example.features.feature[column]
    values = {"int64": feature.int64_list, "float32": feature.float_list,
              "string": feature.bytes_list}[dtype].value
    values.append(b"" if dtype == "string" else 0)
    lists.append(values)
  rows = zip(*[_column_values(frame[column], dtype) for column, dtype in kinds])
  options = "GZIP" if path.lower().endswith(".gz") else None
  with tf.io.TFRecordWriter(path, options) as writer:
    for row in rows:
      for values, value in zip(lists, row):
        values[0] = value
      writer.write(example.SerializeToString())


def _column_values(column: pd.Series, dtype: str) -> list:
  if dtype == "int64":
    return column.to_numpy(np.int64).tolist()
  if dtype == "float32":
    return column.to_numpy(np.float32).tolist()
  return [str(v).encode("utf-8") for v in column]


def first_values(values: tf.RaggedTensor, default) -> tf.Tensor:
  """The first value of each row, or `default` for an empty row."""
  return tf.where(values.row_lengths() > 0,
                  values.to_tensor(default_value=default, shape=[None, 1])[:, 0],
                  tf.constant(default, values.dtype))


def _is_positive(values: tf.Tensor, positive_values: Sequence[str]) -> tf.Tensor:
  stripped = tf.strings.strip(values)
  return tf.cast(tf.reduce_any(stripped[:, tf.newaxis] == tf.constant(list(positive_values)),
                               axis=1), tf.float32)


def _row_filter(files: Sequence[str], split: Optional[Split],
                skip_rows: Optional[Mapping[str, Sequence[int]]]) -> Optional[Callable]:
  """A predicate on (file index, data row number), or None to keep every row."""
  skipped = {files.index(path): rows for path, rows in (skip_rows or {}).items()
             if rows and path in files}
  if split is None and not skipped:
    return None
  table = None
  if skipped:
    keys = [index * (1 << 40) + row for index, rows in skipped.items() for row in rows]
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.int64),
                                            tf.ones([len(keys)], tf.int64)), default_value=0)

  def keep(index, row):
    result = tf.constant(True)
    if split is not None:
      result = split.selects_tf(index, row)
    if table is not None:
      result = result & tf.equal(
          table.lookup(tf.cast(index, tf.int64) * (1 << 40) + tf.cast(row, tf.int64)), 0)
    return result

  return keep


def _csv_lines(path: tf.Tensor, compression: tf.Tensor) -> tf.data.Dataset:
  """The lines of a CSV file after its header."""
  return tf.data.TextLineDataset(path, compression).skip(1)


def _csv_lines_without_header(path: tf.Tensor, compression: tf.Tensor) -> tf.data.Dataset:
  """The lines of a CSV file, the first without its byte order mark."""
  lines = tf.data.TextLineDataset(path, compression)
  first = lines.take(1).map(lambda line: tf.where(
      tf.strings.substr(line, 0, len(BOM)) == BOM,
      tf.strings.substr(line, len(BOM), tf.strings.length(line)), line))
  return first.concatenate(lines.skip(1))


def _format_of(path: str) -> str:
  """The format the file's name says (`.csv`, `.tfrecord`, either with `.gz`), else the
  one its content shows: a first record that reads as a TFRecord (its checksums hold)
  and parses as a `tf.Example`, or UTF-8 text (CSV; also an empty file)."""
  name = path.lower().rsplit("/", 1)[-1]
  if name.endswith(".gz"):
    name = name[:-len(".gz")]
  if name.endswith(".csv"):
    return CSV
  if ".tfrecord" in name:
    return TFRECORD
  try:
    for record in tf.data.TFRecordDataset(path, compression_of(path)).take(1):
      tf.train.Example.FromString(record.numpy())
      return TFRECORD
  except (tf.errors.DataLossError, message.DecodeError):
    pass
  try:
    next(read_lines(path), b"").decode("utf-8")
    return CSV
  except (UnicodeDecodeError, DataError):
    raise DataError(f"{path}: cannot tell the data format from the file name (.csv, "
                    ".tfrecord) or from the content (neither a tf.Example record nor "
                    f"UTF-8 text); give it: --data_format={CSV} or {TFRECORD} (data_format= "
                    "in Python).") from None


def _check_header(path: str, header: Sequence[str], config: FeatureConfig,
                  with_labels: bool) -> None:
  known = set(config.columns) | set(config.ignore)
  seen = set()
  for i, name in enumerate(header):
    if name in seen:
      raise DataError(f"{path}:1:{i + 1}: duplicate column {name!r}.")
    seen.add(name)
    if name not in known:
      raise DataError(f"{path}:1:{i + 1}: column {name!r} is not a feature, label or "
                      "ignored column of the feature config.")
  for feature in config.features:
    if feature.source not in seen:
      raise DataError(f"{path}:1: feature column {feature.source!r} is missing.")
  for label in config.labels if with_labels else ():
    if label.source not in seen:
      raise DataError(f"{path}:1: label column {label.source!r} is missing.")
  if with_labels and config.weight is not None and config.weight not in seen:
    raise DataError(f"{path}:1: weight column {config.weight!r} is missing.")


def _csv_parser(columns: Sequence[str], config: FeatureConfig, with_labels: bool) -> Callable:
  """A function that decodes a batch of CSV lines into batch tensors."""
  wanted = [f.source for f in config.features]
  if with_labels:
    wanted += [label.source for label in config.labels]
    wanted += [config.weight] if config.weight is not None else []
  selected = sorted(columns.index(name) for name in set(wanted))
  names = [columns[i] for i in selected]
  missing = [""] + list(config.csv.na_values)

  def parse(lines):
    values = tf.io.decode_csv(lines, [tf.constant("", tf.string)] * len(selected),
                              field_delim=config.csv.delimiter, select_cols=selected)
    fields = dict(zip(names, values))
    raw = {}
    for name, value in fields.items():
      value = tf.strings.strip(value)
      is_missing = tf.reduce_any(value[:, tf.newaxis] == tf.constant(missing), axis=1)
      raw[name] = (value, is_missing)
    features = {}
    for feature in config.features:
      value, is_missing = raw[feature.source]
      if feature.is_categorical:  # As in the file: the model normalizes it.
        features[feature.name] = fields[feature.source]
      else:
        features[feature.name] = tf.where(
            is_missing, float("nan"),
            tf.strings.to_number(tf.where(is_missing, "0", value), tf.float32))
    if not with_labels:
      return features
    labels = {}
    for label in config.labels:
      value, is_missing = raw[label.source]
      if label.positive_values:
        labels[label.name] = _is_positive(value, label.positive_values)
      else:
        labels[label.name] = tf.strings.to_number(tf.where(is_missing, "0", value),
                                                  tf.float32)
    if config.weight is not None:
      value, is_missing = raw[config.weight]
      labels[WEIGHT_KEY] = tf.strings.to_number(tf.where(is_missing, "0", value), tf.float32)
    return features, labels

  return parse
