"""The data of a run by role (train, validation, test, predict): which files, read how.

`DataOptions` is what a user gives (the files and how to read them); `DataRoles`
resolves each role's files and split part, scans them once (`dcrnn_tf.data.scan`) and
hands out their batches, from memory where the rows fit (`dcrnn_tf.data.in_memory`),
else from the files (`dcrnn_tf.data.pipeline`). `dcrnn_tf.main` builds both from its
flags, the benchmark from its own; a benchmark worker process gets them as a plain dict
(`DataRoles.to_dict`, `DataRoles.from_dict`) and reads exactly what the benchmark
checked, without scanning again.

Error messages name the command-line flags (`--eval_path`, `--data_dir`), the words a
user of the commands knows; each flag is the `DataOptions` field of the same name.
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from absl import logging

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import distribute
from dcrnn_tf import errors
from dcrnn_tf import objectives
from dcrnn_tf.data import in_memory
from dcrnn_tf.data import pipeline
from dcrnn_tf.data import scan
from dcrnn_tf.data.split import Split
from dcrnn_tf.features import FeatureConfig
from dcrnn_tf.layers.feature_encoder import FeaturePreprocessor

# The file each path defaults to inside `data_dir`.
DATA_DIR_DEFAULTS = {"train_path": "train.tfrecord.gz", "eval_path": "eval.tfrecord.gz",
                     "feature_config": "feature_config.json"}
_ROLE_PATHS = {"train": "train_path", "validation": "eval_path", "test": "test_path"}


@dataclasses.dataclass(frozen=True)
class DataOptions:
  """The files a run reads and how it reads them.

  Attributes:
    data_dir: Directory that relative paths are taken in, and that holds the default
      `train.tfrecord.gz`, `eval.tfrecord.gz` and `feature_config.json`.
    train_path: Training files (a glob or comma-separated globs).
    eval_path: Validation files (checked after each epoch).
    test_path: Files of the final metrics (default: the validation data).
    predict_path: Files to predict.
    feature_config: The feature config the model directory is prepared from.
    data_format: `auto`, `csv` or `tfrecord`.
    bad_rows: `fail` or `skip` (`dcrnn_tf.data.scan.BAD_ROW_POLICIES`).
    batch_size: Rows per batch.
    seed: Seed of the training rows' shuffling.
    shuffle_buffer: Rows in the shuffle buffer of training rows read from the files.
    in_memory_max_mib: Training and validation rows whose parsed columns take at most
      this many MiB are held in memory (0: always read from the files).
  """

  data_dir: Optional[str] = None
  train_path: Optional[str] = None
  eval_path: Optional[str] = None
  test_path: Optional[str] = None
  predict_path: Optional[str] = None
  feature_config: Optional[str] = None
  data_format: str = "auto"
  bad_rows: str = "fail"
  batch_size: int = 1024
  seed: int = 42
  shuffle_buffer: int = 100_000
  in_memory_max_mib: float = 1024

  def path(self, name: str) -> str:
    """The files of a path option; relative patterns are taken inside `data_dir`.

    Raises:
      errors.UsageError: If neither the option nor `data_dir` is given.
    """
    value = getattr(self, name)
    if not value and name == "test_path":
      return self.path("eval_path")
    if not value and not self.data_dir:
      raise errors.UsageError(f"Give --data_dir or --{name}.")
    if not value:
      return os.path.join(self.data_dir, DATA_DIR_DEFAULTS[name])
    if name == "feature_config" or not self.data_dir:
      return value
    return ",".join(os.path.join(self.data_dir, p.strip()) for p in value.split(","))

  def source_feature_config(self) -> Optional[str]:
    """The feature config given (`feature_config`, or the one in `data_dir` if it is
    there), or None."""
    if self.feature_config:
      return self.feature_config
    if self.data_dir and os.path.exists(self.path("feature_config")):
      return self.path("feature_config")
    return None

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def _preprocessing(preprocessor: FeaturePreprocessor,
                   then: Optional[Callable]) -> Callable:
  """A batch transform that preprocesses the features, then applies `then`."""

  def transform(features, *labels):
    batch = (preprocessor(features), *labels)
    if then is not None:
      return then(*batch)
    return batch if labels else batch[0]

  return transform


class DataRoles:
  """The files of each role (train, validation, test, predict), checked once per run.

  With a split, `split` splits the training files alone: train is its train part;
  validation is `eval_path` if given, else its validation part; test is `test_path`
  if given, else its test part, or the validation data where the split has no test
  part. Without a split, validation is `eval_path` and test is `test_path` (default:
  `eval_path`). A model directory remembers the validation and test data of its first
  training run (`stored`): a role without its own path reads the same.
  Every role's rows are scanned before they are read: bad rows fail the run or, with
  `bad_rows="skip"`, are left out and counted in the report (`report_path`).
  Training and validation rows, read every epoch, are held in memory when they fit
  under `in_memory_max_mib`.

  Args:
    options: The files and how to read them.
    split: The split in force (`Split.parse`'s text, e.g. "80,10,10"), or None.
    split_seed: Its seed.
    stored: The stored validation and test data, by role: `{"path": pattern, "part":
      split part or None}` (`dcrnn_tf.model_dir.ModelDirectory.stored_roles`).
    report_path: The JSON file the scans' report is written to (None: not written).
  """

  def __init__(self, options: DataOptions, split: Optional[str] = None, split_seed: int = 0,
               stored: Optional[Mapping[str, Mapping[str, Any]]] = None,
               report_path: Optional[str] = None):
    self.options = options
    self.split_text = split
    self.split_seed = split_seed
    self.stored = dict(stored or {})
    self.report_path = report_path
    self.reports: Dict[str, scan.ScanReport] = {}
    self.held: Dict[str, Optional[in_memory.InMemoryRows]] = {}
    # By role: the preprocessor and the rows held in memory that it preprocessed.
    self.preprocessed: Dict[str, Tuple[FeaturePreprocessor, in_memory.InMemoryRows]] = {}

  def source(self, role: str) -> Tuple[str, Optional[Split]]:
    """The role's files, and the part of the split it reads (None: all rows)."""
    if role == "predict":
      if not self.options.predict_path:
        raise errors.UsageError("--mode=predict needs --predict_path.")
      return self.options.predict_path, None
    name = _ROLE_PATHS[role]
    given = getattr(self.options, name)
    if role in self.stored and not given:
      stored = self.stored[role]
      part = stored["part"] and Split.parse(self.split_text, stored["part"], self.split_seed)
      return stored["path"], part
    if self.split_text is None or (role != "train" and given):
      return self.options.path(name), None
    part = Split.parse(self.split_text, role, self.split_seed)
    if part.fraction > 0 or role == "train":
      return self.options.path("train_path"), part
    if role == "test":
      return self.source("validation")
    raise errors.UsageError(f"{part} holds no rows: give it a fraction, or give --eval_path.")

  def path(self, role: str) -> str:
    return self.source(role)[0]

  def split(self, role: str) -> Optional[Split]:
    return self.source(role)[1]

  def describe(self, role: str) -> Dict[str, Any]:
    """What the role read: its files (the pattern given and the files it matched), the
    part of the split, and its rows (those read, and the valid ones)."""
    part = self.split(role)
    report = self.reports[role]
    return {"role": role, "path": self.path(role), "files": report.files,
            "part": str(part) if part else None, "rows": report.rows,
            "valid_rows": report.valid_rows}

  def check(self, role: str, feature_config: FeatureConfig, learn: bool = False):
    """Scans the role's rows; returns the statistics when `learn`."""
    for other, report in self.reports.items():
      if (self.path(other), self.split(other)) == (self.path(role), self.split(role)):
        self.reports[role] = report  # Validation and test read the same rows.
        self.write_report()
        return None
    report, statistics = scan.scan(
        self.path(role), feature_config, data_format=self.options.data_format,
        with_labels=role != "predict", bad_rows=self.options.bad_rows,
        split=self.split(role), learn=learn, positions=role == "predict")
    self.reports[role] = report
    if report.bad_rows or report.empty_files:
      logging.warning("%s data: skipped %d bad rows of %d and %d empty files; see %s.",
                      role, len(report.bad_rows), report.rows, len(report.empty_files),
                      self.report_path)
    self.write_report()
    return statistics

  def write_report(self) -> None:
    if self.report_path is None:
      return
    os.makedirs(os.path.dirname(os.path.abspath(self.report_path)), exist_ok=True)
    with open(self.report_path, "w", encoding="utf-8") as f:
      json.dump({"bad_rows_policy": self.options.bad_rows,
                 **{role: r.to_dict() for role, r in self.reports.items()}}, f, indent=2)

  def rows(self, role: str) -> int:
    """The role's valid rows (it must have been checked)."""
    return self.reports[role].valid_rows

  def dataset(self, role: str, feature_config: FeatureConfig, for_fit: bool = False,
              seed: Optional[int] = None,
              preprocessor: Optional[FeaturePreprocessor] = None) -> tf.data.Dataset:
    """The role's batches; for Keras `fit`, with targets per output.

    Args:
      role: `train`, `validation`, `test` or `predict`.
      feature_config: The (prepared) feature config.
      for_fit: Whether to yield `(features, targets per output)` for Keras `fit`.
      seed: Shuffles the training rows (default: the options' seed).
      preprocessor: If given, the features come preprocessed by it, as a model's
        `FeatureEncoder` takes them (`dcrnn_tf.layers.feature_encoder`): rows held in
        memory are preprocessed once (`InMemoryRows.preprocessed`), rows read from the
        files in a parallel map beside the model's step. One preprocessor per
        `DataRoles` (the model's).
    """
    transform = ((lambda features, labels: objectives.fit_batch(features, labels,
                                                                 feature_config))
                 if for_fit else None)
    shuffle = role == "train"
    seed = self.options.seed if seed is None else seed
    held = self.in_memory(role, feature_config)
    if held is not None and preprocessor is not None:
      if role not in self.preprocessed:
        self.preprocessed[role] = (preprocessor, held.preprocessed(preprocessor))
      if self.preprocessed[role][0] is not preprocessor:
        raise ValueError(f"DataRoles: the {role} rows were preprocessed by another "
                         "FeaturePreprocessor; use one per DataRoles (the model's).")
      held = self.preprocessed[role][1]
    if held is not None:
      return held.dataset(self.options.batch_size, shuffle=shuffle, seed=seed,
                          transform=transform)
    if preprocessor is not None:
      transform = _preprocessing(preprocessor, transform)
    return pipeline.make_dataset(
        self.path(role), feature_config, self.options.batch_size,
        data_format=self.options.data_format, shuffle=shuffle,
        shuffle_buffer=self.options.shuffle_buffer, seed=seed,
        with_labels=role != "predict", transform=transform, split=self.split(role),
        skip_rows=self.reports[role].skip_rows())

  def in_memory(self, role: str, feature_config: FeatureConfig
                ) -> Optional[in_memory.InMemoryRows]:
    """The role's rows held in memory, or None where they are read from the files
    (test and predict rows, read once, and rows over `in_memory_max_mib`). A role that
    reads the same rows as a role held in memory (the test data that defaults to the
    validation data) gets those."""
    if role not in self.reports:
      self.check(role, feature_config)
    same = [held for other, held in self.held.items()
            if held is not None and self.source(other) == self.source(role)]
    if role not in self.held and same:
      self.held[role] = same[0]  # Test rows that are the validation rows: read once.
    if role not in self.held:
      rows = self.reports[role].valid_rows
      self.held[role] = in_memory.hold_if_fits(
          role, rows, self.path(role), feature_config, self.options.in_memory_max_mib,
          data_format=self.options.data_format, split=self.split(role),
          skip_rows=self.reports[role].skip_rows())
      if self.held[role] is not None:
        logging.info("Holding the %d %s rows in memory (loading them takes up to about "
                     "%.0f MiB).", rows, role,
                     in_memory.estimated_bytes(rows, feature_config) / in_memory.MIB)
    return self.held[role]

  def training_input(self, feature_config: FeatureConfig,
                     preprocessor: Optional[FeaturePreprocessor] = None
                     ) -> distribute.TrainingInput:
    """The training rows for `Trainer.fit`: an epoch at a time, sharded over workers;
    preprocessed by `preprocessor` if given (see `dataset`)."""
    held = self.in_memory("train", feature_config) is not None
    report = self.reports["train"]
    return distribute.TrainingInput(
        lambda seed: self.dataset("train", feature_config, for_fit=True, seed=seed,
                                  preprocessor=preprocessor),
        seed=self.options.seed, files=1 if held else len(report.files),
        rows=report.valid_rows, batch_size=self.options.batch_size)

  def to_dict(self) -> Dict[str, Any]:
    """A plain-dict form (JSON) for another process: the options, the split, the
    stored roles and what the scans found (`from_dict` restores it without scanning)."""
    return {"options": self.options.to_dict(), "split": self.split_text,
            "split_seed": self.split_seed, "stored": self.stored,
            "reports": {role: dataclasses.asdict(report)
                        for role, report in self.reports.items()}}

  @classmethod
  def from_dict(cls, state: Mapping[str, Any], **option_changes: Any) -> "DataRoles":
    """The data roles of `to_dict`, with the options of `option_changes` changed (such
    as another `seed`, or `in_memory_max_mib=0` to read from the files)."""
    options = DataOptions(**{**state["options"], **option_changes})
    roles = cls(options, state["split"], state["split_seed"], stored=state["stored"])
    for role, report in state["reports"].items():
      roles.reports[role] = scan.ScanReport(
          **{**report, "bad_rows": [scan.BadRow(**bad) for bad in report["bad_rows"]]})
    return roles
