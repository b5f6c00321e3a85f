"""Reproducible train/validation/test splits of the rows of one file set."""

import dataclasses
from typing import Tuple

import numpy as np

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

PARTS = ("train", "validation", "test")
_BUCKETS = 10_000
_MULTIPLIER = 0x9E3779B1
_SEED_MULTIPLIER = 0x85EBCA77
_MASK = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class Split:
  """Assigns each row, by its file and line, to a part by a seeded hash.

  Numpy (`parts_np`, for the scan) and TensorFlow (`parts_tf`, for the input pipeline)
  compute the same assignment.

  Attributes:
    fractions: Fractions of the rows in train, validation and test (sum 1).
    part: The part this split selects: `"train"`, `"validation"` or `"test"`.
    seed: Seed of the assignment.
  """

  fractions: Tuple[float, float, float] = (0.8, 0.1, 0.1)
  part: str = "train"
  seed: int = 0

  def __post_init__(self):
    object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
    if len(self.fractions) != 3 or min(self.fractions) < 0 or abs(sum(self.fractions) - 1) > 1e-6:
      raise ValueError(f"Split fractions must be three numbers >= 0 that sum to 1, got "
                       f"{self.fractions}.")
    if self.part not in PARTS:
      raise ValueError(f"Split part must be one of {PARTS}, got {self.part!r}.")

  @staticmethod
  def is_valid_flag(text: str) -> bool:
    """Whether `parse` takes `text`."""
    try:
      Split.parse(text, "train", 0)
    except ValueError:
      return False
    return True

  @classmethod
  def parse(cls, text: str, part: str, seed: int) -> "Split":
    """From a flag value such as `"80,10,10"` or `"0.8,0.1,0.1"`; two numbers (`"90,10"`)
    are train and validation, with no test part.

    Raises:
      ValueError: If the value is not two or three numbers >= 0 with a positive sum.
    """
    try:
      numbers = [float(x) for x in text.split(",")]
    except ValueError:
      numbers = []
    if (len(numbers) not in (2, 3) or not all(0 <= n < float("inf") for n in numbers)
        or not sum(numbers) > 0):
      raise ValueError(f"--split={text}: expected two or three numbers >= 0 (train, "
                       "validation[, test]) such as 80,10,10 or 90,10.")
    numbers += [0.0] * (3 - len(numbers))
    total = sum(numbers)
    return cls(tuple(n / total for n in numbers), part, seed)

  @property
  def fraction(self) -> float:
    """The fraction of the rows in this part."""
    return self.fractions[PARTS.index(self.part)]

  def __str__(self) -> str:
    percents = ",".join(f"{100 * f:.4g}" for f in self.fractions)
    return f"the {self.part} part of --split={percents} --split_seed={self.seed}"

  def _bounds(self) -> Tuple[int, int]:
    index = PARTS.index(self.part)
    edges = np.round(np.cumsum((0.0,) + self.fractions) * _BUCKETS).astype(int)
    return int(edges[index]), int(edges[index + 1])

  def selects_np(self, file_index: int, rows: np.ndarray) -> np.ndarray:
    """Whether rows (0-based data row numbers of file `file_index`) are in the part."""
    h = (rows.astype(np.int64) * _MULTIPLIER
         + (self.seed * 1000003 + file_index) * _SEED_MULTIPLIER) & _MASK
    h = h ^ (h >> 16)
    low, high = self._bounds()
    bucket = h % _BUCKETS
    return (bucket >= low) & (bucket < high)

  def selects_tf(self, file_index: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """`selects_np` in TensorFlow."""
    rows = tf.cast(rows, tf.int64)
    file_index = tf.cast(file_index, tf.int64)
    h = tf.bitwise.bitwise_and(
        rows * _MULTIPLIER + (self.seed * 1000003 + file_index) * _SEED_MULTIPLIER, _MASK)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(16, tf.int64)))
    low, high = self._bounds()
    bucket = tf.math.floormod(h, _BUCKETS)
    return (bucket >= low) & (bucket < high)
