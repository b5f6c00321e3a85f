"""Raw named features → one embedding per field, in two public pieces and their sum.

* `FeaturePreprocessor` (no weights): raw values → table rows (`IDS`, one column per
  categorical or bucketized feature), standardized numbers (`NUMBERS`) and the rows of
  each multi-categorical feature (`preprocessed_key(name)`).
* `FeatureEmbedding` (the trainable part): preprocessed features → `[batch, fields,
  dim]`.
* `FeatureEncoder`: a `FeatureEmbedding` that preprocesses raw values itself, so a model
  that starts with it takes raw values; given preprocessed features (a dict of
  `preprocessed_key`s) it embeds them as they are. Training feeds it features
  preprocessed once in the input pipeline (`dcrnn_tf.data.in_memory`), the SavedModel
  raw values: both run the same preprocessing code.
"""

from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import CATEGORICAL, MULTI_CATEGORICAL, NUMERIC, Feature
from dcrnn_tf.layers._initializers import fresh

MISSING_ID = 0       # Row of a missing categorical value (and of a missing bucket).
OUT_OF_VOCABULARY_ID = 1
EMBEDDING = "embedding"
NUMERIC_KERNEL = "numeric_kernel"
NUMERIC_BIAS = "numeric_bias"
NUMERIC_MISSING = "numeric_missing"
NUMERIC_WEIGHTS = (NUMERIC_KERNEL, NUMERIC_BIAS, NUMERIC_MISSING)
PREPROCESSED = "preprocessed/"  # Key prefix of the preprocessed features (names have no "/").
IDS = PREPROCESSED + "ids"  # Table rows of the categorical and bucketized features.
NUMBERS = PREPROCESSED + "numbers"  # The standardized numeric features, NaN if missing.
_FINGERPRINTS = 2 ** 63 - 1  # Values are fingerprinted into [0, 2**63 - 1).
_FIELD_SALT = np.uint64(0x9E3779B97F4A7C15)  # Field i's keys: fingerprint xor i * this.


def preprocessed_key(name: str) -> str:
  """The key of multi-categorical feature `name`'s table rows."""
  return PREPROCESSED + name


def is_preprocessed(inputs: Mapping[str, Any]) -> bool:
  """Whether `inputs` are preprocessed features (`FeaturePreprocessor`'s output)."""
  return any(key.startswith(PREPROCESSED) for key in inputs)


def field_rows(feature: Feature) -> int:
  """Rows of a categorical, multi-categorical or bucketized feature's block of the
  embedding table: its missing row (`MISSING_ID`), then, for a vocabulary, the
  out-of-vocabulary row and one per value; for hashing, one per bucket with the
  missing row last; for buckets, one per bucket."""
  if feature.num_buckets is not None:
    return feature.num_buckets + 1
  if feature.is_categorical:
    return len(feature.vocabulary) + 2
  return len(feature.boundaries) + 2


def normalize_strings(values: tf.Tensor, lowercase: bool = False,
                      na_values: Sequence[str] = ()) -> tf.Tensor:
  """Raw categorical values (strings, any shape) as the model looks them up.

  Whitespace around each value is stripped, the value is lowercased (UTF-8) when
  `lowercase`, and a value equal to an entry of `na_values` (normalized alike) becomes
  the empty string, the missing value. The model's graph (`FeatureEncoder`) and the
  data scan that learns vocabularies both run this function.
  """
  values = tf.strings.strip(values)
  if lowercase:
    values = tf.strings.lower(values, encoding="utf-8")
  if na_values:
    missing = normalize_strings(tf.constant(list(na_values)), lowercase)
    values = tf.where(tf.reduce_any(values[..., tf.newaxis] == missing, axis=-1), "", values)
  return values


def numeric_na_values(na_values: Sequence[str]) -> List[float]:
  """The entries of `na_values` that are numbers (NaN is always missing)."""
  numbers = []
  for value in na_values:
    try:
      number = float(value)
    except ValueError:
      continue
    if not np.isnan(number):
      numbers.append(number)
  return numbers


