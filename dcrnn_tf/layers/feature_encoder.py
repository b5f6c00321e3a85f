"""FeatureEncoder: named raw features → one embedding per field."""

from typing import Any, Dict, Mapping, Sequence, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import CATEGORICAL, Feature
from dcrnn_tf.layers._initializers import fresh


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class FeatureEncoder(tf.keras.layers.Layer):
  """Embeds every feature as a `dim`-vector and stacks them as `[batch, fields, dim]`.

  A categorical feature with `vocab_size` V looks its id up in a `[V + 1, dim]` table;
  ids outside `[0, V)` (missing, negative, unseen) share the extra row V. A numeric
  feature x becomes `x * w_f + b_f` with its own `w_f`, `b_f` of size `dim` (a
  per-field projection). Fields keep the order of `features`.

  Example:

  ```python
  encoder = FeatureEncoder(
      [{"name": "item", "type": "categorical", "vocab_size": 100},
       {"name": "price", "type": "numeric"}], embedding_dim=8)
  e = encoder({"item": tf.constant([3, 7]), "price": tf.constant([0.5, 2.0])})
  # e.shape == [2, 2, 8]
  ```

  Args:
    features: `dcrnn_tf.features.Feature`s or their dicts
      (`{"name", "type", "vocab_size"}`).
    embedding_dim: Size of each field's embedding.
    embeddings_initializer: Initializer of embedding tables and numeric projections.
    embeddings_regularizer: Optional regularizer of the same weights.
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: Dict from feature name to a `[batch]` (or `[batch, 1]`) tensor: integer ids
      for categorical features, floats for numeric ones. Extra keys are ignored.

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
    self.features = tuple(f if isinstance(f, Feature) else Feature(**f) for f in features)
    if not self.features:
      raise ValueError("FeatureEncoder needs at least one feature.")
    self.embedding_dim = int(embedding_dim)
    self.embeddings_initializer = tf.keras.initializers.get(embeddings_initializer)
    self.embeddings_regularizer = tf.keras.regularizers.get(embeddings_regularizer)

  def build(self, input_shape):
    self.tables = {}
    self.numeric_kernels = {}
    self.numeric_biases = {}
    for feature in self.features:
      if feature.type == CATEGORICAL:
        self.tables[feature.name] = self.add_weight(
            name=f"embedding_{feature.name}",
            shape=(feature.vocab_size + 1, self.embedding_dim),
            initializer=fresh(self.embeddings_initializer),
            regularizer=self.embeddings_regularizer)
      else:
        self.numeric_kernels[feature.name] = self.add_weight(
            name=f"numeric_kernel_{feature.name}",
            shape=(self.embedding_dim,),
            initializer=fresh(self.embeddings_initializer),
            regularizer=self.embeddings_regularizer)
        self.numeric_biases[feature.name] = self.add_weight(
            name=f"numeric_bias_{feature.name}",
            shape=(self.embedding_dim,),
            initializer="zeros")
    super().build(input_shape)

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    missing = [f.name for f in self.features if f.name not in inputs]
    if missing:
      raise KeyError(f"FeatureEncoder: inputs lack the features {missing}.")
    fields = []
    for feature in self.features:
      value = tf.reshape(inputs[feature.name], [-1])
      if feature.type == CATEGORICAL:
        ids = tf.cast(value, tf.int64)
        oov = tf.constant(feature.vocab_size, tf.int64)
        ids = tf.where((ids < 0) | (ids >= oov), oov, ids)
        fields.append(tf.nn.embedding_lookup(self.tables[feature.name], ids))
      else:
        value = tf.cast(value, self.compute_dtype)[:, tf.newaxis]
        fields.append(value * self.numeric_kernels[feature.name]
                      + self.numeric_biases[feature.name])
    return tf.stack(fields, axis=1)

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
