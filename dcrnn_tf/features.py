"""The feature configuration: columns, how each becomes a model input, labels and tasks.

A feature config is a JSON or YAML file such as::

    {
      "features": [
        {"name": "user", "type": "categorical", "min_count": 5},
        {"name": "item", "type": "categorical", "num_buckets": 100000},
        {"name": "tags", "type": "multi_categorical", "delimiter": "|"},
        {"name": "price", "type": "numeric"},
        {"name": "age", "type": "numeric", "num_bins": 10}
      ],
      "labels": ["click", "conversion"],
      "tasks": [
        {"name": "ctr", "label": "click"},
        {"name": "cvr", "label": "conversion", "depends_on": "ctr",
         "funnel_output": "ctcvr"}
      ],
      "ignore": ["request_id"]
    }

Every column of a data file must be a feature's or a label's column, the `weight`
column, or be listed in `ignore`: nothing is guessed. Statistics that a feature needs and the config does not
give (a vocabulary, a mean and standard deviation, quantile boundaries) are learned from
the training data by `dcrnn_tf.data.scan` (`--mode=prepare`) and stored in a *prepared*
copy of the config in the model directory; the model's preprocessing layers are built
from that copy, so the SavedModel takes raw values.

Raw values: categorical and multi-categorical features are strings (integer ids are
read as their decimal strings), numeric features floats. The model normalizes them in
its graph (`FeatureEncoder`), the same for every input path (CSV and TFRecord files,
both serving signatures): whitespace around each value is stripped, `lowercase`
features are lowercased, and the empty string, NaN and every `csv.na_values` entry
(for numeric features: every entry that is a number) are missing.
"""

import collections
import dataclasses
import difflib
import json
import math
import os
import re
import typing
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from dcrnn_tf.errors import ConfigError, MissingFileError

CATEGORICAL = "categorical"
MULTI_CATEGORICAL = "multi_categorical"
NUMERIC = "numeric"
FEATURE_TYPES = (CATEGORICAL, MULTI_CATEGORICAL, NUMERIC)
DTYPES = ("string", "int64", "float32")
POOLINGS = ("mean", "sum")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Beside the outputs' metrics, eval_metrics.json names the evaluated data under this key.
RESERVED_OUTPUT_NAME = "data"
# The key of the row weights among a batch's labels (no label may be named so).
WEIGHT_KEY = "__weight__"
BINARY = "binary"
REGRESSION = "regression"
TASK_TYPES = (BINARY, REGRESSION)
LINEAR = "linear"
NONNEGATIVE = "nonnegative"
REGRESSION_OUTPUTS = (LINEAR, NONNEGATIVE)
LOG1P = "log1p"
TRANSFORMS = (LOG1P,)
MSE = "mse"
HUBER = "huber"
REGRESSION_LOSSES = (MSE, HUBER)


def _check_name(kind: str, name: str) -> None:
  if not isinstance(name, str) or not _NAME.match(name):
    raise ValueError(f"{kind} name {name!r} must be a letter or underscore followed by "
                     "letters, digits or underscores (it becomes a model input or output "
                     "name); give the data's column name as `column`.")


def _has_type(value, hint) -> bool:
  """Whether `value` fits a field's type (`bool` is not a number; tuples are checked
  item by item)."""
  if typing.get_origin(hint) is Union:
    return any(_has_type(value, h) for h in typing.get_args(hint))
  if typing.get_origin(hint) is tuple:
    item = typing.get_args(hint)[0]
    return isinstance(value, tuple) and all(_has_type(v, item) for v in value)
  if hint in (int, float):
    return isinstance(value, (int, hint)) and not isinstance(value, bool)
  return isinstance(value, hint)


def _type_name(hint) -> str:
  if typing.get_origin(hint) is Union:
    return " or ".join(_type_name(h) for h in typing.get_args(hint))
  if typing.get_origin(hint) is tuple:
    return f"a list of {_type_name(typing.get_args(hint)[0])}s"
  return {str: "string", int: "integer", float: "number", bool: "boolean",
          type(None): "null"}[hint]


