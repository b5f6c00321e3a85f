"""The feature configuration: which columns are features, which are labels, which tasks to learn.

A feature configuration is a JSON file such as::

    {
      "features": [
        {"name": "user_id", "type": "categorical", "vocab_size": 1000},
        {"name": "price", "type": "numeric"}
      ],
      "labels": ["click", "conversion"],
      "tasks": [
        {"name": "ctr", "label": "click"},
        {"name": "cvr", "label": "conversion", "depends_on": "ctr",
         "funnel_output": "ctcvr"}
      ],
      "ignore": ["request_id"]
    }

Categorical features hold integer ids in ``[0, vocab_size)``; any other id (missing,
negative, too large) is mapped to one extra out-of-vocabulary id. Numeric features hold
floats. Every column of a data file must be a feature, a label or listed in ``ignore``.
"""

import dataclasses
import json
import re
from typing import Any, Dict, Optional, Tuple

CATEGORICAL = "categorical"
NUMERIC = "numeric"
FEATURE_TYPES = (CATEGORICAL, NUMERIC)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_name(kind: str, name: str) -> None:
  if not isinstance(name, str) or not _NAME.match(name):
    raise ValueError(f"{kind} name {name!r} must be a letter or underscore followed by "
                     "letters, digits or underscores (it becomes a model input or output "
                     "name).")


@dataclasses.dataclass(frozen=True)
class Feature:
  """One input column.

  Attributes:
    name: Column name in the data files and input name of the model.
    type: ``"categorical"`` (integer ids) or ``"numeric"`` (floats).
    vocab_size: Number of valid ids of a categorical feature (ids ``0..vocab_size-1``).
  """

  name: str
  type: str
  vocab_size: Optional[int] = None

  def __post_init__(self):
    _check_name("Feature", self.name)
    if self.type not in FEATURE_TYPES:
      raise ValueError(
          f"Feature {self.name!r}: type must be one of {FEATURE_TYPES}, got {self.type!r}.")
    if self.type == CATEGORICAL and (not isinstance(self.vocab_size, int)
                                     or self.vocab_size < 1):
      raise ValueError(f"Categorical feature {self.name!r} needs an integer vocab_size >= 1, "
                       f"got {self.vocab_size!r}.")
    if self.type == NUMERIC and self.vocab_size is not None:
      raise ValueError(f"Numeric feature {self.name!r} must not have a vocab_size.")

  def to_dict(self) -> Dict[str, Any]:
    return _drop_none(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class Task:
  """One prediction task (a binary label).

  Attributes:
    name: Output name of the task's probability.
    label: Label column (values 0 or 1).
    depends_on: Name of an earlier task whose private state this task reads
      (task transfer).
    funnel_output: If set, this task is the second stage of a funnel after
      ``depends_on`` (click → conversion): ``label`` marks the joint event (parent and
      this task), the model also outputs ``funnel_output = p(parent) * p(this)``,
      trained over all rows (ESMM), and this task's own output is scored only on rows
      where the parent's label is 1.
    loss_weight: Weight of the task's loss over all rows (for a funnel stage, the
      loss of ``funnel_output``).
    masked_loss_weight: Funnel stages only: weight of the task's own loss on rows
      where the parent's label is 1. ESMM uses 0.
  """

  name: str
  label: str
  depends_on: Optional[str] = None
  funnel_output: Optional[str] = None
  loss_weight: float = 1.0
  masked_loss_weight: float = 0.0

  def __post_init__(self):
    _check_name("Task", self.name)
    if self.funnel_output is not None:
      _check_name("Funnel output", self.funnel_output)
    if self.funnel_output is not None and self.depends_on is None:
      raise ValueError(f"Task {self.name!r}: funnel_output needs depends_on.")
    if self.masked_loss_weight and self.funnel_output is None:
      raise ValueError(f"Task {self.name!r}: masked_loss_weight applies to funnel stages only.")

  def to_dict(self) -> Dict[str, Any]:
    return _drop_none(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """Features, labels and tasks of a data set.

  Attributes:
    features: Input features, in model order.
    labels: Label columns.
    tasks: Tasks, in order; a task may depend only on an earlier one.
    ignore: Columns present in the data that are neither features nor labels.
  """

  features: Tuple[Feature, ...]
  labels: Tuple[str, ...]
  tasks: Tuple[Task, ...]
  ignore: Tuple[str, ...] = ()

  def __post_init__(self):
    object.__setattr__(self, "features", tuple(self.features))
    object.__setattr__(self, "labels", tuple(self.labels))
    object.__setattr__(self, "tasks", tuple(self.tasks))
    object.__setattr__(self, "ignore", tuple(self.ignore))
    if not self.features:
      raise ValueError("A feature config needs at least one feature.")
    if not self.tasks:
      raise ValueError("A feature config needs at least one task.")
    columns = self.columns + self.ignore
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
      raise ValueError(f"Columns declared more than once: {duplicates}.")
    outputs = self.output_names
    if len(set(outputs)) != len(outputs):
      raise ValueError(f"Task and funnel output names must be unique, got {list(outputs)}.")
    seen = set()
    for task in self.tasks:
      if task.label not in self.labels:
        raise ValueError(f"Task {task.name!r}: label {task.label!r} is not among the "
                         f"labels {list(self.labels)}.")
      if task.depends_on is not None and task.depends_on not in seen:
        raise ValueError(f"Task {task.name!r} depends on {task.depends_on!r}, which is not "
                         f"an earlier task (earlier: {sorted(seen)}).")
      seen.add(task.name)

  @property
  def columns(self) -> Tuple[str, ...]:
    """Feature and label column names."""
    return tuple(f.name for f in self.features) + self.labels

  @property
  def output_names(self) -> Tuple[str, ...]:
    """Model output names: every task, then every funnel output."""
    return tuple(t.name for t in self.tasks) + tuple(
        t.funnel_output for t in self.tasks if t.funnel_output)

  def task(self, name: str) -> Task:
    for task in self.tasks:
      if task.name == name:
        return task
    raise KeyError(name)

  def to_dict(self) -> Dict[str, Any]:
    return {
        "features": [f.to_dict() for f in self.features],
        "labels": list(self.labels),
        "tasks": [t.to_dict() for t in self.tasks],
        "ignore": list(self.ignore),
    }

  @classmethod
  def from_dict(cls, config: Dict[str, Any]) -> "FeatureConfig":
    unknown = set(config) - {"features", "labels", "tasks", "ignore"}
    if unknown:
      raise ValueError(f"Unknown feature config keys: {sorted(unknown)}.")
    return cls(
        features=tuple(Feature(**f) for f in config["features"]),
        labels=tuple(config["labels"]),
        tasks=tuple(Task(**t) for t in config["tasks"]),
        ignore=tuple(config.get("ignore", ())),
    )

  @classmethod
  def load(cls, path: str) -> "FeatureConfig":
    """Reads a JSON feature config; errors name the file."""
    with open(path, encoding="utf-8") as f:
      try:
        config = json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
    try:
      return cls.from_dict(config)
    except (TypeError, ValueError, KeyError) as e:
      raise ValueError(f"{path}: invalid feature config: {e}") from e

  def save(self, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
      json.dump(self.to_dict(), f, indent=2)
      f.write("\n")


def _drop_none(d: Dict[str, Any]) -> Dict[str, Any]:
  return {k: v for k, v in d.items() if v is not None}
