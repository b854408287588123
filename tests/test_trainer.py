"""Trainer: learning, exact resume, interruption, and the CLI around it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from run_checks import assert_resume_continues_exactly

from sitt_training.config import load_config
from sitt_training.envs.color_maze import GRID, LAVA, MARGIN, PATH, generate_layouts
from sitt_training.metrics_log import read_metrics, trim_metrics
from sitt_training.schedules import SuccessRamp
from sitt_training.trainer import Trainer, checkpoints

TINY = ["task.num_envs=16", "task.student_envs=8", "ppo.rollout_steps=8", "ppo.minibatches=2",
        "ppo.epochs=2", "method.align_iterations=2", "method.buffer_size=512",
        "method.dagger_envs=4", "train.eval_every=0", "train.torch_threads=1"]


def _corridor_file(tmp_path: Path) -> Path:
    grid = np.zeros((GRID, GRID), dtype=np.int64)
    grid[MARGIN:-MARGIN, MARGIN:-MARGIN] = LAVA
    grid[MARGIN:-MARGIN, GRID // 2] = PATH
    path = tmp_path / "corridor.npy"
    np.save(path, grid[None])
    return path


def test_short_training_run_learns(tmp_path: Path) -> None:
    """A straight corridor up the middle: the teacher must learn to walk it to the goal and
    the aligned student must follow (it sees the corridor's walls as occupied cells)."""
    cfg = load_config(overrides=[
        f"task.kwargs={{layouts: {_corridor_file(tmp_path)}, time_limit: 60}}",
        "task.num_envs=64", "task.student_envs=64", "ppo.rollout_steps=64", "ppo.lr=0.003",
        "ppo.entropy_coef=0.01", "method.name=sitt", "method.kl_reward_coef=0.1",
        "method.buffer_size=4096", "train.iterations=25", "train.eval_every=0",
        "train.torch_threads=1"])
    trainer = Trainer(cfg, tmp_path / "run", show_progress=False)
    before = trainer.validate(episodes=16)
    assert before["eval/teacher_success"] == 0.0
    result = trainer.train()
    after = trainer.validate(episodes=16)
    assert result["status"] == "finished" and result["iteration"] == 25
    assert after["eval/teacher_success"] == 1.0, after
    assert after["eval/student_success"] == 1.0, after
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    returns = [json.loads(line).get("train/episode_return", 0.0) for line in lines]
    assert np.mean(returns[-5:]) > np.mean(returns[:5]) + 5.0


def test_kl_warmup_counts_the_episodes_the_trainer_saw(tmp_path: Path) -> None:
    """kl_success_episodes in a real run: the KL coefficient each iteration logs is the one
    a SuccessRamp computes from the logged success rates and episode counts, and the
    penalty does start once the corridor is learned."""
    cfg = load_config(overrides=[
        f"task.kwargs={{layouts: {_corridor_file(tmp_path)}, time_limit: 60}}",
        "task.num_envs=64", "task.student_envs=16", "ppo.rollout_steps=64", "ppo.lr=0.003",
        "ppo.entropy_coef=0.01", "method.name=sitt", "method.kl_reward_coef=0.1",
        "method.kl_after_success=0.5", "method.kl_success_episodes=100",
        "method.buffer_size=1024", "method.align_iterations=2", "train.iterations=16",
        "train.eval_every=0", "train.torch_threads=1"])
    Trainer(cfg, tmp_path / "run", show_progress=False).train()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    ramp = SuccessRamp(0.5, 0, min_episodes=100)
    previous: tuple[float | None, int] = (None, 0)
    for row in rows:
        ramp.observe(row["iteration"] - 1, *previous)
        assert row["sitt/kl_reward_coef"] == pytest.approx(0.1 * ramp.factor(row["iteration"] - 1))
        previous = (row.get("train/teacher_success"), int(row.get("train/episodes", 0)))
    started = [row["iteration"] for row in rows if row["sitt/kl_reward_coef"] > 0]
    assert started, [(r.get("train/teacher_success"), r.get("train/episodes")) for r in rows]
    # Not before 100 episodes had ended.
    episodes = np.cumsum([row.get("train/episodes", 0) for row in rows])
    assert episodes[started[0] - 2] >= 100


@pytest.mark.parametrize("method,extra", [("sitt", []), ("dagger", []),
                                          ("sitt", ["ppo.count_bonus=0.5"]),
                                          ("sitt", ["method.kl_after_success=0.2",
                                                    "method.kl_success_episodes=3"]),
                                          ("tsra", ["network.decoder_hidden=[16]"]),
                                          ("hlrl", ["method.hlrl_envs=4"]), ("dwbc", [])])
def test_resume_gives_the_same_continuation(tmp_path: Path, method: str, extra: list[str]
                                            ) -> None:
    cfg = load_config(overrides=[*TINY, *extra, f"method.name={method}", "train.iterations=4",
                                 "train.checkpoint_every=2"])
    assert_resume_continues_exactly(Trainer, cfg, tmp_path, 2)


def test_a_run_killed_between_checkpoints_logs_each_iteration_once(tmp_path: Path) -> None:
    """Iterations 3 and 4 were logged (the last line torn by the kill) but their checkpoint
    never written: the resume trains them again and the log ends with one row each."""
    cfg = load_config(overrides=[*TINY, "train.iterations=4", "train.checkpoint_every=2"])
    Trainer(cfg, tmp_path, show_progress=False).train()
    (tmp_path / "model_4.pt").unlink()
    with (tmp_path / "metrics.jsonl").open("a") as log:
        log.write('{"iteration": 5, "env_st')
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4]
    broken = tmp_path / "broken"
    broken.mkdir()
    rows = ['{"iteration": 1}', "", '{"iteration": 2}', "{torn", '{"iteration": 3}']
    (broken / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="metrics.jsonl:4"):  # broken mid-file: not a kill
        read_metrics(broken)
    resumed = Trainer(cfg, tmp_path, show_progress=False)
    assert resumed.resume().name == "model_2.pt"
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [1, 2]  # trimmed at once
    resumed.train()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2, 3, 4]
    assert trim_metrics(tmp_path, 4) == 0 and trim_metrics(tmp_path, 3) == 1


