"""Synthetic click → conversion data with a known hidden structure: the default data set.

A row is an impression: categorical fields ``c0..c{k-1}`` (int64 ids, Zipf-like
frequencies, vocabularies from 10 to ``max_vocab_size`` ids), numeric fields
``n0..n{m-1}`` (float32; even fields normal, odd fields log-normal, hence positive and
skewed), and the labels ``click`` and ``conversion`` (int64 0/1; a conversion only
ever follows a click).

The labels come from a hidden model (a `Structure`, drawn from a seed). Every
informative categorical field has a latent vector per id and every informative
numeric field a latent direction (fields with larger vocabularies get weaker latents,
as their many rare ids are hard to learn); their sum is a latent ``z`` shared by both
tasks::

  z = sum_j E_j[c_j] + sum_i x_i w_i                      (x_i: standardized n_i)
  logit p(click)                = a . z + cross_click      + bias_click
  logit p(conversion | click)   = b . z + cross_conversion + bias_conversion

The directions ``a`` and ``b`` are partly aligned (the tasks are related: their cosine
is `task_cosine`, 0.7 by default, from 0, unrelated, to 1, the same direction) and each
task has its own crosses: the dot product of two categorical fields' latents, and one
categorical field's projected latent times a numeric value (so a feature-crossing model
has something to find). Noise fields (`Structure.noise_columns`) enter nothing. The
biases are set so that about 4% of impressions are clicked and about 10% of clicks
convert. The true probabilities (`Structure.probabilities`) rank clicks with an AUC of
about 0.78 and conversions (over all rows) with about 0.82.

Optionally (`dwell_time=True`) a clicked impression also has a dwell time, the label
``dwell_seconds`` (float32; 0 where there was no click), log-normal around a median of
30 s over all impressions (clicked ones dwell longer, about 48 s: ``d`` leans towards
the click direction)::

  log dwell_seconds = log 30 + d . z + 0.5 * noise        (noise: standard normal)

with ``d`` partly aligned with the click direction (cosine 0.7) and ``d . z`` of
standard deviation 0.8: the task ``dwell``, a regression on ``log1p`` of the label that
depends on ``ctr``. Its rows are drawn from their own seed, so the other columns are the
same with or without it.

Splits (``train``, ``eval``, ``test``) of one seed are independent rows drawn from the
same structure.
"""

import dataclasses
import functools
import inspect
import json
import os
import shutil
import tempfile
import time
from typing import Any, Dict, Mapping, Optional, Tuple

from absl import logging
import numpy as np
import pandas as pd

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.errors import UsageError
from dcrnn_tf.features import CATEGORICAL, LOG1P, NUMERIC, REGRESSION, Feature, FeatureConfig, Task

SPLITS = ("train", "eval", "test")
CONFIG_FILE = "feature_config.json"
SETTINGS_FILE = "synthetic.json"  # The arguments the data set was written with.
# The arguments a data set is not reused across: what its tasks are and how related.
KEPT_APART = ("dwell_time", "task_cosine")
CLICK_RATE = 0.04
CONVERSION_RATE = 0.10  # Of clicks.
LATENT_DIM = 4
_MIN_VOCAB_SIZE = 10
_ZIPF_EXPONENT = 1.1
_NUMERIC_SCALE = 2.0  # Of the numeric latents against those of a 10-id field.
_CALIBRATION_ROWS = 100_000
TASK_COSINE = 0.7  # Default cosine between the click and the conversion directions a, b.
_DWELL_COSINE = 0.7  # Between the dwell time's direction and the click's.
# Variance shares of a task's logit: shared latent, categorical cross, numeric cross.
_SHARES = np.array([0.5, 0.25, 0.25])
_CLICK_LOGIT_STD = 1.1
_CONVERSION_LOGIT_STD = 0.6
DWELL_LABEL = "dwell_seconds"
_DWELL_MEDIAN_SECONDS = 30.0
_DWELL_SIGNAL_STD = 0.8  # Of d . z, the dwell time's log around its median.
_DWELL_NOISE_STD = 0.5


