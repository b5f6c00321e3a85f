"""Rows parsed once and held in memory, served in batches reshuffled every pass.

Parsing CSV or `tf.Example` records costs far more than a training step of a small
model (docs/design.md §4 gives 170–190k rows/s on 2 cores), so a data set that is read
every epoch and fits in memory is parsed once (`InMemoryRows.load`) and its columns
kept as tensors, a categorical column as its distinct strings and one int32 index per
row. Each pass then draws a permutation of all rows (a full shuffle, not a buffer's)
and gathers every batch from the columns; the strings come from the small table of
distinct ones, which gathers about twice as fast as the full column (measured on the
census data, 2 cores).

`fits_in_memory` tells from the row count and the feature config whether a data set is
small enough. `dcrnn_tf.main` holds its training and validation rows this way when they
fit under `--in_memory_max_mib`, and streams them from the files otherwise.
"""

from typing import Callable, Mapping, Optional, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.data import pipeline
from dcrnn_tf.data.split import Split
from dcrnn_tf.features import FeatureConfig
from dcrnn_tf.layers.feature_encoder import (IDS, NUMBERS, FeaturePreprocessor,
                                             preprocessed_key)

# Bytes per value held: a `tf.string` element is a 24-byte `tstring` (strings of up to
# 22 bytes live inside it), a numeric feature or a label a float32.
_STRING_BYTES = 24
_FLOAT_BYTES = 4
_LOAD_BATCH = 65_536
MIB = 1 << 20
# The roles of a run read every epoch, hence held in memory when they fit.
EPOCH_ROLES = ("train", "validation")


def hold_if_fits(role: str, rows: int, file_pattern: str, config: FeatureConfig,
                 max_mib: float, *, data_format: str = "auto", split: Optional[Split] = None,
                 skip_rows: Optional[Mapping[str, Sequence[int]]] = None
                 ) -> Optional["InMemoryRows"]:
  """A role's rows loaded into memory if the role is read every epoch (`EPOCH_ROLES`)
  and its `rows` rows fit under `max_mib`; else None (read them from the files).

  Reading arguments as in `pipeline.make_dataset`.
  """
  if role not in EPOCH_ROLES or not fits_in_memory(rows, config, max_mib):
    return None
  return InMemoryRows.load(file_pattern, config, data_format=data_format, split=split,
                           skip_rows=skip_rows)


def estimated_bytes(rows: int, config: FeatureConfig, with_labels: bool = True) -> int:
  """The memory `InMemoryRows.load` takes at most for `rows` rows of `config`: the
  parsed columns before their strings are indexed (strings of up to 22 bytes; longer
  ones add their length). The rows then held take less."""
  per_row = sum(_STRING_BYTES if f.is_categorical else _FLOAT_BYTES for f in config.features)
  if with_labels:
    per_row += _FLOAT_BYTES * (len(config.labels) + (config.weight is not None))
  return rows * per_row


def fits_in_memory(rows: int, config: FeatureConfig, max_mib: float,
                   with_labels: bool = True) -> bool:
  """Whether `rows` rows of `config` take at most `max_mib` MiB in memory."""
  return estimated_bytes(rows, config, with_labels) <= max_mib * MIB


