"""bench/quadrotor.py end to end at tiny settings: preset runs, test flights, the blank-frame
column, cached evaluations, the record kept in git and the results table."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from sitt_training import bench_record

REPO = Path(__file__).resolve().parents[1]

TINY = ["task.num_envs=8", "task.student_envs=2", "task.kwargs={episode_steps: 60}",
        "ppo.rollout_steps=8", "ppo.minibatches=2", "ppo.epochs=1",
        "method.align_iterations=1", "method.align_batch_size=16", "method.buffer_size=64",
        "method.dagger_envs=2", "network.hidden=[16]", "network.critic_hidden=[16]",
        "network.cnn_channels=[4, 4, 4, 4]", "network.pretrain_views=300",
        "network.pretrain_epochs=1", "train.iterations=2", "train.eval_every=1",
        "train.eval_episodes=2", "train.torch_threads=1", "train.checkpoint_buffer=false"]


def test_benchmark_trains_tests_and_tables_each_run(tmp_path: Path) -> None:
    out, record = tmp_path / "bench", tmp_path / "record"
    command = [sys.executable, str(REPO / "bench" / "quadrotor.py"), "--methods", "dagger",
               "--seeds", "0", "--episodes", "3", "--checkpoint", "best", "--out", str(out),
               "--record", str(record)]
    for override in TINY:
        command += ["--set", override]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    run = out / "dagger_s0"
    rows = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in rows] == [("dagger", 0)]
    row = rows[0]
    assert 0.0 <= row["student_blank_success"] <= 1.0
    assert row["teacher"]["episodes"] == row["student"]["episodes"] == 3
    assert json.loads((run / "blank_3_best.json").read_text())["success"] == \
        row["student_blank_success"]
    assert (run / "pretrain.json").is_file()  # the presets pretrain the image trunk
    assert "student success, blank frame" in first.stdout
    assert (out / "flights_dagger_s0.png").is_file() and (out / "learning_curves.png").is_file()
    # Without the record, a second call retrains nothing and flies nothing: everything
    # comes from the run directory's caches (and goes into a new record).
    shutil.rmtree(record)
    metrics = (run / "metrics.jsonl").read_text()
    for cached in (run / "test_3_best.json", run / "blank_3_best.json"):
        cached.write_text(cached.read_text().replace('"episodes": 3', '"episodes": 3 '))
    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads((out / "results.json").read_text())[0]["student_blank_success"] == \
        row["student_blank_success"]
    for cached in (run / "test_3_best.json", run / "blank_3_best.json"):
        assert '"episodes": 3 ' in cached.read_text(), cached
    assert (run / "metrics.jsonl").read_text() == metrics
    # The record holds the row; with the run directory and the outputs gone (a new
    # machine), a third call trains and flies nothing and gives the same table.
    recorded = bench_record.load(record)
    assert len(recorded) == 1 and recorded[0]["student_success"] == row["student_success"]
    assert recorded[0]["curve"] and recorded[0]["config"]["train"]["seed"] == 0
    assert (record / "flights_dagger_s0.png").is_file()
    shutil.rmtree(out)
    # A row written before an option existed still counts (the option takes its default).
    del recorded[0]["config"]["method"]["kl_reward_terminal"]
    (record / bench_record.CELLS).write_text(json.dumps(recorded[0]) + "\n")
    third = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "from the record" in third.stdout
    assert not run.exists()
    assert json.loads((out / "results.json").read_text()) == rows
    assert (out / "learning_curves.png").is_file() and (out / "flights_dagger_s0.png").is_file()
    assert len(bench_record.load(record)) == 1
    # --recorded-only reports what the record holds and names the cells it lacks.
    only = [*command[:command.index("--seeds") + 1], "0", "1",
            *command[command.index("--seeds") + 2:], "--recorded-only"]
    partial = subprocess.run(only, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert partial.returncode == 0, partial.stderr[-3000:]
    assert "Not run yet (not in the record): dagger seed 1." in partial.stdout
    assert not (out / "dagger_s1").exists()
    assert json.loads((out / "results.json").read_text()) == rows
    only[only.index("--seeds") + 1:only.index("--seeds") + 3] = ["2"]
    nothing = subprocess.run(only, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert nothing.returncode == 1 and "none of the requested cells" in nothing.stderr


def test_a_recorded_row_stands_only_for_its_own_config(tmp_path: Path) -> None:
    config = {"train": {"seed": 1, "iterations": 300}}
    wanted = bench_record.identity("sitt", 1, 256, "best", config)
    bench_record.append(tmp_path, {**wanted, "student_success": 0.5})
    bench_record.append(tmp_path, {**wanted, "student_success": 0.75})  # a later one wins
    rows = bench_record.load(tmp_path)
    assert bench_record.find(rows, wanted)["student_success"] == 0.75
    changed = {"train": {"seed": 1, "iterations": 400}}
    assert bench_record.find(rows, bench_record.identity("sitt", 1, 256, "best", changed)) is None
    assert bench_record.find(rows, bench_record.identity("sitt", 1, 128, "best", config)) is None
    assert bench_record.find(rows, bench_record.identity("bc", 1, 256, "best", config)) is None
    (tmp_path / bench_record.CELLS).write_text("{not json\n")
    try:
        bench_record.load(tmp_path)
    except ValueError as error:
        assert "cells.jsonl:1" in str(error)
    else:
        raise AssertionError("a broken record must be refused")


def test_validation_curve_keeps_one_row_per_iteration() -> None:
    metrics = [{"iteration": 1, "env_steps": 10, "wall_time": 1.0, "ppo/loss": 0.3},
               {"iteration": 2, "env_steps": 20, "wall_time": 2.0,
                "eval/teacher_success": 0.5, "eval/student_success": 0.25},
               {"iteration": 2, "env_steps": 20, "wall_time": 3.0,  # logged again on resume
                "eval/teacher_success": 0.75, "eval/student_success": 0.5}]
    assert bench_record.validation_curve(metrics) == [
        {"iteration": 2, "env_steps": 20, "wall_time": 3.0, "eval/teacher_success": 0.75,
         "eval/student_success": 0.5}]