@dataclasses.dataclass(frozen=True, eq=False)
class _Head:
  """The hidden logit of one task.

  Attributes:
    direction: [LATENT_DIM] direction read from the shared latent.
    pair: Categorical fields whose latents' dot product is the first cross.
    field_by_value: (categorical field, numeric field) of the second cross.
    projection: [LATENT_DIM] projection of that categorical field's latent.
    weights: Weights of (shared latent, first cross, second cross).
    bias: Logit bias.
  """

  direction: np.ndarray
  pair: Tuple[int, int]
  field_by_value: Tuple[int, int]
  projection: np.ndarray
  weights: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(3))
  bias: float = 0.0

  def components(self, latents, ids, values, z) -> np.ndarray:
    """[rows, 3] unweighted terms of the logit."""
    p, q = self.pair
    field, numeric = self.field_by_value
    return np.stack([
        z @ self.direction,
        np.sum(latents[p][ids[p]] * latents[q][ids[q]], axis=1),
        latents[field][ids[field]] @ self.projection * values[:, numeric],
    ], axis=1)

  def logits(self, latents, ids, values, z) -> np.ndarray:
    return self.components(latents, ids, values, z) @ self.weights + self.bias


@dataclasses.dataclass(frozen=True, eq=False)
class Structure:
  """The hidden model of one synthetic data set; build it with `make_structure`.

  Attributes:
    seed: The seed it was drawn from; rows are drawn from seeds derived from it.
    vocab_sizes: Vocabulary size of each categorical field.
    id_probabilities: Per categorical field, the probability of each id.
    latents: Per categorical field, [vocab_size, LATENT_DIM] latent vectors (zero for
      noise fields).
    log_normal: Per numeric field, whether it is log-normal (else normal).
    numeric_mean: Per numeric field, the mean (of the log for log-normal fields).
    numeric_std: Per numeric field, the standard deviation (of the log likewise).
    numeric_latents: [num_numeric, LATENT_DIM] latent directions (zero for noise).
    noise_columns: Columns that do not influence the labels.
    click: Hidden logit of p(click).
    conversion: Hidden logit of p(conversion | click).
    dwell: [LATENT_DIM] direction (scaled) of the log dwell time of a click, or None
      when the data have no dwell time.
  """

  seed: int
  vocab_sizes: Tuple[int, ...]
  id_probabilities: Tuple[np.ndarray, ...]
  latents: Tuple[np.ndarray, ...]
  log_normal: np.ndarray
  numeric_mean: np.ndarray
  numeric_std: np.ndarray
  numeric_latents: np.ndarray
  noise_columns: Tuple[str, ...]
  click: _Head
  conversion: _Head
  dwell: Optional[np.ndarray] = None

  def feature_config(self) -> FeatureConfig:
    """The feature config of the generated columns and the click → conversion tasks.

    As a user would write it: the types (integer ids, log-transformed skewed numbers),
    no statistics; vocabularies and means are learned from the training rows
    (`dcrnn_tf.data.scan`).
    """
    features = [Feature(f"c{j}", CATEGORICAL, dtype="int64")
                for j in range(len(self.vocab_sizes))]
    features += [Feature(f"n{i}", NUMERIC, log=bool(log_normal))
                 for i, log_normal in enumerate(self.log_normal)]
    tasks = (Task("ctr", "click"),
             Task("cvr", "conversion", depends_on="ctr", funnel_output="ctcvr"))
    if self.dwell is None:
      return FeatureConfig(features=features, labels=("click", "conversion"), tasks=tasks)
    return FeatureConfig(
        features=features, labels=("click", "conversion", DWELL_LABEL),
        tasks=tasks + (Task("dwell", DWELL_LABEL, depends_on="ctr", type=REGRESSION,
                            transform=LOG1P),))

  def sample(self, rows: int, split: str = "train") -> pd.DataFrame:
    """Draws rows of a split: features, then the labels ``click``, ``conversion`` (and
    ``dwell_seconds``)."""
    if split not in SPLITS:
      raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    rng = np.random.default_rng([self.seed, 1 + SPLITS.index(split)])
    frame = _draw_features(self, rng, rows)
    probabilities = self.probabilities(frame)
    click = rng.random(rows) < probabilities["click"].to_numpy()
    converted = rng.random(rows) < probabilities["conversion_given_click"].to_numpy()
    frame["click"] = click.astype(np.int64)
    frame["conversion"] = (click & converted).astype(np.int64)
    if self.dwell is not None:
      noise = np.random.default_rng([self.seed, 11 + SPLITS.index(split)]).standard_normal(rows)
      log_dwell = self._log_dwell(frame) + _DWELL_NOISE_STD * noise
      frame[DWELL_LABEL] = np.where(click, np.round(np.exp(log_dwell), 2), 0.0).astype(
          np.float32)
    return frame

  def _log_dwell(self, frame: pd.DataFrame) -> np.ndarray:
    """The mean log dwell time of a click on each row."""
    return np.log(_DWELL_MEDIAN_SECONDS) + _latent(self, frame)[0] @ self.dwell

  def probabilities(self, frame: pd.DataFrame) -> pd.DataFrame:
    """The true label probabilities of rows (the Bayes-optimal predictions).

    Args:
      frame: Rows with the feature columns, as `sample` returns them.

    Returns:
      A frame with columns ``click``, ``conversion_given_click`` and ``conversion``
      (= p(click) * p(conversion | click)), and with a dwell time
      ``dwell_seconds_given_click``, its expected value.
    """
    z, ids, values = _latent(self, frame)
    click = _sigmoid(self.click.logits(self.latents, ids, values, z))
    conversion = _sigmoid(self.conversion.logits(self.latents, ids, values, z))
    out = pd.DataFrame({"click": click, "conversion_given_click": conversion,
                        "conversion": click * conversion}, index=frame.index)
    if self.dwell is not None:
      out[f"{DWELL_LABEL}_given_click"] = np.exp(self._log_dwell(frame)
                                                 + _DWELL_NOISE_STD ** 2 / 2)
    return out


