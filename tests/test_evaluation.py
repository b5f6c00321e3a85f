"""Exact AUC and log loss; training on the synthetic data beats a constant predictor."""

import math

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import

from dcrnn_tf import evaluation, objectives
from dcrnn_tf.data import pipeline, scan, synthetic
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


@pytest.mark.slow
def test_short_training_beats_a_constant_predictor(tmp_path):
  config = synthetic.write_dataset(str(tmp_path), train_rows=60_000, eval_rows=20_000)
  train_path = str(tmp_path / "train.tfrecord.gz")
  config = scan.prepare(config, scan.scan(train_path, config, learn=True)[1])
  model = DCRNN(config)
  objectives.compile_model(model, config)
  model.fit(pipeline.make_dataset(
      train_path, config, 512, shuffle=True, seed=0,
      transform=lambda f, l: (f, objectives.make_targets(l, config))), epochs=2, verbose=0)
  metrics = evaluation.evaluate(
      model, pipeline.make_dataset(str(tmp_path / "eval.tfrecord.gz"), config, 512), config)
  # A constant predictor scores AUC 0.5; with ~800 held-out clicks the AUC's standard
  # error is about 0.01.
  assert metrics["ctr"]["auc"] > 0.62
  assert metrics["ctcvr"]["auc"] > 0.62
  held_out = synthetic.generate(20_000, seed=0, split="eval")
  assert metrics["ctr"]["count"] == len(held_out)
  click_rate = held_out["click"].mean()
  constant_logloss = evaluation.log_loss(held_out["click"], np.full(len(held_out), click_rate))
  assert metrics["ctr"]["logloss"] < constant_logloss