class InMemoryRows:
  """The parsed columns of a data set, and batches of them in a fresh order each pass.

  Example:

  ```python
  config, _ = dcrnn_tf.data.synthetic.example_batch()
  dcrnn_tf.data.synthetic.write_dataset("data", train_rows=500, eval_rows=100)
  rows = InMemoryRows.load("data/train.csv", config)
  for features, labels in rows.dataset(128, shuffle=True, seed=0):
    assert features["c0"].shape[0] <= 128 and sorted(labels) == ["click", "conversion"]
  ```

  Args:
    features: Feature name to a `[rows]` tensor, as `pipeline.make_dataset` yields (a
      string column is held as its distinct values and each row's index), or to a
      pair (values, `[rows]` index of each row's value).
    labels: Label name to a `[rows]` float32 tensor, or None for features alone.

  Attributes:
    rows: The number of rows.
    features: Feature name to its column: a float32 tensor, or for a string column
      the pair (distinct values, `[rows]` int32 index of each row's value).
    labels: Label name to its float32 column, or None.
  """

  def __init__(self, features: Mapping[str, tf.Tensor],
               labels: Optional[Mapping[str, tf.Tensor]] = None):
    first = next(iter(features.values()))
    self.rows = int((first[1] if isinstance(first, tuple) else first).shape[0])
    # A string column as (its distinct values, each row's index among them).
    self.features = {name: tuple(tf.unique(values, out_idx=tf.int32))
                     if isinstance(values, tf.Tensor) and values.dtype == tf.string
                     else values for name, values in features.items()}
    self.labels = None if labels is None else dict(labels)

  @classmethod
  def load(cls, file_pattern: str, config: FeatureConfig, *, data_format: str = "auto",
           with_labels: bool = True, split: Optional[Split] = None,
           skip_rows: Optional[Mapping[str, Sequence[int]]] = None) -> "InMemoryRows":
    """Reads every (kept) row of the files once, in file order.

    Arguments as in `pipeline.make_dataset`, which reads the files.
    """
    batches = list(pipeline.make_dataset(
        file_pattern, config, _LOAD_BATCH, data_format=data_format, with_labels=with_labels,
        split=split, skip_rows=skip_rows))
    if not batches:
      raise ValueError(f"{file_pattern}: no rows to read.")
    columns = batches if with_labels else [(features, {}) for features in batches]
    features = {name: tf.concat([f[name] for f, _ in columns], axis=0)
                for name in columns[0][0]}
    labels = {name: tf.concat([l[name] for _, l in columns], axis=0)
              for name in columns[0][1]}
    return cls(features, labels if with_labels else None)

  def dataset(self, batch_size: int, *, shuffle: bool = False, seed: Optional[int] = None,
              repeat: bool = False, transform: Optional[Callable] = None,
              drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of the rows, like `pipeline.make_dataset`'s.

    Args:
      batch_size: Rows per batch.
      shuffle: Whether to draw a new permutation of all rows for every pass.
      seed: Seed of the permutations: with a seed, the n-th pass has the same order
        on every run; without, a random one.
      repeat: Whether to repeat the passes forever.
      transform: Optional function mapped over the batches, called as
        `transform(features, labels)` (`transform(features)` without labels).
      drop_remainder: Whether to drop a last batch smaller than `batch_size`.

    Returns:
      A dataset of `(features, labels)` batches (`features` without labels), prefetched.
    """
    rows = self.rows
    stop = rows - rows % batch_size if drop_remainder else rows
    if shuffle:
      orders = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1).map(
          lambda draw: tf.random.experimental.stateless_shuffle(
              tf.range(rows, dtype=tf.int64), seed=[draw, 0]))
    else:
      orders = tf.data.Dataset.from_tensors(tf.range(rows, dtype=tf.int64))
    if repeat:
      orders = orders.repeat()

    def batches_of(order: tf.Tensor) -> tf.data.Dataset:
      return tf.data.Dataset.range(0, stop, batch_size).map(
          lambda start: order[start:start + batch_size])

    # One gather at a time: `tf.gather` spreads over the cores itself, and parallel
    # calls measured up to 1.8x slower on 2 cores.
    dataset = orders.flat_map(batches_of).map(self._gather)
    if transform is not None:
      dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)

  def preprocessed(self, preprocessor: FeaturePreprocessor) -> "InMemoryRows":
    """These rows with every feature preprocessed once, as a model's `FeatureEncoder`
    takes them (`FeaturePreprocessor`'s output: `IDS`, `NUMBERS`, a multi-categorical
    feature's ids): a string column's distinct values are preprocessed and each row
    gets its value's ids (a multi-categorical column keeps its distinct values' ids and
    the index); numeric columns are preprocessed whole.

    Args:
      preprocessor: The model's preprocessing (`FeatureEncoder.preprocessor`, or a
        `FeaturePreprocessor` of the same config).
    """
    layout = preprocessor.layout

    def distinct_and_index(feature):
      column = self.features[feature.name]
      return column if isinstance(column, tuple) else (column, None)

    columns = {}
    ids = []
    for feature in layout.categorical:
      distinct, index = distinct_and_index(feature)
      rows = preprocessor.ids(feature, distinct)
      ids.append((rows if index is None else tf.gather(rows, index))[:, tf.newaxis])
    numbers = lambda group: {f.name: self.features[f.name] for f in group}
    if layout.bucketized:
      ids.append(preprocessor.bucket_ids(numbers(layout.bucketized)))
    if ids:
      columns[IDS] = tf.concat(ids, axis=1)
    if layout.standardized:
      columns[NUMBERS] = preprocessor.standardized(numbers(layout.standardized))
    for feature in layout.multi_categorical:
      distinct, index = distinct_and_index(feature)
      rows = preprocessor.multi_ids(feature, distinct)
      columns[preprocessed_key(feature.name)] = rows if index is None else (rows, index)
    return InMemoryRows(columns, self.labels)

  def _gather(self, indices: tf.Tensor):
    features = {name: tf.gather(column[0], tf.gather(column[1], indices))
                if isinstance(column, tuple) else tf.gather(column, indices)
                for name, column in self.features.items()}
    if self.labels is None:
      return features
    return features, {name: tf.gather(values, indices) for name, values in self.labels.items()}
