"""Training controls: early stopping (with resume), TensorBoard summaries, the loss
weights file, and the learned loss weightings (uncertainty, GradNorm)."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

import cli
from conftest import random_features
from dcrnn_tf import callbacks
from dcrnn_tf import distribute
from dcrnn_tf import early_stopping
from dcrnn_tf import loss_weighting
from dcrnn_tf import trainer
from dcrnn_tf import objectives
from dcrnn_tf.features import Feature, FeatureConfig, Task
from dcrnn_tf.models import DCRNN, SharedBottom

ROWS, BATCH = 80, 8  # 10 steps an epoch.
OPTIONS = {"shared_units": 4, "private_units": 2, "cross_dim": 8, "tower_units": [4]}


def tiny_model():
  model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
  model.compile(loss="mse")
  return model


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
  model = tiny_model()
  stopping = early_stopping.EarlyStopping("val_loss", patience=2)
  stopping.set_model(model)
  kernels = []
  for epoch, value in enumerate([1.0, 0.8, 0.9, 0.95]):
    model.layers[0].kernel.assign(np.full((2, 1), float(epoch), np.float32))
    kernels.append(model.layers[0].kernel.numpy())
    assert not model.stop_training
    stopping.on_epoch_end(epoch, {"val_loss": value})
  assert model.stop_training and stopping.stopped
  assert (stopping.best_epoch, stopping.best) == (1, 0.8)
  assert stopping.restore_best(model)
  np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernels[1])


def test_early_stopping_maximizes_an_auc_and_names_a_missing_figure():
  stopping = early_stopping.EarlyStopping("val_ctr_auc", patience=1)
  stopping.set_model(tiny_model())
  stopping.on_epoch_end(0, {"val_ctr_auc": 0.6})
  stopping.on_epoch_end(1, {"val_ctr_auc": 0.7})
  assert (stopping.best_epoch, stopping.stopped) == (1, False)
  with pytest.raises(ValueError, match=r"monitors 'val_ctr_auc', which training does not "
                     r"report; it reports \['val_loss'\]"):
    stopping.on_epoch_end(2, {"val_loss": 0.5})


def rows(config, flip=False):
  features = random_features(config, ROWS)
  click = np.tile([1.0, 0.0], ROWS // 2)
  labels = {"click": 1.0 - click if flip else click,
            "conversion": np.tile([1.0, 0.0, 0.0, 0.0], ROWS // 4) * (0.0 if flip else 1.0)}
  return tf.data.Dataset.from_tensor_slices((features, objectives.make_targets(labels, config)))


def fit(config, model_dir, epochs, **kwargs):
  """Trains on rows whose validation copy has the opposite clicks: the validation loss
  is best after the first epoch."""
  tf.keras.utils.set_random_seed(3)
  run = trainer.Trainer("dcrnn", OPTIONS, config, str(model_dir), learning_rate=0.02,
                        keep_checkpoints=10, **kwargs)
  data = rows(config)
  run.fit(distribute.TrainingInput(lambda seed: data.shuffle(ROWS, seed=seed).batch(BATCH),
                                   seed=1, files=1, rows=ROWS, batch_size=BATCH),
          epochs=epochs, validation_data=rows(config, flip=True).batch(BATCH),
          validation_steps=ROWS // BATCH, verbose=0)
  return run


def checkpoint_weights(config, path):
  model = trainer.build_model("dcrnn", OPTIONS, config, 0.02)
  tf.train.Checkpoint(model=model).restore(path).expect_partial()
  return model.get_weights()


def assert_same_weights(first, second):
  assert len(first) == len(second)
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)


def test_trainer_stops_early_restores_the_best_epoch_and_resumes(tmp_path, config):
  stopping = {"early_stopping_patience": 2}
  run = fit(config, tmp_path / "once", epochs=6, **stopping)
  assert run.epochs_done == 3 and run.step == 30  # Epochs 1 and 2 did not improve.
  assert run.stopping.best_epoch == 0
  assert sorted(os.listdir(tmp_path / "once" / "checkpoints" / "best")) == [
      "checkpoint", "ckpt-10.data-00000-of-00001", "ckpt-10.index"]
  run.restore_best()
  best = checkpoint_weights(config, str(tmp_path / "once" / "checkpoints" / "ckpt-10"))
  assert_same_weights(run.model.get_weights(), best)
  # Interrupted after one epoch, then resumed: the same epochs, the same best weights.
  fit(config, tmp_path / "resumed", epochs=1, **stopping)
  resumed = fit(config, tmp_path / "resumed", epochs=6, **stopping)
  assert (resumed.epochs_done, resumed.stopping.best_epoch) == (3, 0)
  resumed.restore_best()
  assert_same_weights(resumed.model.get_weights(), best)
  # A stopped run stays stopped when resumed with more epochs.
  again = fit(config, tmp_path / "resumed", epochs=8, **stopping)
  assert again.epochs_done == 3
  # Without early stopping every epoch trains and the last one's weights stay.
  plain = fit(config, tmp_path / "plain", epochs=3)
  assert plain.stopping.best_epoch == -1
  plain.restore_best()
  assert_same_weights(plain.model.get_weights(), checkpoint_weights(
      config, str(tmp_path / "plain" / "checkpoints" / "ckpt-30")))


def event_tags(directory):
  tags = {}
  for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(
            (event.step, float(tf.make_ndarray(value.tensor))))
  return tags


def test_tensorboard_summaries_and_the_loss_weights_file(tmp_path, config):
  run = fit(config, tmp_path / "model", epochs=2, tensorboard_dir=str(tmp_path / "tb"))
  train = event_tags(tmp_path / "tb" / "train")
  outputs = ("ctr", "cvr", "ctcvr")
  assert sorted(train) == sorted(
      ["epoch_loss", "epoch_learning_rate"] + [f"epoch_{o}_{kind}" for o in outputs
                                               for kind in ("loss", "auc")]
      + ["weights/ctr", "weights/ctcvr"])
  assert train["epoch_learning_rate"] == [(0, pytest.approx(0.02)), (1, pytest.approx(0.02))]
  assert train["weights/ctr"] == [(0, 1.0), (1, 1.0)]
  validation = event_tags(tmp_path / "tb" / "validation")
  assert sorted(validation) == sorted(["epoch_loss"] + [f"epoch_{o}_{kind}" for o in outputs
                                                        for kind in ("loss", "auc")])
  assert [step for step, _ in validation["epoch_ctr_auc"]] == [0, 1]
  written = json.loads((tmp_path / "model" / callbacks.LOSS_WEIGHTS).read_text())
  assert written == {"loss_weighting": "fixed", "epochs": [
      {"epoch": 0, "weights": {"ctr": 1.0, "ctcvr": 1.0}},
      {"epoch": 1, "weights": {"ctr": 1.0, "ctcvr": 1.0}}]}
  assert run.loss_weights_report() == {"weights": {"ctr": 1.0, "ctcvr": 1.0}}


def test_uncertainty_weighting_has_the_closed_form_gradient(config):
  model = DCRNN(config, **OPTIONS)
  objectives.compile_model(model, config, learning_rate=0.01, loss_weighting="uncertainty")
  layer = model.loss_weighting
  assert layer.outputs == ("ctr", "ctcvr")
  layer.log_variances.assign([0.3, -0.2])
  features, targets = next(iter(rows(config).batch(ROWS)))
  with tf.GradientTape(persistent=True) as tape:
    predictions = model(features, training=True)
    losses = {name: tf.reduce_mean(model.loss[name].call(targets[name], predictions[name]))
              for name in layer.outputs}
    objective = layer(losses)
  s = np.array([0.3, -0.2])
  task_losses = np.array([losses["ctr"].numpy(), losses["ctcvr"].numpy()])
  np.testing.assert_allclose(objective.numpy(), np.sum(np.exp(-s) * task_losses + s / 2),
                             rtol=1e-6)
  np.testing.assert_allclose(tape.gradient(objective, layer.log_variances).numpy(),
                             -np.exp(-s) * task_losses + 0.5, rtol=1e-5)
  kernel = model.partial_sharing.shared_cross.cross_kernel
  expected = sum(np.exp(-s_k) * tape.gradient(losses[name], kernel).numpy()
                 for s_k, name in zip(s, layer.outputs))
  np.testing.assert_allclose(tape.gradient(objective, kernel).numpy(), expected,
                             rtol=1e-5, atol=1e-8)
  # One Adam step moves each log-variance by the learning rate against its gradient.
  model.optimizer.build(model.trainable_variables)
  model.train_step((features, targets))
  np.testing.assert_allclose(layer.log_variances.numpy() - s,
                             -0.01 * np.sign(-np.exp(-s) * task_losses + 0.5), rtol=1e-3)
  assert layer.report()["weights"] == pytest.approx(
      dict(zip(layer.outputs, np.exp(-layer.log_variances.numpy()))))


def two_tasks_config():
  """`easy` is whether the item id is below 10; `noise` is random."""
  return FeatureConfig(
      features=(Feature("item", "categorical", vocabulary=tuple(str(i) for i in range(20))),),
      labels=("easy", "noise"), tasks=(Task("easy", "easy"), Task("noise", "noise")))


def test_gradnorm_raises_the_weight_of_the_slower_task():
  config = two_tasks_config()
  rng = np.random.default_rng(0)
  items = rng.integers(0, 20, 2048)
  data = tf.data.Dataset.from_tensor_slices((
      {"item": items.astype(str).astype(object)},
      {"easy": (items < 10).astype(np.float32),
       "noise": rng.integers(0, 2, items.size).astype(np.float32)})).batch(64)
  model = SharedBottom(config, bottom_units=(16,), tower_units=(8,))
  objectives.compile_model(model, config, learning_rate=0.01, loss_weighting="gradnorm",
                         gradnorm_alpha=1.5)
  np.testing.assert_array_equal(model.loss_weighting.loss_weights.numpy(), [1.0, 1.0])
  history = model.fit(data, epochs=3, verbose=0)
  weights = model.loss_weighting.report()["weights"]
  assert weights["noise"] > 1.2 > 1.0 > 0.8 > weights["easy"]
  assert weights["easy"] + weights["noise"] == pytest.approx(2.0)
  assert history.history["easy_loss"][-1] < 0.1 < 0.6 < history.history["noise_loss"][-1]
  initial = model.loss_weighting.initial_losses.numpy()
  assert initial == pytest.approx([np.log(2.0)] * 2, abs=0.1)


def test_models_name_their_last_shared_layer(config):
  assert SharedBottom(config, bottom_units=()).last_shared_weights() == []
  dcrnn = DCRNN(config, **OPTIONS)
  dcrnn(random_features(config, 4))
  assert dcrnn.last_shared_weights() == list(
      dcrnn.partial_sharing.shared_cross.trainable_weights)
  with pytest.raises(ValueError, match="Unknown loss weighting 'equal'"):
    loss_weighting.make("equal", {"ctr": 1.0})


@pytest.mark.parametrize("flags, message", [
    (["--loss_weighting=equal"], "flag --loss_weighting=equal: value should be one of"),
    (["--model=single_task", "--loss_weighting=gradnorm"],
     "--loss_weighting=gradnorm needs a layer that the tasks share after the feature "
     "encoder, and --model=single_task has none"),
    (["--early_stopping_patience=-1"], "--early_stopping_patience must be >= 0 (0: off)."),
    (["--gradnorm_alpha=-0.5"], "--gradnorm_alpha must be >= 0."),
    (["--loss_weighting=gradnorm", "--strategy=mirrored"],
     "--loss_weighting=gradnorm runs only under --strategy=default"),
])
def test_bad_training_flags_fail_before_any_data_is_read(tmp_path, flags, message):
  result = cli.in_process("--synthetic", *cli.main_flags(tmp_path / "data", tmp_path / "model",
                                                         tmp_path / "export"), *flags)
  assert result.returncode == 2 and message in result.stderr.splitlines()[-1]
  assert not (tmp_path / "data").exists() and not (tmp_path / "model").exists()


@pytest.mark.slow
def test_main_with_early_stopping_uncertainty_and_tensorboard(trained, tmp_path):
  assert "Restored the weights of epoch" in trained.result.stderr
  written = json.loads((trained.model_dir / callbacks.LOSS_WEIGHTS).read_text())
  assert written["loss_weighting"] == "uncertainty"
  assert [e["epoch"] for e in written["epochs"]] == [0, 1]
  assert sorted(written["epochs"][1]["weights"]) == ["ctcvr", "ctr"]
  assert written["epochs"][1]["weights"] != {"ctcvr": 1.0, "ctr": 1.0}
  train = event_tags(trained.model_dir / "tensorboard" / "train")
  assert "log_variances/ctr" in train and "epoch_ctcvr_auc" in train
  config = json.loads((trained.model_dir / "model_config.json").read_text())
  assert config["loss_weighting"] == "uncertainty"
  model_dir, export_dir = trained.copy(tmp_path)
  bad = cli.in_process(*cli.main_flags(trained.data, model_dir, export_dir, *cli.MODEL_FLAGS,
                                       "--early_stopping_patience=1",
                                       "--early_stopping_monitor=val_ctr_accuracy"))
  assert bad.returncode == 2 and ("--early_stopping_monitor=val_ctr_accuracy is not a "
                                  "figure that training reports") in bad.stderr
  assert cli.in_process(*cli.main_flags(trained.data, model_dir, export_dir, "--mode=inspect",
                                        "--inspect_rows=200")).returncode == 0
  inspected = json.loads((model_dir / "inspect.json").read_text())
  # The GRU's openness at each of the shared cross's --depth=3 steps.
  assert inspected["rows"] == 200 and len(inspected["dcrnn"]["gate_openness"]["shared"]) == 3
  assert (model_dir / "inspect_dcrnn.png").exists()


MIRRORED_SCRIPT = """
import sys
import dcrnn_tf
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[2])
from test_training_controls import two_tasks_config
from dcrnn_tf import distribute, trainer
config = two_tasks_config()
rng = np.random.default_rng(0)
items = rng.integers(0, 20, 512)
data = tf.data.Dataset.from_tensor_slices(({"item": items.astype(str).astype(object)}, {
    "easy": (items < 10).astype(np.float32),
    "noise": rng.integers(0, 2, items.size).astype(np.float32)}))
