"""Learned weights of the tasks' losses: uncertainty weighting and GradNorm.

`--loss_weighting=fixed` (the default) trains on the feature config's weights
(`dcrnn_tf.objectives.loss_weights`) through Keras' compiled loss. The other two attach a
`LossWeighting` layer to the model (`model.loss_weighting`, saved with its checkpoint),
and `MultiTaskModel.train_step` trains on its objective. Both weigh the outputs whose
fixed weight is positive and start from those weights; a funnel stage's masked loss
keeps its mask (each output's loss is its compiled `MaskedBinaryCrossentropy`).

* `uncertainty` (Kendall, Gal & Cipolla, CVPR 2018): a learned log-variance `s_k` per
  output and the objective `sum_k c_k exp(-s_k) L_k + s_k / 2`, with `c_k = 1` for a
  probability (their classification form, `L / sigma^2 + log sigma` with
  `s = log sigma^2`) and `c_k = 1/2` for a regression output (their regression form,
  `L / (2 sigma^2) + log sigma`); the weight of `L_k` is `c_k exp(-s_k)`.
* `gradnorm` (Chen et al., ICML 2018): weights `w_k` (summing to the number of
  weighted outputs) trained so that the gradient norm of each weighted loss at the last
  layer that the tasks share, `G_k = ||grad_W w_k L_k||`, follows
  `mean(G) * r_k ** alpha`, where `r_k` is output `k`'s loss relative to its first
  step's, over the mean of those ratios: a task that learns slower gets a larger weight.
  The model trains on `sum_k w_k L_k` with the weights held constant, and the weights
  on `sum_k |G_k - target_k|` with the targets held constant (its gradient is
  `sign(G_k - target_k) ||grad_W L_k||`), then are renormalized.

Under a distribution strategy each replica's losses are means over its part of the
batch, as Keras computes them; GradNorm's gradient norms and loss ratios are those of
the whole batch (summed over the replicas). `dcrnn_tf.trainer` allows GradNorm only
under the default strategy: under a mirrored one its all-reduce has been seen to meet
another collective of Keras' step on the other replica (a shape mismatch).
"""

import math
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

FIXED = "fixed"
UNCERTAINTY = "uncertainty"
GRADNORM = "gradnorm"
WEIGHTINGS = (FIXED, UNCERTAINTY, GRADNORM)
MIN_GRADNORM_WEIGHT = 1e-3  # GradNorm's weights are kept above this before renormalizing.