def _check_types(obj, kind: str) -> None:
  """Raises a ValueError naming the first field of a dataclass with a value of the
  wrong type (such as the string "false" for a boolean)."""
  for field in dataclasses.fields(obj):
    value = getattr(obj, field.name)
    if not _has_type(value, field.type):
      raise ValueError(f"{kind}: {field.name} must be {_type_name(field.type)}, got "
                       f"{value!r}.")


def _drop_defaults(obj) -> Dict[str, Any]:
  """The dataclass's fields that differ from their defaults (required fields always), as
  plain values."""
  out = {}
  for field in dataclasses.fields(obj):
    value = getattr(obj, field.name)
    if value != field.default:
      out[field.name] = list(value) if isinstance(value, tuple) else value
  return out


@dataclasses.dataclass(frozen=True)
class Feature:
  """One input feature.

  Attributes:
    name: Model input name (letters, digits, underscores).
    type: `"categorical"`, `"multi_categorical"` (a delimiter-separated list of
      values, pooled) or `"numeric"`.
    column: Column in the data files (default: `name`).
    dtype: Type of the raw value in `tf.Example`s: `"string"` (bytes_list) or
      `"int64"` (int64_list) for categorical features, `"float32"` for numeric ones.
    vocabulary: Categorical: the known values (a list, or a path to a text file with
      one value per line, relative to the config file). Learned from the training data
      when neither this nor `num_buckets` is given.
    lowercase: Categorical: lowercase values (after stripping whitespace) before they
      are looked up or hashed; a given vocabulary must hold lowercase values.
    min_count: Categorical, learned vocabulary: a value must occur this often.
    max_tokens: Categorical, learned vocabulary: keep at most this many most frequent
      values.
    num_buckets: Categorical: hash values into this many buckets instead of a
      vocabulary.
    delimiter: Multi-categorical: the separator of the values.
    pooling: Multi-categorical: `"mean"` or `"sum"` of the values' embeddings.
    mean: Numeric: mean for standardization (learned when absent).
    std: Numeric: standard deviation for standardization (learned when absent).
    log: Numeric: standardize `sign(x) * log1p(|x|)` instead of `x` (skewed values).
    boundaries: Numeric: bucketize by these boundaries instead of standardizing.
    num_bins: Numeric: bucketize by `num_bins` quantile bins learned from the data.

  Unseen categorical values share one out-of-vocabulary embedding and missing values
  another; a missing numeric value is imputed with the mean (its bucket: a missing
  bucket) and flagged with a learned embedding.
  """

  name: str
  type: str
  column: Optional[str] = None
  dtype: Optional[str] = None
  vocabulary: Optional[Union[Tuple[str, ...], str]] = None
  lowercase: bool = False
  min_count: int = 1
  max_tokens: Optional[int] = None
  num_buckets: Optional[int] = None
  delimiter: str = "|"
  pooling: str = "mean"
  mean: Optional[float] = None
  std: Optional[float] = None
  log: bool = False
  boundaries: Optional[Tuple[float, ...]] = None
  num_bins: Optional[int] = None

  def __post_init__(self):
    _check_name("Feature", self.name)
    if self.type not in FEATURE_TYPES:
      raise ValueError(
          f"Feature {self.name!r}: type must be one of {FEATURE_TYPES}, got {self.type!r}.")
    if isinstance(self.vocabulary, list):
      object.__setattr__(self, "vocabulary", tuple(str(v) for v in self.vocabulary))
    if isinstance(self.boundaries, list):
      object.__setattr__(self, "boundaries", tuple(float(b) for b in self.boundaries))
    _check_types(self, f"Feature {self.name!r}")
    categorical_only = ("vocabulary", "max_tokens", "num_buckets")
    numeric_only = ("mean", "std", "boundaries", "num_bins")
    wrong = numeric_only if self.is_categorical else categorical_only
    given = [name for name in wrong if getattr(self, name) is not None]
    if self.lowercase and not self.is_categorical:
      given.append("lowercase")
    if given:
      raise ValueError(f"Feature {self.name!r} ({self.type}) cannot have {given}.")
    dtypes = ("string", "int64") if self.is_categorical else ("float32",)
    if self.dtype is not None and self.dtype not in dtypes:
      raise ValueError(f"Feature {self.name!r}: dtype must be one of {dtypes}, got "
                       f"{self.dtype!r}.")
    if self.is_categorical:
      if self.vocabulary is not None and self.num_buckets is not None:
        raise ValueError(f"Feature {self.name!r}: give vocabulary or num_buckets, not both.")
      if self.num_buckets is not None and self.num_buckets < 1:
        raise ValueError(f"Feature {self.name!r}: num_buckets must be >= 1.")
      if self.min_count < 1:
        raise ValueError(f"Feature {self.name!r}: min_count must be >= 1.")
      if self.max_tokens is not None and self.max_tokens < 1:
        raise ValueError(f"Feature {self.name!r}: max_tokens must be >= 1, got "
                         f"{self.max_tokens}.")
      if isinstance(self.vocabulary, tuple):
        repeated = [v for v, n in collections.Counter(self.vocabulary).items() if n > 1]
        if repeated:
          raise ValueError(f"Feature {self.name!r}: the vocabulary lists {repeated[0]!r} "
                           "more than once.")
        if "" in self.vocabulary:
          raise ValueError(f"Feature {self.name!r}: the vocabulary lists the empty string "
                           "(it means missing).")
      if self.lowercase and isinstance(self.vocabulary, tuple):
        upper = [v for v in self.vocabulary if v != v.lower()]
        if upper:
          raise ValueError(f"Feature {self.name!r}: lowercase features need a lowercase "
                           f"vocabulary, got {upper[:3]}.")
    else:
      if self.boundaries is not None and self.num_bins is not None:
        raise ValueError(f"Feature {self.name!r}: give boundaries or num_bins, not both.")
      if self.boundaries is not None and list(self.boundaries) != sorted(set(self.boundaries)):
        raise ValueError(f"Feature {self.name!r}: boundaries must increase strictly.")
      if self.mean is not None and not math.isfinite(self.mean):
        raise ValueError(f"Feature {self.name!r}: mean must be finite, got {self.mean}.")
      if self.std is not None and not 0 < self.std < math.inf:
        raise ValueError(f"Feature {self.name!r}: std must be > 0 and finite, got "
                         f"{self.std}.")
      if self.boundaries is not None and not all(map(math.isfinite, self.boundaries)):
        raise ValueError(f"Feature {self.name!r}: boundaries must be finite.")
      if self.num_bins is not None and self.num_bins < 2:
        raise ValueError(f"Feature {self.name!r}: num_bins must be >= 2.")
    if self.type == MULTI_CATEGORICAL and self.pooling not in POOLINGS:
      raise ValueError(f"Feature {self.name!r}: pooling must be one of {POOLINGS}.")
    if self.type == MULTI_CATEGORICAL and not self.delimiter:
      raise ValueError(f"Feature {self.name!r}: delimiter must not be empty.")

  @property
  def source(self) -> str:
    """The data column of the feature."""
    return self.column or self.name

  @property
  def is_categorical(self) -> bool:
    return self.type != NUMERIC

  @property
  def raw_dtype(self) -> str:
    return self.dtype or ("string" if self.is_categorical else "float32")

  @property
  def bucketized(self) -> bool:
    return self.type == NUMERIC and (self.boundaries is not None or self.num_bins is not None)

  @property
  def needs_statistics(self) -> bool:
    """Whether the feature lacks statistics that are learned from training data."""
    if self.is_categorical:
      return self.vocabulary is None and self.num_buckets is None
    if self.bucketized:
      return self.boundaries is None
    return self.mean is None or self.std is None

  def to_dict(self) -> Dict[str, Any]:
    return _drop_defaults(self)


