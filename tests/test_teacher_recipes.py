"""bench/teacher_recipes.py: teacher recipes trained alone, checkpoints chosen on validation
(quadrotor and arm_drawer)."""

import json
import sys
from pathlib import Path

import pytest

from sitt_training.config import load_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from teacher_recipes import first_success, main, summarize  # noqa: E402

TINY = ["task.num_envs=8", "task.kwargs.episode_steps=60", "ppo.rollout_steps=8",
        "ppo.minibatches=2", "ppo.epochs=1", "network.hidden=[16]",
        "network.critic_hidden=[16]", "network.cnn_channels=[4, 4, 4, 4]",
        "method.buffer_size=64", "train.checkpoint_every=1"]
ARM_TINY = ["task.num_envs=4", "task.kwargs.episode_steps=20", "ppo.rollout_steps=8",
            "ppo.minibatches=2", "ppo.epochs=1", "network.hidden=[16]",
            "network.critic_hidden=[16]", "network.cnn_channels=[4, 4, 4, 4]",
            "method.buffer_size=64", "train.checkpoint_every=1"]


def test_selection_uses_validation_not_test() -> None:
    rows = [{"iteration": 50, "validation": 0.90, "test": 0.99},
            {"iteration": 100, "validation": 0.95, "test": 0.80},
            {"iteration": 150, "validation": 0.95, "test": 0.85},  # ties: the later wins
            {"iteration": 200, "validation": 0.70, "test": 0.75}]
    summary = summarize(rows)
    assert summary["selected_iteration"] == 150 and summary["selected"] == 0.85
    assert summary["final"] == 0.75
    assert (summary["late_min"], summary["late_max"]) == (0.75, 0.85)  # iterations >= 100
    with pytest.raises(ValueError):
        summarize([])


