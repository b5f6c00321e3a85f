"""What a benchmark runs: rows of the model table and of the DCRNN ablations, and the
(model, options, seed) runs behind them."""

import dataclasses
import hashlib
import inspect
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from dcrnn_tf import models
from dcrnn_tf.features import FeatureConfig

MODELS_GROUP = "models"
ABLATION_GROUPS = ("cross_axis", "cell", "sharing", "transfer", "depth", "capacity",
                   "state", "learning_rate")
ABLATION_DEPTHS = (1, 2, 3, 4)
# DCRNN's learning rates of the `learning_rate` group, as factors of the benchmark's.
ABLATION_LEARNING_RATE_FACTORS = (0.5, 1.0, 2.0)


@dataclasses.dataclass(frozen=True)
class Row:
  """One line of a table: a model configuration trained over several seeds.

  Attributes:
    group: `MODELS_GROUP` or an ablation group (`ABLATION_GROUPS`).
    label: What the line shows, e.g. `"mmoe"` or `"cell=lstm"`.
    model: Registered model name.
    options: The model's constructor options.
    seeds: Seeds of its runs.
    depends_on: Task dependencies added to the feature config (task → parent).
    skip_reason: Why the row is not run (then `seeds` is empty).
    learning_rate: The row's learning rate (None: the benchmark's).
    measure_speed: Whether its first seed's run also measures speed (throughput,
      latency).
  """

  group: str
  label: str
  model: str
  options: Mapping[str, Any]
  seeds: Tuple[int, ...]
  depends_on: Mapping[str, str] = dataclasses.field(default_factory=dict)
  skip_reason: Optional[str] = None
  learning_rate: Optional[float] = None
  measure_speed: bool = False

  def runs(self) -> List["Run"]:
    """Its runs; the first seed's also measures speed where `measure_speed`."""
    return [Run(self.model, dict(self.options), seed, dict(self.depends_on),
                measure_speed=i == 0 and self.measure_speed,
                learning_rate=self.learning_rate)
            for i, seed in enumerate(self.seeds)]


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run, done in its own process (see `worker`).

  Attributes:
    model: Registered model name.
    options: The model's constructor options.
    seed: Seed of weights and shuffling.
    depends_on: Task dependencies added to the feature config.
    measure_speed: Whether to also measure throughput and export for latency.
    learning_rate: The run's learning rate (None: the benchmark's).
  """

  model: str
  options: Mapping[str, Any]
  seed: int
  depends_on: Mapping[str, str] = dataclasses.field(default_factory=dict)
  measure_speed: bool = False
  learning_rate: Optional[float] = None

  @property
  def key(self) -> str:
    """A name for the run directory: equal for runs that train the same thing."""
    identity = [self.model, self.options, self.seed, self.depends_on]
    if self.learning_rate is not None:
      identity.append(self.learning_rate)
    identity = json.dumps(identity, sort_keys=True)
    return f"{self.model}-{hashlib.sha1(identity.encode()).hexdigest()[:10]}-seed{self.seed}"

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def unique_runs(rows: Sequence[Row]) -> List[Run]:
  """The runs of all rows, each once (speed measured if any row asks): every row's
  first seed, then every row's second seed, and so on."""
  runs: Dict[str, Run] = {}
  for position in range(max((len(row.seeds) for row in rows), default=0)):
    for row in rows:
      if position >= len(row.seeds):
        continue
      run = row.runs()[position]
      if run.key in runs and not run.measure_speed:
        continue
      runs[run.key] = run if run.key not in runs else dataclasses.replace(
          runs[run.key], measure_speed=True)
  return list(runs.values())


def with_dependencies(config: FeatureConfig, depends_on: Mapping[str, str]) -> FeatureConfig:
  """The config with `depends_on` set on the named tasks (task transfer)."""
  tasks = tuple(dataclasses.replace(task, depends_on=depends_on[task.name])
                if task.name in depends_on else task for task in config.tasks)
  return dataclasses.replace(config, tasks=tasks)


def model_rows(options: Mapping[str, Mapping[str, Any]], seeds: Sequence[int],
               skip_reasons: Mapping[str, str], measure_speed: bool = True) -> List[Row]:
  """The model table: one row per model (`options`: model name → its options), whose
  first seed also measures speed if `measure_speed`."""
  return [Row(MODELS_GROUP, name, name, dict(model_options),
              () if name in skip_reasons else tuple(seeds), skip_reason=skip_reasons.get(name),
              measure_speed=measure_speed)
          for name, model_options in options.items()]


