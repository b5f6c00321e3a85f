"""ESMM: per-task MLP towers over shared embeddings, trained over the entire space."""

from typing import Sequence

from dcrnn_tf import _keras_setup  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf.models.single_task import SingleTask


@tf.keras.utils.register_keras_serializable(package="dcrnn_tf")
class ESMM(SingleTask):  # pylint: disable=too-many-ancestors
  """Entire Space Multi-task Model (Ma et al., SIGIR 2018) for a click → conversion funnel.

  The ctr and cvr networks are MLPs over the shared field embeddings (the networks of
  `SingleTask`); what makes it ESMM is the entire-space training: the model outputs
  `p_ctcvr = p_ctr · p_cvr`, and the losses of `ctr` and `ctcvr` over all impressions
  train the cvr network without sample selection bias (`SingleTask` instead trains cvr
  on clicked rows only). The feature config must therefore declare a funnel (a task
  with `funnel_output`).

  Example:

  ```python
  config, features = dcrnn_tf.data.synthetic.example_batch(rows=4)
  model = ESMM(config, hidden_units=(128, 64))
  outputs = model(features)     # {"ctr": [4], "cvr": [4], "ctcvr": [4]}
  assert sorted(outputs) == ["ctcvr", "ctr", "cvr"] and outputs["ctcvr"].shape == [4]
  ```

  Args:
    feature_config: A `FeatureConfig` (or its dict) with a funnel.
    embedding_dim: Field embedding size.
    hidden_units: Widths of each task's MLP.
    tower_units: Hidden widths of each task's tower.
    dropout: Dropout rate in the towers.
    **kwargs: Standard model arguments.
  """

  entire_space = True

  def __init__(self,
               feature_config,
               embedding_dim: int = 8,
               hidden_units: Sequence[int] = (128, 64),
               tower_units: Sequence[int] = (64, 32),
               dropout: float = 0.0,
               **kwargs):
    super().__init__(feature_config, embedding_dim=embedding_dim, hidden_units=hidden_units,
                     tower_units=tower_units, dropout=dropout, **kwargs)
    if not any(task.funnel_output for task in self.feature_config.tasks):
      raise ValueError("ESMM needs a funnel: a task with depends_on and funnel_output.")
