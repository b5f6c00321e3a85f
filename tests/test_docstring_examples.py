"""Every example in a public docstring of the package runs (and its asserts hold)."""

import importlib
import inspect
import pkgutil
import re

import numpy as np
import pytest

import dcrnn_tf
import tensorflow as tf

EXAMPLE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _public_objects():
  """(qualified name, object) of every public module, class, function and method."""
  for info in pkgutil.walk_packages(dcrnn_tf.__path__, "dcrnn_tf."):
    if any(part.startswith("_") for part in info.name.split(".")):
      continue
    module = importlib.import_module(info.name)
    yield info.name, module
    for name, obj in vars(module).items():
      if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
        continue
      if inspect.isclass(obj) or inspect.isfunction(obj):
        yield f"{info.name}.{name}", obj
      if inspect.isclass(obj):
        for attribute, member in vars(obj).items():
          if not attribute.startswith("_") and inspect.isfunction(member):
            yield f"{info.name}.{name}.{attribute}", member


def _examples():
  found = []
  for name, obj in _public_objects():
    doc = obj.__doc__ or ""
    for i, code in enumerate(EXAMPLE.findall(inspect.cleandoc(doc))):
      found.append(pytest.param(obj, f"{name}[{i}]", code, id=f"{name}[{i}]"))
  return found


EXAMPLES = _examples()


def test_the_public_api_has_examples():
  names = {param.id.split("[")[0] for param in EXAMPLES}
  for layer in ("RNNCross", "PartialSharing", "TaskTransfer", "Tower", "MLP", "CGC",
                "FeatureEncoder"):
    assert any(name.endswith(f".{layer}") for name in names), layer
  for model in ("DCRNN", "SharedBottom", "MMoE", "PLE", "ESMM", "DCN", "SingleTask"):
    assert any(name.endswith(f".{model}") for name in names), model


@pytest.mark.parametrize("obj,name,code", EXAMPLES)
def test_docstring_example_runs(obj, name, code, tmp_path, monkeypatch):
  """Runs the example with its module's names (as a reader of the docstring sees them),
  `dcrnn_tf`, `np` and `tf`."""
  monkeypatch.chdir(tmp_path)  # Examples that write files write them here.
  namespace = {**vars(inspect.getmodule(obj)), "dcrnn_tf": dcrnn_tf, "np": np, "tf": tf}
  exec(compile(code, f"<example of {name}>", "exec"), namespace)  # pylint: disable=exec-used
