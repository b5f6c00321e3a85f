"""Package import: Keras 2 selection, the clear error under Keras 3, the example."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python(code, **env):
  environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  environment.update(env)
  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env=environment)


@pytest.mark.slow
def test_import_selects_keras_2():
  result = python("import dcrnn_tf, tensorflow as tf; print(tf.keras.__name__)")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().startswith("tf_keras")


@pytest.mark.slow
def test_import_after_keras_3_resolved_is_a_clear_error():
  result = python("import tensorflow as tf; tf.keras.layers; import dcrnn_tf")
  assert result.returncode != 0
  assert "ImportError: dcrnn_tf needs tf.keras to be Keras 2" in result.stderr
  assert "TensorFlow was imported before dcrnn_tf" in result.stderr


@pytest.mark.slow
def test_custom_layer_example_trains_saves_and_reloads(tmp_path):
  spec = importlib.util.spec_from_file_location("custom_layer",
                                                ROOT / "examples" / "custom_layer.py")
  example = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(example)
  assert example.train_save_reload(rows=3000, workdir=str(tmp_path)) == 0.0