def normalize_numbers(values: tf.Tensor, na_values: Sequence[str] = ()) -> tf.Tensor:
  """Raw numeric values (float32, any shape) as the model reads them: NaN where a value
  equals an entry of `na_values` that is a number (such as `-1`). The model's graph and
  the data scan that learns means and boundaries both run this function."""
  numbers = numeric_na_values(na_values)
  if not numbers:
    return values
  missing = tf.reduce_any(values[..., tf.newaxis] == tf.constant(numbers, values.dtype),
                          axis=-1)
  return tf.where(missing, tf.constant(float("nan"), values.dtype), values)


def per_field_layout_error(what: str) -> ValueError:
  """The error for weights written before the encoder's tables were fused."""
  return ValueError(
      f"{what}: the weights of a FeatureEncoder with one embedding table (and one "
      "numeric kernel, bias and missing vector) per feature, the layout before the "
      f"encoder's weights were fused into one table ({EMBEDDING!r}) and one "
      f"[numeric features, dim] weight each ({', '.join(map(repr, NUMERIC_WEIGHTS))}). "
      "They cannot be loaded as they are: retrain the model (in a new --model_dir), or "
      "convert the per-feature arrays with FeatureEncoder.weights_from_per_field_tables "
      "and set them with the encoder's set_weights.")


def check_checkpoint_layout(checkpoint_path: str, features: Sequence[Feature]) -> None:
  """Raises a ValueError if a checkpoint holds an encoder of the per-field layout (its
  variables named `embedding_<feature>`, `numeric_kernel_<feature>`, ...)."""
  former = {f"{name}_{f.name}" for f in features for name in (EMBEDDING,) + NUMERIC_WEIGHTS}
  found = sorted({part for key, _ in tf.train.list_variables(checkpoint_path)
                  for part in key.split("/") if part in former})
  if found:
    raise per_field_layout_error(f"Checkpoint {checkpoint_path} holds {found}")


class FieldLayout:
  """Where each feature goes: its kind, its block of the fused embedding table
  (`offsets`, `table_rows`) or its row of the numeric weights, and the order that puts
  the computed groups back in feature order.

  Raises:
    ValueError: If there is no feature, or a feature is not prepared.
  """

  def __init__(self, features: Sequence[Feature], what: str):
    if not features:
      raise ValueError(f"{what} needs at least one feature.")
    unprepared = [f.name for f in features if f.needs_statistics]
    if unprepared:
      raise ValueError(f"{what}: features {unprepared} lack their vocabulary, "
                       "mean/std or boundaries; prepare the feature config from training "
                       "data first (python -m dcrnn_tf.main --mode=prepare).")
    self.categorical = tuple(f for f in features if f.type == CATEGORICAL)
    self.multi_categorical = tuple(f for f in features if f.type == MULTI_CATEGORICAL)
    self.bucketized = tuple(f for f in features
                            if f.type == NUMERIC and f.boundaries is not None)
    self.standardized = tuple(f for f in features
                              if f.type == NUMERIC and f.boundaries is None)
    self.looked_up = self.categorical + self.bucketized  # One id per row each.
    self.tabled = tuple(f for f in features if f not in self.standardized)
    rows = [field_rows(f) for f in self.tabled]
    self.offsets = {f.name: sum(rows[:i]) for i, f in enumerate(self.tabled)}
    self.table_rows = sum(rows)
    computed = [f.name for f in self.looked_up + self.multi_categorical + self.standardized]
    self.order = tuple(computed.index(f.name) for f in features)


