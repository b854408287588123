"""bench/quadrotor.py end to end at tiny settings: preset runs, test flights, the blank-frame
column, cached evaluations and the results table."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TINY = ["task.num_envs=8", "task.student_envs=2", "task.kwargs={episode_steps: 60}",
        "ppo.rollout_steps=8", "ppo.minibatches=2", "ppo.epochs=1",
        "method.align_iterations=1", "method.align_batch_size=16", "method.buffer_size=64",
        "method.dagger_envs=2", "network.hidden=[16]", "network.critic_hidden=[16]",
        "network.cnn_channels=[4, 4, 4, 4]", "network.pretrain_views=300",
        "network.pretrain_epochs=1", "train.iterations=2", "train.eval_every=1",
        "train.eval_episodes=2", "train.torch_threads=1", "train.checkpoint_buffer=false"]


def test_benchmark_trains_tests_and_tables_each_run(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [sys.executable, str(REPO / "bench" / "quadrotor.py"), "--methods", "dagger",
               "--seeds", "3", "--episodes", "3", "--checkpoint", "best", "--out", str(out)]
    for override in TINY:
        command += ["--set", override]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    run = out / "dagger_s3"
    rows = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in rows] == [("dagger", 3)]
    row = rows[0]
    assert 0.0 <= row["student_blank_success"] <= 1.0
    assert row["teacher"]["episodes"] == row["student"]["episodes"] == 3
    assert json.loads((run / "blank_3_best.json").read_text())["success"] == \
        row["student_blank_success"]
    assert (run / "pretrain.json").is_file()  # the presets pretrain the image trunk
    assert "student success, blank frame" in first.stdout
    assert (out / "flights_dagger.png").is_file() and (out / "learning_curves.png").is_file()
    # A second call retrains nothing and flies nothing: everything comes from the caches.
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
