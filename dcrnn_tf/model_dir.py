"""What a model directory holds about itself: a lock, and fingerprints of its configs.

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
from typing import Dict, Iterator, List, Mapping

from absl import logging

from dcrnn_tf.errors import UsageError
from dcrnn_tf.features import FeatureConfig

LOCK = "LOCK"
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