def test_checkpoints_are_complete_files(tmp_path: Path) -> None:
    cfg = load_config(overrides=[*TINY, "train.iterations=3", "train.checkpoint_every=2"])
    Trainer(cfg, tmp_path, show_progress=False).train()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "model_2.pt" in names and "model_3.pt" in names  # the last one is always saved
    assert not [n for n in names if n.endswith(".tmp")]
    state = torch.load(tmp_path / "model_3.pt", weights_only=False)
    assert state["iteration"] == 3 and state["env_steps"] == 3 * 16 * 8
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "tb").is_dir()


def _cli(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_sigint_saves_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [_cli("sitt-train"), "--task", "color_maze", "--method", "sitt", "--seed", "1",
            "--out", str(run), "--no-progress", *[f"--set={o}" for o in TINY],
            "--set=train.iterations=100000", "--set=train.checkpoint_every=1000"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        metrics = run / "metrics.jsonl"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    saved = checkpoints(run)
    assert len(saved) == 1, out
    iteration = torch.load(saved[0], weights_only=False)["iteration"]
    assert iteration >= 2 and saved[0].name == f"model_{iteration}.pt"
    assert f"sitt-train --resume {run}" in out
    done = subprocess.run([_cli("sitt-train"), "--resume", str(run), "--no-progress",
                           f"--set=train.iterations={iteration + 2}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert checkpoints(run)[-1].name == f"model_{iteration + 2}.pt"


def test_eval_cli_json_and_plot(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = load_config(overrides=[*TINY, "train.iterations=1"])
    Trainer(cfg, run, show_progress=False).train()
    png = tmp_path / "maze.png"
    out = subprocess.run([_cli("sitt-eval"), str(run), "--episodes", "12", "--json",
                          "--plot", str(png)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("teacher_success", "student_success", "gap"):
        assert 0.0 <= abs(report[key]) <= 1.0
    assert report["gap"] == pytest.approx(report["teacher_success"] - report["student_success"])
    assert report["teacher"]["episodes"] == 12 and report["iteration"] == 1
    assert png.stat().st_size > 10_000


def test_keep_best_saves_the_validation_best_networks(tmp_path: Path) -> None:
    from sitt_training.cli import load_run

    cfg = load_config(overrides=[*TINY, "train.eval_every=1", "train.eval_episodes=8",
                                 "train.iterations=4", "train.checkpoint_every=1"])
    run = tmp_path / "run"
    Trainer(cfg, run, show_progress=False).train()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    scores = [(r["eval/student_success"], r["eval/teacher_success"], r["iteration"])
              for r in rows]
    best = max(scores)  # ties: the later iteration
    record = json.loads((run / "best.json").read_text())
    assert record["iteration"] == best[2]
    assert record["eval/student_success"] == best[0]
    _, policy, meta = load_run(run, Path("best"))
    assert meta["iteration"] == best[2] and meta["checkpoint"].endswith("best_model.pt")
    _, same, _ = load_run(run, run / f"model_{best[2]}.pt")
    for key, value in same.state_dict().items():
        assert torch.equal(policy.state_dict()[key], value), key
    assert [p.name for p in checkpoints(run)][-1] == "model_4.pt"  # resume ignores it


@pytest.mark.parametrize("desired_kl,final_lr", [(1e-9, 1e-4), (10.0, 3e-3)])
def test_adaptive_lr_follows_the_update_kl(tmp_path: Path, desired_kl: float,
                                           final_lr: float) -> None:
    """Every update moves the policy by more than a tiny KL target (lr falls to lr_min)
    and by less than a huge one (lr rises to lr_max); the logged lr is the optimiser's."""
    cfg = load_config(overrides=[*TINY, f"ppo.desired_kl={desired_kl}", "ppo.lr_min=1e-4",
                                 "ppo.lr_max=3e-3", "train.iterations=3"])
    trainer = Trainer(cfg, tmp_path / "run", show_progress=False)
    trainer.train()
    assert trainer.ppo.optimizer.param_groups[0]["lr"] == pytest.approx(final_lr)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert all(row["ppo/approx_kl"] >= 0.0 for row in rows)
    lrs = [row["ppo/lr"] for row in rows]
    assert lrs == sorted(lrs, reverse=desired_kl < 1.0) and lrs[0] != lrs[-1]


@pytest.mark.parametrize("argv,message", [
    (["--set", "ppo.lrr=0.1"], "unknown config key 'ppo.lrr'; did you mean 'lr'?"),
    (["--set", "ppo.lr=fast"], "ppo.lr: expected a number, got 'fast'"),
    (["--set", "ppo.lr=1e-2x"], "ppo.lr: expected a number, got '1e-2x'"),
    (["--set", "ppo.gamma=1.5"], "ppo.gamma: must be in [0, 1], got 1.5"),
    (["--set", "task.student_envs=5000"], "task.student_envs: must be in 1..task.num_envs"),
    (["--set", "bogus"], "expected section.key=value"),
    (["--set", "ppo.count_bonus_bits=64"], "ppo.count_bonus_bits: must be in 0..63, got 64"),
    (["--set", "ppo.desired_kl=0.01", "--set", "ppo.anneal_lr=true"],
     "ppo.desired_kl: the adaptive learning rate and ppo.anneal_lr both set the lr"),
    (["--set", "ppo.desired_kl=0.01", "--set", "ppo.anneal_lr=false", "--set", "ppo.lr=0.1"],
     "ppo.lr: with ppo.desired_kl it must lie in [ppo.lr_min, ppo.lr_max]"),
    (["--config", "/nonexistent.yaml"], "config file not found: /nonexistent.yaml"),
    (["--set", "task.kwargs={layouts: /no/such.npy}"], "maze layout file not found"),
    (["--seed", "2000000"], "train.seed must be <"),
])
def test_config_errors_name_the_problem(tmp_path: Path, argv: list[str], message: str) -> None:
    out = subprocess.run([_cli("sitt-train"), "--out", str(tmp_path / "r"), *argv],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_eval_errors_are_clear(tmp_path: Path) -> None:
    out = subprocess.run([_cli("sitt-eval"), str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "run directory not found" in out.stderr
    (tmp_path / "empty").mkdir()
    out = subprocess.run([_cli("sitt-eval"), str(tmp_path / "empty")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "no config.yaml" in out.stderr


def test_unknown_yaml_section_in_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  iterations: 3\n")
    from sitt_training.config import ConfigError

    with pytest.raises(ConfigError, match="unknown config key 'trainer'; did you mean 'train'"):
        load_config(bad)
    assert os.path.exists(bad)
    assert generate_layouts(0, 1).shape == (1, GRID, GRID)


def test_second_signal_stops_at_once_without_a_traceback(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # Iterations of ~1 s, so both signals land inside the same one.
    args = [_cli("sitt-train"), "--task", "color_maze", "--method", "sitt", "--seed", "1",
            "--out", str(run), "--no-progress", "--set=train.iterations=100000",
            "--set=train.eval_every=0", "--set=train.torch_threads=1",
            "--set=train.checkpoint_every=1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not checkpoints(run):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err, err
    assert "stopped at once" in err and f"sitt-train --resume {run}" in err, err
    assert "the last checkpoint is model_" in err, err