@functools.lru_cache(maxsize=8)
def make_structure(seed: int = 0,
                   *,
                   num_categorical: int = 12,
                   num_numeric: int = 6,
                   num_noise_categorical: int = 3,
                   num_noise_numeric: int = 2,
                   max_vocab_size: int = 1000,
                   dwell_time: bool = False,
                   task_cosine: float = TASK_COSINE) -> Structure:
  """Draws the hidden model of a synthetic data set (deterministic in its arguments).

  Args:
    seed: Seed of the structure (and, derived from it, of the rows of each split).
    num_categorical: Categorical fields ``c0..``.
    num_numeric: Numeric fields ``n0..``.
    num_noise_categorical: How many categorical fields are noise.
    num_noise_numeric: How many numeric fields are noise.
    max_vocab_size: Largest vocabulary; the vocabularies are spaced geometrically from
      10 to this, in a random order.
    dwell_time: Whether clicks have a dwell time (the ``dwell`` regression task).
    task_cosine: The cosine between the click's and the conversion's directions in the
      shared latent, in [0, 1]: how related the two tasks are.

  Returns:
    The structure, calibrated to the click and conversion rates.
  """
  if num_categorical - num_noise_categorical < 2 or num_noise_categorical < 0:
    raise ValueError("Need at least 2 informative categorical fields, got "
                     f"{num_categorical} fields of which {num_noise_categorical} noise.")
  if num_numeric - num_noise_numeric < 1 or num_noise_numeric < 0:
    raise ValueError("Need at least 1 informative numeric field, got "
                     f"{num_numeric} fields of which {num_noise_numeric} noise.")
  if max_vocab_size < _MIN_VOCAB_SIZE:
    raise ValueError(f"max_vocab_size must be >= {_MIN_VOCAB_SIZE}, got {max_vocab_size}.")
  if not 0.0 <= task_cosine <= 1.0:
    raise ValueError(f"task_cosine must be in [0, 1], got {task_cosine}.")
  rng = np.random.default_rng([seed, 0])
  vocab_sizes = rng.permutation(
      np.round(np.geomspace(_MIN_VOCAB_SIZE, max_vocab_size, num_categorical)).astype(int))
  noise_categorical = set(rng.choice(num_categorical, num_noise_categorical, replace=False))
  noise_numeric = set(rng.choice(num_numeric, num_noise_numeric, replace=False))
  id_probabilities, latents = [], []
  for j, vocab_size in enumerate(vocab_sizes):
    zipf = 1.0 / np.arange(1, vocab_size + 1) ** _ZIPF_EXPONENT
    id_probabilities.append(rng.permutation(zipf / zipf.sum()))
    # Larger vocabularies get weaker latents: their many rare ids are hard to learn.
    scale = 0.0 if j in noise_categorical else (_MIN_VOCAB_SIZE / vocab_size) ** 0.25
    latents.append(rng.normal(0.0, scale * LATENT_DIM ** -0.5, (vocab_size, LATENT_DIM)))
  numeric_latents = rng.normal(0.0, _NUMERIC_SCALE * LATENT_DIM ** -0.5,
                               (num_numeric, LATENT_DIM))
  numeric_latents[sorted(noise_numeric)] = 0.0
  orthonormal, _ = np.linalg.qr(rng.standard_normal((LATENT_DIM, 2)))
  click_direction = orthonormal[:, 0]
  conversion_direction = (task_cosine * orthonormal[:, 0]
                          + np.sqrt(1 - task_cosine ** 2) * orthonormal[:, 1])
  informative = sorted(set(range(num_categorical)) - noise_categorical)
  informative_numeric = sorted(set(range(num_numeric)) - noise_numeric)

  def head(direction):
    return _Head(direction=direction,
                 pair=tuple(int(j) for j in rng.choice(informative, 2, replace=False)),
                 field_by_value=(int(rng.choice(informative)),
                                 int(rng.choice(informative_numeric))),
                 projection=rng.standard_normal(LATENT_DIM))

  structure = Structure(
      seed=seed,
      vocab_sizes=tuple(int(v) for v in vocab_sizes),
      id_probabilities=tuple(id_probabilities),
      latents=tuple(latents),
      log_normal=np.arange(num_numeric) % 2 == 1,
      numeric_mean=rng.uniform(-1.0, 1.0, num_numeric),
      numeric_std=rng.uniform(0.5, 1.0, num_numeric),
      numeric_latents=numeric_latents,
      noise_columns=tuple([f"c{j}" for j in sorted(noise_categorical)]
                          + [f"n{i}" for i in sorted(noise_numeric)]),
      click=head(click_direction),
      conversion=head(conversion_direction))
  structure = _calibrate(structure, _draw_features(structure, rng, _CALIBRATION_ROWS))
  if dwell_time:
    structure = _with_dwell_time(structure)
  return structure


