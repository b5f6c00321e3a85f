"""Experts and their gated mixtures: the MMoE and PLE (CGC) blocks of the soft-sharing baselines."""

from typing import Any, Dict, List, Sequence, Tuple, Union

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.layers.mlp import MLP


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class CGC(tf.keras.layers.Layer):
  """Customized Gate Control: shared and task experts mixed by one gate per task.

  One extraction level of PLE (Tang et al., 2020). Each task `k` has
  `num_task_experts` experts of its own, all tasks see `num_shared_experts` shared
  experts, and task `k`'s output is a softmax-gated sum of its own and the shared
  experts' outputs, the gate reading task `k`'s input `x_k`:

      y_k = Σ_e softmax(G_k x_k + g_k)_e · expert_e

  over task `k`'s experts (which read `x_k`) and the shared ones (which read the
  shared input).

  With `shared_output=True` the layer also outputs a shared mixture, gated by the
  shared input over every expert, to feed the shared experts of the next level; PLE
  stacks such levels and ends with one without it. A single CGC with
  `num_task_experts=0` is the MMoE block (Ma et al., 2018): one gate per task over
  shared experts. Adding a task adds its experts and its gate (and widens the shared
  gate).

  Example:

  ```python
  x = tf.random.normal([32, 144])
  mmoe = CGC(num_tasks=2, num_shared_experts=4, num_task_experts=0)
  ctr_state, cvr_state = mmoe(x)
  assert ctr_state.shape == cvr_state.shape == [32, 64]
  level_1 = CGC(num_tasks=2, num_shared_experts=2, num_task_experts=1,
                shared_output=True)
  level_2 = CGC(num_tasks=2, num_shared_experts=2, num_task_experts=1)
  ctr_state, cvr_state = level_2(level_1(x))         # PLE with two levels
  assert ctr_state.shape == [32, 64]
  ```

  Args:
    num_tasks: Number of tasks.
    num_shared_experts: Experts that every task's gate mixes.
    num_task_experts: Experts of each task, mixed only by that task's gate.
    expert_units: Widths of each expert's layers (an `MLP`); the last is the output
      width.
    shared_output: Whether to also output the shared mixture (for the next level).
    **kwargs: Standard layer arguments.

  Call arguments:
    inputs: `[batch, width]`, read by every expert and gate; or, from a previous level,
      a list of `num_tasks + 1` tensors: each task's input, then the shared input.

  Returns:
    A list of `num_tasks` tensors `[batch, expert_units[-1]]`, one per task, followed by
    the shared mixture when `shared_output=True`.
  """

  def __init__(self,
               num_tasks: int,
               num_shared_experts: int = 1,
               num_task_experts: int = 1,
               expert_units: Sequence[int] = (64,),
               shared_output: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    if num_tasks < 1:
      raise ValueError(f"CGC: num_tasks must be >= 1, got {num_tasks}.")
    if num_shared_experts < 0 or num_task_experts < 0 or (
        num_shared_experts + num_task_experts == 0):
      raise ValueError("CGC: num_shared_experts and num_task_experts must be >= 0 and not "
                       f"both 0, got {num_shared_experts} and {num_task_experts}.")
    if shared_output and not num_shared_experts:
      raise ValueError("CGC: shared_output needs shared experts.")
    if not expert_units:
      raise ValueError("CGC: expert_units must name at least one layer.")
    self.num_tasks = int(num_tasks)
    self.num_shared_experts = int(num_shared_experts)
    self.num_task_experts = int(num_task_experts)
    self.expert_units = tuple(int(u) for u in expert_units)
    self.shared_output = bool(shared_output)

  def build(self, input_shape):
    self.shared_experts = [MLP(self.expert_units, name=f"shared_expert_{i}")
                           for i in range(self.num_shared_experts)]
    # One flat list, task by task (Keras saving does not walk nested lists).
    self.task_experts = [MLP(self.expert_units, name=f"task_{k}_expert_{i}")
                         for k in range(self.num_tasks) for i in range(self.num_task_experts)]
    self.task_gates = [tf.keras.layers.Dense(self.num_task_experts + self.num_shared_experts,
                                             activation="softmax", name=f"task_{k}_gate")
                       for k in range(self.num_tasks)]
    self.shared_gate = (tf.keras.layers.Dense(
        self.num_tasks * self.num_task_experts + self.num_shared_experts,
        activation="softmax", name="shared_gate") if self.shared_output else None)
    super().build(input_shape)

  def call(self, inputs: Union[tf.Tensor, Sequence[tf.Tensor]]) -> List[tf.Tensor]:
    return self.mixtures(inputs)[0]

  def expert_names(self, task: int) -> List[str]:
    """The experts that task `task`'s gate mixes, in the gate's order."""
    n = self.num_task_experts
    return ([expert.name for expert in self.task_experts[task * n:(task + 1) * n]]
            + [expert.name for expert in self.shared_experts])

  def mixtures(self, inputs: Union[tf.Tensor, Sequence[tf.Tensor]]
               ) -> Tuple[List[tf.Tensor], List[tf.Tensor]]:
    """What `call` returns, and each task's gate weights `[batch, experts]` (in the
    order of `expert_names`). For a built layer."""
    if isinstance(inputs, (list, tuple)):
      if len(inputs) != self.num_tasks + 1:
        raise ValueError(f"CGC: expects one tensor or a list of {self.num_tasks + 1} "
                         f"(one per task, then the shared one), got {len(inputs)}.")
      task_inputs, shared_input = list(inputs[:-1]), inputs[-1]
    else:
      task_inputs, shared_input = [inputs] * self.num_tasks, inputs
    shared = [expert(shared_input) for expert in self.shared_experts]
    n = self.num_task_experts
    own = [[expert(x) for expert in self.task_experts[k * n:(k + 1) * n]]
           for k, x in enumerate(task_inputs)]
    gates = [gate(x) for gate, x in zip(self.task_gates, task_inputs)]
    outputs = [_mix(weights, experts + shared) for weights, experts in zip(gates, own)]
    if self.shared_gate is not None:
      outputs.append(_mix(self.shared_gate(shared_input),
                          [e for experts in own for e in experts] + shared))
    return outputs, gates

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "num_tasks": self.num_tasks,
        "num_shared_experts": self.num_shared_experts,
        "num_task_experts": self.num_task_experts,
        "expert_units": list(self.expert_units),
        "shared_output": self.shared_output,
    })
    return config


def _mix(gate: tf.Tensor, experts: Sequence[tf.Tensor]) -> tf.Tensor:
  """The gate-weighted sum of expert outputs: `[batch, E]` × E × `[batch, u]` → `[batch, u]`."""
  return tf.einsum("be,beu->bu", gate, tf.stack(experts, axis=1))
