"""`--mode=inspect`'s figures: the gates of MMoE and PLE, DCRNN's gates, states and
transfer."""

import json

import numpy as np
import pytest

import dcrnn_tf  # pylint: disable=unused-import
import tensorflow as tf

from conftest import random_features
from dcrnn_tf import inspection
from dcrnn_tf.models import DCRNN, MMoE, PLE, SharedBottom


def features(config, rows=64):
  return {name: tf.constant(values) for name, values in random_features(config, rows).items()}


def test_mmoe_gates_per_task(config):
  model = MMoE(config, num_experts=3, expert_units=(4,), tower_units=(4,))
  result = inspection.inspect(model, features(config))
  assert result["rows"] == 64 and sorted(result["mean_prediction"]) == ["ctcvr", "ctr", "cvr"]
  (level,) = result["gates"]
  assert sorted(level["tasks"]) == ["ctr", "cvr"]
  for task in level["tasks"].values():
    assert list(task["mean_weight"]) == ["shared_expert_0", "shared_expert_1",
                                         "shared_expert_2"]
    assert sum(task["mean_weight"].values()) == pytest.approx(1.0, abs=1e-6)
    weights = np.array(list(task["mean_weight"].values()))
    assert task["effective_experts"] == pytest.approx(np.exp(-np.sum(weights * np.log(weights))),
                                                      rel=1e-5)
    assert 1.0 <= task["row_effective_experts"] <= task["effective_experts"] + 1e-6 <= 3.0


def test_ple_gates_name_each_tasks_own_experts(config):
  model = PLE(config, num_levels=2, num_shared_experts=1, num_task_experts=1,
              expert_units=(4,), tower_units=(4,))
  levels = inspection.inspect(model, features(config))["gates"]
  assert [level["level"] for level in levels] == [0, 1]
  assert list(levels[1]["tasks"]["cvr"]["mean_weight"]) == ["task_1_expert_0",
                                                            "shared_expert_0"]


def test_dcrnn_gates_states_and_transfer(config):
  model = DCRNN(config, cell="gru", depth=3, shared_units=6, private_units=2, cross_dim=8,
                tower_units=(4,))
  rows = features(config)
  summary = inspection.inspect(model, rows)["dcrnn"]
  openness = summary["gate_openness"]
  assert sorted(openness) == ["ctr", "cvr", "shared"]
  assert all(len(steps) == 3 and all(0.0 < v < 1.0 for v in steps)
             for steps in openness.values())
  states = model.task_states(model.encoder(rows))
  for task, norms in summary["state_norms"].items():
    assert norms["shared"] == pytest.approx(
        float(tf.reduce_mean(tf.norm(states[task][:, :6], axis=-1))), rel=1e-5)
    assert norms["private"] == pytest.approx(
        float(tf.reduce_mean(tf.norm(states[task][:, 6:], axis=-1))), rel=1e-5)
    assert norms["private_share"] == pytest.approx(
        norms["private"] / (norms["shared"] + norms["private"]))
  transfer = summary["transfer"]
  assert list(transfer) == ["cvr"] and transfer["cvr"]["from"] == "ctr"
  changes = transfer["cvr"]["mean_abs_change"]
  assert changes["ctr"] == 0.0 and changes["cvr"] > 0.0 and changes["ctcvr"] > 0.0
  simple = DCRNN(config, shared_units=6, private_units=2, cross_dim=8, tower_units=(4,))
  assert inspection.inspect(simple, rows)["dcrnn"]["gate_openness"] == inspection.SIMPLE_CELL


def test_write_stores_the_json_and_the_plots(tmp_path, config):
  rows = features(config)
  inspection.write(DCRNN(config, cell="lstm", shared_units=4, private_units=2, cross_dim=8,
                         tower_units=(4,)), rows, str(tmp_path))
  written = json.loads((tmp_path / inspection.INSPECT).read_text())
  assert written["model"] == "DCRNN" and len(written["dcrnn"]["gate_openness"]["shared"]) == 2
  assert (tmp_path / inspection.DCRNN_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  inspection.write(MMoE(config, num_experts=2, expert_units=(4,)), rows, str(tmp_path))
  assert (tmp_path / inspection.GATES_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  other = inspection.write(SharedBottom(config, bottom_units=(4,)), rows, str(tmp_path))
  assert other["note"] == "no gates, experts or partial sharing to inspect in this model"
