"""The TF Serving contract of an exported model: signatures, requests, responses.

An export (`dcrnn_tf.saved_model`) has two signatures:

* `serving_default`: input `examples`, a `[batch]` string tensor of serialized
  `tf.Example`s;
* `predict_features`: one `[batch]` input per feature, named as the feature.

The naming rule: a request names every feature by its feature name. A `tf.Example` (the
format of the TFRecord files) may name it by its data column (`column`) instead, and
may carry label and `ignore` columns, which are left unused (`example_keys`). A request
that lacks a feature, names one twice, or carries any other key is refused
(`INVALID_ARGUMENT`); a missing value is sent as a present feature with no value, `""`,
NaN or an `na_values` entry.

Both return one `[batch]` float32 probability per output of the feature config. This
module builds requests for them, as a gRPC `PredictRequest` (`tensorflow-serving-api`)
or a REST JSON body in the "columnar" format (`{"signature_name": ..., "inputs": ...}`),
and sends them. Input dtypes come from `pipeline.feature_tensor_specs` and
`pipeline.example_feature_spec`; values that do not fit are refused here, with the
input's name, before they reach a server.
"""

import base64
import json
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Tuple

import grpc
import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from dcrnn_tf.data.pipeline import example_feature_spec, feature_tensor_specs
from dcrnn_tf.features import FeatureConfig

SERVING_DEFAULT = "serving_default"
PREDICT_FEATURES = "predict_features"
SIGNATURES = (SERVING_DEFAULT, PREDICT_FEATURES)
EXAMPLES = "examples"

Features = Mapping[str, Any]


def example_keys(config: FeatureConfig) -> Dict[str, Tuple[str, ...]]:
  """The keys that may carry each feature in a `tf.Example` request: its data column,
  and its feature name where that differs and is no column of the config."""
  columns = set(config.columns) | set(config.ignore)
  return {f.name: (f.source,) if f.name == f.source or f.name in columns
                  else (f.source, f.name)
          for f in config.features}


def serialize_examples(features: Features, config: FeatureConfig) -> np.ndarray:
  """Serialized `tf.Example`s, one per row of `features`.

  Args:
    features: `[batch]` raw values of every feature, by feature name. Each becomes the
      example feature of its data column, of the column's
      `pipeline.example_feature_spec` dtype; a missing integer id (`""` or None) is the
      column with no value.
    config: The feature config.

  Returns:
    A `[batch]` object array of `bytes`.

  Raises:
    ValueError: On a missing or unknown feature, values that are not a vector, or
      features of different lengths.
    TypeError: On values that do not fit the feature's dtype.
  """
  spec = example_feature_spec(config, with_labels=False)
  _check_feature_names(SERVING_DEFAULT, features, config)
  columns = {f.source: _as_dtype(f.name, features[f.name], spec[f.source].dtype)
             for f in config.features}
  rows = _batch_size(columns)
  # One Example, updated in place for every row (as `pipeline.write_tfrecord` does).
  example = tf.train.Example()
  lists = [(_value_list(example.features.feature[column], spec[column].dtype), values.tolist())
           for column, values in columns.items()]
  serialized = np.empty(rows, dtype=object)
  for i in range(rows):
    for field, values in lists:
      del field[:]
      if values[i] is not None:  # A missing integer id: the column with no value.
        field.append(values[i])
    serialized[i] = example.SerializeToString()
  return serialized


def signature_inputs(signature: str, features: Features,
                     config: FeatureConfig) -> Dict[str, np.ndarray]:
  """The named input arrays of `signature` for a batch of `features`.

  Args:
    signature: `SERVING_DEFAULT` or `PREDICT_FEATURES`.
    features: `[batch]` values of every feature, by feature name.
    config: The feature config.

  Returns:
    Input name to a `[batch]` array of the input's dtype (strings as `bytes`).

  Raises:
    ValueError: On an unknown signature, a missing or unknown feature, values that are
      not a vector, or features of different lengths.
    TypeError: On values that do not fit the feature's dtype.
  """
  if signature == SERVING_DEFAULT:
    return {EXAMPLES: serialize_examples(features, config)}
  if signature != PREDICT_FEATURES:
    raise ValueError(f"Unknown signature {signature!r}; expected one of {SIGNATURES}.")
  specs = feature_tensor_specs(config)
  _check_feature_names(PREDICT_FEATURES, features, config)
  inputs = {name: _as_dtype(name, features[name], spec.dtype) for name, spec in specs.items()}
  _batch_size(inputs)
  return inputs


def build_predict_request(model_name: str, signature: str, features: Features,
                          config: FeatureConfig) -> predict_pb2.PredictRequest:
  """A gRPC `PredictRequest` of `signature` for a batch of `features`.

  See `signature_inputs` for the arguments and errors.
  """
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature
  for name, values in signature_inputs(signature, features, config).items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
  return request