@dataclasses.dataclass(frozen=True)
class Label:
  """A label: binary (0/1) for binary tasks, a number for regression tasks.

  Attributes:
    name: Label name, used by tasks.
    column: Column in the data files (default: `name`).
    positive_values: Binary labels: if given, the label is 1 where the column's
      (stripped) value is one of these and 0 elsewhere; otherwise the column must hold
      0 or 1. A regression task's label column must hold a finite number.
  """

  name: str
  column: Optional[str] = None
  positive_values: Optional[Tuple[str, ...]] = None

  def __post_init__(self):
    if not isinstance(self.name, str) or not self.name:
      raise ValueError(f"Label name must be a non-empty string, got {self.name!r}.")
    if isinstance(self.positive_values, (list, str)):
      values = [self.positive_values] if isinstance(self.positive_values, str) else \
          self.positive_values
      object.__setattr__(self, "positive_values", tuple(str(v) for v in values))
    _check_types(self, f"Label {self.name!r}")

  @property
  def source(self) -> str:
    return self.column or self.name

  def to_dict(self) -> Union[str, Dict[str, Any]]:
    out = _drop_defaults(self)
    return self.name if list(out) == ["name"] else out


@dataclasses.dataclass(frozen=True)
class Task:
  """One prediction task: a probability (binary) or a number (regression).

  Attributes:
    name: Output name of the task's prediction.
    label: Name of its label.
    type: `"binary"` (a 0/1 label, a probability, binary cross-entropy, AUC) or
      `"regression"` (a numeric label, a prediction in the label's units, `loss`, RMSE,
      MAE and R²).
    depends_on: Name of an earlier task whose private state this task reads
      (task transfer). A regression task may depend on a binary one only; its loss
      and metrics then cover the rows where the parent's label is 1 (the dwell time
      of a clicked impression).
    funnel_output: If set, this task is the second stage of a funnel after
      `depends_on` (click → conversion): `label` marks the joint event (parent and
      this task), the model also outputs `funnel_output = p(parent) * p(this)`,
      trained over all rows (ESMM), and this task's own output is scored only on rows
      where the parent's label is 1. The data must then have no row with this label 1
      and the parent's 0.
    loss_weight: Weight of the task's loss over all rows (for a funnel stage, the
      loss of `funnel_output`).
    masked_loss_weight: Funnel stages only: weight of the task's own loss on rows
      where the parent's label is 1. ESMM uses 0.
    output: Regression: `"linear"` (default; any number) or `"nonnegative"` (softplus
      of the tower's unit: durations, counts).
    transform: Regression: `"log1p"` trains on `log1p(label)` (labels must be >= 0)
      and predicts `expm1` of a non-negative value, in the label's units.
    loss: Regression: `"mse"` (default) or `"huber"` (delta 1, in the transformed
      units), on the transformed label.
  """

  name: str
  label: str
  depends_on: Optional[str] = None
  funnel_output: Optional[str] = None
  loss_weight: float = 1.0
  masked_loss_weight: float = 0.0
  type: str = BINARY
  output: Optional[str] = None
  transform: Optional[str] = None
  loss: Optional[str] = None

  def __post_init__(self):
    _check_name("Task", self.name)
    _check_types(self, f"Task {self.name!r}")
    if self.funnel_output is not None:
      _check_name("Funnel output", self.funnel_output)
    if self.funnel_output is not None and self.depends_on is None:
      raise ValueError(f"Task {self.name!r}: funnel_output needs depends_on.")
    for name in ("loss_weight", "masked_loss_weight"):
      weight = getattr(self, name)
      if not 0 <= weight < math.inf:
        raise ValueError(f"Task {self.name!r}: {name} must be >= 0 and finite, got "
                         f"{weight}.")
    if self.masked_loss_weight and self.funnel_output is None:
      raise ValueError(f"Task {self.name!r}: masked_loss_weight applies to funnel stages only.")
    if self.type not in TASK_TYPES:
      raise ValueError(f"Task {self.name!r}: type must be one of {list(TASK_TYPES)}, got "
                       f"{self.type!r}.")
    if self.type == BINARY:
      for name in ("output", "transform", "loss"):
        if getattr(self, name) is not None:
          raise ValueError(f"Task {self.name!r}: {name} applies to regression tasks only "
                           "(type: regression).")
      return
    if self.funnel_output is not None:
      raise ValueError(f"Task {self.name!r}: a regression task has no funnel output.")
    for name, known in (("output", REGRESSION_OUTPUTS), ("transform", TRANSFORMS),
                        ("loss", REGRESSION_LOSSES)):
      if getattr(self, name) not in (None,) + known:
        raise ValueError(f"Task {self.name!r}: {name} must be one of {list(known)}, got "
                         f"{getattr(self, name)!r}.")
    if self.transform == LOG1P and self.output == LINEAR:
      raise ValueError(f"Task {self.name!r}: transform log1p predicts non-negative values; "
                       "drop output: linear.")

  @property
  def is_regression(self) -> bool:
    return self.type == REGRESSION

  def to_dict(self) -> Dict[str, Any]:
    return _drop_defaults(self)


