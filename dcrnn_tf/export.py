"""SavedModel export with TF Serving signatures."""

import os
import shutil
import time
from typing import Dict, Optional

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.data.pipeline import example_feature_spec, feature_tensor_specs
from dcrnn_tf.features import FeatureConfig

SERVING_DEFAULT = "serving_default"
PREDICT_FEATURES = "predict_features"


def serving_functions(model: tf.keras.Model,
                      feature_config: FeatureConfig) -> Dict[str, tf.types.experimental.ConcreteFunction]:
  """The SavedModel's signatures.

  * `serving_default`: input `examples`, a `[batch]` string tensor of serialized
    `tf.Example`s (missing categorical features count as out-of-vocabulary, missing
    numeric ones as 0).
  * `predict_features`: one `[batch]` input per feature, named as the feature (int64
    ids for categorical features, float32 for numeric ones).

  Both return every output's probabilities `[batch]` under the output's name.
  """
  spec = example_feature_spec(feature_config, with_labels=False)

  def predict(features):
    outputs = model(features, training=False)
    return {name: tf.identity(outputs[name], name=name)
            for name in feature_config.output_names}

  @tf.function
  def from_examples(examples):
    return predict(tf.io.parse_example(examples, spec))

  @tf.function
  def from_features(**features):
    return predict(features)

  return {
      SERVING_DEFAULT: from_examples.get_concrete_function(
          tf.TensorSpec([None], tf.string, name="examples")),
      PREDICT_FEATURES: from_features.get_concrete_function(
          **feature_tensor_specs(feature_config)),
  }


def next_version(export_dir: str) -> int:
  """A version number above every existing one and at least the current Unix time."""
  existing = [int(n) for n in tf.io.gfile.listdir(export_dir) if n.strip("/").isdigit()] \
      if tf.io.gfile.isdir(export_dir) else []
  return max([int(time.time())] + [v + 1 for v in existing])


def export_saved_model(model: tf.keras.Model, feature_config: FeatureConfig,
                       export_dir: str, version: Optional[int] = None) -> str:
  """Writes a SavedModel to `<export_dir>/<version>/` and returns that path.

  The model is written to a temporary directory beside the final one and renamed into
  place, so a reader (TF Serving polling `export_dir`) never sees a half-written
  version.
  """
  os.makedirs(export_dir, exist_ok=True)
  version = next_version(export_dir) if version is None else int(version)
  final = os.path.join(export_dir, str(version))
  if os.path.exists(final):
    raise FileExistsError(f"Export version {final} already exists.")
  temporary = os.path.join(export_dir, f".tmp-{version}")
  shutil.rmtree(temporary, ignore_errors=True)
  tf.saved_model.save(model, temporary, signatures=serving_functions(model, feature_config))
  os.rename(temporary, final)
  return final
