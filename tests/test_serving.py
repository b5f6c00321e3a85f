"""The TF Serving contract of an export, checked without TF Serving.

TF Serving cannot be installed here, so: requests built by the client run in a process
that imports only TensorFlow; `saved_model_cli` (TF Serving's session path) shows and
runs the signatures; every op is a stock TensorFlow op; bad requests raise errors; the
client talks gRPC and REST to a stand-in server; the server configs parse.
"""

import base64
import concurrent.futures
import http.server
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import threading

import grpc
import numpy as np
import pandas as pd
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from conftest import funnel_config, random_features
from dcrnn_tf import saved_model
from dcrnn_tf import serving
from dcrnn_tf.data.pipeline import feature_tensor_specs
from dcrnn_tf.models import DCRNN

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUTS = ["ctcvr", "ctr", "cvr"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  config = funnel_config()
  tmp = tmp_path_factory.mktemp("serving")
  model = DCRNN(config, shared_units=8, private_units=4, tower_units=(8,))
  features = random_features(config, 16, seed=3)
  features["item"][:2] = ["unseen", ""]      # out of vocabulary, missing
  features["price"][2] = np.nan              # missing
  expected = {k: v.numpy() for k, v in model(features).items()}
  path = saved_model.export_saved_model(model, config, str(tmp / "dcrnn"))
  return {"config": config, "features": features, "expected": expected, "path": path,
          "loaded": tf.saved_model.load(path), "tmp": tmp}


def assert_expected(served, outputs, rows=slice(None)):
  assert sorted(outputs) == OUTPUTS
  for name in OUTPUTS:
    np.testing.assert_allclose(outputs[name], served["expected"][name][rows],
                               rtol=1e-5, atol=1e-7)


def python(*args, **kwargs):
  """Runs Python in a fresh process, without the Keras selection and the log level of
  this one (as a user runs it)."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
  return subprocess.run([sys.executable, *args], check=True, capture_output=True, text=True,
                        env=env, cwd=str(ROOT), **kwargs)


@pytest.mark.slow
def test_client_requests_run_in_a_process_with_only_tensorflow(served):
  requests = {}
  for signature in serving.SIGNATURES:
    request = serving.build_predict_request("dcrnn", signature, served["features"],
                                            served["config"])
    assert request.model_spec.name == "dcrnn"
    requests[signature] = {name: base64.b64encode(proto.SerializeToString()).decode()
                           for name, proto in request.inputs.items()}
  script = textwrap.dedent("""
      import base64, json, os, sys
      import tensorflow as tf
      from tensorflow.core.framework import tensor_pb2
      from tensorflow.core.protobuf import saved_model_pb2
      from tensorflow.python.framework import op_def_registry
      path, requests = sys.argv[1], json.loads(sys.argv[2])
      loaded = tf.saved_model.load(path)
      result = {"outputs": {}}
      for signature, inputs in requests.items():
        tensors = {name: tf.make_ndarray(tensor_pb2.TensorProto.FromString(
            base64.b64decode(proto))) for name, proto in inputs.items()}
        result["outputs"][signature] = {
            k: v.numpy().tolist() for k, v in loaded.signatures[signature](**tensors).items()}
      saved_model = saved_model_pb2.SavedModel.FromString(
          open(os.path.join(path, "saved_model.pb"), "rb").read())
      ops, functions = set(), set()
      for graph in (m.graph_def for m in saved_model.meta_graphs):
        functions |= {f.signature.name for f in graph.library.function}
        ops |= {node.op for node in graph.node}
        ops |= {node.op for f in graph.library.function for node in f.node_def}
      result["ops"] = sorted(ops - functions)
      result["unregistered"] = [op for op in result["ops"]
                                if op_def_registry.get(op) is None or
                                not hasattr(tf.raw_ops, op)]
      result["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in
                                 ("dcrnn_tf", "tf_keras", "tensorflow_serving"))
      print(json.dumps(result))
  """)
  result = json.loads(python("-c", script, served["path"], json.dumps(requests)).stdout)
  assert result["modules"] == []
  for signature in serving.SIGNATURES:
    assert_expected(served, result["outputs"][signature])
  assert {"ParseExampleV2", "MatMul", "StatefulPartitionedCall"} <= set(result["ops"])
  assert result["unregistered"] == []


def saved_model_cli(*args):
  return python("-m", "tensorflow.python.tools.saved_model_cli", *args).stdout


@pytest.mark.slow
def test_saved_model_cli_shows_the_documented_signatures(served):
  shown = saved_model_cli("show", "--dir", served["path"], "--all")
  shown = shown.split("Concrete Functions:")[0]
  signatures = {}
  for block in shown.split("signature_def['")[1:]:
    name = block.split("'")[0]
    tensors = re.findall(r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+"
                         r"shape: \(([^)]*)\)", block)
    signatures[name] = {kind: {key: (dtype, shape) for k, key, dtype, shape in tensors
                               if k == kind} for kind in ("inputs", "outputs")}
    if name in serving.SIGNATURES:
      assert "Method name is: tensorflow/serving/predict" in block
  assert sorted(signatures) == ["__saved_model_init_op", *sorted(serving.SIGNATURES)]
  outputs = {name: ("DT_FLOAT", "-1") for name in OUTPUTS}
  assert signatures[serving.SERVING_DEFAULT] == {
      "inputs": {"examples": ("DT_STRING", "-1")}, "outputs": outputs}
  assert signatures[serving.PREDICT_FEATURES] == {
      "inputs": {name: (types_pb2.DataType.Name(spec.dtype.as_datatype_enum), "-1")
                 for name, spec in feature_tensor_specs(served["config"]).items()},
      "outputs": outputs}


@pytest.mark.slow
def test_saved_model_cli_runs_both_signatures(served):
  config, features, tmp = served["config"], served["features"], served["tmp"]
  rows = slice(3, 6)
  columns = serving.signature_inputs(serving.PREDICT_FEATURES,
                                     {k: v[rows] for k, v in features.items()}, config)
  examples = [{name: [values[i].decode() if values.dtype == object else values[i].item()]
               for name, values in columns.items()} for i in range(3)]
  saved_model_cli("run", "--dir", served["path"], "--tag_set", "serve", "--signature_def",
                  serving.SERVING_DEFAULT, "--outdir", str(tmp / "cli_examples"),
                  "--input_examples", f"examples={json.dumps(examples)}")
  assert_expected(served, {name: np.load(tmp / "cli_examples" / f"{name}.npy")
                           for name in OUTPUTS}, rows)
  inputs = serving.signature_inputs(serving.PREDICT_FEATURES, features, config)
  np.savez(tmp / "inputs.npz", **inputs)
  saved_model_cli("run", "--dir", served["path"], "--tag_set", "serve", "--signature_def",
                  serving.PREDICT_FEATURES, "--outdir", str(tmp / "cli_features"),
                  "--inputs", ";".join(f"{name}={tmp / 'inputs.npz'}[{name}]"
                                       for name in inputs))
  assert_expected(served, {name: np.load(tmp / "cli_features" / f"{name}.npy")
                           for name in OUTPUTS})


def test_bad_requests_raise_errors_that_name_the_input(served):
  config, features, loaded = served["config"], served["features"], served["loaded"]
  by_features = loaded.signatures[serving.PREDICT_FEATURES]
  good = {name: tf.constant(values) for name, values in
          serving.signature_inputs(serving.PREDICT_FEATURES, features, config).items()}
  with pytest.raises(TypeError, match="missing a required argument: 'user'"):
    by_features(**{k: v for k, v in good.items() if k != "user"})
  with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
    by_features(colour=good["price"], **good)
  # A tensor of the wrong dtype is refused by position in the signature's inputs.
  position = [t.name.split(":")[0] for t in by_features.inputs].index("item")
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f"input #{position}.*expected to be a string tensor but is a "
                           "float tensor"):
    by_features(**{**good, "item": tf.constant([1.0] * 16)})
  # The client refuses such values before sending, naming the input.
  with pytest.raises(TypeError, match="Input 'price' must hold float32 values"):
    serving.build_predict_request("dcrnn", serving.PREDICT_FEATURES,
                                  {**features, "price": np.array(["cheap"] * 16)}, config)
  with pytest.raises(ValueError, match="missing \\['user'\\]"):
    serving.build_predict_request("dcrnn", serving.PREDICT_FEATURES,
                                  {k: v for k, v in features.items() if k != "user"}, config)

  by_examples = loaded.signatures[serving.SERVING_DEFAULT]
  float_item = tf.train.Example(features=tf.train.Features(feature={
      "item": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))}))
  with pytest.raises(tf.errors.InvalidArgumentError, match="Key: item.*Data types don't match"):
    by_examples(examples=tf.constant([float_item.SerializeToString()]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="Could not parse example input"):
    by_examples(examples=tf.constant([b"not a tf.Example"]))
  # TensorFlow's Python layer cannot decode an error message that quotes non-UTF-8
  # bytes; the op's InvalidArgumentError then surfaces as a UnicodeDecodeError.
  with pytest.raises((tf.errors.InvalidArgumentError, UnicodeDecodeError)):
    by_examples(examples=tf.constant([b"\xff\xfe\x00garbage"]))
  # The process carries on serving.
  assert_expected(served, by_features(**good))


def test_rest_body_is_columnar_json(served):
  config, features = served["config"], served["features"]
  body = serving.build_rest_body(serving.PREDICT_FEATURES, features, config)
  text = json.dumps(body)
  assert sorted(body) == ["inputs", "signature_name"]
  assert body["signature_name"] == serving.PREDICT_FEATURES
  assert sorted(body["inputs"]) == sorted(feature_tensor_specs(config))
  parsed = json.loads(text)
  for name, spec in feature_tensor_specs(config).items():
    values = parsed["inputs"][name]
    assert isinstance(values, list) and len(values) == 16
    kind = str if spec.dtype == tf.string else int if spec.dtype.is_integer else float
    assert all(isinstance(v, kind) for v in values), name
  assert parsed["inputs"]["item"][:2] == ["unseen", ""]
  assert math.isnan(parsed["inputs"]["price"][2]) and "NaN" in text

  body = json.loads(json.dumps(serving.build_rest_body(serving.SERVING_DEFAULT, features,
                                                       config)))
  assert body["signature_name"] == serving.SERVING_DEFAULT
  assert list(body["inputs"]) == ["examples"] and len(body["inputs"]["examples"]) == 16
  example = tf.train.Example.FromString(base64.b64decode(body["inputs"]["examples"][3]["b64"]))
  assert example.features.feature["item"].bytes_list.value == [features["item"][3].encode()]


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """TF Serving's gRPC Predict on a loaded SavedModel (TensorProtos in and out)."""

  def __init__(self, loaded):
    self.loaded = loaded

  def Predict(self, request, context):  # pylint: disable=invalid-name
    signature = self.loaded.signatures[request.model_spec.signature_name]
    try:
      outputs = signature(**{k: tf.make_ndarray(v) for k, v in request.inputs.items()})
    except (TypeError, tf.errors.InvalidArgumentError) as e:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
    response = predict_pb2.PredictResponse(model_spec=request.model_spec)
    for name, values in outputs.items():
      response.outputs[name].CopyFrom(tf.make_tensor_proto(values))
    return response


class _RestHandler(http.server.BaseHTTPRequestHandler):
  """TF Serving's REST `:predict`, columnar format, on `server.loaded`."""

  def do_POST(self):  # pylint: disable=invalid-name
    assert re.fullmatch(r"/v1/models/dcrnn:predict", self.path), self.path
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    signature = self.server.loaded.signatures[body["signature_name"]]
    specs = signature.structured_input_signature[1]
    inputs = {name: tf.constant([base64.b64decode(v["b64"]) if isinstance(v, dict) else v
                                 for v in values], specs[name].dtype)
              for name, values in body["inputs"].items()}
    reply = json.dumps({"outputs": {name: values.numpy().tolist()
                                    for name, values in signature(**inputs).items()}})
    self.send_response(200)
    self.send_header("Content-Type", "application/json")
    self.end_headers()
    self.wfile.write(reply.encode())

  def log_message(self, *args):  # pylint: disable=arguments-differ
    pass


@pytest.fixture(scope="module")
def servers(served):
  """Stand-ins for tensorflow_model_server: gRPC and REST addresses."""
  grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      _PredictionService(served["loaded"]), grpc_server)
  grpc_port = grpc_server.add_insecure_port("localhost:0")
  grpc_server.start()
  rest_server = http.server.ThreadingHTTPServer(("localhost", 0), _RestHandler)
  rest_server.loaded = served["loaded"]
  threading.Thread(target=rest_server.serve_forever, daemon=True).start()
  yield {"grpc": f"localhost:{grpc_port}", "rest": f"localhost:{rest_server.server_port}"}
  rest_server.shutdown()
  grpc_server.stop(None)