def _with_dwell_time(structure: Structure) -> Structure:
  """The structure with a dwell time, drawn from its own seed (the rest unchanged)."""
  rng = np.random.default_rng([structure.seed, 10])
  click = structure.click.direction / np.linalg.norm(structure.click.direction)
  other = rng.standard_normal(LATENT_DIM)
  other -= (other @ click) * click
  direction = _DWELL_COSINE * click + np.sqrt(1 - _DWELL_COSINE ** 2) * (
      other / np.linalg.norm(other))
  z = _latent(structure, _draw_features(structure, rng, _CALIBRATION_ROWS))[0]
  return dataclasses.replace(structure,
                             dwell=direction * _DWELL_SIGNAL_STD / np.std(z @ direction))


def generate(rows: int, seed: int = 0, split: str = "train", **structure_kwargs) -> pd.DataFrame:
  """Draws rows of the synthetic data set.

  Args:
    rows: Number of rows.
    seed: Seed of the data set: same seed and split, same rows.
    split: ``"train"``, ``"eval"`` or ``"test"``: independent rows, one hidden structure.
    **structure_kwargs: Keyword arguments of `make_structure` (field counts, noise
      fields, vocabulary size).

  Returns:
    Columns ``c*`` (int64), ``n*`` (float32), ``click``, ``conversion`` (int64 0/1).
  """
  return make_structure(seed, **structure_kwargs).sample(rows, split)


def feature_config(seed: int = 0, **structure_kwargs) -> FeatureConfig:
  """The (unprepared) feature config of `generate`'s columns."""
  return make_structure(seed, **structure_kwargs).feature_config()


