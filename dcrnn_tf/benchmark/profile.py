"""Where a training step's time goes: one step of a model split into its parts.

A part's time is the difference between two timed prefixes of the step, each a
`tf.function` run on one batch of real rows: the encoder's forward pass; then also the
block's (the model's `task_states`); the towers' (the whole forward pass); the loss;
the gradients (backward); the optimizer's update; the metrics (Keras' whole
`train_step`). `fit loop` is what `fit` adds per batch on top of `train_step`.

DCRNN's block is also split into its layers, each timed alone, forward and backward
(gradients of the sum of its outputs with respect to its inputs and weights), on the
inputs it gets in the model: the x0 projection, any parallel MLP, the shared cross,
each task's private cross (its context, the shared states and any transfer, given),
each transfer, and each tower.

Times are the minimum over repeats of the mean of `calls` calls (the minimum is the
figure least disturbed by other processes on a shared machine), in milliseconds.
"""

import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.benchmark import measure
from dcrnn_tf.models import DCRNN, MultiTaskModel
from dcrnn_tf.models.base import flatten_fields

STEP_PARTS = ("encoder", "block", "towers", "loss", "backward", "optimizer", "metrics",
              "fit loop")
NOTE = (
    "profile: one training step on one batch of training rows, split into parts by "
    "timing prefixes of the step (`tf.function`s): encoder forward; + block forward "
    "(`task_states`); + towers (whole forward); + loss; + gradients (backward); + "
    "optimizer update; + metrics (Keras' `train_step`); `fit loop` is what `fit` adds "
    "per batch (median over windows on cached batches) on top of `train_step`. Each "
    "time is the minimum over repeats of the mean of several calls; a part is the "
    "difference of two such times, so a small one can come out slightly negative. "
    "DCRNN's block layers are each timed alone, forward and backward, on the inputs "
    "they get in the model.")


def time_ms(function: Callable[..., Any], *args, calls: int = 20, repeats: int = 5) -> float:
  """Milliseconds per call of `function(*args)`: the minimum over `repeats` of the mean
  of `calls` calls, after one untimed call (which traces a `tf.function`)."""
  function(*args)
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(calls):
      function(*args)
    best = min(best, (time.perf_counter() - start) / calls)
  return best * 1e3


def step_profile(model: MultiTaskModel, features: Mapping[str, tf.Tensor],
                 targets: Mapping[str, tf.Tensor], fit_batches: tf.data.Dataset,
                 batch_size: int, calls: int = 20, repeats: int = 5,
                 sample_weight: Optional[Mapping[str, tf.Tensor]] = None) -> Dict[str, float]:
  """Milliseconds of each of `STEP_PARTS` in one training step of a compiled `model`.

  Args:
    model: A model compiled with `dcrnn_tf.objectives.compile_model`; it is trained
      further (the optimizer steps are real).
    features, targets: One batch.
    fit_batches: The training batches, for the `fit loop` (see
      `measure.cached_training_rate`).
    batch_size: Their batch size.
    calls, repeats: See `time_ms`.
    sample_weight: The batch's row weights by output, if the config has a weight.

  Returns:
    Dict from part to milliseconds, plus `"train_step"` (the whole step without `fit`)
    and `"fit"` (a batch of `fit`).
  """
  model(features)  # Builds the model, so that its variables exist.
  variables = model.trainable_variables

  def encoder(x, y):
    del y
    return model.encoder(x)

  def block(x, y):
    del y
    return model.task_states(model.encoder(x), training=True)

  def forward(x, y):
    del y
    return model(x, training=True)

  def loss(x, y):
    return model.compute_loss(x, y, model(x, training=True), sample_weight)

  def gradients(x, y):
    with tf.GradientTape() as tape:
      value = loss(x, y)
    return tape.gradient(value, variables)

  def update(x, y):
    model.optimizer.apply_gradients(zip(gradients(x, y), variables))

  def train_step(x, y):
    return model.train_step((x, y) if sample_weight is None else (x, y, sample_weight))

  prefixes = {"encoder": encoder, "block": block, "towers": forward, "loss": loss,
              "backward": gradients, "optimizer": update, "metrics": train_step}
  cumulative = {part: time_ms(tf.function(prefix), features, targets, calls=calls,
                              repeats=repeats)
                for part, prefix in prefixes.items()}
  fit_ms = 1e3 * batch_size / measure.cached_training_rate(
      model, fit_batches, batch_size, batches=calls, windows=repeats)
  parts, previous = {}, 0.0
  for part, total in cumulative.items():
    parts[part] = total - previous
    previous = total
  parts["fit loop"] = fit_ms - cumulative["metrics"]
  parts["train_step"] = cumulative["metrics"]
  parts["fit"] = fit_ms
  return parts


def dcrnn_block_profile(model: DCRNN, features: Mapping[str, tf.Tensor], calls: int = 20,
                        repeats: int = 5) -> Dict[str, float]:
  """Milliseconds of each layer of a DCRNN's block and towers, forward and backward."""
  model(features)  # Builds the layers.
  sharing = model.partial_sharing
  embeddings = model.encoder(features)
  timings = {}
  flat = flatten_fields(embeddings)
  if model.x0_projection is not None:
    timings["x0 projection"] = _forward_backward_ms(model.x0_projection, [flat], calls,
                                                    repeats)
  if model.parallel is not None:
    timings["parallel MLP"] = _forward_backward_ms(model.parallel, [flat], calls, repeats)
  x0 = model.cross_input(embeddings)
  shared = None
  if sharing.shared_cross is not None:
    timings["shared cross"] = _forward_backward_ms(sharing.shared_cross, [x0], calls,
                                                   repeats)
    shared = sharing.shared_cross(x0)
  private = {}
  for task in sharing.task_names if sharing.private_crosses else ():
    context = [] if shared is None else [shared]
    if task in sharing.transfers:
      parent = private[sharing.depends_on[task]]
      timings[f"transfer {task}"] = _forward_backward_ms(sharing.transfers[task], [parent],
                                                         calls, repeats)
      context.append(sharing.transfers[task](parent))
    cross = sharing.private_crosses[task]
    if context:
      context = tf.concat(context, axis=-1)
      timings[f"private cross {task}"] = _forward_backward_ms(
          lambda x, c, layer=cross: layer(x, context=c), [x0, context], calls, repeats,
          cross)
      private[task] = cross(x0, context=context)
    else:
      timings[f"private cross {task}"] = _forward_backward_ms(cross, [x0], calls, repeats)
      private[task] = cross(x0)
  states = model.task_states(embeddings)
  for task in sharing.task_names:
    timings[f"tower {task}"] = _forward_backward_ms(model.towers[task], [states[task]],
                                                    calls, repeats)
  return timings


def _forward_backward_ms(layer: Callable[..., Any], inputs: Sequence[tf.Tensor], calls: int,
                         repeats: int, owner: Optional[tf.Module] = None) -> float:
  """Milliseconds of `layer(*inputs)` and the gradients of the sum of its outputs with
  respect to the inputs and `owner`'s (default: `layer`'s) trainable weights."""
  weights = (owner or layer).trainable_weights

  @tf.function
  def forward_backward(*args):
    with tf.GradientTape() as tape:
      tape.watch(args)
      total = tf.add_n([tf.reduce_sum(t) for t in tf.nest.flatten(layer(*args))])
    return tape.gradient(total, list(args) + weights)

  return time_ms(forward_backward, *inputs, calls=calls, repeats=repeats)
