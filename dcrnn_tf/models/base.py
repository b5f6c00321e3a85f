"""MultiTaskModel: encoder → task states → towers → predictions, with funnel outputs."""

from typing import Any, Dict, List, Mapping, Sequence, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.features import LOG1P, NONNEGATIVE, FeatureConfig, Task
from dcrnn_tf.layers import FeatureEncoder, Tower
from dcrnn_tf.layers import tower as towers


def tower_head(task: Task) -> str:
  """The `Tower` head of a task: a probability (binary), or a regression's number
  (`expm1` of a non-negative value for a `log1p` task, else `nonnegative` or
  `linear`, as the task's `output` says)."""
  if not task.is_regression:
    return towers.PROBABILITY
  if task.transform == LOG1P:
    return towers.EXPM1
  return towers.NONNEGATIVE if task.output == NONNEGATIVE else towers.LINEAR


def flatten_fields(embeddings: tf.Tensor) -> tf.Tensor:
  """The field embeddings `[batch, fields, dim]` side by side: `[batch, fields * dim]`."""
  return tf.reshape(embeddings, [-1, embeddings.shape[1] * embeddings.shape[2]])


class MultiTaskModel(tf.keras.Model):
  """Base of every multi-task model of the package.

  Subclasses create their block in `__init__` and implement `task_states`, which maps
  the field embeddings `[batch, fields, dim]` to one state `[batch, width]` per task.
  This class owns what all models share: the `FeatureEncoder`, one `Tower` per task
  (a probability, or a regression task's prediction in its label's units), and the
  funnel outputs (`p(funnel_output) = p(parent) * p(task)`).

  `entire_space` (a class attribute) says how a funnel stage is trained: over the
  entire impression space through its funnel output (ESMM; true for every model but
  `SingleTask`), or on its own label over the rows where the parent's label is 1 (the
  "naive" CVR model; see `dcrnn_tf.objectives.loss_weights`).

  Training uses Keras' compiled loss, unless `dcrnn_tf.objectives.compile_model` attached
  a learned `dcrnn_tf.loss_weighting.LossWeighting` (`self.loss_weighting`): then
  `train_step` minimizes its objective over the outputs' compiled losses and still
  reports Keras' losses (with the fixed weights) and metrics. GradNorm reads the weights
  of the last layer that the tasks share, `last_shared_weights` (subclasses say which).

  Args:
    feature_config: A `FeatureConfig` or its dict.
    embedding_dim: Field embedding size.
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.

  Call arguments:
    inputs: Dict from feature name to a `[batch]` tensor.
    training: Python boolean.

  Returns:
    A dict from output name (every task, then every funnel output) to probabilities
    (regression tasks: predictions) `[batch]`.
  """

  entire_space = True

  def __init__(self,
               feature_config: Union[FeatureConfig, Mapping[str, Any]],
               embedding_dim: int = 8,
               tower_units: Sequence[int] = (64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(**kwargs)
    if not isinstance(feature_config, FeatureConfig):
      feature_config = FeatureConfig.from_dict(feature_config)
    self.feature_config = feature_config
    self.embedding_dim = int(embedding_dim)
    self.tower_units = tuple(int(u) for u in tower_units)
    self.dropout = float(dropout)
    self.encoder = FeatureEncoder(feature_config.features, embedding_dim,
                                  na_values=feature_config.csv.na_values, name="encoder")
    self.towers = {task.name: Tower(self.tower_units, dropout=self.dropout,
                                    head=tower_head(task), name=f"tower_{task.name}")
                   for task in feature_config.tasks}

  @property
  def task_names(self) -> Sequence[str]:
    return tuple(task.name for task in self.feature_config.tasks)

  def task_states(self, embeddings: tf.Tensor, training=None) -> Dict[str, tf.Tensor]:
    """Maps field embeddings `[batch, fields, dim]` to a state per task."""
    raise NotImplementedError

  def last_shared_weights(self) -> List[tf.Variable]:
    """The weights of the last layer that every task's state depends on, after the
    `FeatureEncoder` (empty: the tasks share only the encoder)."""
    return []

  def call(self, inputs: Mapping[str, tf.Tensor], training=None) -> Dict[str, tf.Tensor]:
    embeddings = self.encoder(inputs)
    return self.heads(self.task_states(embeddings, training=training), training=training)

  def heads(self, states: Mapping[str, tf.Tensor], training=None) -> Dict[str, tf.Tensor]:
    """The towers' predictions of every task's state, and the funnel outputs."""
    outputs = {name: self.towers[name](states[name], training=training)
               for name in self.task_names}
    for task in self.feature_config.tasks:
      if task.funnel_output:
        outputs[task.funnel_output] = outputs[task.depends_on] * outputs[task.name]
    return outputs

  def train_step(self, data):
    weighting = getattr(self, "loss_weighting", None)
    if weighting is None:
      return super().train_step(data)
    x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape(persistent=True) as tape:
      y_pred = self(x, training=True)
      losses = {}
      for name in weighting.outputs:
        per_row = self.loss[name].call(y[name], y_pred[name])
        if sample_weight is not None:
          weight = sample_weight[name] if isinstance(sample_weight, dict) else sample_weight
          per_row *= tf.reshape(tf.cast(weight, per_row.dtype), [-1])
        losses[name] = tf.reduce_mean(per_row)
      objective = weighting(losses)
      if self.losses:
        objective += tf.add_n(self.losses)
      objective /= replicas
    gradients = weighting.gradients(tape, objective, losses, self)
    del tape
    self.optimizer.apply_gradients([(g, v) for g, v in gradients if g is not None])
    weighting.after_update()
    self.compute_loss(x, y, y_pred, sample_weight)  # Keras' loss metrics, fixed weights.
    return self.compute_metrics(x, y, y_pred, sample_weight)

  def get_config(self) -> Dict[str, Any]:
    return {
        "feature_config": self.feature_config.to_dict(),
        "embedding_dim": self.embedding_dim,
        "tower_units": list(self.tower_units),
        "dropout": self.dropout,
        "name": self.name,
    }

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)
