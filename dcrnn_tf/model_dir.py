"""A model directory: what it holds about its run, its lock, its configs' fingerprints.

`ModelDirectory` reads and writes the files that describe the run of a model directory
(besides the checkpoints, `dcrnn_tf.trainer`): the split (`split.json`), the validation
and test data of the first training run (`data_roles.json`), the prepared feature
config and the fingerprint of the config it was prepared from, the model and its
options (`model_config.json`), the scans' reports and the record of the latest export.

`lock` makes a run the only one on a model directory: it creates `<model_dir>/LOCK`
holding the run's pid and host, and a second run fails while the first lives. A lock
left by a process of this host that no longer runs (killed with `kill -9`) is taken
over with a warning; one of another host is not, since its process cannot be seen from
here.

`fingerprint` hashes each part of a feature config (every feature, the feature order,
the labels, the tasks, the ignored columns, the CSV layout) so that `differences` can
say which parts of two configs differ.
"""

import contextlib
import hashlib
import json
import os
import socket
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from absl import logging

from dcrnn_tf import errors
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.data.roles import DataOptions, DataRoles
from dcrnn_tf.data.split import Split
from dcrnn_tf.errors import UsageError
from dcrnn_tf.features import FeatureConfig

LOCK = "LOCK"
MODEL_CONFIG = "model_config.json"
SPLIT = "split.json"
DATA_ROLES = "data_roles.json"
EXPORTED = "exported.json"
FEATURE_CONFIG = "feature_config.json"
EVAL_METRICS = "eval_metrics.json"
DATA_REPORT = "data_report.json"
SOURCE_FINGERPRINT = "feature_config_source.json"
_ORDER = "the feature order"


def _holder() -> Dict[str, object]:
  return {"pid": os.getpid(), "host": socket.gethostname(),
          "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _is_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Another user's process.
  return True


def _read_holder(path: str) -> Dict[str, object]:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}  # Being written, or not ours: treat as held by an unknown process.


@contextlib.contextmanager
def lock(model_dir: str) -> Iterator[None]:
  """Holds `<model_dir>/LOCK` for the block.

  Raises:
    UsageError: If another live process holds the lock.
  """
  os.makedirs(model_dir, exist_ok=True)
  path = os.path.join(model_dir, LOCK)
  me = _holder()
  while True:
    try:
      descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      holder = _read_holder(path)
      stale = (holder.get("host") == me["host"] and isinstance(holder.get("pid"), int)
               and not _is_alive(holder["pid"]))
      if not stale:
        raise UsageError(
            f"{model_dir} is in use by process {holder.get('pid', '?')} on host "
            f"{holder.get('host', '?')} (since {holder.get('since', '?')}): one run at a "
            f"time per --model_dir. If that run is gone, delete {path}.") from None
      logging.warning("Taking over the lock %s of process %d, which no longer runs.", path,
                      holder["pid"])
      os.remove(path)
      continue
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
      json.dump(me, f)
    break
  try:
    yield
  finally:
    if _read_holder(path).get("pid") == me["pid"]:
      os.remove(path)


def _parts(config: FeatureConfig) -> Dict[str, str]:
  """Each part of the config as canonical JSON, by part name."""
  as_dict = config.to_dict()
  parts = {f"feature {f['name']!r}": f for f in as_dict["features"]}
  parts[_ORDER] = [f["name"] for f in as_dict["features"]]
  for key in ("labels", "tasks", "ignore", "csv"):
    parts[f"the {key}"] = as_dict.get(key)
  return {name: json.dumps(part, sort_keys=True) for name, part in parts.items()}


def fingerprint(config: FeatureConfig) -> Dict[str, str]:
  """A short hash of each part of the config, by part name."""
  return {name: hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
          for name, text in _parts(config).items()}


def differences(old: Mapping[str, str], new: Mapping[str, str]) -> List[str]:
  """What differs between two fingerprints, such as `["feature 'price' differs",
  "feature 'age' is new"]`. The feature order is named only where both hold the same
  features (a feature added or gone changes the order too)."""
  same_features = ({n for n in old if n.startswith("feature ")}
                   == {n for n in new if n.startswith("feature ")})
  out = [f"{name} differs" for name in new if name in old and old[name] != new[name]
         and (name != _ORDER or same_features)]
  out += [f"{name} is new" for name in new if name not in old]
  out += [f"{name} is gone" for name in old if name not in new]
  return out