for name, strategy in [("default", tf.distribute.get_strategy()),
                       ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
  tf.keras.utils.set_random_seed(3)
  run = trainer.Trainer("shared_bottom", {"bottom_units": [8], "tower_units": [4]}, config,
                        f"{sys.argv[1]}/{name}", learning_rate=0.01, strategy=strategy,
                        loss_weighting="uncertainty")
  run.fit(distribute.TrainingInput(lambda seed: data.batch(64), seed=1, files=1, rows=512,
                                   batch_size=64), epochs=1, verbose=0)
  print(name, run.strategy.num_replicas_in_sync,
        *run.loss_weights_report()["weights"].values())
"""


@pytest.mark.slow
def test_uncertainty_weighting_learns_the_same_weights_on_two_mirrored_replicas(tmp_path):
  script = tmp_path / "mirrored.py"
  script.write_text(MIRRORED_SCRIPT)
  result = subprocess.run([sys.executable, str(script), str(tmp_path),
                           os.path.dirname(__file__)], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [line.split() for line in result.stdout.splitlines()]
  assert [(line[0], line[1]) for line in lines] == [("default", "1"), ("mirrored", "2")]
  default, mirrored = (np.array(line[2:], float) for line in lines)
  assert not np.allclose(default, 1.0)
  np.testing.assert_allclose(mirrored, default, rtol=1e-5)
