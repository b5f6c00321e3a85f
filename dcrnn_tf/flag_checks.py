"""Range checks of numeric flags, run by absl when the flags are parsed.

A value out of range stops the program before anything is read or written, with one
line that names the flag (`dcrnn_tf: error: flag --epochs=0: --epochs must be >= 1`,
see `dcrnn_tf.errors`).
"""

from absl import flags


def at_least(name: str, low: float) -> None:
  """`--name` must be >= `low` (or unset)."""
  flags.register_validator(name, lambda value: value is None or value >= low,
                           f"--{name} must be >= {low}")


def greater_than(name: str, low: float) -> None:
  """`--name` must be > `low` and finite."""
  flags.register_validator(name, lambda value: low < value < float("inf"),
                           f"--{name} must be > {low} and finite")


def in_range(name: str, low: float, high: float) -> None:
  """`--name` must lie in [low, high) (or be unset)."""
  flags.register_validator(name, lambda value: value is None or low <= value < high,
                           f"--{name} must be >= {low} and < {high}")


def _is_positive_integer(text: str) -> bool:
  return text.strip().isascii() and text.strip().isdigit() and int(text) >= 1


def widths(name: str, allow_empty: bool = False) -> None:
  """`--name` must be a comma-separated list of integers >= 1 (layer widths)."""
  empty = " (or empty)" if allow_empty else ""
  flags.register_validator(
      name, lambda values: (allow_empty or bool(values))
      and all(_is_positive_integer(v) for v in values),
      f"--{name} must be a comma-separated list of integers >= 1{empty}")
