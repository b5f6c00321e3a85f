"""The README's "Using the layers" snippet runs as it is."""

import pathlib
import re

import dcrnn_tf  # pylint: disable=unused-import

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def using_the_layers_snippet() -> str:
  section = README.read_text().split("\n## Using the layers\n", 1)[1].split("\n## ", 1)[0]
  return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_using_the_layers_snippet_runs(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  namespace = {}
  exec(compile(using_the_layers_snippet(), "README.md", "exec"), namespace)  # pylint: disable=exec-used
  outputs = namespace["outputs"]
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"]
  assert all(tuple(p.shape) == (4,) for p in outputs.values())
  assert (tmp_path / "runs" / "example" / "train.csv").exists()
  printed = eval(capsys.readouterr().out)  # pylint: disable=eval-used
  assert sorted(printed) == ["ctcvr", "ctr", "cvr"]
  assert all(len(v) == 4 and all(0.0 < p < 1.0 for p in v) for v in printed.values())
