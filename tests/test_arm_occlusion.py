"""bench/arm_occlusion.py: every step's handle visibility and the most occluded frame."""

import sys
from pathlib import Path

import numpy as np
import pytest

from sitt_training.config import load_config
from sitt_training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from arm_occlusion import main, watch_episodes  # noqa: E402

STEPS = 6
TINY = ["task.name=arm_drawer", "task.num_envs=2", "task.student_envs=1", "method.name=bc",
        f"task.kwargs={{episode_steps: {STEPS}}}", "ppo.rollout_steps=4", "ppo.minibatches=1",
        "ppo.epochs=1", "method.align_iterations=1", "method.align_batch_size=4",
        "method.buffer_size=16", "network.hidden=[16]", "network.cnn_channels=[4, 4, 4, 4]",
        "train.iterations=1", "train.eval_every=0", "train.torch_threads=1",
        "train.checkpoint_buffer=false"]


def test_frames_and_visibility_of_each_step(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    Trainer(load_config(overrides=TINY), run, show_progress=False).train()
    label, episodes = watch_episodes(run, "teacher", 2, None)
    assert label == "bc seed 0 (teacher)"
    assert [ep.layout for ep in episodes] == [0, 1]
    for ep in episodes:
        # One entry per step of the episode: the reset, then every step but the last
        # (after which the environment has reset).
        assert ep.length == len(ep.visible) == STEPS and not ep.success
        assert ((ep.visible >= 0) & (ep.visible <= 1)).all()
        assert ep.visible[ep.worst_step] == ep.visible.min()
        assert (ep.visible[:ep.worst_step] > ep.visible.min()).all()  # the earliest
        assert ep.worst_image.shape == (64, 64, 3) and ep.worst_image.dtype == np.uint8
        assert ep.worst_image.std() > 0  # a rendered scene, not a blank frame
    # Different layouts: the cabinet stands elsewhere, so the images differ.
    assert not np.array_equal(episodes[0].worst_image, episodes[1].worst_image)

    figure = tmp_path / "occlusion.png"
    assert main([str(run), "--episodes", "1", "--checkpoint", str(run / "model_1.pt"),
                 "--out", str(figure)]) == 0
    assert figure.stat().st_size > 1000
    assert "| bc seed 0 (teacher) | 0 | False | 6 |" in capsys.readouterr().out


def test_runs_of_other_tasks_are_refused(tmp_path, capsys) -> None:
    cfg = load_config(overrides=[
        "task.name=color_maze", "task.num_envs=4", "task.student_envs=4",
        "ppo.rollout_steps=4", "ppo.minibatches=1", "ppo.epochs=1", "train.iterations=1",
        "train.eval_every=0", "train.torch_threads=1"])
    Trainer(cfg, tmp_path / "maze", show_progress=False).train()
    assert main([str(tmp_path / "maze"), "--checkpoint", str(tmp_path / "maze" / "model_1.pt"),
                 "--out", str(tmp_path / "x.png")]) == 1
    assert "not an arm_drawer run" in capsys.readouterr().err


def test_camera_scan_moves_only_the_camera(tmp_path, capsys) -> None:
    """bench/arm_camera_scan.py: the default camera's row is what the run itself sees; a
    moved camera watches the same path (same lengths) from elsewhere."""
    from arm_camera_scan import main as scan

    run = tmp_path / "run"
    Trainer(load_config(overrides=TINY), run, show_progress=False).train()
    checkpoint = str(run / "model_1.pt")
    _, own = watch_episodes(run, "teacher", 2, checkpoint)
    _, moved = watch_episodes(run, "teacher", 2, checkpoint, {"camera_eye": [-0.4, 0.0, 0.7]})
    assert [ep.length for ep in moved] == [ep.length for ep in own]
    assert np.mean([ep.visible.mean() for ep in moved]) < np.mean(
        [ep.visible.mean() for ep in own])  # behind the arm: its shoulder is in the way
    assert scan([str(run), "--episodes", "2", "--checkpoint", checkpoint,
                 "--eye=-0.15,0.45,0.85", "--eye=-0.4,0.0,0.7"]) == 0
    out = capsys.readouterr().out
    start = np.mean([ep.visible[0] for ep in own])
    approach = np.mean([ep.visible[:12].mean() for ep in own])
    whole = np.mean([ep.visible.mean() for ep in own])
    # The tiny run's episodes are shorter than the approach: nothing after it.
    assert f"| -0.15, 0.45, 0.85 | {start:.2f} / {approach:.2f} / – / {whole:.2f} |" in out
    assert "| -0.4, 0, 0.7 | " in out

    # bench/arm_occlusion.py --eye: the same episodes seen from the moved camera.
    assert main([str(run), "--episodes", "2", "--checkpoint", checkpoint,
                 "--eye=-0.4,0.0,0.7", "--out", str(tmp_path / "moved.png")]) == 0
    out = capsys.readouterr().out
    for ep in moved:
        worst = f"{ep.visible[ep.worst_step]:.2f} ({ep.worst_step})"
        assert (f"| bc seed 0 (teacher) | {ep.layout} | {ep.success} | {ep.length} | "
                f"{worst} / {ep.visible.mean():.2f} |") in out
    with pytest.raises(SystemExit):
        main([str(run), "--eye=0.1,0.2"])
    assert "an eye is x,y,z in m" in capsys.readouterr().err


def test_camera_scan_phases() -> None:
    """Start, the first 12 steps, the steps after them (only episodes that have some) and
    the whole episode, each averaged over the episodes."""
    from arm_camera_scan import phase_cell

    long = np.r_[np.ones(12), np.zeros(8)]  # in view while reaching, hidden after
    short = np.full(5, 0.5)
    assert phase_cell([long]) == "1.00 / 1.00 / 0.00 / 0.60"
    assert phase_cell([long, short]) == "0.75 / 0.75 / 0.00 / 0.55"
    assert phase_cell([short]) == "0.50 / 0.50 / – / 0.50"
