"""Multi-task models and the registry that maps `--model` names to them."""

from typing import Any, Dict, Type

from dcrnn_tf.features import FeatureConfig
from dcrnn_tf.models.base import MultiTaskModel
from dcrnn_tf.models.dcrnn import DCRNN

MODELS: Dict[str, Type[MultiTaskModel]] = {"dcrnn": DCRNN}


def build_model(name: str, feature_config: FeatureConfig, **options: Any) -> MultiTaskModel:
  """Builds the model registered under `name` with the given options."""
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; known models: {sorted(MODELS)}.")
  return MODELS[name](feature_config, **options)


__all__ = ["DCRNN", "MODELS", "MultiTaskModel", "build_model"]
