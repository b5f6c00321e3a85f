"""SavedModel export for TF Serving: signatures, versions, warm-up requests."""

import os
import shutil
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from dcrnn_tf.data.pipeline import example_feature_spec, feature_tensor_specs, feature_values
from dcrnn_tf.features import MULTI_CATEGORICAL, FeatureConfig
from dcrnn_tf.serving import (EXAMPLES, PREDICT_FEATURES, SERVING_DEFAULT, SIGNATURES,
                              build_predict_request, example_keys, signature_inputs)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_BATCH_SIZES = (1, 8, 64)
# Key fingerprints are taken in [0, 2**62).
_FINGERPRINT_RANGE = 2 ** 62


def example_entries(serialized: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """The feature entries (serialized `Features.FeatureEntry`s, `[batch, most entries]`,
  padded with `""`) of each serialized `tf.Example` and how many each carries
  (`[batch]`), decoded with the stock `DecodeProtoV2` op (`tf.io.parse_example` cannot
  tell an absent key from a key with no value). The op refuses an empty input, so one
  empty message (a valid `tf.Example`) is decoded after the batch and dropped."""
  padded = tf.concat([serialized, [""]], axis=0)
  features = tf.io.decode_proto(padded, "tensorflow.Example", ["features"],
                                [tf.string]).values[0]
  features = tf.strings.reduce_join(features, axis=1)  # [batch]: one message or none.
  sizes, (entries,) = tf.io.decode_proto(features, "tensorflow.Features", ["feature"],
                                         [tf.string])
  return entries[:-1], sizes[:-1, 0]


def entry_keys(entries: tf.Tensor) -> tf.Tensor:
  """The keys `[n]` of feature entries `[n]` (`example_entries`)."""
  keys = tf.io.decode_proto(tf.concat([entries, [""]], axis=0),
                            "tensorflow.Features.FeatureEntry", ["key"], [tf.string])
  return tf.strings.reduce_join(keys.values[0], axis=1)[:-1]


def entry_key_fingerprints(entries: tf.Tensor) -> tf.Tensor:
  """The fingerprints (`tf.strings.to_hash_bucket_fast` into `[0, 2**62)`) of the keys
  of feature entries of any shape (a padding entry's means nothing)."""
  def fingerprints():
    keys = tf.io.decode_proto(entries, "tensorflow.Features.FeatureEntry", ["key"],
                              [tf.string]).values[0]  # [..., 1], or [..., 0]: no key.
    return tf.reduce_sum(tf.strings.to_hash_bucket_fast(keys, _FINGERPRINT_RANGE), axis=-1)
  # The op refuses an empty input.
  return tf.cond(tf.size(entries) > 0, fingerprints,
                 lambda: tf.zeros(tf.shape(entries), tf.int64))


def _carried_keys(entries: tf.Tensor, sizes: tf.Tensor, allowed: Sequence[str],
                  keys: Sequence[str]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Which keys the examples of `example_entries` carry.

  Returns:
    `present` (`[batch, len(keys)]`: whether example b carries `keys[k]`, one of
    `allowed`) and `unknown` (`[batch, most entries]`: whether the entry carries a key
    not in `allowed`).
  """
  # The known keys sorted by fingerprint: a key's slot is a binary search away.
  with tf.init_scope():  # Eagerly, while a function is traced.
    fingerprints = tf.strings.to_hash_bucket_fast(allowed, _FINGERPRINT_RANGE).numpy()
  if len(set(fingerprints)) < len(allowed):
    raise ValueError(f"Two of the request keys {allowed} share a fingerprint; rename one.")
  order = np.argsort(fingerprints)
  known_fingerprints = tf.constant(fingerprints[order])
  carried_fingerprints = entry_key_fingerprints(entries)
  slots = tf.minimum(tf.searchsorted(known_fingerprints, tf.reshape(carried_fingerprints, [-1]),
                                     out_type=tf.int32), len(allowed) - 1)
  slots = tf.reshape(slots, tf.shape(entries))
  carried = tf.sequence_mask(sizes, tf.shape(entries)[1])
  known = tf.gather(known_fingerprints, slots) == carried_fingerprints
  batch = tf.shape(entries, out_type=tf.int32)[0]
  cells = tf.where(carried & known, tf.range(batch)[:, tf.newaxis] * len(allowed) + slots,
                   batch * len(allowed))  # The last cell takes the rest.
  present = tf.reshape(tf.math.unsorted_segment_sum(
      tf.ones_like(cells), cells, batch * len(allowed) + 1)[:-1], [batch, len(allowed)]) > 0
  slot_of = {allowed[i]: slot for slot, i in enumerate(order)}
  return (tf.gather(present, [slot_of[key] for key in keys], axis=1),
          carried & tf.logical_not(known))


def _first(bad: tf.Tensor) -> tf.Tensor:
  """The index of the first true value of `bad` `[n]` (0 if none)."""
  return tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)


def parse_request_examples(serialized: tf.Tensor,
                           feature_config: FeatureConfig) -> Dict[str, tf.Tensor]:
  """The model inputs of a `serving_default` request, with its keys checked.

  Each feature may be keyed by its data column or its name (`serving.example_keys`);
  label, weight and `ignore` columns are allowed and unused. An example that lacks a feature,
  carries one under both keys, carries any other key, or holds two or more values of a
  single-valued feature fails the request with an InvalidArgumentError naming the
  example and the key (the first failing check of the first example that fails it:
  unknown keys, then each feature in the config's order).

  The checks run on the whole batch at once, and the message is only built for a
  request that fails. Keys are compared by their 62-bit fingerprints
  (`entry_key_fingerprints`): an unknown key passes for a known one only if their
  fingerprints coincide, a chance of about 2**-62 per key.
  """
  feature_keys = example_keys(feature_config)
  column_spec = example_feature_spec(feature_config, with_labels=False)
  parsed = tf.io.parse_example(serialized, {
      key: column_spec[feature.source] for feature in feature_config.features
      for key in feature_keys[feature.name]})
  # Keys are checked once the examples parse, so a record that is no tf.Example (or a
  # value of the wrong type) fails with the parser's error.
  with tf.control_dependencies([values.flat_values for values in parsed.values()]):
    entries, sizes = example_entries(serialized)
  allowed = sorted({k for ks in feature_keys.values() for k in ks}
                   | set(feature_config.columns) | set(feature_config.ignore))
  features = feature_config.features
  first_keys = [feature_keys[f.name][0] for f in features]
  last_keys = [feature_keys[f.name][-1] for f in features]
  key_lengths = {key: values.row_lengths() for key, values in parsed.items()}
  # When each example's entries are as many as its feature keys with values (most
  # requests: no key without a value, no label, no unknown key), the keys need no
  # decoding; otherwise they are decoded and compared.
  with_values = tf.add_n([tf.cast(lengths > 0, tf.int32) for lengths in key_lengths.values()])

  def from_values():
    return (tf.stack([key_lengths[key] > 0 for key in first_keys + last_keys], axis=1),
            tf.zeros(tf.shape(entries), tf.bool))

  present, unknown = tf.cond(
      tf.reduce_all(sizes == with_values), from_values,
      lambda: _carried_keys(entries, sizes, allowed, first_keys + last_keys))
  by_first, by_last = present[:, :len(features)], present[:, len(features):]
  lengths = tf.stack([sum(key_lengths[key] for key in feature_keys[f.name])
                      for f in features], axis=1)
  two_keys = tf.constant([len(feature_keys[f.name]) == 2 for f in features])
  single = tf.constant([f.type != MULTI_CATEGORICAL for f in features])
  # One column per check, in the order they are reported.
  bad = tf.concat([
      tf.reduce_any(unknown, axis=1, keepdims=True),
      tf.reshape(tf.stack([tf.logical_not(by_first | by_last),
                           by_first & by_last & two_keys,
                           (lengths > 1) & single], axis=2), [-1, 3 * len(features)])],
      axis=1)
  openings, endings = [], []
  for feature in features:
    either = " or ".join(f"`{key}`" for key in feature_keys[feature.name])
    openings += [f"lacks the feature `{feature.name}` (key {either}; send a missing value "
                 "as the key with no value, an empty string or NaN)",
                 f"carries the feature `{feature.name}` twice, as {either}", "holds "]
    endings += ["", "", f" values of the feature `{feature.name}`, expected at most 1"]
  openings = tf.constant(["has unknown keys `"] + openings)
  endings = tf.constant(
      [f"` (known keys: {', '.join(f'`{key}`' for key in allowed)})"] + endings)

  def message():
    column = _first(tf.reduce_any(bad, axis=0))
    example = _first(bad[:, column])
    feature = tf.maximum(column - 1, 0) // 3
    details = tf.stack([
        tf.strings.reduce_join(entry_keys(tf.boolean_mask(entries[example],
                                                          unknown[example])),
                               separator="`, `"),
        tf.strings.as_string(lengths[example, feature]), ""])
    detail = details[tf.where(column == 0, 0, tf.where(column % 3 == 0, 1, 2))]
    return tf.strings.join([f"{SERVING_DEFAULT}: example ", tf.strings.as_string(example),
                            " ", openings[column], detail, endings[column]])

  failed = tf.reduce_any(bad)
  tf.debugging.Assert(tf.logical_not(failed),
                      [tf.cond(failed, message, lambda: tf.constant(""))])
  columns = {}
  for feature in features:
    columns[feature.source] = tf.concat(
        [parsed[key] for key in feature_keys[feature.name]], axis=1)
  return feature_values(columns, feature_config)


def serving_functions(
    model: tf.keras.Model,
    feature_config: FeatureConfig) -> Dict[str, tf.types.experimental.ConcreteFunction]:
  """The SavedModel's signatures.

  * `serving_default`: input `examples`, a `[batch]` string tensor of serialized
    `tf.Example`s, each feature keyed by its data column or its name
    (`parse_request_examples`: every feature is needed, other keys are refused).
  * `predict_features`: one `[batch]` input per feature, named as the feature, of its
    `pipeline.feature_tensor_specs` dtype (raw values).

  Both return every output's predictions `[batch]` (probabilities; a regression task's
  number in its label's units) under the output's name. The model
  normalizes the raw values of both in its graph, as it does those of the data files.
  """

  def predict(features):
    outputs = model(features, training=False)
    return {name: tf.identity(outputs[name], name=name)
            for name in feature_config.output_names}

  @tf.function
  def from_examples(examples):
    return predict(parse_request_examples(examples, feature_config))

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
    # Keras' SavedModel with the signatures, without the traced call function of every
    # layer (`save_traces=False`): TF Serving and `tf.saved_model.load` read the
    # signatures only, and tracing each layer took two thirds of the export's time.
    model.save(temporary, save_format="tf", include_optimizer=False, save_traces=False,
               signatures=serving_functions(model, feature_config))
    write_warmup_requests(temporary, warmup)
    os.rename(temporary, final)
  finally:
    shutil.rmtree(temporary, ignore_errors=True)
  return final


def remove_old_versions(export_dir: str, keep: int) -> List[str]:
  """Removes all but the newest `keep` versions of `export_dir` (0 keeps all), as TF
  Serving's model servers do by convention; returns the removed paths."""
  versions = sorted((int(n) for n in os.listdir(export_dir) if n.isdigit()), reverse=True)
  removed = [os.path.join(export_dir, str(v)) for v in versions[keep:]] if keep > 0 else []
  for path in removed:
    shutil.rmtree(path)
  return removed


def write_warmup_requests(saved_model_dir: str,
                          logs: List[prediction_log_pb2.PredictionLog]) -> None:
  """Writes `logs` to the SavedModel's `assets.extra/tf_serving_warmup_requests`."""
  path = os.path.join(saved_model_dir, WARMUP_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for log in logs:
      writer.write(log.SerializeToString())
