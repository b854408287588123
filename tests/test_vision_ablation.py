"""bench/vision_ablation.py: the student's success with its images, shuffled and blank."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
from run_checks import train_tiny_run

from sitt_training.cli import load_run
from sitt_training.config import load_config
from sitt_training.envs import TASKS
from sitt_training.evaluation import evaluate
from sitt_training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from vision_ablation import (  # noqa: E402
    VARIANTS,
    AblatedStudent,
    ablated_success,
    blank_images,
    in_window,
    live_rows,
    main,
    parse_window,
    shuffled_images,
)

TINY = ["task.name=quadrotor", "task.num_envs=8", "task.student_envs=2", "method.name=bc",
        "task.kwargs={episode_steps: 60}", "ppo.rollout_steps=8", "ppo.minibatches=2",
        "ppo.epochs=1", "method.align_iterations=1", "method.align_batch_size=16",
        "method.buffer_size=64", "network.hidden=[16]", "network.cnn_channels=[4, 4, 4, 4]",
        "train.iterations=2", "train.eval_every=1", "train.eval_episodes=2",
        "train.torch_threads=1", "train.checkpoint_buffer=false"]


def frames() -> np.ndarray:
    """Four 2x2 RGB frames; row 2 is an episode that no longer renders (all zero)."""
    images = np.arange(1, 4 * 2 * 2 * 3 + 1, dtype=np.uint8).reshape(4, 2, 2, 3)
    images[2] = 0
    return images


def test_shuffled_gives_each_live_episode_another_ones_image() -> None:
    images = frames()
    out = shuffled_images(images)
    assert live_rows(images).tolist() == [0, 1, 3]
    np.testing.assert_array_equal(out[[0, 1, 3]], images[[1, 3, 0]])
    np.testing.assert_array_equal(out[2], 0)  # a finished episode stays unrendered
    np.testing.assert_array_equal(images, frames())  # the input is not changed in place


def test_blank_is_one_uniform_colour_and_a_lone_episode_gets_it() -> None:
    images = frames()
    out = blank_images(images)
    colour = images[[0, 1, 3]].reshape(-1, 3).mean(axis=0)
    np.testing.assert_array_equal(out[[0, 1, 3]], np.broadcast_to(
        np.round(colour).astype(np.uint8), (3, 2, 2, 3)))
    np.testing.assert_array_equal(out[2], 0)
    lone = np.zeros_like(images)
    lone[1] = images[1]
    np.testing.assert_array_equal(shuffled_images(lone), blank_images(lone))


def test_a_trained_student_flies_each_variant(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    Trainer(load_config(overrides=TINY), run, show_progress=False).train()
    results = ablated_success(run, 6, "best")
    assert list(results) == list(VARIANTS)
    assert all(0.0 <= r.success <= 1.0 and r.episodes == 6 for r in results.values())
    # The images reach the student's CNN: changing them changes the flights.
    assert results["camera"].mean_return != results["blank"].mean_return
    assert results["camera"].mean_return != results["shuffled"].mean_return
    # One variant alone flies the same episodes as in the full ablation.
    blank = ablated_success(run, 6, "best", variants=("blank",))
    assert list(blank) == ["blank"]
    assert blank["blank"].mean_return == results["blank"].mean_return
    with pytest.raises(ValueError, match="unknown image variants"):
        ablated_success(run, 6, "best", variants=("dark",))

    # A step window: blank from step 0 on is the full ablation; past every episode's end it
    # changes nothing; the first few steps alone give flights of their own.
    def blank_return(window):
        return ablated_success(run, 6, "best", variants=("blank",),
                               window=window)["blank"].mean_return
    assert blank_return((0, None)) == results["blank"].mean_return
    assert blank_return((10_000, None)) == results["camera"].mean_return
    assert blank_return((0, 3)) not in (results["camera"].mean_return,
                                        results["blank"].mean_return)

    assert main([str(run), "--episodes", "3", "--json", str(tmp_path / "a.json")]) == 0
    table = capsys.readouterr().out
    assert "camera / shuffled / blank" in table and str(run) in table
    assert (tmp_path / "a.json").is_file()
    assert main([str(run), "--episodes", "3", "--steps", "2:5"]) == 0
    assert "Images changed at steps 2 to 4 of each episode" in capsys.readouterr().out


def test_step_windows_parse_and_bad_ones_are_refused() -> None:
    assert parse_window("0:12") == (0, 12)
    assert parse_window("12:") == (12, None)
    assert parse_window(":5") == (0, 5)
    for bad in ("12", "5:5", "7:3", "-1:4", "a:b"):
        with pytest.raises(argparse.ArgumentTypeError, match="--steps wants A:B"):
            parse_window(bad)
    assert [in_window(k, (2, 4)) for k in range(6)] == [False, False, True, True, False, False]
    assert all(in_window(k, None) and in_window(k, (0, None)) for k in (0, 7, 10**6))


def test_evaluate_restarts_the_step_count_with_each_batch(tmp_path, monkeypatch) -> None:
    """Tasks with heavy environments are evaluated in batches (``max_eval_envs``); a
    stateful student's ``reset()`` runs as each batch starts, so its call count is the step
    index of every episode in the batch."""
    run = tmp_path / "run"
    Trainer(load_config(overrides=TINY), run, show_progress=False).train()
    cfg, policy, _ = load_run(run)
    monkeypatch.setattr(TASKS["quadrotor"], "max_eval_envs", 2)
    student = AblatedStudent(policy, None)
    starts = []
    original_reset = student.reset

    def reset() -> None:
        starts.append(student.step)  # the steps the previous batch took
        original_reset()
    student.reset = reset
    result = evaluate(policy, "quadrotor", cfg.task.kwargs, "student", 5,
                      student_actions=student)
    lengths = result.per_episode["l"]
    batches = [lengths[0:2], lengths[2:4], lengths[4:5]]
    assert starts == [0, *(int(b.max()) for b in batches[:-1])]
    assert student.step == int(batches[-1].max())


def test_a_student_without_images_is_refused(tmp_path) -> None:
    train_tiny_run("tunnel_vision", "bc", tmp_path / "grid", ["train.torch_threads=1"])
    with pytest.raises(ValueError, match="sees no image"):
        ablated_success(tmp_path / "grid", 2, None)