@pytest.mark.slow
def test_client_predicts_over_grpc_and_rest(served, servers):
  config, features = served["config"], served["features"]
  for signature in serving.SIGNATURES:
    request = serving.build_predict_request("dcrnn", signature, features, config)
    assert_expected(served, serving.predict_grpc(servers["grpc"], request))
    body = serving.build_rest_body(signature, features, config)
    assert_expected(served, serving.predict_rest(servers["rest"], "dcrnn", body, config))
  request = serving.build_predict_request("dcrnn", serving.PREDICT_FEATURES, features, config)
  del request.inputs["user"]
  with pytest.raises(grpc.RpcError) as error:
    serving.predict_grpc(servers["grpc"], request)
  assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert "user" in error.value.details()


@pytest.mark.slow
def test_client_command_line(served, servers):
  config, features, tmp = served["config"], served["features"], served["tmp"]
  config.save(str(tmp / "feature_config.json"))
  pd.DataFrame(features).to_csv(tmp / "rows.csv", index=False)
  client = [str(ROOT / "export" / "client.py"), f"--feature_config={tmp}/feature_config.json"]
  result = python(*client, f"--server={servers['grpc']}", f"--input_csv={tmp}/rows.csv",
                  "--max_rows=5", "--signature=serving_default")
  assert_expected(served, json.loads(result.stdout), slice(0, 5))
  for noise in ("absl::InitializeLog", "cuInit", "oneDNN", "cuda"):  # TensorFlow's start.
    assert noise not in result.stderr
  rows = [dict(zip(features, row)) for row in zip(*(v[2:6].tolist() for v in features.values()))]
  rows[0]["price"] = None  # A missing value may be JSON's null (row 2's price is missing).
  printed = python(*client, "--rest", f"--server={servers['rest']}",
                   f"--rows={json.dumps(rows)}", "--signature=predict_features").stdout
  assert_expected(served, json.loads(printed), slice(2, 6))


def test_server_configs_parse():
  config = text_format.Parse((ROOT / "export" / "models.config").read_text(),
                             model_server_config_pb2.ModelServerConfig())
  (model,) = config.model_config_list.config
  assert model.name == "dcrnn" and model.model_platform == "tensorflow"
  assert model.base_path.startswith("/") and model.base_path.endswith("/dcrnn")
  assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
  batching = {}
  for line in (ROOT / "export" / "batching_parameters.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
      name, value = re.fullmatch(r"(\w+) \{ value: (\d+) \}", line).groups()
      batching[name] = int(value)
  assert sorted(batching) == ["batch_timeout_micros", "max_batch_size",
                              "max_enqueued_batches", "num_batch_threads"]
  assert batching["max_batch_size"] >= max(saved_model.WARMUP_BATCH_SIZES)
