"""bench/quadrotor_failures.py: every failed test flight counted once, by its cause."""

import sys
from pathlib import Path

import numpy as np
import pytest

from sitt_training.config import load_config
from sitt_training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from quadrotor_failures import CAUSES, _every_pillar_behind, failure_causes, main  # noqa: E402

TINY = ["task.name=quadrotor", "task.num_envs=8", "task.student_envs=2", "method.name=bc",
        "task.kwargs={episode_steps: 150}", "ppo.rollout_steps=8", "ppo.minibatches=2",
        "ppo.epochs=1", "method.align_iterations=1", "method.align_batch_size=16",
        "method.buffer_size=64", "network.hidden=[16]", "network.cnn_channels=[4, 4, 4, 4]",
        "train.iterations=1", "train.eval_every=0", "train.torch_threads=1",
        "train.checkpoint_buffer=false"]


def test_causes_partition_the_failed_flights(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    Trainer(load_config(overrides=TINY), run, show_progress=False).train()
    episodes = 12
    success, causes, past_course = failure_causes(run, "teacher", episodes, None)
    assert list(causes) == list(CAUSES)
    exits = sum(len(causes[c]) for c in ("ground", "ceiling", "wall"))
    assert 0 <= past_course <= exits
    lengths = np.concatenate(list(causes.values()))
    # An untrained teacher: flights fail, each counted once, none after the episode's end.
    assert len(lengths) == round((1.0 - success) * episodes) > 0
    assert ((lengths >= 1) & (lengths <= 150)).all()
    # Low progress is only possible for flights that lasted the whole episode.
    assert (causes["low progress"] == 150).all()

    assert main([str(run), "--episodes", "4", "--checkpoint", str(run / "model_1.pt")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| run")]
    assert rows and all(c in rows[0] for c in CAUSES)


def test_a_run_of_another_task_is_refused(tmp_path) -> None:
    cfg = load_config(overrides=[
        "task.name=color_maze", "task.num_envs=4", "task.student_envs=4",
        "ppo.rollout_steps=4", "ppo.minibatches=1", "ppo.epochs=1", "train.iterations=1",
        "train.eval_every=0", "train.torch_threads=1"])
    Trainer(cfg, tmp_path / "maze", show_progress=False).train()
    with pytest.raises(ValueError, match="not a quadrotor run"):
        failure_causes(tmp_path / "maze", "teacher", 2, None)


def test_a_pillar_counts_as_ahead_along_the_last_motion() -> None:
    # A flight along +x that ends at x = 10 m (trace rows: x, y, z, camera axis x, y).
    trace = np.zeros((50, 5))
    trace[:, 0] = np.linspace(0.0, 10.0, 50)
    behind = np.array([[2.0, 0.0], [8.0, 3.0], [-5.0, -1.0], [9.5, -4.0]])
    assert _every_pillar_behind(trace, behind)
    assert not _every_pillar_behind(trace, np.vstack([behind[:3], [[14.0, 6.0]]]))
    # The direction is the motion's, not the start's: the same end reached flying -x.
    assert not _every_pillar_behind(trace[::-1] + [[20.0, 0, 0, 0, 0]], behind + [[10, 0]])
