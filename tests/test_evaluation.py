"""Exact AUC and log loss; training on the synthetic data beats a constant predictor."""

import math

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from dcrnn_tf import evaluation, training
from dcrnn_tf.data import synthetic
from dcrnn_tf.models import DCRNN


def pairwise_auc(labels, scores):
  positives = scores[labels == 1]
  negatives = scores[labels == 0]
  wins = (positives[:, None] > negatives[None, :]).sum()
  ties = (positives[:, None] == negatives[None, :]).sum()
  return (wins + 0.5 * ties) / (len(positives) * len(negatives))


def test_roc_auc_matches_pairwise_counting_with_ties():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 300)
  scores = np.round(rng.random(300), 1)  # many ties
  assert evaluation.roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores))
  assert evaluation.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
  assert evaluation.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
  assert math.isnan(evaluation.roc_auc([1, 1], [0.2, 0.3]))


def test_log_loss_known_value():
  assert evaluation.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(
      -(math.log(0.8) + math.log(0.6)) / 2)


def test_short_training_beats_a_constant_predictor():
  config = synthetic.feature_config(seed=0)
  train = synthetic.generate(60_000, seed=0, split="train")
  held_out = synthetic.generate(20_000, seed=0, split="eval")

  def dataset(frame, shuffle):
    features = {f.name: frame[f.name].to_numpy() for f in config.features}
    labels = {name: frame[name].to_numpy().astype(np.float32) for name in config.labels}
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
      ds = ds.shuffle(len(frame), seed=0)
    return ds.batch(512)

  model = DCRNN(config)
  training.compile_model(model, config)
  model.fit(dataset(train, True).map(lambda f, l: (f, training.make_targets(l, config))),
            epochs=2, verbose=0)
  metrics = evaluation.evaluate(model, dataset(held_out, False), config)
  # A constant predictor scores AUC 0.5; with ~800 held-out clicks the AUC's standard
  # error is about 0.01.
  assert metrics["ctr"]["auc"] > 0.62
  assert metrics["ctcvr"]["auc"] > 0.62
  click_rate = held_out["click"].mean()
  constant_logloss = evaluation.log_loss(held_out["click"], np.full(len(held_out), click_rate))
  assert metrics["ctr"]["logloss"] < constant_logloss
