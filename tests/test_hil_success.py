"""bench/hil_success.py: episode-by-episode agreement and its table (the HIL runs themselves
are exercised by tests/test_sim_bridge.py and tests/test_arm_deploy.py)."""

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from hil_success import agreement, table  # noqa: E402


def test_agreement_counts_outcomes_and_lengths_and_the_largest_return_gap() -> None:
    hil = {"success": np.array([1.0, 0.0, 1.0, 1.0]), "l": np.array([20, 150, 31, 25]),
           "r": np.array([-60.0, -300.0, -90.5, -70.0])}
    ref = {"success": np.array([1.0, 1.0, 1.0, 1.0]), "l": np.array([20.0, 40.0, 31.0, 26.0]),
           "r": np.array([-60.0, -120.0, -90.0, -72.0])}
    assert agreement(hil, ref) == {"outcome": 3, "length": 2, "return": 180.0}
    assert agreement(hil, hil) == {"outcome": 4, "length": 4, "return": 0.0}


def test_table_has_one_row_per_run_with_both_comparisons() -> None:
    row = {"task": "arm_drawer", "method": "sitt", "seed": 0, "checkpoint": "best_model.pt",
           "episodes": 100, "inproc_success": 1.0, "onnx_success": 1.0, "hil_success": 1.0,
           "vs_onnx": {"outcome": 100, "length": 100, "return": 0.0},
           "vs_torch": {"outcome": 100, "length": 94, "return": 149.2},
           "hil_steps_per_s": 157.3, "safe_actions": 0}
    lines = table([row, {**row, "task": "quadrotor", "episodes": 64,
                         "vs_onnx": {"outcome": 64, "length": 64, "return": 0.0019}}]).splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[1].count("|") == lines[2].count("|")
    assert lines[2] == ("| arm_drawer | sitt seed 0 | best_model.pt | 100 | 1.000 / 1.000 / 1.000 "
                        "| 100 / 100 of 100 / 0 | 100 / 94 of 100 / 1.5e+02 | 157 | 0 |")
    assert "| 64 / 64 of 64 / 0.0019 |" in lines[3]
