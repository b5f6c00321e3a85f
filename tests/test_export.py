"""SavedModel export: signatures, a fresh process without dcrnn_tf, saved_model_cli."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import random_features
from dcrnn_tf import export
from dcrnn_tf.models import DCRNN


def serialize(features, rows):
  examples = []
  for i in range(rows):
    feature = {}
    for name, values in features.items():
      value = values[i]
      if np.issubdtype(values.dtype, np.integer):
        feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
      else:
        feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    examples.append(tf.train.Example(
        features=tf.train.Features(feature=feature)).SerializeToString())
  return examples


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  from conftest import funnel_config  # pylint: disable=import-outside-toplevel
  config = funnel_config()
  tmp = tmp_path_factory.mktemp("export")
  model = DCRNN(config, shared_units=8, private_units=4, tower_units=(8,))
  features = random_features(config, 16, seed=3)
  features["item"][:2] = [-1, 10**6]          # out-of-vocabulary ids
  expected = {k: v.numpy() for k, v in model(features).items()}
  path = export.export_saved_model(model, config, str(tmp / "export"))
  records = str(tmp / "examples.tfrecord")
  with tf.io.TFRecordWriter(records) as writer:
    for example in serialize(features, 16):
      writer.write(example)
  np.savez(tmp / "features.npz", **features)
  return {"config": config, "path": path, "expected": expected, "records": records,
          "features": str(tmp / "features.npz"), "tmp": tmp}


def test_export_writes_an_integer_version_atomically(exported):
  parent = os.path.dirname(exported["path"])
  assert os.path.basename(exported["path"]).isdigit()
  assert os.listdir(parent) == [os.path.basename(exported["path"])]
  assert export.next_version(parent) > int(os.path.basename(exported["path"]))


def test_fresh_process_without_dcrnn_tf_matches_keras(exported):
  script = textwrap.dedent("""
      import json, sys
      import numpy as np
      import tensorflow as tf
      path, records, features, out = sys.argv[1:]
      loaded = tf.saved_model.load(path)
      examples = tf.stack(list(tf.data.TFRecordDataset(records)))
      result = {"examples": {k: v.numpy().tolist() for k, v in
                             loaded.signatures["serving_default"](examples=examples).items()}}
      raw = {k: tf.constant(v) for k, v in np.load(features).items()}
      result["features"] = {k: v.numpy().tolist() for k, v in
                            loaded.signatures["predict_features"](**raw).items()}
      result["signatures"] = sorted(loaded.signatures)
      result["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in
                                 ("dcrnn_tf", "keras", "tf_keras"))
      json.dump(result, open(out, "w"))
  """)
  out = exported["tmp"] / "fresh.json"
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  subprocess.run([sys.executable, "-c", script, exported["path"], exported["records"],
                  exported["features"], str(out)], check=True, env=env,
                 cwd=str(exported["tmp"]))
  result = json.loads(out.read_text())
  assert result["signatures"] == ["predict_features", "serving_default"]
  assert not [m for m in result["modules"] if m.startswith("dcrnn_tf")]
  for signature in ("examples", "features"):
    assert sorted(result[signature]) == ["ctcvr", "ctr", "cvr"]
    for name, expected in exported["expected"].items():
      np.testing.assert_allclose(result[signature][name], expected, rtol=1e-5, atol=1e-7)


def test_saved_model_cli_shows_and_runs_the_signatures(exported):
  cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
  shown = subprocess.run(cli + ["show", "--dir", exported["path"], "--all"], check=True,
                         capture_output=True, text=True).stdout
  for expected in ("signature_def['serving_default']", "signature_def['predict_features']",
                   "inputs['examples']", "inputs['item']", "inputs['price']",
                   "outputs['ctcvr']", "outputs['ctr']", "outputs['cvr']"):
    assert expected in shown
  outdir = exported["tmp"] / "cli"
  subprocess.run(cli + ["run", "--dir", exported["path"], "--tag_set", "serve",
                        "--signature_def", "serving_default", "--outdir", str(outdir),
                        "--input_examples",
                        'examples=[{"item":[3],"user":[7],"price":[0.5]},{"item":[1]}]'],
                 check=True, capture_output=True)
  model_outputs = {name: np.load(outdir / f"{name}.npy") for name in ("ctr", "cvr", "ctcvr")}
  assert all(v.shape == (2,) for v in model_outputs.values())
  np.testing.assert_allclose(model_outputs["ctcvr"], model_outputs["ctr"] * model_outputs["cvr"],
                             rtol=1e-6)
