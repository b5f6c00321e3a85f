"""What a model is trained to do: targets per output, the masked (ESMM) loss and metric,
the loss weights, and compiling a model with them (`dcrnn_tf.trainer` trains it)."""

from typing import Dict, Mapping

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import loss_weighting as weighting
from dcrnn_tf.features import FeatureConfig

MASKED = -1.0  # Target of a row that an output is not scored on.
# Thresholds of the streaming AUC of training and validation (the progress bar, the
# training log, TensorBoard), evenly spaced in [0, 1]. Keras' default of 200 buckets
# lumps together every probability below 0.005, so at low prevalence (a ctcvr of 0.4 %)
# its AUC fell 0.05 below the exact one; with 10,000 the two agree within 0.005 at a
# prevalence of 0.08 % (`tests/test_model.py`). `dcrnn_tf.evaluation` is exact.
AUC_THRESHOLDS = 10_000


def make_targets(labels: Mapping[str, tf.Tensor],
                 feature_config: FeatureConfig) -> Dict[str, tf.Tensor]:
  """Maps label columns to one float32 target per model output.

  A task's target is its label column. For a funnel stage (`funnel_output` set) the
  label marks the joint event, so it is the target of `funnel_output` on every row,
  and the stage's own (conditional) target is the same label on rows where the parent's
  label is 1 and `MASKED` elsewhere.

  Args:
    labels: Dict from label column to a `[batch]` tensor of 0/1 values.
    feature_config: The tasks.

  Returns:
    Dict from output name to a float32 `[batch]` target.
  """
  by_task = {task.name: task for task in feature_config.tasks}
  targets = {}
  for task in feature_config.tasks:
    label = tf.cast(labels[task.label], tf.float32)
    if task.funnel_output:
      parent_label = tf.cast(labels[by_task[task.depends_on].label], tf.float32)
      targets[task.name] = tf.where(parent_label > 0, label, MASKED)
      targets[task.funnel_output] = label
    else:
      targets[task.name] = label
  return targets


def loss_weights(feature_config: FeatureConfig, entire_space: bool = True) -> Dict[str, float]:
  """The weight of each output's loss.

  Args:
    feature_config: The tasks (see `Task.loss_weight`, `Task.masked_loss_weight`).
    entire_space: How funnel stages train. True (ESMM): the funnel output carries the
      task's `loss_weight` and the stage its `masked_loss_weight`. False (each task on
      its own label): the stage carries `loss_weight` on the rows where the parent's
      label is 1 and the funnel output is not trained.

  Returns:
    Dict from output name to its loss weight.
  """
  weights = {}
  for task in feature_config.tasks:
    if task.funnel_output and entire_space:
      weights[task.name] = task.masked_loss_weight
      weights[task.funnel_output] = task.loss_weight
    elif task.funnel_output:
      weights[task.name] = task.loss_weight
      weights[task.funnel_output] = 0.0
    else:
      weights[task.name] = task.loss_weight
  return weights


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedBinaryCrossentropy(tf.keras.losses.Loss):
  """Binary cross-entropy on probabilities that skips rows whose target is `MASKED`.

  With the default reduction the result is the mean over the unmasked rows of the
  batch (0 when every row is masked): each unmasked row's loss is scaled by
  `batch / unmasked`, so Keras's mean over the batch becomes the mean over the rows
  that count.

  Args:
    epsilon: Probabilities are clipped to `[epsilon, 1 - epsilon]`.
    **kwargs: Standard loss arguments.
  """

  def __init__(self, epsilon: float = 1e-7, name: str = "masked_binary_crossentropy",
               **kwargs):
    super().__init__(name=name, **kwargs)
    self.epsilon = float(epsilon)

  def call(self, y_true, y_pred):
    y_true = tf.reshape(tf.cast(y_true, tf.float32), [-1])
    y_pred = tf.clip_by_value(tf.reshape(tf.cast(y_pred, tf.float32), [-1]),
                              self.epsilon, 1.0 - self.epsilon)
    mask = tf.cast(tf.not_equal(y_true, MASKED), tf.float32)
    label = y_true * mask
    losses = -(label * tf.math.log(y_pred) + (1.0 - label) * tf.math.log(1.0 - y_pred))
    scale = tf.cast(tf.size(mask), tf.float32) / tf.maximum(tf.reduce_sum(mask), 1.0)
    return losses * mask * scale

  def get_config(self):
    config = super().get_config()
    config["epsilon"] = self.epsilon
    return config


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class MaskedAUC(tf.keras.metrics.AUC):
  """`tf.keras.metrics.AUC` over the rows whose target is not `MASKED`, with
  `AUC_THRESHOLDS` thresholds by default.

  Args:
    num_thresholds: Evenly spaced thresholds of the streaming approximation.
    **kwargs: Other `tf.keras.metrics.AUC` arguments.
  """

  def __init__(self, num_thresholds: int = AUC_THRESHOLDS, **kwargs):
    super().__init__(num_thresholds=num_thresholds, **kwargs)

  def update_state(self, y_true, y_pred, sample_weight=None):
    y_true = tf.reshape(tf.cast(y_true, tf.float32), [-1])
    mask = tf.cast(tf.not_equal(y_true, MASKED), tf.float32)
    if sample_weight is not None:
      mask = mask * tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
    return super().update_state(tf.maximum(y_true, 0.0), tf.reshape(y_pred, [-1]),
                                sample_weight=mask)


def compile_model(model: tf.keras.Model, feature_config: FeatureConfig,
                  learning_rate: float = 1e-3, steps_per_execution: int = 1,
                  loss_weighting: str = weighting.FIXED, gradnorm_alpha: float = 1.5,
                  jit_compile: bool = False) -> None:
  """Compiles `model` with Adam, the masked loss on every output and AUC metrics.

  A model whose `entire_space` attribute is false trains funnel stages on their own
  labels (see `loss_weights`).

  Args:
    model: The model.
    feature_config: Its tasks.
    learning_rate: Adam's learning rate.
    steps_per_execution: Training steps run by each call of the compiled step function.
      Above 1, Keras calls per-batch callbacks (`on_train_batch_begin` and `_end`) only
      once per that many steps, with the logs of the last one.
    loss_weighting: `fixed` (the weights of `loss_weights`), `uncertainty` or
      `gradnorm` (see `dcrnn_tf.loss_weighting`; attached as `model.loss_weighting`,
      which a `MultiTaskModel`'s `train_step` minimizes).
    gradnorm_alpha: GradNorm's `alpha`.
    jit_compile: Whether Keras compiles the training step with XLA (the model must
      take preprocessed features: string lookups do not compile).
  """
  outputs = feature_config.output_names
  weights = loss_weights(feature_config, getattr(model, "entire_space", True))
  model.compile(
      optimizer=tf.keras.optimizers.Adam(learning_rate),
      loss={name: MaskedBinaryCrossentropy() for name in outputs},
      loss_weights=weights,
      metrics={name: [MaskedAUC(name="auc")] for name in outputs},
      steps_per_execution=steps_per_execution, jit_compile=jit_compile)
  if loss_weighting != weighting.FIXED:
    model.loss_weighting = weighting.make(loss_weighting, weights, gradnorm_alpha)