def example_batch(rows: int = 4, seed: int = 0, learn_rows: int = 2_000
                  ) -> Tuple[FeatureConfig, Dict[str, tf.Tensor]]:
  """A prepared feature config of the synthetic data and a batch of raw features: what
  the docstring examples (and a first notebook) feed a model.

  Example:

  ```python
  config, features = example_batch(rows=4)
  model = dcrnn_tf.models.DCRNN(config)
  assert model(features)["ctcvr"].shape == [4]
  ```

  Args:
    rows: Rows of the batch (from the `"eval"` split).
    seed: Seed of the data set.
    learn_rows: Training rows the vocabularies and statistics are learned from.

  Returns:
    The prepared config and a dict from feature name to a `[rows]` tensor, as the
    input pipeline yields them.
  """
  structure = make_structure(seed)
  config = scan.prepare_from_frame(structure.feature_config(),
                                   structure.sample(learn_rows, "train"))
  frame = structure.sample(rows, "eval")
  specs = pipeline.feature_tensor_specs(config)
  features = {name: tf.constant(frame[name].astype(str).to_numpy() if spec.dtype == tf.string
                                else frame[name].to_numpy(), dtype=spec.dtype)
              for name, spec in specs.items()}
  return config, features


def write_dataset(out_dir: str,
                  train_rows: int = 200_000,
                  eval_rows: int = 50_000,
                  seed: int = 0,
                  **structure_kwargs) -> FeatureConfig:
  """Writes the train and eval splits as CSV and GZIP TFRecord, and the feature config.

  Writes ``train.csv``, ``eval.csv``, ``train.tfrecord.gz``, ``eval.tfrecord.gz``,
  ``synthetic.json`` (the arguments) and ``feature_config.json`` into ``out_dir``. The
  files are written aside and moved in with the config last, so a present config marks
  a complete data set.

  Args:
    out_dir: Output directory (created if missing).
    train_rows: Rows of the train split.
    eval_rows: Rows of the eval split.
    seed: Seed of the data set.
    **structure_kwargs: Keyword arguments of `make_structure`.

  Returns:
    The feature config.
  """
  start = time.time()
  structure = make_structure(seed, **structure_kwargs)
  config = structure.feature_config()
  os.makedirs(out_dir, exist_ok=True)
  config_path = os.path.join(out_dir, CONFIG_FILE)
  if os.path.exists(config_path):
    os.remove(config_path)
  staging = tempfile.mkdtemp(prefix=".partial-", dir=out_dir)
  try:
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
      frame = structure.sample(rows, split)
      pipeline.write_csv(frame, os.path.join(staging, f"{split}.csv"))
      pipeline.write_tfrecord(frame, os.path.join(staging, f"{split}.tfrecord.gz"), config)
      logging.info("Wrote %d %s rows.", rows, split)
    with open(os.path.join(staging, SETTINGS_FILE), "w", encoding="utf-8") as f:
      json.dump(_settings(train_rows, eval_rows, seed, structure_kwargs), f, indent=2)
    config.save(os.path.join(staging, CONFIG_FILE))
    for name in sorted(os.listdir(staging), key=lambda n: n == CONFIG_FILE):
      os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  logging.info("Wrote the synthetic data set to %s in %.1f s.", out_dir, time.time() - start)
  return config


def _settings(train_rows: int, eval_rows: int, seed: int,
              structure_kwargs: Mapping[str, Any]) -> Dict[str, Any]:
  """The arguments of a data set as `SETTINGS_FILE` holds them (every structure
  argument, its default where not given)."""
  defaults = {name: parameter.default for name, parameter in
              inspect.signature(make_structure.__wrapped__).parameters.items()
              if parameter.kind == inspect.Parameter.KEYWORD_ONLY}
  return {"train_rows": int(train_rows), "eval_rows": int(eval_rows), "seed": int(seed),
          **defaults, **structure_kwargs}