def test_recipes_train_in_parallel_and_rerun_from_cache(tmp_path, capsys) -> None:
    out, results = tmp_path / "runs", tmp_path / "results.json"
    argv = ["--recipes", "base", "crash3", "--seeds", "0", "--iterations", "2",
            "--every", "1", "--episodes", "3", "--workers", "2", "--out", str(out),
            "--json", str(results), *[a for o in TINY for a in ("--set", o)]]
    assert main(argv) == 0
    first = json.loads(results.read_text())
    assert sorted(r["recipe"] for r in first) == ["base", "crash3"]
    for result in first:
        # Both checkpoints tested, on validation and test flights, success rates in [0, 1].
        assert [row["iteration"] for row in result["checkpoints"]] == [1, 2]
        for row in result["checkpoints"]:
            assert 0.0 <= row["validation"] <= 1.0 and 0.0 <= row["test"] <= 1.0
        assert result["iterations"] == 2
    # The recipe's override reached the task; the teacher trained alone (no student updates).
    crash3 = load_config(out / "crash3" / "bc_s0" / "config.yaml")
    assert crash3.task.kwargs == {"episode_steps": 60, "crash_scale": 3.0}
    assert crash3.method.align_iterations == 0 and crash3.task.student_envs == 1
    assert load_config(out / "base" / "bc_s0" / "config.yaml").task.kwargs == {
        "episode_steps": 60}
    table = capsys.readouterr().out
    assert "| base | 2 | 0 |" in table and "| crash3 | 2 | 0 |" in table

    # A rerun trains and tests nothing new: the same numbers, from the caches.
    assert main([*argv, "--test-only", "--plot", str(tmp_path / "recipes.png")]) == 0
    assert (tmp_path / "recipes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = {r["recipe"]: r["checkpoints"] for r in json.loads(results.read_text())}
    assert again == {r["recipe"]: r["checkpoints"] for r in first}


def test_test_only_without_runs_fails_cleanly(tmp_path, capsys) -> None:
    assert main(["--recipes", "base", "--seeds", "0", "--workers", "1",
                 "--out", str(tmp_path), "--test-only"]) == 1
    assert "no run with a checkpoint" in capsys.readouterr().err


def test_sigterm_stops_the_sweep_and_its_workers(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import time

    argv = [sys.executable, str(REPO / "bench" / "teacher_recipes.py"), "--recipes", "base",
            "--seeds", "0", "1", "--iterations", "100000", "--workers", "2",
            "--out", str(tmp_path), *[f"--set={o}" for o in TINY]]
    sweep = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = [tmp_path / "base" / f"bc_s{seed}" / "metrics.jsonl" for seed in (0, 1)]
    deadline = time.monotonic() + 120.0
    while not all(m.is_file() and m.stat().st_size for m in metrics):  # both runs training
        assert sweep.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    children = [int(p) for p in subprocess.run(["pgrep", "-P", str(sweep.pid)],
                                               capture_output=True, text=True).stdout.split()]
    sweep.send_signal(signal.SIGTERM)
    out, _ = sweep.communicate(timeout=60)
    assert sweep.returncode == 130 and "interrupted" in out
    time.sleep(0.5)
    alive = [pid for pid in children if os.path.exists(f"/proc/{pid}")
             and "zombie" not in open(f"/proc/{pid}/status").read()]
    assert not alive  # no worker trains on after its sweep is gone


def test_every_recipe_is_a_valid_config() -> None:
    from teacher_recipes import RECIPES, TEACHER_ONLY

    from sitt_training.config import preset_path

    for recipe, (overrides, _) in RECIPES.items():
        cfg = load_config(preset_path("quadrotor", "bc"), [*TEACHER_ONLY, *overrides])
        assert cfg.method.name == "bc", recipe
    ramped = load_config(preset_path("quadrotor", "bc"), RECIPES["gamma998_dev01"][0])
    assert ramped.task.ramp_options == ["deviation_weight"]
    assert ramped.task.kwargs["deviation_weight"] == 0.1


def test_first_success_is_the_first_iteration_with_a_training_success() -> None:
    rows = [{"iteration": 1}, {"iteration": 2, "train/teacher_success": 0.0},
            {"iteration": 3, "train/teacher_success": 0.25},
            {"iteration": 4, "train/teacher_success": 1.0}]
    assert first_success(rows) == 3
    assert first_success(rows[:2]) is None


def test_arm_recipes_train_the_arm_teacher(tmp_path, capsys) -> None:
    out, results = tmp_path / "runs", tmp_path / "results.json"
    argv = ["--task", "arm_drawer", "--recipes", "ent001", "--seeds", "0", "--iterations", "2",
            "--every", "1", "--episodes", "2", "--workers", "1", "--out", str(out),
            "--json", str(results), *[a for o in ARM_TINY for a in ("--set", o)]]
    assert main(argv) == 0
    (result,) = json.loads(results.read_text())
    cfg = load_config(out / "ent001" / "bc_s0" / "config.yaml")
    assert cfg.task.name == "arm_drawer" and cfg.ppo.entropy_coef == 0.01
    assert cfg.method.align_iterations == 0 and cfg.task.student_envs == 1
    assert [row["iteration"] for row in result["checkpoints"]] == [1, 2]
    for row in result["checkpoints"]:
        assert 0.0 <= row["test"] <= 1.0 and 0.0 <= row["test_max_opening"] <= 0.45
    # Two 8-step roll-outs of 20-step episodes: no episode has ended, none succeeded.
    assert result["first_success"] is None
    table = capsys.readouterr().out
    assert "arm_drawer teacher alone" in table and "| ent001 | 2 | 0 |" in table
    assert table.split("| ent001 |")[1].split("\n")[0].endswith("| none |")


def test_a_recipe_of_another_task_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--task", "arm_drawer", "--recipes", "gamma998"])
    assert "no arm_drawer recipe gamma998" in capsys.readouterr().err


def test_every_arm_recipe_is_a_valid_config() -> None:
    from teacher_recipes import ARM_RECIPES, TEACHER_ONLY

    from sitt_training.config import preset_path

    for recipe, (overrides, _) in ARM_RECIPES.items():
        cfg = load_config(preset_path("arm_drawer", "bc"), [*TEACHER_ONLY, *overrides])
        assert cfg.task.name == "arm_drawer", recipe