def ablation_rows(groups: Sequence[str], dcrnn: Mapping[str, Any],
                  no_cross: Tuple[str, Mapping[str, Any]], feature_config: FeatureConfig,
                  seeds: Sequence[int], learning_rate: float) -> List[Row]:
  """The DCRNN ablations, each a variation of the `dcrnn` options (or, in the
  `learning_rate` group, of the learning rate).

  Args:
    groups: Which of `ABLATION_GROUPS` to run.
    dcrnn: DCRNN's options (the default every variant changes one thing of).
    no_cross: (model name, options) of the "no cross" line of the `cross_axis` group.
    feature_config: The tasks (for the transfer group).
    seeds: Seeds of every ablation row.
    learning_rate: The benchmark's learning rate (every model's).

  Returns:
    The rows, group by group; the default configuration appears in every group.
  """
  seeds = tuple(seeds)
  width = dcrnn["shared_units"] + dcrnn["private_units"]
  variants = {
      "cross_axis": [("cross_axis=depth", {"cross_axis": "depth"}),
                     ("cross_axis=fields", {"cross_axis": "fields"})],
      "cell": [(f"cell={cell}", {"cell": cell}) for cell in ("gru", "lstm", "simple")],
      "sharing": [(f"hard (shared {width}, private 0)",
                   {"shared_units": width, "private_units": 0}),
                  (f"partial (shared {dcrnn['shared_units']}, private "
                   f"{dcrnn['private_units']})", {}),
                  (f"separate (shared 0, private {width})",
                   {"shared_units": 0, "private_units": width})],
      "depth": [(f"depth={depth}", {"cross_axis": "depth", "depth": depth})
                for depth in ABLATION_DEPTHS],
      # What the towers read, and what the cross reads (see DCRNN's x0_skip,
      # parallel_units and cross_dim=0).
      "capacity": [("state only", {}),
                   ("towers also read x0", {"x0_skip": True}),
                   ("parallel MLP (64,)", {"parallel_units": [64]}),
                   ("no x0 projection, rank 32", {"cross_dim": 0, "rank": 32})],
      # How the states evolve over the steps (see RNNCross's residual and layer_norm);
      # each variant sets both, whatever DCRNN's defaults are.
      "state": [("plain", {"residual": False, "layer_norm": False}),
                ("residual", {"residual": True, "layer_norm": False}),
                ("layer norm", {"residual": False, "layer_norm": True}),
                ("residual and layer norm", {"residual": True, "layer_norm": True})],
  }
  rows = []
  for group in groups:
    if group not in ABLATION_GROUPS:
      raise ValueError(f"Unknown ablation group {group!r}; known: {ABLATION_GROUPS}.")
    if group == "transfer":
      rows.extend(_transfer_rows(dcrnn, feature_config, seeds))
      continue
    if group == "learning_rate":
      for factor in ABLATION_LEARNING_RATE_FACTORS:
        default = " (default)" if factor == 1.0 else ""
        rows.append(Row(group, f"learning rate {factor * learning_rate:g}{default}", "dcrnn",
                        dict(dcrnn), seeds,
                        learning_rate=None if factor == 1.0 else factor * learning_rate))
      continue
    for label, changes in variants[group]:
      options = {**dcrnn, **changes}
      default = " (default)" if dcrnn_defaults(options) == dcrnn_defaults(dcrnn) else ""
      rows.append(Row(group, label + default, "dcrnn", options, seeds))
    if group == "cross_axis":
      rows.append(Row(group, f"no cross ({no_cross[0]})", no_cross[0], dict(no_cross[1]),
                      seeds))
  return rows


def dcrnn_defaults(options: Mapping[str, Any]) -> Dict[str, Any]:
  """DCRNN's constructor defaults, updated with `options`: the configuration `options`
  build (an ablation line is the default where this equals the default's)."""
  parameters = inspect.signature(models.DCRNN).parameters.values()
  return {**{p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty},
          **options}


def _transfer_rows(dcrnn: Mapping[str, Any], feature_config: FeatureConfig,
                   seeds: Tuple[int, ...]) -> List[Row]:
  tasks = feature_config.tasks
  if len(tasks) < 2 or tasks[1].depends_on:
    reason = ("needs a second task without depends_on" if len(tasks) >= 2 else
              "needs two tasks")
    return [Row("transfer", "transfer on/off", "dcrnn", dict(dcrnn), (), skip_reason=reason)]
  return [Row("transfer", "transfer off (default)", "dcrnn", dict(dcrnn), seeds),
          Row("transfer", f"transfer on ({tasks[1].name} reads {tasks[0].name})", "dcrnn",
              dict(dcrnn), seeds, depends_on={tasks[1].name: tasks[0].name})]
