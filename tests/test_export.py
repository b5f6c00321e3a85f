"""SavedModel export: versions written atomically, warm-up requests for TF Serving."""

import os

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from conftest import funnel_config, random_features
from dcrnn_tf import saved_model
from dcrnn_tf import serving
from dcrnn_tf.models import DCRNN


@pytest.fixture(scope="module")
def model():
  config = funnel_config()
  model = DCRNN(config, shared_units=8, private_units=4, tower_units=(8,))
  model(random_features(config, 2))
  return model


def read_warmup(path):
  records = tf.data.TFRecordDataset(os.path.join(path, saved_model.WARMUP_FILE))
  return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]


def run_warmup(path):
  """Runs every warm-up request through the loaded SavedModel: (signature, batch size)s."""
  loaded = tf.saved_model.load(path)
  sizes = []
  for log in read_warmup(path):
    request = log.predict_log.request
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
    assert sorted(outputs) == ["ctcvr", "ctr", "cvr"]
    sizes.append((request.model_spec.signature_name, *{len(v) for v in outputs.values()}))
  return sizes


def test_export_writes_an_integer_version_with_warmup_requests(model, tmp_path):
  parent = tmp_path / "dcrnn"
  path = saved_model.export_saved_model(model, funnel_config(), str(parent))
  assert os.path.basename(path).isdigit()
  assert os.listdir(parent) == [os.path.basename(path)]
  assert saved_model.next_version(str(parent)) > int(os.path.basename(path))
  with pytest.raises(FileExistsError, match="already exists"):
    saved_model.export_saved_model(model, funnel_config(), str(parent),
                              version=int(os.path.basename(path)))
  logs = read_warmup(path)
  assert {log.predict_log.request.model_spec.name for log in logs} == {"dcrnn"}
  expected = [(s, n) for s in serving.SIGNATURES for n in saved_model.WARMUP_BATCH_SIZES]
  assert run_warmup(path) == expected


def test_an_interrupted_export_leaves_nothing_that_tf_serving_would_load(
    model, tmp_path, monkeypatch):
  parent = tmp_path / "dcrnn"
  during = []

  def interrupt(saved_model_dir, logs):
    during.extend(os.listdir(parent))
    assert os.path.exists(os.path.join(saved_model_dir, "saved_model.pb")) and logs
    raise KeyboardInterrupt

  monkeypatch.setattr(saved_model, "write_warmup_requests", interrupt)
  with pytest.raises(KeyboardInterrupt):
    saved_model.export_saved_model(model, funnel_config(), str(parent), version=7)
  assert during == [".tmp-7"]
  assert os.listdir(parent) == []


def test_warmup_from_real_rows(model, tmp_path):
  config = funnel_config()
  rows = random_features(config, 3, seed=5)
  path = saved_model.export_saved_model(model, config, str(tmp_path / "dcrnn"),
                                   warmup_features=rows)
  inputs = serving.signature_inputs(serving.PREDICT_FEATURES, rows, config)
  for log in read_warmup(path):
    request = log.predict_log.request
    if request.model_spec.signature_name == serving.PREDICT_FEATURES:
      for name, values in inputs.items():
        sent = tf.make_ndarray(request.inputs[name])
        np.testing.assert_array_equal(sent, values[np.arange(len(sent)) % 3])
  assert len(run_warmup(path)) == 2 * len(saved_model.WARMUP_BATCH_SIZES)


def test_warmup_features_must_fit_the_config():
  config = funnel_config()
  rows = random_features(config, 3)
  with pytest.raises(ValueError, match="missing \\['price'\\]"):
    saved_model.warmup_requests("dcrnn", config, {k: v for k, v in rows.items() if k != "price"})
  with pytest.raises(ValueError, match="no row"):
    saved_model.warmup_requests("dcrnn", config, {k: v[:0] for k, v in rows.items()})