@dataclasses.dataclass(frozen=True)
class CsvFormat:
  """How CSV files are laid out.

  Attributes:
    header: Whether the first line names the columns.
    columns: The column names, in order, for files without a header.
    delimiter: Field separator (one character); whitespace around values is stripped.
    na_values: Values that mean "missing" (besides the empty string and NaN), in every
      format: CSV fields, `tf.Example` values and serving requests. The model compares
      them after stripping whitespace (and lowercasing, for `lowercase` features);
      numeric features compare the entries that are numbers.
  """

  header: bool = True
  columns: Optional[Tuple[str, ...]] = None
  delimiter: str = ","
  na_values: Tuple[str, ...] = ()

  def __post_init__(self):
    for name in ("columns", "na_values"):
      if isinstance(getattr(self, name), list):
        object.__setattr__(self, name, tuple(getattr(self, name)))
    _check_types(self, "csv")
    if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
      raise ValueError(f"csv.delimiter must be one character other than a quote or a line "
                       f"break, got {self.delimiter!r}.")
    if not self.header and not self.columns:
      raise ValueError("csv: files without a header need `columns`.")

  def to_dict(self) -> Dict[str, Any]:
    return _drop_defaults(self)


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """Features, labels, tasks and the file layout of a data set.

  Attributes:
    features: Input features, in model order.
    labels: Labels (`Label`s, or plain names of 0/1 columns).
    tasks: Tasks, in order; a task may depend only on an earlier one.
    ignore: Columns present in the data that are neither features nor labels.
    csv: Layout of CSV files.
    weight: A column of row weights (a finite number >= 0 per row) that multiply every
      task's per-row loss; evaluation reports weighted metrics and the unweighted ones
      beside them. Read wherever labels are (not for predictions, not in requests).
  """

  features: Tuple[Feature, ...]
  labels: Tuple[Label, ...]
  tasks: Tuple[Task, ...]
  ignore: Tuple[str, ...] = ()
  csv: CsvFormat = CsvFormat()
  weight: Optional[str] = None

  def __post_init__(self):
    object.__setattr__(self, "features", tuple(self.features))
    object.__setattr__(self, "labels", tuple(
        label if isinstance(label, Label) else Label(label) for label in self.labels))
    object.__setattr__(self, "tasks", tuple(self.tasks))
    object.__setattr__(self, "ignore", tuple(self.ignore))
    if not self.features:
      raise ValueError("A feature config needs at least one feature.")
    if not self.tasks:
      raise ValueError("A feature config needs at least one task.")
    names = [f.name for f in self.features]
    if len(set(names)) != len(names):
      raise ValueError(f"Feature names must be unique, got {names}.")
    if self.weight is not None:
      if not isinstance(self.weight, str) or not self.weight:
        raise ValueError(f"weight must be a column name, got {self.weight!r}.")
      if self.weight in (tuple(f.source for f in self.features)
                         + tuple(label.source for label in self.labels) + self.ignore):
        raise ValueError(f"The weight column {self.weight!r} is also a feature's, a "
                         "label's or an ignored column.")
    if WEIGHT_KEY in [label.name for label in self.labels]:
      raise ValueError(f"No label may be named {WEIGHT_KEY!r}.")
    columns = self.columns + self.ignore
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
      raise ValueError(f"Columns declared more than once (a label's column must not also "
                       f"be a feature): {duplicates}.")
    if self.csv.columns is not None:
      missing = [c for c in self.columns if c not in self.csv.columns]
      if missing:
        raise ValueError(f"Columns {missing} are not among csv.columns.")
      unknown = [c for c in self.csv.columns if c not in columns]
      if unknown:
        raise ValueError(f"csv.columns {unknown} are neither features, labels nor ignored.")
    outputs = self.output_names
    if len(set(outputs)) != len(outputs):
      raise ValueError(f"Task and funnel output names must be unique, got {list(outputs)}.")
    if RESERVED_OUTPUT_NAME in outputs:
      raise ValueError(f"No task or funnel output may be named {RESERVED_OUTPUT_NAME!r}: "
                       "eval_metrics.json names the evaluated data under that key.")
    label_names = [label.name for label in self.labels]
    seen = {}
    for task in self.tasks:
      if task.label not in label_names:
        raise ValueError(f"Task {task.name!r}: label {task.label!r} is not among the "
                         f"labels {label_names}.")
      if task.depends_on is not None and task.depends_on not in seen:
        raise ValueError(f"Task {task.name!r} depends on {task.depends_on!r}, which is not "
                         f"an earlier task (earlier: {sorted(seen)}).")
      if task.is_regression and task.depends_on and seen[task.depends_on].is_regression:
        raise ValueError(f"Task {task.name!r}: a regression task may depend on a binary "
                         f"task only; {task.depends_on!r} is a regression task.")
      seen[task.name] = task
    for label in self.labels:
      types = {task.type for task in self.tasks if task.label == label.name}
      if len(types) > 1:
        raise ValueError(f"Label {label.name!r} is the label of a binary and of a "
                         "regression task; give each its own label.")
      if REGRESSION in types and label.positive_values:
        raise ValueError(f"Label {label.name!r} of a regression task has positive_values; "
                         "a regression label is a number.")

  @property
  def columns(self) -> Tuple[str, ...]:
    """The data columns of the features, then of the labels, then the weight's."""
    return (tuple(f.source for f in self.features) + tuple(l.source for l in self.labels)
            + ((self.weight,) if self.weight is not None else ()))

  @property
  def label_names(self) -> Tuple[str, ...]:
    return tuple(label.name for label in self.labels)

  @property
  def output_names(self) -> Tuple[str, ...]:
    """Model output names: every task, then every funnel output."""
    return tuple(t.name for t in self.tasks) + tuple(
        t.funnel_output for t in self.tasks if t.funnel_output)

  @property
  def needs_statistics(self) -> bool:
    return any(f.needs_statistics for f in self.features)

  def task(self, name: str) -> Task:
    for task in self.tasks:
      if task.name == name:
        return task
    raise KeyError(name)

  def label(self, name: str) -> Label:
    for label in self.labels:
      if label.name == name:
        return label
    raise KeyError(name)

  def is_regression_label(self, name: str) -> bool:
    """Whether label `name` is a regression task's (a number, not 0/1)."""
    return any(task.is_regression for task in self.tasks if task.label == name)

  @property
  def regression_outputs(self) -> Tuple[str, ...]:
    """The outputs of the regression tasks."""
    return tuple(task.name for task in self.tasks if task.is_regression)

  def parent_label(self, task: Task) -> Optional[Label]:
    """The label whose 1s select the rows `task` is scored on (a funnel stage's or a
    dependent regression task's parent's), or None: every row."""
    if task.depends_on and (task.funnel_output or task.is_regression):
      return self.label(self.task(task.depends_on).label)
    return None

  def funnels(self) -> List[Tuple[Label, Label]]:
    """(parent label, stage label) of every funnel stage."""
    return [(self.label(self.task(t.depends_on).label), self.label(t.label))
            for t in self.tasks if t.funnel_output]

  def replace_features(self, features: Sequence[Feature]) -> "FeatureConfig":
    return dataclasses.replace(self, features=tuple(features))

  def to_dict(self) -> Dict[str, Any]:
    out = {
        "features": [f.to_dict() for f in self.features],
        "labels": [label.to_dict() for label in self.labels],
        "tasks": [t.to_dict() for t in self.tasks],
        "ignore": list(self.ignore),
    }
    if self.csv != CsvFormat():
      out["csv"] = self.csv.to_dict()
    if self.weight is not None:
      out["weight"] = self.weight
    return out

  @classmethod
  def from_dict(cls, config: Dict[str, Any], base_dir: str = "") -> "FeatureConfig":
    """Builds a config; relative vocabulary file paths are read from `base_dir`."""
    if not isinstance(config, dict):
      raise ValueError("A feature config must be a mapping with features, labels, tasks.")
    keys = ("features", "labels", "tasks", "ignore", "csv", "weight")
    for key in config:
      if key not in keys:
        raise ValueError(unknown_key_message(str(key), keys, "the feature config"))
    for key in ("features", "labels", "tasks"):
      if key not in config:
        raise ValueError(f"The feature config lacks {key!r}.")
    for key in ("features", "labels", "tasks", "ignore"):
      if not isinstance(config.get(key, []), list):
        raise ValueError(f"{key} must be a list, got {config[key]!r}.")
    features = []
    for i, entry in enumerate(config["features"]):
      feature = _build(Feature, entry, f"features[{i}]")
      if isinstance(feature.vocabulary, str):
        feature = dataclasses.replace(
            feature, vocabulary=_read_vocabulary(os.path.join(base_dir, feature.vocabulary)))
      features.append(feature)
    return cls(
        features=tuple(features),
        labels=tuple(Label(l) if isinstance(l, str) else _build(Label, l, f"labels[{i}]")
                     for i, l in enumerate(config["labels"])),
        tasks=tuple(_build(Task, t, f"tasks[{i}]") for i, t in enumerate(config["tasks"])),
        ignore=tuple(config.get("ignore", ())),
        csv=_build(CsvFormat, config.get("csv", {}), "csv"),
        weight=config.get("weight"),
    )

  @classmethod
  def load(cls, path: str) -> "FeatureConfig":
    """Reads a JSON or YAML (`.yaml`, `.yml`) feature config; errors name the file."""
    if not os.path.exists(path):
      raise MissingFileError(f"Feature config {path} does not exist.")
    if os.path.isdir(path):
      raise ConfigError(f"Feature config {path} is a directory: give the config file "
                        "(JSON, or YAML named .yaml or .yml).")
    try:
      with open(path, encoding="utf-8") as f:
        text = f.read()
    except UnicodeDecodeError as e:
      raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}): a feature config is "
                        "JSON or YAML.") from None
    except OSError as e:
      raise ConfigError(f"{path}: cannot read the feature config: {e.strerror}.") from None
    if path.endswith((".yaml", ".yml")):
      import yaml  # pylint: disable=import-outside-toplevel
      try:
        config = yaml.safe_load(text)
      except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}:" if mark else ""
        problem = getattr(e, "problem", None) or str(e).split("\n")[0]
        raise ConfigError(f"{path}:{where} invalid YAML: {problem}") from e
    else:
      try:
        config = json.loads(text)
      except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
    try:
      return cls.from_dict(config, base_dir=os.path.dirname(path))
    except (TypeError, ValueError, KeyError, OSError) as e:
      raise ConfigError(f"{path}: invalid feature config: {e}") from e

  def save(self, path: str) -> None:
    """Writes the config as JSON, atomically (a temporary file, then a rename)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as f:
      json.dump(self.to_dict(), f, indent=2)
      f.write("\n")
    os.replace(temporary, path)


def unknown_key_message(key: str, known: Sequence[str], where: str) -> str:
  """"unknown key 'typ' in features[0] (did you mean 'type'?)"."""
  close = difflib.get_close_matches(key, known, n=1)
  hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})"
  return f"unknown key {key!r} in {where}{hint}"


def _build(cls, entry, where: str):
  """`cls(**entry)`, after checking that `entry` is a mapping of known keys that has
  every required one; the error names `where` and the key."""
  if not isinstance(entry, dict):
    raise ValueError(f"{where} must be a mapping, got {entry!r}")
  fields = [field.name for field in dataclasses.fields(cls)]
  for key in entry:
    if key not in fields:
      raise ValueError(unknown_key_message(str(key), fields, where))
  for field in dataclasses.fields(cls):
    required = (field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING)
    if required and field.name not in entry:
      raise ValueError(f"{where} lacks the key {field.name!r}")
  return cls(**entry)


def _read_vocabulary(path: str) -> Tuple[str, ...]:
  with open(path, encoding="utf-8") as f:
    return tuple(line.rstrip("\n") for line in f if line.rstrip("\n"))