def _features_of(features) -> Tuple[Feature, ...]:
  return tuple(f if isinstance(f, Feature) else Feature(**f) for f in features)


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class FeaturePreprocessor(tf.keras.layers.Layer):
  """Raw features → what `FeatureEmbedding` embeds; no weights.

  Raw values are first normalized (`normalize_strings`, `normalize_numbers`):
  whitespace around a categorical value (each value of a multi-categorical one) is
  stripped, `lowercase` features are lowercased, and the entries of `na_values` are
  missing. Then:

  * categorical: a string (an integer is turned into its decimal string) looked up in
    the feature's `vocabulary` (row 0: missing, the empty string; row 1: any value
    outside the vocabulary; one `StaticHashTable` holds every field's vocabulary, so
    one lookup serves all fields of a batch), or hashed into `num_buckets` rows with
    `Hashing` (plus a row for missing); the id is the row in the fused embedding table
    (`FieldLayout.offsets`);
  * numeric, bucketized (`boundaries`): the id of the bucket of `t(x)` (bucket `i`
    holds `boundaries[i - 1] <= t(x) < boundaries[i]`; a separate row for missing),
    where `t` is `sign(x)·log1p(|x|)` for `log` features and the identity otherwise;
  * multi-categorical: a `delimiter`-separated string, each value's id as above;
  * numeric, standardized: `clip((t(x) - mean) / std, ±clip_value)`, NaN where the
    value is missing (±inf is clipped).

  The ids of the categorical and bucketized features come packed in one int64 tensor
  `IDS` `[batch, fields]` (`FieldLayout.looked_up` order), the standardized numbers in
  one float32 `NUMBERS` `[batch, fields]` (`FieldLayout.standardized` order), and a
  multi-categorical feature's ids as a ragged int64 `[batch, None]` under
  `preprocessed_key(name)`: a training step gathers two tensors, not one per field.

  The preprocessing of a value depends on that value alone, so it can run once per
  distinct value of a column (`dcrnn_tf.data.in_memory.InMemoryRows.preprocessed`).

  Example:

  ```python
  preprocessor = FeaturePreprocessor(
      [{"name": "item", "type": "categorical", "vocabulary": ["a", "b"]},
       {"name": "price", "type": "numeric", "mean": 10.0, "std": 5.0}])
  out = preprocessor({"item": tf.constant([" b", "zzz"]),
                      "price": tf.constant([12.0, float("nan")])})
  assert out[IDS].numpy().tolist() == [[3], [1]]
  assert out[NUMBERS].numpy()[0, 0] == np.float32(0.4)
  ```

  Args:
    features: Prepared `dcrnn_tf.features.Feature`s or their dicts.
    clip_value: Standardized numeric values are clipped to `[-clip_value, clip_value]`.
    na_values: Values that mean missing besides `""` and NaN (`csv.na_values` of the
      feature config); numeric features compare the entries that are numbers.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: Dict from feature name to a `[batch]` (or `[batch, 1]`) tensor: strings or
      integers for categorical features, floats for numeric ones. Extra keys are ignored.

  Returns:
    A dict: `IDS`, `NUMBERS` and `preprocessed_key(name)` of each multi-categorical
    feature (the keys of the kinds of feature there are).
  """

  def __init__(self, features: Sequence[Union[Feature, Mapping[str, Any]]],
               clip_value: float = 10.0, na_values: Sequence[str] = (), **kwargs):
    super().__init__(**kwargs)
    self.features = _features_of(features)
    self.layout = FieldLayout(self.features, "FeaturePreprocessor")
    self.clip_value = float(clip_value)
    self.na_values = tuple(str(v) for v in na_values)
    # Made here, not in `build`, so that the methods below work on an unbuilt layer.
    self.hashing = {f.name: tf.keras.layers.Hashing(f.num_buckets, name=f"hashing_{f.name}")
                    for f in self.features if f.num_buckets is not None}
    self.vocabulary_features = tuple(f for f in self.features
                                     if f.is_categorical and f.num_buckets is None)
    self._field_of = {f.name: i for i, f in enumerate(self.vocabulary_features)}
    self.table = self._vocabulary_table() if self.vocabulary_features else None

  def _field_salts(self, fields: Sequence[Feature]) -> np.ndarray:
    """The int64 that tags each field's keys in `table` (see `_vocabulary_table`)."""
    index = np.array([self._field_of[f.name] for f in fields], np.uint64)
    return (index * _FIELD_SALT).view(np.int64)

  def _table_keys(self, values: tf.Tensor, fields: Sequence[Feature]) -> tf.Tensor:
    """The keys of normalized `values` `[..., len(fields)]` in `table`."""
    return tf.bitwise.bitwise_xor(tf.strings.to_hash_bucket_fast(values, _FINGERPRINTS),
                                  tf.constant(self._field_salts(fields)))

  def _vocabulary_table(self) -> tf.lookup.StaticHashTable:
    """One int64 table for the values of every field with a vocabulary, so that one
    lookup serves all fields at once. The key of the stripped (and, for a `lowercase`
    field, lowercased) value `v` of field `f` is the 64-bit fingerprint of `v`
    (`tf.strings.to_hash_bucket_fast`) xor the field's salt; its value is the row in
    the fused embedding table: `MISSING_ID`'s for `""` and the `na_values`, the
    vocabulary's rows for its values. A value outside the vocabulary is not in the
    table (its field's out-of-vocabulary row).

    Two keys of the table that coincide raise a ValueError here, when the table is
    made; a value outside the vocabulary takes a vocabulary row only if its fingerprint
    equals one of the vocabulary's (a chance of about 2**-63 per value and entry).
    """
    fields = self.vocabulary_features
    with tf.init_scope():  # Eagerly, even while a function is traced.
      na_values = tf.constant(list(self.na_values) or [""])
      missing = {lowercase: [v.decode() for v in normalize_strings(na_values, lowercase).numpy()]
                 for lowercase in (False, True)}
      tokens, rows, token_fields = [], [], []
      for feature in fields:
        offset = self.layout.offsets[feature.name]
        field_missing = sorted({""} | set(missing[feature.lowercase] if self.na_values else ()))
        vocabulary = [(token, offset + OUT_OF_VOCABULARY_ID + 1 + i)
                      for i, token in enumerate(feature.vocabulary)
                      if token not in field_missing]  # A missing value wins, as in the data.
        tokens += field_missing + [token for token, _ in vocabulary]
        rows += [offset + MISSING_ID] * len(field_missing) + [row for _, row in vocabulary]
        token_fields += [feature] * (len(field_missing) + len(vocabulary))
      keys = self._table_keys(tf.constant(tokens, tf.string), token_fields).numpy()
      unique, counts = np.unique(keys, return_counts=True)
      if (counts > 1).any():
        clash = [tokens[i] for i in np.flatnonzero(keys == unique[counts > 1][0])]
        raise ValueError(f"{type(self).__name__}: the values {clash} of the vocabularies "
                         "share a table key; rename one of them.")
      return tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.int64),
                                              tf.constant(rows, tf.int64)),
          default_value=-1)

  def _vocabulary_ids(self, values: tf.Tensor, fields: Sequence[Feature]) -> tf.Tensor:
    """Table rows of `values` `[..., len(fields)]` of vocabulary features (or of one
    field, `[...]` with `fields` of one feature)."""
    oov = tf.constant([self.layout.offsets[f.name] + OUT_OF_VOCABULARY_ID for f in fields],
                      tf.int64)
    if values.dtype != tf.string:
      values = tf.strings.as_string(values)
    values = tf.strings.strip(values)
    lowercase = [f.lowercase for f in fields]
    if all(lowercase):
      values = tf.strings.lower(values, encoding="utf-8")
    elif any(lowercase):
      values = tf.where(tf.constant(lowercase), tf.strings.lower(values, encoding="utf-8"),
                        values)
    if len(fields) == 1:
      values = values[..., tf.newaxis]
    rows = self.table.lookup(self._table_keys(values, fields))
    rows = tf.where(rows < 0, oov, rows)
    return rows[..., 0] if len(fields) == 1 else rows

  def ids(self, feature: Feature, values: tf.Tensor) -> tf.Tensor:
    """Table rows (offset) of categorical values of `feature`, any shape, strings or
    integers."""
    if feature.num_buckets is None:
      return self._vocabulary_ids(values, [feature])
    if values.dtype != tf.string:
      values = tf.strings.as_string(values)
    values = normalize_strings(values, feature.lowercase, self.na_values)
    ids = tf.where(values == "", tf.constant(feature.num_buckets, tf.int64),
                   tf.cast(self.hashing[feature.name](values), tf.int64))
    return ids + self.layout.offsets[feature.name]

  def multi_ids(self, feature: Feature, values: tf.Tensor) -> tf.RaggedTensor:
    """`[batch, None]` table rows of a multi-categorical feature's values."""
    if values.dtype != tf.string:
      values = tf.strings.as_string(values)
    return tf.ragged.map_flat_values(lambda v: self.ids(feature, v),
                                     tf.strings.split(values, feature.delimiter))

  def _numbers(self, features: Sequence[Feature], inputs: Mapping[str, tf.Tensor]):
    """`[batch, len(features)]` numeric values (log-transformed where configured) and
    whether each is missing."""
    values = normalize_numbers(
        tf.stack([tf.cast(inputs[f.name], tf.float32) for f in features], axis=1),
        self.na_values)
    missing = tf.math.is_nan(values)
    log = tf.constant([f.log for f in features])
    return tf.where(log, tf.sign(values) * tf.math.log1p(tf.abs(values)), values), missing

  def categorical_ids(self, inputs: Mapping[str, tf.Tensor]) -> List[tf.Tensor]:
    """`[batch, 1]` table rows of each categorical feature, in `layout.categorical`
    order: the fields with a vocabulary looked up together (integers as their decimal
    strings), hashed fields one by one."""
    columns = {}
    fields = [f for f in self.layout.categorical if f.num_buckets is None]
    if fields:
      as_strings = lambda values: (values if values.dtype == tf.string
                                   else tf.strings.as_string(values))
      rows = self._vocabulary_ids(
          tf.stack([as_strings(inputs[f.name]) for f in fields], axis=1), fields)
      columns.update({f.name: rows[:, i:i + 1] for i, f in enumerate(fields)})
    for feature in self.layout.categorical:
      if feature.num_buckets is not None:
        columns[feature.name] = self.ids(feature, inputs[feature.name])[:, tf.newaxis]
    return [columns[f.name] for f in self.layout.categorical]

  def bucket_ids(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch, bucketized features]` table rows (offset) of the buckets of the
    bucketized features' `[batch]` values in `inputs` (boundaries padded with +inf, and
    +inf itself falls in the last bucket)."""
    bucketized = self.layout.bucketized
    values, missing = self._numbers(bucketized, inputs)
    width = max(len(f.boundaries) for f in bucketized)
    boundaries = tf.constant([list(f.boundaries) + [float("inf")] * (width - len(f.boundaries))
                              for f in bucketized], tf.float32)
    buckets = tf.transpose(tf.searchsorted(
        boundaries, tf.transpose(tf.where(missing, 0.0, values)), side="right",
        out_type=tf.int64))
    buckets = tf.minimum(buckets, [len(f.boundaries) for f in bucketized])
    rows = tf.where(missing, tf.constant(MISSING_ID, tf.int64), buckets + 1)
    return rows + tf.constant([self.layout.offsets[f.name] for f in bucketized], tf.int64)

  def standardized(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch, standardized features]` of the standardized features' `[batch]` values
    in `inputs`, NaN where missing."""
    standardized = self.layout.standardized
    values, missing = self._numbers(standardized, inputs)
    mean = tf.constant([f.mean for f in standardized], tf.float32)
    std = tf.constant([f.std for f in standardized], tf.float32)
    values = tf.clip_by_value((values - mean) / std, -self.clip_value, self.clip_value)
    return tf.where(missing, float("nan"), values)

  def call(self, inputs: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    missing = [f.name for f in self.features if f.name not in inputs]
    if missing:
      raise KeyError(f"{type(self).__name__}: inputs lack the features {missing}.")
    inputs = {f.name: tf.reshape(inputs[f.name], [-1]) for f in self.features}
    layout = self.layout
    out = {}
    ids = self.categorical_ids(inputs)
    if layout.bucketized:
      ids.append(self.bucket_ids(inputs))
    if ids:
      out[IDS] = tf.concat(ids, axis=1)
    if layout.standardized:
      out[NUMBERS] = self.standardized(inputs)
    for feature in layout.multi_categorical:
      out[preprocessed_key(feature.name)] = self.multi_ids(feature, inputs[feature.name])
    return out

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({"features": [f.to_dict() for f in self.features],
                   "clip_value": self.clip_value, "na_values": list(self.na_values)})
    return config


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class FeatureEmbedding(tf.keras.layers.Layer):
  """Preprocessed features (`FeaturePreprocessor`) → one `dim`-vector per field:
  `[batch, fields, dim]`; the trainable part of `FeatureEncoder`.

  * categorical and bucketized: the row of the fused embedding table at the id;
  * multi-categorical: the rows of its ids pooled by `mean` or `sum`;
  * standardized numeric `z`: `z * w + b`, or `b + m` (a learned "missing" vector)
    where `z` is NaN (missing).

  The weights are fused, so that a step does one gather and one sparse update rather
  than one per field: `embedding`, one table `[rows, embedding_dim]` of the categorical,
  multi-categorical and bucketized features, each a block of `field_rows(feature)`
  rows starting at `offsets[feature.name]` (in feature order), and the standardized
  numeric features' `numeric_kernel`, `numeric_bias` and `numeric_missing`, each
  `[numeric features, embedding_dim]` (a row per feature, in feature order). Weights of
  the former layout of one table per field convert with
  `weights_from_per_field_tables`.

  Example:

  ```python
  features = [{"name": "item", "type": "categorical", "vocabulary": ["a", "b"]},
              {"name": "price", "type": "numeric", "mean": 10.0, "std": 5.0}]
  preprocessed = FeaturePreprocessor(features)(
      {"item": tf.constant(["a", "zzz"]), "price": tf.constant([12.0, float("nan")])})
  e = FeatureEmbedding(features, embedding_dim=8)(preprocessed)
  assert e.shape == [2, 2, 8]
  ```

  Args:
    features: Prepared `dcrnn_tf.features.Feature`s or their dicts.
    embedding_dim: Size of each field's embedding.
    embeddings_initializer: Initializer of the embedding table and the numeric kernel
      (an initializer that scales by the fans sees their fused shapes).
    embeddings_regularizer: Optional regularizer of the same weights.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: `FeaturePreprocessor`'s output (other keys are ignored).

  Returns:
    A float tensor `[batch, len(features), embedding_dim]`.
  """

  def __init__(self,
               features: Sequence[Union[Feature, Mapping[str, Any]]],
               embedding_dim: int = 8,
               embeddings_initializer: Union[str, tf.keras.initializers.Initializer] = (
                   "uniform"),
               embeddings_regularizer: Union[str, None,
                                             tf.keras.regularizers.Regularizer] = None,
               **kwargs):
    super().__init__(**kwargs)
    self.features = _features_of(features)
    self.layout = FieldLayout(self.features, type(self).__name__)
    self.offsets = self.layout.offsets
    self.embedding_dim = int(embedding_dim)
    self.embeddings_initializer = tf.keras.initializers.get(embeddings_initializer)
    self.embeddings_regularizer = tf.keras.regularizers.get(embeddings_regularizer)

  def build(self, input_shape):
    if self.layout.tabled:
      self.embedding = self.add_weight(
          name=EMBEDDING, shape=(self.layout.table_rows, self.embedding_dim),
          initializer=fresh(self.embeddings_initializer),
          regularizer=self.embeddings_regularizer)
    if self.layout.standardized:
      shape = (len(self.layout.standardized), self.embedding_dim)
      self.numeric_kernel = self.add_weight(
          name=NUMERIC_KERNEL, shape=shape, initializer=fresh(self.embeddings_initializer),
          regularizer=self.embeddings_regularizer)
      self.numeric_bias = self.add_weight(name=NUMERIC_BIAS, shape=shape,
                                          initializer="zeros")
      self.numeric_missing = self.add_weight(name=NUMERIC_MISSING, shape=shape,
                                             initializer="zeros")
    super().build(input_shape)

  def embed(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch, fields, dim]` of preprocessed features (what `call` returns)."""
    layout = self.layout
    expected = (([IDS] if layout.looked_up else [])
                + ([NUMBERS] if layout.standardized else [])
                + [preprocessed_key(f.name) for f in layout.multi_categorical])
    missing = [key for key in expected if key not in inputs]
    if missing:
      raise KeyError(f"{type(self).__name__}: inputs lack the preprocessed {missing}.")
    groups = []
    if layout.looked_up:
      groups.append(tf.nn.embedding_lookup(self.embedding, inputs[IDS]))
    if layout.multi_categorical:
      groups.append(tf.stack([self._pooled(f, inputs[preprocessed_key(f.name)])
                              for f in layout.multi_categorical], axis=1))
    if layout.standardized:
      values = inputs[NUMBERS]
      missing = tf.math.is_nan(values)
      values = tf.where(missing, 0.0, values)[..., tf.newaxis]
      flag = tf.cast(missing, self.compute_dtype)[..., tf.newaxis]
      groups.append(values * self.numeric_kernel + self.numeric_bias
                    + flag * self.numeric_missing)
    return tf.gather(tf.concat(groups, axis=1), layout.order, axis=1)

  def _pooled(self, feature: Feature, ids: tf.RaggedTensor) -> tf.Tensor:
    """`[batch, dim]`: the pooled embeddings of a multi-categorical feature."""
    vectors = tf.ragged.map_flat_values(tf.nn.embedding_lookup, self.embedding, ids)
    pool = tf.reduce_mean if feature.pooling == "mean" else tf.reduce_sum
    return pool(vectors, axis=1)

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return self.embed(inputs)

  def weights_from_per_field_tables(
      self, tables: Mapping[str, np.ndarray]) -> List[np.ndarray]:
    """The fused weights from the arrays of the former layout of one table per field.

    Until the tables were fused, the encoder kept a weight `embedding_<feature>`
    (`[rows, dim]`, rows as in `field_rows`) for each categorical, multi-categorical or
    bucketized feature, and `numeric_kernel_<feature>`, `numeric_bias_<feature>` and
    `numeric_missing_<feature>` (`[dim]`) for each standardized numeric one.

    Example:

    ```python
    encoder = FeatureEncoder(
        [{"name": "item", "type": "categorical", "vocabulary": ["a", "b"]},
         {"name": "price", "type": "numeric", "mean": 10.0, "std": 5.0}], embedding_dim=2)
    encoder({"item": tf.constant(["a"]), "price": tf.constant([1.0])})
    item_table = np.arange(8.0).reshape(4, 2)      # Rows: missing, unknown, "a", "b".
    encoder.set_weights(encoder.weights_from_per_field_tables(
        {"embedding_item": item_table, "numeric_kernel_price": np.ones(2),
         "numeric_bias_price": np.zeros(2), "numeric_missing_price": np.zeros(2)}))
    e = encoder({"item": tf.constant(["b"]), "price": tf.constant([15.0])})
    np.testing.assert_allclose(e[0], [[6.0, 7.0], [1.0, 1.0]])
    ```

    Args:
      tables: Dict from the former weight names to their values.

    Returns:
      The weights in the order of `self.weights`, for `set_weights`.
    """
    weights = []
    if self.layout.tabled:
      weights.append(np.concatenate([tables[f"{EMBEDDING}_{f.name}"]
                                     for f in self.layout.tabled]))
    if self.layout.standardized:
      weights.extend(np.stack([tables[f"{name}_{f.name}"] for f in self.layout.standardized])
                     for name in NUMERIC_WEIGHTS)
    return weights

  def load_own_variables(self, store):
    """Loads the weights of a `.keras` file; refuses those of the per-field layout (more
    weights than the fused layout's, or vectors `[dim]`)."""
    expected = [tuple(w.shape) for w in self.weights]
    stored = [tuple(store[str(i)].shape) for i in range(len(store.keys()))]
    if len(stored) != len(expected) or any(len(shape) == 1 for shape in stored):
      raise per_field_layout_error(
          f"The {self.name!r} weights being loaded have shapes {stored}, not the fused "
          f"layout's {expected}")
    super().load_own_variables(store)

  def compute_output_shape(self, input_shape):
    batch = next(iter(input_shape.values()))[0] if isinstance(input_shape, dict) else None
    return tf.TensorShape([batch, len(self.features), self.embedding_dim])

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "features": [f.to_dict() for f in self.features],
        "embedding_dim": self.embedding_dim,
        "embeddings_initializer": tf.keras.initializers.serialize(
            self.embeddings_initializer),
        "embeddings_regularizer": tf.keras.regularizers.serialize(
            self.embeddings_regularizer),
    })
    return config


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class FeatureEncoder(FeatureEmbedding):
  """Preprocesses raw features and embeds each as a `dim`-vector: `[batch, fields, dim]`.

  A `FeatureEmbedding` with its `FeaturePreprocessor` (`preprocessor`): all
  preprocessing happens in the graph, so a model that starts with this layer takes raw
  values, and training and serving cannot disagree. Given features that are already
  preprocessed (`FeaturePreprocessor`'s output, as training feeds them) it embeds them
  as they are; the outputs are the same. See the two layers for what is computed; the
  weights are `FeatureEmbedding`'s.

  Features must be prepared (vocabularies, means, boundaries known; see
  `dcrnn_tf.data.scan`).

  Example:

  ```python
  encoder = FeatureEncoder(
      [{"name": "item", "type": "categorical", "vocabulary": ["a", "b"]},
       {"name": "price", "type": "numeric", "mean": 10.0, "std": 5.0}], embedding_dim=8)
  raw = {"item": tf.constant(["a", "zzz"]), "price": tf.constant([12.0, float("nan")])}
  e = encoder(raw)
  assert e.shape == [2, 2, 8]
  np.testing.assert_array_equal(encoder(encoder.preprocessor(raw)), e)
  ```

  Args:
    features: `dcrnn_tf.features.Feature`s or their dicts.
    embedding_dim: Size of each field's embedding.
    clip_value: Standardized numeric values are clipped to `[-clip_value, clip_value]`.
    na_values: Values that mean missing besides `""` and NaN (`csv.na_values` of the
      feature config); numeric features compare the entries that are numbers.
    embeddings_initializer: Initializer of the embedding table and the numeric kernel
      (an initializer that scales by the fans sees their fused shapes).
    embeddings_regularizer: Optional regularizer of the same weights.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: Dict from feature name to a `[batch]` (or `[batch, 1]`) tensor: strings or
      integers for categorical features, floats for numeric ones (extra keys are
      ignored); or the preprocessed features.

  Returns:
    A float tensor `[batch, len(features), embedding_dim]`.
  """

  def __init__(self,
               features: Sequence[Union[Feature, Mapping[str, Any]]],
               embedding_dim: int = 8,
               clip_value: float = 10.0,
               na_values: Sequence[str] = (),
               embeddings_initializer: Union[str, tf.keras.initializers.Initializer] = (
                   "uniform"),
               embeddings_regularizer: Union[str, None,
                                             tf.keras.regularizers.Regularizer] = None,
               **kwargs):
    super().__init__(features, embedding_dim, embeddings_initializer,
                     embeddings_regularizer, **kwargs)
    self.clip_value = float(clip_value)
    self.na_values = tuple(str(v) for v in na_values)
    self.preprocessor = FeaturePreprocessor(self.features, self.clip_value, self.na_values,
                                            name="preprocessor")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    if not is_preprocessed(inputs):
      inputs = self.preprocessor(inputs)
    return self.embed(inputs)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({"clip_value": self.clip_value, "na_values": list(self.na_values)})
    return config
