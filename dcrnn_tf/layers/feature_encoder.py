"""FeatureEncoder: raw named features → preprocessing in the graph → one embedding per field."""

from typing import Any, Dict, Mapping, Sequence, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import CATEGORICAL, MULTI_CATEGORICAL, Feature
from dcrnn_tf.layers._initializers import fresh

MISSING_ID = 0       # Row of a missing categorical value (and of a missing bucket).
OUT_OF_VOCABULARY_ID = 1


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class FeatureEncoder(tf.keras.layers.Layer):
  """Preprocesses raw features and embeds each as a `dim`-vector: `[batch, fields, dim]`.

  All preprocessing happens in the graph, so a model that starts with this layer takes
  raw values, and training and serving cannot disagree:

  * categorical (`type="categorical"`): a string (an integer is turned into its decimal
    string) looked up in the feature's `vocabulary` with a `StringLookup` (row 0: missing,
    the empty string; row 1: any value outside the vocabulary), or hashed into
    `num_buckets` rows with `Hashing` (plus a row for missing);
  * multi-categorical: a `delimiter`-separated string, each value looked up as above,
    embeddings pooled by `mean` or `sum`;
  * numeric, standardized: `clip((t(x) - mean) / std, ±clip_value) * w + b`, where
    `t` is `sign(x)·log1p(|x|)` for `log` features and the identity otherwise; a missing
    value (NaN) counts as the mean and adds a learned "missing" vector; ±inf is clipped;
  * numeric, bucketized (`boundaries`): a `Discretization` bucket's embedding, with a
    separate row for missing.

  Features must be prepared (vocabularies, means, boundaries known; see
  `dcrnn_tf.data.scan`).

  Example:

  ```python
  encoder = FeatureEncoder(
      [{"name": "item", "type": "categorical", "vocabulary": ["a", "b"]},
       {"name": "price", "type": "numeric", "mean": 10.0, "std": 5.0}], embedding_dim=8)
  e = encoder({"item": tf.constant(["a", "zzz"]), "price": tf.constant([12.0, float("nan")])})
  # e.shape == [2, 2, 8]
  ```

  Args:
    features: `dcrnn_tf.features.Feature`s or their dicts.
    embedding_dim: Size of each field's embedding.
    clip_value: Standardized numeric values are clipped to `[-clip_value, clip_value]`.
    embeddings_initializer: Initializer of embedding tables and numeric projections.
    embeddings_regularizer: Optional regularizer of the same weights.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: Dict from feature name to a `[batch]` (or `[batch, 1]`) tensor: strings or
      integers for categorical features, floats for numeric ones. Extra keys are ignored.

  Returns:
    A float tensor `[batch, len(features), embedding_dim]`.
  """

  def __init__(self,
               features: Sequence[Union[Feature, Mapping[str, Any]]],
               embedding_dim: int = 8,
               clip_value: float = 10.0,
               embeddings_initializer: Union[str, tf.keras.initializers.Initializer] = (
                   "uniform"),
               embeddings_regularizer: Union[str, None,
                                             tf.keras.regularizers.Regularizer] = None,
               **kwargs):
    super().__init__(**kwargs)
    self.features = tuple(f if isinstance(f, Feature) else Feature(**f) for f in features)
    if not self.features:
      raise ValueError("FeatureEncoder needs at least one feature.")
    unprepared = [f.name for f in self.features if f.needs_statistics]
    if unprepared:
      raise ValueError(f"FeatureEncoder: features {unprepared} lack their vocabulary, "
                       "mean/std or boundaries; prepare the feature config from training "
                       "data first (python -m dcrnn_tf.main --mode=prepare).")
    self.embedding_dim = int(embedding_dim)
    self.clip_value = float(clip_value)
    self.embeddings_initializer = tf.keras.initializers.get(embeddings_initializer)
    self.embeddings_regularizer = tf.keras.regularizers.get(embeddings_regularizer)

  def _table(self, name: str, rows: int) -> tf.Variable:
    return self.add_weight(name=name, shape=(rows, self.embedding_dim),
                           initializer=fresh(self.embeddings_initializer),
                           regularizer=self.embeddings_regularizer)

  def build(self, input_shape):
    self.lookups = {}
    self.tables = {}
    self.numeric_kernels = {}
    self.numeric_biases = {}
    self.missing_embeddings = {}
    for feature in self.features:
      name = feature.name
      if feature.is_categorical:
        if feature.num_buckets is not None:
          self.lookups[name] = tf.keras.layers.Hashing(feature.num_buckets,
                                                       name=f"hashing_{name}")
          rows = feature.num_buckets + 1
        else:
          self.lookups[name] = tf.keras.layers.StringLookup(
              vocabulary=list(feature.vocabulary) or None, mask_token="", num_oov_indices=1,
              name=f"lookup_{name}")
          rows = len(feature.vocabulary) + 2
        self.tables[name] = self._table(f"embedding_{name}", rows)
      elif feature.boundaries is not None:
        self.lookups[name] = tf.keras.layers.Discretization(
            bin_boundaries=list(feature.boundaries), name=f"buckets_{name}")
        self.tables[name] = self._table(f"embedding_{name}", len(feature.boundaries) + 2)
      else:
        self.numeric_kernels[name] = self.add_weight(
            name=f"numeric_kernel_{name}", shape=(self.embedding_dim,),
            initializer=fresh(self.embeddings_initializer),
            regularizer=self.embeddings_regularizer)
        self.numeric_biases[name] = self.add_weight(
            name=f"numeric_bias_{name}", shape=(self.embedding_dim,), initializer="zeros")
        self.missing_embeddings[name] = self.add_weight(
            name=f"numeric_missing_{name}", shape=(self.embedding_dim,), initializer="zeros")
    super().build(input_shape)

  def _ids(self, feature: Feature, values: tf.Tensor) -> tf.Tensor:
    """Row ids of categorical values (any shape, strings or integers)."""
    if values.dtype != tf.string:
      values = tf.strings.as_string(values)
    ids = self.lookups[feature.name](values)
    if feature.num_buckets is not None:
      ids = tf.where(values == "", tf.constant(feature.num_buckets, ids.dtype), ids)
    return ids

  def _numeric(self, feature: Feature, value: tf.Tensor) -> tf.Tensor:
    value = tf.cast(value, tf.float32)
    missing = tf.math.is_nan(value)
    if feature.log:
      value = tf.sign(value) * tf.math.log1p(tf.abs(value))
    if feature.boundaries is not None:
      ids = tf.cast(self.lookups[feature.name](tf.where(missing, 0.0, value)), tf.int64) + 1
      ids = tf.where(missing, tf.constant(MISSING_ID, tf.int64), ids)
      return tf.nn.embedding_lookup(self.tables[feature.name], ids)
    standardized = tf.clip_by_value((value - feature.mean) / feature.std,
                                    -self.clip_value, self.clip_value)
    standardized = tf.where(missing, 0.0, standardized)[:, tf.newaxis]
    flag = tf.cast(missing, self.compute_dtype)[:, tf.newaxis]
    return (standardized * self.numeric_kernels[feature.name]
            + self.numeric_biases[feature.name]
            + flag * self.missing_embeddings[feature.name])

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    missing = [f.name for f in self.features if f.name not in inputs]
    if missing:
      raise KeyError(f"FeatureEncoder: inputs lack the features {missing}.")
    fields = []
    for feature in self.features:
      value = tf.reshape(inputs[feature.name], [-1])
      if feature.type == CATEGORICAL:
        fields.append(tf.nn.embedding_lookup(self.tables[feature.name],
                                             self._ids(feature, value)))
      elif feature.type == MULTI_CATEGORICAL:
        if value.dtype != tf.string:
          value = tf.strings.as_string(value)
        ids = tf.ragged.map_flat_values(lambda v, f=feature: self._ids(f, v),
                                        tf.strings.split(value, feature.delimiter))
        vectors = tf.ragged.map_flat_values(tf.nn.embedding_lookup,
                                            self.tables[feature.name], ids)
        pool = tf.reduce_mean if feature.pooling == "mean" else tf.reduce_sum
        fields.append(pool(vectors, axis=1))
      else:
        fields.append(self._numeric(feature, value))
    return tf.stack(fields, axis=1)

  def compute_output_shape(self, input_shape):
    batch = next(iter(input_shape.values()))[0] if isinstance(input_shape, dict) else None
    return tf.TensorShape([batch, len(self.features), self.embedding_dim])

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "features": [f.to_dict() for f in self.features],
        "embedding_dim": self.embedding_dim,
        "clip_value": self.clip_value,
        "embeddings_initializer": tf.keras.initializers.serialize(
            self.embeddings_initializer),
        "embeddings_regularizer": tf.keras.regularizers.serialize(
            self.embeddings_regularizer),
    })
    return config