def ensure_dataset(out_dir: str, train_rows: int = 200_000, eval_rows: int = 50_000,
                   seed: int = 0, **structure_kwargs) -> FeatureConfig:
  """Returns the config of the data set in ``out_dir``, writing it first if missing.

  Args:
    out_dir: Directory of the data set.
    train_rows, eval_rows, seed, **structure_kwargs: Arguments of `write_dataset`.

  Returns:
    The feature config.

  Raises:
    UsageError: If ``out_dir`` holds a data set of other tasks or task relatedness
      (`KEPT_APART`; for one written before `SETTINGS_FILE` existed, of other tasks).
      Its rows, seed and fields are what they are: the arguments only write a missing
      data set.
  """
  config_path = os.path.join(out_dir, CONFIG_FILE)
  if not os.path.exists(config_path):
    return write_dataset(out_dir, train_rows, eval_rows, seed, **structure_kwargs)
  config = FeatureConfig.load(config_path)
  wanted = _settings(train_rows, eval_rows, seed, structure_kwargs)
  found = read_settings(out_dir)
  if found is not None:
    differ = [key for key in KEPT_APART if found.get(key) != wanted[key]]
    if differ:
      raise UsageError(f"{out_dir} holds a synthetic data set of other tasks ("
                       + ", ".join(f"{key} {found.get(key)} here, {wanted[key]} asked"
                                   for key in differ)
                       + "); give another --data_dir (or remove it).")
  else:
    expected = feature_config(seed, **structure_kwargs)
    if (config.labels, config.tasks) != (expected.labels, expected.tasks):
      raise UsageError(f"{out_dir} holds a synthetic data set with the tasks "
                       f"{[t.name for t in config.tasks]}, not "
                       f"{[t.name for t in expected.tasks]}; give another --data_dir (or "
                       "remove it).")
  logging.info("Using the synthetic data set in %s.", out_dir)
  return config


def read_settings(out_dir: str) -> Optional[Dict[str, Any]]:
  """The arguments a data set was written with (`SETTINGS_FILE`: rows, seed and every
  `make_structure` argument), or None for one written before that file existed."""
  path = os.path.join(out_dir, SETTINGS_FILE)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _calibrate(structure: Structure, frame: pd.DataFrame) -> Structure:
  """Sets the heads' weights and biases from a sample of features.

  Each logit term is scaled to its variance share, the logit to its standard
  deviation, and the biases to the click rate and the conversion rate of clicks.
  """
  z, ids, values = _latent(structure, frame)

  def scaled(head, logit_std):
    components = head.components(structure.latents, ids, values, z)
    weights = np.sqrt(_SHARES) / components.std(axis=0)
    weights *= logit_std / (components @ weights).std()
    return components @ weights, weights

  click_logits, click_weights = scaled(structure.click, _CLICK_LOGIT_STD)
  click_bias = _solve_bias(click_logits, np.ones_like(click_logits), CLICK_RATE)
  conversion_logits, conversion_weights = scaled(structure.conversion, _CONVERSION_LOGIT_STD)
  conversion_bias = _solve_bias(conversion_logits, _sigmoid(click_logits + click_bias),
                                CONVERSION_RATE)
  return dataclasses.replace(
      structure,
      click=dataclasses.replace(structure.click, weights=click_weights, bias=click_bias),
      conversion=dataclasses.replace(structure.conversion, weights=conversion_weights,
                                     bias=conversion_bias))


def _draw_features(structure: Structure, rng: np.random.Generator, rows: int) -> pd.DataFrame:
  columns = {}
  for j, probabilities in enumerate(structure.id_probabilities):
    columns[f"c{j}"] = rng.choice(len(probabilities), size=rows, p=probabilities)
  normal = structure.numeric_mean + structure.numeric_std * rng.standard_normal(
      (rows, len(structure.log_normal)))
  values = np.where(structure.log_normal, np.exp(normal), normal).astype(np.float32)
  for i in range(values.shape[1]):
    columns[f"n{i}"] = values[:, i]
  return pd.DataFrame(columns)


def _latent(structure: Structure, frame: pd.DataFrame):
  """The shared latent z, the ids and the standardized numeric values of rows."""
  ids = [frame[f"c{j}"].to_numpy() for j in range(len(structure.latents))]
  raw = frame[[f"n{i}" for i in range(len(structure.log_normal))]].to_numpy(np.float64)
  logs = np.log(np.where(structure.log_normal, raw, 1.0))
  values = ((np.where(structure.log_normal, logs, raw) - structure.numeric_mean)
            / structure.numeric_std)
  z = values @ structure.numeric_latents
  for latent, field_ids in zip(structure.latents, ids):
    z = z + latent[field_ids]
  return z, ids, values


def _solve_bias(logits: np.ndarray, weights: np.ndarray, rate: float) -> float:
  """The bias b such that the weighted mean of sigmoid(logits + b) is ``rate``."""
  low, high = -30.0, 30.0
  for _ in range(60):
    middle = (low + high) / 2
    if np.average(_sigmoid(logits + middle), weights=weights) < rate:
      low = middle
    else:
      high = middle
  return (low + high) / 2


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-x))
