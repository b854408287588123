"""bench/arm_hand_trace.py: where the hand is relative to the handle bar, step by step."""

import sys
from pathlib import Path

import numpy as np
import pytest

from sitt_training.config import load_config
from sitt_training.envs.arm_drawer import GRASP_GAP, GRASP_RADIUS, SUCCESS_OPENING
from sitt_training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from arm_hand_trace import main, scripted_trace, summary_rows  # noqa: E402
from test_arm_occlusion import STEPS, TINY  # noqa: E402  (a one-iteration arm_drawer BC run)


def test_the_scripted_grip_is_on_the_bar_and_closed_while_it_pulls(capsys):
    _, trace = scripted_trace(2)
    held = trace["grasped"] == 1.0
    assert held.any(axis=0).all()  # both arms grip
    # While holding: on the bar's axis, fingers closed to about the bar's height.
    assert (trace["off_bar"][held] < GRASP_RADIUS).all()
    assert ((trace["gap"][held] > GRASP_GAP[0]) & (trace["gap"][held] < GRASP_GAP[1])).all()
    # The pull opens the drawer; the arm's episode ends at the success (NaN afterwards),
    # so the last recorded opening is just short of it.
    for arm in range(2):
        recorded = ~np.isnan(trace["opening"][:, arm])
        last = np.flatnonzero(recorded)[-1]
        assert not recorded[last + 1:].any()
        assert 0.3 < trace["opening"][last, arm] < SUCCESS_OPENING
    # Before the grasp the hand comes from far off with open fingers.
    assert trace["off_bar"][0].min() > 0.1 and (trace["gap"][0] > 0.07).all()
    rows = summary_rows(trace, every=10)
    assert rows[0].startswith("| 1 | 2 | ") and rows[0].endswith("| 0.000 | 0.00 |")
    assert main(["--scripted", "--arms", "1", "--every", "50"]) == 0
    out = capsys.readouterr().out
    assert "scripted opener" in out and "| step | arms | off bar [cm] |" in out


def test_trained_run_trace_and_errors(tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(load_config(overrides=TINY), run, show_progress=False).train()
    assert main([str(run), "--roles", "teacher", "student", "--every", "2",
                 "--arms", "2", "--checkpoint", str(run / "model_1.pt")]) == 0
    out = capsys.readouterr().out
    assert "bc s0 teacher, iteration 1" in out and "bc s0 student, iteration 1" in out
    # Episodes of STEPS steps: the last ends (and resets) at step STEPS, so the last
    # recorded step is STEPS - 1, a row for each role.
    assert out.count(f"| {STEPS - 1} | 2 | ") == 2 and f"| {STEPS} | " not in out
    assert main([str(tmp_path / "missing")]) == 1
    assert "run directory not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # nothing to trace
        main([])
    assert "give run directories, --scripted, or both" in capsys.readouterr().err