def build_rest_body(signature: str, features: Features,
                    config: FeatureConfig) -> Dict[str, Any]:
  """The JSON body of a REST `:predict` request of `signature`, columnar format.

  Serialized examples, and strings that are not UTF-8 text, are sent Base64-encoded as
  `{"b64": ...}`; a missing numeric value (NaN) as the `NaN` token that TF Serving
  accepts. See `signature_inputs` for the arguments and errors.
  """
  inputs = {}
  for name, values in signature_inputs(signature, features, config).items():
    if values.dtype == object:
      inputs[name] = [_json_string(v, binary=name == EXAMPLES) for v in values]
    else:
      inputs[name] = values.tolist()
  return {"signature_name": signature, "inputs": inputs}


def predict_grpc(server: str, request: predict_pb2.PredictRequest,
                 timeout: float = 10.0) -> Dict[str, np.ndarray]:
  """Sends `request` to TF Serving's gRPC API at `server` (`host:port`).

  Returns:
    Output name to array.

  Raises:
    grpc.RpcError: If the server refuses the request (`INVALID_ARGUMENT` for inputs
      that do not fit the signature) or cannot be reached.
  """
  with grpc.insecure_channel(server) as channel:
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        request, timeout=timeout)
  return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_rest(server: str, model_name: str, body: Dict[str, Any], config: FeatureConfig,
                 timeout: float = 10.0) -> Dict[str, np.ndarray]:
  """POSTs `body` to TF Serving's REST API at `server` (`host:port`).

  Returns:
    Output name to array.

  Raises:
    urllib.error.HTTPError: If the server refuses the request (its JSON `error` is in
      the exception's body).
  """
  request = urllib.request.Request(
      f"http://{server}/v1/models/{model_name}:predict", data=json.dumps(body).encode(),
      headers={"Content-Type": "application/json"}, method="POST")
  with urllib.request.urlopen(request, timeout=timeout) as response:
    outputs = json.load(response)["outputs"]
  if not isinstance(outputs, dict):  # A model with one output gets it unnamed.
    outputs = {config.output_names[0]: outputs}
  return {name: np.asarray(values, np.float32) for name, values in outputs.items()}


def _check_feature_names(signature: str, features: Features, config: FeatureConfig) -> None:
  names = [f.name for f in config.features]
  missing = [name for name in names if name not in features]
  unknown = sorted(set(features) - set(names))
  if missing or unknown:
    raise ValueError(f"{signature} needs exactly the features {names}; missing {missing}, "
                     f"unknown {unknown}.")


def _as_dtype(name: str, values: Any, dtype: tf.DType) -> np.ndarray:
  """`values` as a vector of `dtype` (strings as an object array of `bytes`).

  Integers fit float inputs; nothing else is converted across kinds.
  """
  values = np.asarray(values)
  if values.ndim != 1:
    raise ValueError(f"Input {name!r} must be a [batch] vector, got shape {values.shape}.")
  if dtype == tf.string:  # Integer ids are sent as their decimal strings.
    strings = values.tolist()
    if not all(isinstance(v, (str, bytes, int)) and not isinstance(v, bool) for v in strings):
      raise TypeError(f"Input {name!r} must hold strings (or integer ids), got "
                      f"{values.dtype} values such as {strings[:1]}.")
    return np.array([v if isinstance(v, bytes) else str(v).encode("utf-8") for v in strings],
                    dtype=object)
  if dtype.is_integer and values.dtype.kind in "OSU":
    return np.array([_integer_id(name, v) for v in values.tolist()], dtype=object)
  if dtype.is_integer:
    kinds = "iu"
  elif dtype.is_floating:
    kinds = "iuf"
  else:
    kinds = np.dtype(dtype.as_numpy_dtype).kind
  if values.dtype.kind not in kinds:
    raise TypeError(f"Input {name!r} must hold {dtype.name} values, got {values.dtype} "
                    f"values such as {values[:1].tolist()}.")
  return values.astype(dtype.as_numpy_dtype)


def _integer_id(name: str, value) -> Optional[int]:
  """An integer id given as text (as the input pipeline yields it); None if missing."""
  text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
  if text == "":
    return None
  try:
    return int(text)
  except ValueError:
    raise TypeError(f"Input {name!r} must hold integer ids, got {value!r}.") from None


def _json_string(value: bytes, binary: bool):
  """A string tensor value in TF Serving's JSON: text, or `{"b64": ...}` for bytes."""
  if not binary:
    try:
      return value.decode("utf-8")
    except UnicodeDecodeError:
      pass
  return {"b64": base64.b64encode(value).decode("ascii")}


def _batch_size(columns: Mapping[str, np.ndarray]) -> int:
  sizes = {name: len(values) for name, values in columns.items()}
  if not sizes:
    raise ValueError("No features given.")
  if len(set(sizes.values())) > 1:
    raise ValueError(f"All inputs must have the same batch size, got {sizes}.")
  return next(iter(sizes.values()))


def _value_list(feature: tf.train.Feature, dtype: tf.DType) -> List:
  """The repeated field of a `tf.train.Feature` that holds `dtype` values."""
  if dtype == tf.string:
    return feature.bytes_list.value
  if dtype.is_integer:
    return feature.int64_list.value
  return feature.float_list.value
