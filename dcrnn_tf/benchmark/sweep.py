"""Sweeps: the model table at several points of one setting (`--sweep=<kind>:<values>`).

Kinds of sweep:

* `tasks` (e.g. `tasks:2,4,6`): the feature config's first N tasks (same rows, same
  split; the other tasks' label columns are ignored) — how each model's quality, size
  and cost follow the number of tasks.
* `task_cosine` (e.g. `task_cosine:0,0.5,0.9,1`, synthetic data only): the cosine
  between the click and the conversion directions of the hidden structure (one data set
  per value, beside `--data_dir`) — how the models follow the tasks' relatedness, with
  the true probabilities' AUC as the ceiling.
* `size` (e.g. `size:small,default,large`): every width of every model (tower, state,
  cross projection, expert, bottom, MLP and deep layers, the ranks of low-rank cross
  weights) scaled by `SIZE_FACTORS` (numbers of experts, levels, steps and cross layers
  and the embedding size unchanged) — the cost–quality frontier.
"""

import dataclasses
import os
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from dcrnn_tf.errors import UsageError
from dcrnn_tf.evaluation import roc_auc
from dcrnn_tf.features import FeatureConfig

KINDS = ("tasks", "task_cosine", "size")
SIZE_FACTORS = {"small": 0.5, "default": 1.0, "large": 2.0}
# Model options that are widths (an int, or a list of layer widths), scaled by `size`
# (a rank of None, full rank, stays None).
WIDTH_OPTIONS = ("tower_units", "shared_units", "private_units", "cross_dim",
                 "parallel_units", "bottom_units", "hidden_units", "expert_units",
                 "deep_units", "rank", "cross_rank")
CEILING_ROWS = 200_000  # Fresh rows of a synthetic structure that its ceiling is taken on.


@dataclasses.dataclass(frozen=True)
class Point:
  """One point of a sweep.

  Attributes:
    kind: One of `KINDS`.
    value: The value as given (`"4"`, `"0.5"`, `"small"`).
  """

  kind: str
  value: str

  @property
  def label(self) -> str:
    """`<kind>=<value>`: the point's name in tables and its directory's."""
    return f"{self.kind}={self.value}"

  @property
  def number(self) -> float:
    """Where the point lies on the sweep's axis (a size: its width factor)."""
    return SIZE_FACTORS[self.value] if self.kind == "size" else float(self.value)


def point_data_dir(data_dir: str, point: Point) -> str:
  """Where a point reads its data: a `task_cosine` point its own synthetic data set in
  `<data_dir>/task_cosine=<value>`, any other point `data_dir` itself."""
  return os.path.join(data_dir, point.label) if point.kind == "task_cosine" else data_dir


def parse(spec: str) -> List[Point]:
  """The points of `--sweep=<kind>:<v1>,<v2>,...`, checked.

  Raises:
    UsageError: An unknown kind, no value, a repeated value, or a value the kind does not
      take (tasks: an integer >= 1; task_cosine: a number in [0, 1]; size: a name of
      `SIZE_FACTORS`).
  """
  kind, sep, values = spec.partition(":")
  if kind not in KINDS or not sep:
    raise UsageError(f"--sweep={spec!r}: expected <kind>:<values>, kind one of {KINDS}.")
  points = [Point(kind, v.strip()) for v in values.split(",") if v.strip()]
  if not points:
    raise UsageError(f"--sweep={spec!r}: no values.")
  if len({p.value for p in points}) != len(points):
    raise UsageError(f"--sweep={spec!r}: a value is repeated.")
  for point in points:
    try:
      if kind == "tasks" and (not point.value.isdigit() or int(point.value) < 1):
        raise ValueError
      if kind == "task_cosine" and not 0.0 <= float(point.value) <= 1.0:
        raise ValueError
      if kind == "size" and point.value not in SIZE_FACTORS:
        raise ValueError
    except ValueError:
      allowed = {"tasks": "an integer >= 1", "task_cosine": "a number in [0, 1]",
                 "size": f"one of {list(SIZE_FACTORS)}"}[kind]
      raise UsageError(f"--sweep={spec!r}: {point.value!r} is not {allowed}.") from None
  return points


def first_tasks(config: FeatureConfig, count: int) -> FeatureConfig:
  """The config with its first `count` tasks; the labels no remaining task reads are
  dropped and their columns ignored (so the same files read the same rows).

  Raises:
    UsageError: If the config has fewer tasks (a task depends only on earlier ones, so
      the first tasks are a config of their own).
  """
  if count > len(config.tasks):
    raise UsageError(f"--sweep asks for {count} tasks; the feature config has "
                     f"{len(config.tasks)}.")
  tasks = config.tasks[:count]
  used = {task.label for task in tasks}
  labels = tuple(label for label in config.labels if label.name in used)
  dropped = tuple(label.source for label in config.labels if label.name not in used)
  return dataclasses.replace(config, tasks=tasks, labels=labels,
                             ignore=config.ignore + dropped)


def scaled_options(options: Mapping[str, Any], factor: float) -> Dict[str, Any]:
  """A model's options with every width of `WIDTH_OPTIONS` times `factor` (rounded, at
  least 1; a width of 0, which switches a part off, stays 0)."""
  def scale(width: int) -> int:
    return 0 if width == 0 else max(1, int(round(width * factor)))
  out = dict(options)
  for name in WIDTH_OPTIONS:
    if name in out and out[name] is not None:
      value = out[name]
      out[name] = ([scale(w) for w in value] if isinstance(value, (list, tuple))
                   else scale(value))
  return out


def synthetic_ceiling(seed: int, rows: int = CEILING_ROWS, **structure_kwargs
                      ) -> Dict[str, float]:
  """The AUC of the true probabilities (the Bayes-optimal predictions) per synthetic
  output, on `rows` fresh rows of the structure (its `test` split's stream): `ctr` on
  every row, `cvr` on the clicked rows, `ctcvr` (the conversion) on every row."""
  from dcrnn_tf.data import synthetic  # pylint: disable=import-outside-toplevel
  structure = synthetic.make_structure(seed, **structure_kwargs)
  frame = structure.sample(rows, "test")
  truth = structure.probabilities(frame)
  click = frame["click"].to_numpy()
  conversion = frame["conversion"].to_numpy()
  clicked = click == 1
  return {"ctr": roc_auc(click, truth["click"].to_numpy()),
          "cvr": roc_auc(conversion[clicked], truth["conversion_given_click"].to_numpy()[clicked]),
          "ctcvr": roc_auc(conversion, truth["conversion"].to_numpy())}


def pareto_front(costs: Sequence[float], qualities: Sequence[float]) -> List[bool]:
  """Which (cost, quality) pairs no other pair dominates (cost no higher and quality no
  lower, one of them strictly)."""
  costs, qualities = np.asarray(costs, float), np.asarray(qualities, float)
  return [not bool(np.any((costs <= c) & (qualities >= q) & ((costs < c) | (qualities > q))))
          for c, q in zip(costs, qualities)]