def _read_json(path: str) -> Any:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _write_json(path: str, value: Any) -> None:
  with open(path, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2)


class ModelDirectory:
  """The files of a model directory that describe its run (see the module docstring).

  The first run writes them once it is known to work; later runs and modes read them
  and refuse flags that would change what the directory was trained on. Messages name
  the command-line flags (`--split`, `--model_dir`), the words its users know.

  Args:
    path: The model directory (it need not exist yet).
  """

  def __init__(self, path: str):
    self.path = path

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  def lock(self) -> contextlib.AbstractContextManager:
    """Holds the directory's lock for a block (`lock`)."""
    return lock(self.path)

  def report_path(self, mode: str) -> str:
    """The data report of a mode: `data_report.json` for train, else
    `data_report_<mode>.json` (a predict run leaves the training run's report alone)."""
    return self.file(DATA_REPORT if mode == "train"
                     else DATA_REPORT.replace(".json", f"_{mode}.json"))

  def split_choice(self, split: Optional[str], split_seed: int,
                   given: bool) -> Tuple[Optional[str], int]:
    """The split in force: the stored one (`split.json`, written with the prepared
    feature config) if any, else `split` and `split_seed`.

    Args:
      split: The split asked for (`Split.parse`'s text) or None.
      split_seed: Its seed.
      given: Whether the user gave either explicitly (then it must be the stored one).

    Raises:
      errors.UsageError: If a given split differs from the stored one.
    """
    if split is not None:
      try:
        Split.parse(split, "train", split_seed)
      except ValueError as e:
        raise UsageError(str(e)) from None
    path = self.file(SPLIT)
    if not os.path.exists(path):
      return split, split_seed
    stored = _read_json(path)
    if given:
      fractions = lambda choice: (choice["split"] and Split.parse(
          choice["split"], "train", 0).fractions, choice["split_seed"])
      if fractions({"split": split, "split_seed": split_seed}) != fractions(stored):
        raise UsageError(
            f"{self.path} was prepared with --split={stored['split'] or ''} "
            f"--split_seed={stored['split_seed']} ({path}), but the flags ask for "
            f"--split={split or ''} --split_seed={split_seed}: leave the split "
            "flags out, or use a new --model_dir.")
    return stored["split"], stored["split_seed"]

  def stored_roles(self, options: DataOptions) -> Dict[str, Dict[str, Any]]:
    """The validation and test data that the first training run read (the absolute
    file pattern and the part of the split), by role; empty before that run (or in a
    model directory of an earlier version).

    Raises:
      errors.UsageError: If a stored pattern that `options` do not replace matches no
        file now.
    """
    path = self.file(DATA_ROLES)
    if not os.path.exists(path):
      return {}
    stored = _read_json(path)
    for role, name in (("validation", "eval_path"), ("test", "test_path")):
      if role in stored and not getattr(options, name):
        try:
          pipeline.list_files(stored[role]["path"])
        except errors.MissingFileError:
          raise UsageError(
              f"{self.path} was trained with {stored[role]['path']} as its {role} data "
              f"({path}), which matches no file now: give --{name}.") from None
    return stored

  def save_data_roles(self, roles: DataRoles) -> None:
    """Writes the validation and test data of the first training run (`stored_roles`)."""
    path = self.file(DATA_ROLES)
    if os.path.exists(path):
      return
    absolute = lambda pattern: ",".join(
        p if "://" in p else os.path.abspath(p) for p in pattern.split(",") if p.strip())
    stored = {}
    for role in ("validation", "test"):
      source, part = roles.source(role)
      stored[role] = {"path": absolute(source), "part": part.part if part else None}
    _write_json(path, stored)

  def prepared_feature_config(self, roles: DataRoles, may_prepare: bool) -> FeatureConfig:
    """The directory's prepared feature config, or, where it has none yet and
    `may_prepare`, one prepared from the training data (`save_prepared_feature_config`
    stores it once the run is known to work).

    Raises:
      errors.UsageError: If the options give a feature config other than the one the
        directory was prepared from, or it has none and may not prepare one.
    """
    path = self.file(FEATURE_CONFIG)
    source = roles.options.source_feature_config()
    if os.path.exists(path):
      if source is not None:
        self.check_source_feature_config(source)
      return FeatureConfig.load(path)
    if not may_prepare:
      raise UsageError(f"{self.path} holds no prepared feature config ({path}); "
                       "run --mode=prepare or --mode=train first.")
    raw = FeatureConfig.load(roles.options.path("feature_config"))
    start = time.time()
    statistics = roles.check("train", raw, learn=True)
    prepared = scan.prepare(raw, statistics)
    logging.info("Prepared the feature config from %d training rows in %.1f s.",
                 roles.rows("train"), time.time() - start)
    return prepared

  def check_source_feature_config(self, source: str) -> None:
    """Refuses a feature config other than the one the directory was prepared from."""
    path = self.file(SOURCE_FINGERPRINT)
    if not os.path.exists(path):
      return  # A model directory of an earlier version.
    stored = _read_json(path)
    changes = differences(stored["fingerprint"], fingerprint(FeatureConfig.load(source)))
    if changes:
      raise UsageError(
          f"--feature_config {source} differs from the feature config {self.path} was "
          f"prepared from ({stored['path']}): {'; '.join(changes)}. To train with it, use a "
          "new --model_dir (or delete this one); to go on with this model, pass the config "
          "it was prepared from.")

  def save_prepared_feature_config(self, feature_config: FeatureConfig, source: str,
                                   split: Optional[str], split_seed: int) -> None:
    """Writes the prepared feature config, the fingerprint of the config `source` it
    was prepared from and the split choice (`split_choice`), unless they are there."""
    path = self.file(FEATURE_CONFIG)
    if os.path.exists(path):
      return
    os.makedirs(self.path, exist_ok=True)
    _write_json(self.file(SOURCE_FINGERPRINT),
                {"path": source, "fingerprint": fingerprint(FeatureConfig.load(source))})
    _write_json(self.file(SPLIT), {"split": split, "split_seed": split_seed})
    feature_config.save(path)
    logging.info("Wrote the prepared feature config %s", path)

  def trained_run_config(self, feature_config: FeatureConfig,
                         default_loss_weighting: str) -> Optional[Dict[str, Any]]:
    """The model's name, options and loss weighting that the directory was trained
    with (`default_loss_weighting` for a directory from before loss weightings), or
    None before the first training run.

    Raises:
      errors.UsageError: If `feature_config` is not the one it was trained on.
    """
    path = self.file(MODEL_CONFIG)
    if not os.path.exists(path):
      return None
    stored = _read_json(path)
    prints = fingerprint(feature_config)
    changes = differences(stored.get("feature_config", prints), prints)
    if changes:
      raise UsageError(
          f"The prepared feature config {self.file(FEATURE_CONFIG)} differs from the one "
          f"the model in {self.path} was trained on: {'; '.join(changes)}. Restore the "
          "config it was trained on, or train in a new --model_dir (or delete this one).")
    return {"model": stored["model"], "options": stored["options"],
            "loss_weighting": stored.get("loss_weighting", default_loss_weighting)}

  def save_run_config(self, run_config: Mapping[str, Any],
                      feature_config: FeatureConfig) -> None:
    """Writes `model_config.json`: the run config and the fingerprint of the prepared
    feature config it trains on."""
    _write_json(self.file(MODEL_CONFIG),
                {**run_config, "feature_config": fingerprint(feature_config)})

  def latest_export(self) -> Dict[str, str]:
    """The record of the latest export (`{"checkpoint": …, "export": …}`), or {}."""
    path = self.file(EXPORTED)
    return _read_json(path) if os.path.exists(path) else {}

  def record_export(self, checkpoint: Optional[str], export_path: str) -> None:
    _write_json(self.file(EXPORTED), {"checkpoint": checkpoint, "export": export_path})

  def write_eval_metrics(self, metrics: Mapping[str, Any]) -> str:
    """Writes `eval_metrics.json`; returns its path."""
    path = self.file(EVAL_METRICS)
    _write_json(path, metrics)
    return path