def _replica_variable(layer: tf.keras.layers.Layer, name: str, shape, initializer,
                      trainable: bool) -> tf.Variable:
  """A weight that every replica updates to the same value (first replica's kept)."""
  return layer.add_weight(name=name, shape=shape, initializer=initializer,
                          trainable=trainable,
                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class LossWeighting(tf.keras.layers.Layer):
  """Base of the learned weightings: the objective and the gradients of a step.

  Args:
    initial_weights: Dict from output name to its fixed (starting) weight; outputs of
      weight 0 are not trained.
    **kwargs: Standard layer arguments.

  Call arguments:
    losses: Dict from each weighted output to its loss (a scalar).

  Returns:
    The objective to minimize (a scalar).
  """

  method = ""

  def __init__(self, initial_weights: Mapping[str, float], **kwargs):
    super().__init__(**kwargs)
    self.initial_weights = {name: float(w) for name, w in initial_weights.items()}
    self.outputs = tuple(name for name, w in self.initial_weights.items() if w > 0)
    if not self.outputs:
      raise ValueError(f"{type(self).__name__}: no output has a positive loss weight.")

  def task_weights(self) -> tf.Tensor:
    """The current weight of each of `self.outputs`, `[outputs]`."""
    raise NotImplementedError

  def report(self) -> Dict[str, Dict[str, float]]:
    """The current weights by output, for logs."""
    return {"weights": dict(zip(self.outputs, self.task_weights().numpy().tolist()))}

  def gradients(self, tape: tf.GradientTape, objective: tf.Tensor,
                losses: Mapping[str, tf.Tensor], model: tf.keras.Model
                ) -> List[Tuple[tf.Tensor, tf.Variable]]:
    """The (gradient, variable) pairs of one step; `objective` is the replica's share."""
    del losses
    variables = model.trainable_variables
    return list(zip(tape.gradient(objective, variables), variables))

  def after_update(self) -> None:
    """Called after the optimizer applied the step's gradients."""

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config["initial_weights"] = dict(self.initial_weights)
    return config


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class UncertaintyWeighting(LossWeighting):
  """Kendall et al. (2018): `sum_k c_k exp(-s_k) L_k + s_k / 2` with learned `s_k`, which
  start where the weight `c_k exp(-s_k)` is the initial weight; `c_k` is 1/2 for the
  `regression_outputs`, 1 for the others.

  Args:
    initial_weights: As `LossWeighting`'s.
    regression_outputs: The outputs that are regressions (their likelihood's form).
    **kwargs: Standard layer arguments.
  """

  method = UNCERTAINTY

  def __init__(self, initial_weights: Mapping[str, float],
               regression_outputs: Sequence[str] = (), **kwargs):
    super().__init__(initial_weights, **kwargs)
    self.regression_outputs = tuple(regression_outputs)
    self.scales = tf.constant([0.5 if name in self.regression_outputs else 1.0
                               for name in self.outputs])

  def build(self, input_shape=None):
    initial = [-math.log(self.initial_weights[name] / float(scale))
               for name, scale in zip(self.outputs, self.scales.numpy())]
    self.log_variances = self.add_weight(
        name="log_variances", shape=(len(self.outputs),),
        initializer=tf.keras.initializers.Constant(initial))
    super().build(input_shape)

  def call(self, losses: Mapping[str, tf.Tensor]) -> tf.Tensor:
    stacked = tf.stack([losses[name] for name in self.outputs])
    return tf.reduce_sum(self.scales * tf.exp(-self.log_variances) * stacked
                         + 0.5 * self.log_variances)

  def task_weights(self) -> tf.Tensor:
    return self.scales * tf.exp(-self.log_variances)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config["regression_outputs"] = list(self.regression_outputs)
    return config

  def report(self) -> Dict[str, Dict[str, float]]:
    return {**super().report(), "log_variances": dict(
        zip(self.outputs, self.log_variances.numpy().tolist()))}


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class GradNormWeighting(LossWeighting):
  """Chen et al. (2018): weights trained to balance the gradient norms at the model's
  last shared layer (`model.last_shared_weights()`).

  Args:
    initial_weights: Dict from output name to its fixed weight; the weights start
      there, rescaled to sum to the number of weighted outputs.
    alpha: How strongly a slower task's gradient norm is raised (0: equal norms).
    **kwargs: Standard layer arguments.
  """

  method = GRADNORM

  def __init__(self, initial_weights: Mapping[str, float], alpha: float = 1.5, **kwargs):
    super().__init__(initial_weights, **kwargs)
    if alpha < 0:
      raise ValueError(f"GradNormWeighting: alpha must be >= 0, got {alpha}.")
    self.alpha = float(alpha)

  def build(self, input_shape=None):
    total = sum(self.initial_weights[name] for name in self.outputs)
    initial = [len(self.outputs) * self.initial_weights[name] / total for name in self.outputs]
    self.loss_weights = _replica_variable(
        self, "task_weights", (len(self.outputs),), tf.keras.initializers.Constant(initial),
        trainable=True)
    self.initial_losses = _replica_variable(self, "initial_losses", (len(self.outputs),),
                                            "zeros", trainable=False)
    super().build(input_shape)

  def call(self, losses: Mapping[str, tf.Tensor]) -> tf.Tensor:
    stacked = tf.stack([losses[name] for name in self.outputs])
    return tf.reduce_sum(tf.stop_gradient(self.loss_weights) * stacked)

  def task_weights(self) -> tf.Tensor:
    return tf.convert_to_tensor(self.loss_weights)

  def gradients(self, tape, objective, losses, model):
    shared = model.last_shared_weights()
    if not shared:
      raise ValueError(f"GradNorm needs a layer that the tasks share; {model.name} has none.")
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    # Each output's gradient at the shared weights and its loss, summed over the replicas
    # in one all-reduce (one collective of one shape on every replica).
    parts = [tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(losses[name], shared)], 0)
             for name in self.outputs]
    batch_losses = tf.stack([losses[name] for name in self.outputs])
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                tf.concat(parts + [batch_losses], 0) / replicas)
    size = int(parts[0].shape[0])
    norms = tf.stack([tf.norm(summed[k * size:(k + 1) * size])
                      for k in range(len(self.outputs))])
    batch_losses = summed[len(self.outputs) * size:]
    initial = tf.where(self.initial_losses > 0, self.initial_losses, batch_losses)
    self.initial_losses.assign(initial)
    ratios = batch_losses / tf.maximum(initial, 1e-12)
    relative_rates = ratios / tf.reduce_mean(ratios)
    weighted_norms = self.loss_weights * norms
    targets = tf.reduce_mean(weighted_norms) * relative_rates ** self.alpha
    # d/dw_k of sum_k |w_k n_k - target_k|; the same on every replica, whose gradients the
    # optimizer sums.
    weight_gradient = tf.sign(weighted_norms - targets) * norms / replicas
    pairs = [(g, v) for g, v in super().gradients(tape, objective, losses, model)
             if v is not self.loss_weights]
    return pairs + [(weight_gradient, self.loss_weights)]

  def after_update(self) -> None:
    kept = tf.maximum(self.loss_weights, MIN_GRADNORM_WEIGHT)
    self.loss_weights.assign(len(self.outputs) * kept / tf.reduce_sum(kept))

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config["alpha"] = self.alpha
    return config


def make(method: str, initial_weights: Mapping[str, float], gradnorm_alpha: float = 1.5,
         regression_outputs: Sequence[str] = ()) -> LossWeighting:
  """A built weighting layer for `method` (`uncertainty` or `gradnorm`)."""
  if method == UNCERTAINTY:
    layer = UncertaintyWeighting(initial_weights, regression_outputs, name="loss_weighting")
  elif method == GRADNORM:
    layer = GradNormWeighting(initial_weights, alpha=gradnorm_alpha, name="loss_weighting")
  else:
    raise ValueError(f"Unknown loss weighting {method!r}; known: {WEIGHTINGS}.")
  layer.build(None)
  return layer


def fixed_report(initial_weights: Mapping[str, float]) -> Dict[str, Dict[str, float]]:
  """The report of `--loss_weighting=fixed`: the weights of the trained outputs."""
  return {"weights": {name: float(w) for name, w in initial_weights.items() if w > 0}}

