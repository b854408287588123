"""bench/arm_handle_height.py: the scripted opener with and without the handle's height."""

import sys
from pathlib import Path

import numpy as np

from sitt_training.config import load_config
from sitt_training.envs.arm_drawer import ArmDrawerVecEnv
from sitt_training.envs.arm_world import HANDLE_SHIFT_RANGE
from sitt_training.evaluation import TEST_SEED
from sitt_training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from arm_handle_height import main, opener_successes  # noqa: E402
from test_arm_occlusion import TINY  # noqa: E402  (a one-iteration arm_drawer BC run)


def test_not_knowing_the_handle_height_fails_where_it_is_far_from_the_middle(capsys):
    heights, seeing = opener_successes(6, middle_height=False, batch=4)
    # Layout k is environment k's first episode of the test seed, in batches of 4 too.
    reference = ArmDrawerVecEnv(6, seed=TEST_SEED, track_visibility=False)
    np.testing.assert_array_equal(heights, reference.handle_shift)
    reference.close()
    assert seeing.all()
    # Aiming at the middle: handles near it are gripped, some far off it are missed (the
    # test seed has three handles more than 0.05 m off the middle in its first six
    # layouts; the opener still hooks two of them).
    far = np.abs(heights) > 0.05
    assert far.sum() >= 2
    blind_heights, blind = opener_successes(6, middle_height=True, batch=6)
    np.testing.assert_array_equal(blind_heights, heights)
    assert not blind[far].all()
    assert blind[np.abs(heights) < 0.02].all()
    assert main(["--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert f"| {-HANDLE_SHIFT_RANGE:+.3f} .. " in out and "| all | 2 |" in out


def test_a_required_grip_fails_every_handle_far_off_the_middle(capsys):
    heights, blind_hook = opener_successes(6, middle_height=True, batch=6)
    _, gripping = opener_successes(6, middle_height=False, batch=6, success_needs_grasp=True)
    _, blind_grip = opener_successes(6, middle_height=True, batch=6, success_needs_grasp=True)
    assert gripping.all()  # the seeing opener grips, so the option costs it nothing
    far = np.abs(heights) > 0.05
    # The hooks that opened far-off drawers no longer count: only a real grip does.
    assert blind_hook[far].any() and not blind_grip[far].any()
    assert blind_grip[np.abs(heights) < 0.02].all()
    assert main(["--episodes", "2", "--success-needs-grasp"]) == 0
    assert "scripted, grip needed, aims at the middle" in capsys.readouterr().out


def test_trained_runs_by_handle_height(tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(load_config(overrides=TINY), run, show_progress=False).train()
    assert main([str(run), "--episodes", "2", "--checkpoint", str(run / "model_1.pt")]) == 0
    out = capsys.readouterr().out
    assert "| bc s0 T | bc s0 S |" in out
    # Six-step episodes of an untrained policy open nothing.
    lines = out.splitlines()
    assert "| all | 2 | 1.00 | " in out and lines[lines.index("") - 1].endswith("| 0.00 | 0.00 |")
    for role in "TS":  # both episodes failed without moving the drawer
        assert f"| bc s0 {role} | 0.00 | 6 / 6 | 0 / 2 |" in lines
    other = tmp_path / "other"
    Trainer(load_config(overrides=[*TINY, "task.kwargs={episode_steps: 6, "
                                   "handle_shift_range: 0.0}"]), other,
            show_progress=False).train()
    assert main([str(other), "--episodes", "2", "--checkpoint",
                 str(other / "model_1.pt")]) == 1
    assert "test layouts differ" in capsys.readouterr().err
