"""Multi-task models and the registry that maps `--model` names to them."""

from typing import Any, Dict, Type

from dcrnn_tf.data.pipeline import dummy_features
from dcrnn_tf.features import Feature, FeatureConfig, Task
from dcrnn_tf.models.base import MultiTaskModel
from dcrnn_tf.models.dcn import DCN
from dcrnn_tf.models.dcrnn import DCRNN
from dcrnn_tf.models.esmm import ESMM
from dcrnn_tf.models.mmoe import MMoE
from dcrnn_tf.models.ple import PLE
from dcrnn_tf.models.shared_bottom import SharedBottom
from dcrnn_tf.models.single_task import SingleTask

MODELS: Dict[str, Type[MultiTaskModel]] = {
    "dcrnn": DCRNN,
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "esmm": ESMM,
    "dcn": DCN,
    "single_task": SingleTask,
}


def build_model(name: str, feature_config: FeatureConfig, **options: Any) -> MultiTaskModel:
  """Builds the model registered under `name` with the given options."""
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; known models: {sorted(MODELS)}.")
  return MODELS[name](feature_config, **options)


def shares_a_layer(name: str, **options: Any) -> bool:
  """Whether the tasks of model `name` share a layer after the `FeatureEncoder` (what
  GradNorm needs, `MultiTaskModel.last_shared_weights`): checked on a model built for
  a two-stage funnel on one numeric feature."""
  config = FeatureConfig(features=(Feature("x", "numeric", mean=0.0, std=1.0),),
                         labels=("a", "b"),
                         tasks=(Task("a", "a"), Task("b", "b", depends_on="a", funnel_output="ab")))
  model = build_model(name, config, **options)
  model(dummy_features(config))
  return bool(model.last_shared_weights())


__all__ = [
    "DCN", "DCRNN", "ESMM", "MMoE", "MODELS", "MultiTaskModel", "PLE", "SharedBottom",
    "SingleTask", "build_model", "shares_a_layer",
]
