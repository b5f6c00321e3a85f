"""SavedModel export for TF Serving: signatures, versions, warm-up requests."""

import os
import shutil
import time
from typing import Dict, List, Mapping, Optional

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from dcrnn_tf.data.pipeline import feature_tensor_specs, parse_examples
from dcrnn_tf.features import FeatureConfig
from dcrnn_tf.serving import (EXAMPLES, PREDICT_FEATURES, SERVING_DEFAULT, SIGNATURES,
                              build_predict_request, signature_inputs)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_BATCH_SIZES = (1, 8, 64)


def serving_functions(
    model: tf.keras.Model,
    feature_config: FeatureConfig) -> Dict[str, tf.types.experimental.ConcreteFunction]:
  """The SavedModel's signatures.

  * `serving_default`: input `examples`, a `[batch]` string tensor of serialized
    `tf.Example`s of the data's columns, parsed as `pipeline.parse_examples` parses
    data files (a feature left out is missing).
  * `predict_features`: one `[batch]` input per feature, named as the feature, of its
    `pipeline.feature_tensor_specs` dtype (raw values).

  Both return every output's probabilities `[batch]` under the output's name.
  """

  def predict(features):
    outputs = model(features, training=False)
    return {name: tf.identity(outputs[name], name=name)
            for name in feature_config.output_names}

  @tf.function
  def from_examples(examples):
    return predict(parse_examples(examples, feature_config, with_labels=False))

  @tf.function
  def from_features(**features):
    return predict(features)

  return {
      SERVING_DEFAULT: from_examples.get_concrete_function(
          tf.TensorSpec([None], tf.string, name=EXAMPLES)),
      PREDICT_FEATURES: from_features.get_concrete_function(
          **feature_tensor_specs(feature_config)),
  }


def warmup_requests(model_name: str, feature_config: FeatureConfig,
                    features: Optional[Mapping[str, np.ndarray]] = None,
                    ) -> List[prediction_log_pb2.PredictionLog]:
  """TF Serving warm-up records: a request per signature and `WARMUP_BATCH_SIZES` size.

  Args:
    model_name: The model name the requests carry.
    feature_config: The feature config.
    features: Real rows (`[rows]` values of every feature), repeated or cut to each
      batch size; by default, zeros of every feature's dtype (empty strings).

  Raises:
    ValueError, TypeError: If `features` do not fit the config (see
      `serving.signature_inputs`) or hold no row.
  """
  if features is None:
    features = {name: tf.zeros([1], spec.dtype).numpy()
                for name, spec in feature_tensor_specs(feature_config).items()}
  columns = signature_inputs(PREDICT_FEATURES, features, feature_config)
  count = len(next(iter(columns.values())))
  if not count:
    raise ValueError("The warm-up features hold no row.")
  logs = []
  for signature in SIGNATURES:
    for size in WARMUP_BATCH_SIZES:
      rows = {name: values[np.arange(size) % count] for name, values in columns.items()}
      log = prediction_log_pb2.PredictionLog()
      log.predict_log.request.CopyFrom(
          build_predict_request(model_name, signature, rows, feature_config))
      logs.append(log)
  return logs


def next_version(export_dir: str) -> int:
  """A version number above every existing one and at least the current Unix time."""
  existing = [int(n) for n in tf.io.gfile.listdir(export_dir) if n.strip("/").isdigit()] \
      if tf.io.gfile.isdir(export_dir) else []
  return max([int(time.time())] + [v + 1 for v in existing])


def export_saved_model(model: tf.keras.Model, feature_config: FeatureConfig,
                       export_dir: str, version: Optional[int] = None, *,
                       warmup_features: Optional[Mapping[str, np.ndarray]] = None) -> str:
  """Writes a SavedModel with TF Serving warm-up requests to `<export_dir>/<version>/`.

  The version is written to a temporary directory beside the final one (`.tmp-...`,
  a name TF Serving ignores) and renamed into place when complete, so a reader
  (TF Serving polling `export_dir`) never sees half a version; on failure the
  temporary directory is removed, and one left by a killed export is removed by the
  next export.

  Args:
    model: The model to export.
    feature_config: Its feature config.
    export_dir: Parent of the versions; its base name is the model name in the
      warm-up requests.
    version: The version number; by default `next_version(export_dir)`.
    warmup_features: Rows for the warm-up requests (see `warmup_requests`).

  Returns:
    The path of the new version.

  Raises:
    FileExistsError: If the version exists.
  """
  os.makedirs(export_dir, exist_ok=True)
  version = next_version(export_dir) if version is None else int(version)
  final = os.path.join(export_dir, str(version))
  if os.path.exists(final):
    raise FileExistsError(f"Export version {final} already exists.")
  model_name = os.path.basename(os.path.normpath(export_dir))
  warmup = warmup_requests(model_name, feature_config, warmup_features)
  for name in os.listdir(export_dir):  # Left by an export that was killed.
    if name.startswith(".tmp-"):
      shutil.rmtree(os.path.join(export_dir, name), ignore_errors=True)
  temporary = os.path.join(export_dir, f".tmp-{version}")
  try:
    tf.saved_model.save(model, temporary,
                        signatures=serving_functions(model, feature_config))
    write_warmup_requests(temporary, warmup)
    os.rename(temporary, final)
  finally:
    shutil.rmtree(temporary, ignore_errors=True)
  return final


def write_warmup_requests(saved_model_dir: str,
                          logs: List[prediction_log_pb2.PredictionLog]) -> None:
  """Writes `logs` to the SavedModel's `assets.extra/tf_serving_warmup_requests`."""
  path = os.path.join(saved_model_dir, WARMUP_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for log in logs:
      writer.write(log.SerializeToString())
