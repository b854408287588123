"""Training on the quadrotor task: camera observations through roll-out, buffer, alignment,
checkpoints and evaluation (tiny settings; the real runs are in bench/quadrotor.py)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sitt_training.config import ConfigError, load_config
from sitt_training.envs import make_task
from sitt_training.schedules import SuccessRamp
from sitt_training.trainer import Trainer

TINY = ["task.name=quadrotor", "task.num_envs=8", "task.student_envs=4", "ppo.rollout_steps=16",
        "ppo.minibatches=2", "ppo.epochs=2", "ppo.init_log_std=-2.0",
        "method.align_iterations=4", "method.align_batch_size=64", "method.buffer_size=512",
        "method.dagger_envs=4", "network.hidden=[32]", "network.critic_hidden=[32]",
        "network.cnn_channels=[8, 16, 16, 16]", "network.normalize_obs=true",
        "train.eval_every=0", "train.torch_threads=1"]


def test_alignment_fits_the_student_to_the_teacher_on_camera_images(tmp_path: Path) -> None:
    cfg = load_config(overrides=[*TINY, "method.name=noalign", "train.iterations=12",
                                 "method.align_lr=0.003"])
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["align/student_loss"] for r in rows]
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:2]), losses
    # Only the rendering envs' pairs reach the buffer, with real images.
    assert trainer.buffer.size == 512  # full: 768 pairs went through the FIFO of 512
    images = trainer.buffer.student["image"][: trainer.buffer.size]
    assert images.dtype == torch.uint8 and images.float().std() > 5
    assert trainer.student_samples == 12 * 16 * 4


def test_rotating_student_envs_render_a_new_block_each_roll_out(tmp_path: Path) -> None:
    cfg = load_config(overrides=[*TINY, "method.name=bc", "task.student_envs=3",
                                 "task.rotate_student_envs=true", "train.iterations=3",
                                 "ppo.rollout_steps=4", "method.buffer_size=64"])
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    blocks = [np.flatnonzero(trainer.student_block(i)).tolist() for i in range(4)]
    assert blocks == [[0, 1, 2], [3, 4, 5], [0, 6, 7], [1, 2, 3]]  # wraps around 8 envs
    stored = []
    for _ in range(3):
        before = trainer.buffer.size
        trainer.iterate()
        stored.append(trainer.buffer.student["state"][before:trainer.buffer.size])
    # Every stored pair has a rendered image: the newly rendering rows are observed before
    # the first step of their roll-out, not left as the zeros of unrendered rows.
    images = trainer.buffer.student["image"][: trainer.buffer.size]
    assert trainer.buffer.size == 3 * 4 * 3
    assert bool(images.reshape(len(images), -1).any(dim=1).all())
    # Each roll-out's first pairs are its block's drones (their states differ from the last).
    assert not torch.equal(stored[0][:3], stored[1][:3])
    np.testing.assert_array_equal(trainer.env.student_mask, trainer.student_block(2))
    with pytest.raises(ConfigError, match="task.rotate_student_envs: hlrl's student learns"):
        load_config(overrides=[*TINY, "method.name=hlrl", "task.rotate_student_envs=true"])


def test_dagger_student_flies_the_rotating_rendering_block(tmp_path: Path) -> None:
    cfg = load_config(overrides=[*TINY, "method.name=dagger", "task.student_envs=3",
                                 "method.dagger_envs=2", "method.dagger_beta0=0.0",
                                 "task.rotate_student_envs=true", "train.iterations=2",
                                 "ppo.rollout_steps=4", "method.buffer_size=64"])
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    left_out = []  # envs whose transitions the teacher may not learn from, per roll-out
    for _ in range(2):
        trainer.iterate()
        left_out.append(np.flatnonzero(~trainer.storage.for_teacher.all(dim=0).numpy()).tolist())
    # beta 0: the student flies the first two drones of each roll-out's rendering block.
    assert left_out == [[0, 1], [3, 4]]


def test_resume_with_image_buffer_gives_the_same_continuation(tmp_path: Path) -> None:
    common = [*TINY, "method.name=sitt", "method.kl_reward_coef=0.01",
              "train.checkpoint_buffer=true", "train.checkpoint_every=2",
              "task.rotate_student_envs=true"]
    straight = Trainer(load_config(overrides=[*common, "train.iterations=4"]),
                       tmp_path / "straight", show_progress=False)
    straight.train()
    Trainer(load_config(overrides=[*common, "train.iterations=2"]), tmp_path / "split",
            show_progress=False).train()
    resumed = Trainer(load_config(overrides=[*common, "train.iterations=4"]),
                      tmp_path / "split", show_progress=False)
    assert resumed.resume().name == "model_2.pt"
    resumed.train()
    a, b = straight.policy.state_dict(), resumed.policy.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(straight.buffer.student["image"], resumed.buffer.student["image"])


def test_eval_cli_reports_perception_metrics_and_draws_flights(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(load_config(overrides=[*TINY, "method.name=bc", "train.iterations=1"]), run,
            show_progress=False).train()
    png = tmp_path / "flights.png"
    out = subprocess.run([str(Path(sys.executable).parent / "sitt-eval"), str(run),
                          "--episodes", "3", "--json", "--plot", str(png)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for role in ("teacher", "student"):
        assert report[role]["episodes"] == 3
        assert 0.0 <= report[role]["velocity_angle_deg"] <= 180.0
        assert 0.0 <= report[role]["obstacles_in_view"] <= 4.0
        assert 0.0 <= report[role]["crash_pillar"] + report[role]["crash_bounds"] <= 1.0
    assert png.stat().st_size > 10_000


def test_batched_evaluation_flies_the_same_episodes(tmp_path: Path, monkeypatch) -> None:
    """Tasks with heavy environments (max_eval_envs) are evaluated in batches started by
    reset_to: per episode, the same results as all episodes at once."""
    from sitt_training.envs.quadrotor import QuadrotorVecEnv
    from sitt_training.evaluation import evaluate

    policy = Trainer(load_config(overrides=[*TINY, "method.name=bc"]), tmp_path,
                     show_progress=False).policy
    kwargs = {"episode_steps": 30}
    whole = evaluate(policy, "quadrotor", kwargs, "student", 7, record_traces=True)
    monkeypatch.setattr(QuadrotorVecEnv, "max_eval_envs", 3)
    batched = evaluate(policy, "quadrotor", kwargs, "student", 7, record_traces=True)
    assert set(whole.per_episode) == set(batched.per_episode)
    for key, values in whole.per_episode.items():
        np.testing.assert_allclose(batched.per_episode[key], values, rtol=1e-5, err_msg=key)
    np.testing.assert_array_equal(batched.scenes, whole.scenes)
    assert len(batched.traces) == 7
    for a, b in zip(whole.traces, batched.traces, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_quadrotor_presets_differ_only_in_the_method() -> None:
    """SITT and the baselines are compared on equal terms: the same task, PPO, networks and
    budget; only the method section (and what it means for the student) differs."""
    from dataclasses import asdict

    from sitt_training.config import preset_path

    presets = {m: asdict(load_config(preset_path("quadrotor", m)))
               for m in ("sitt", "bc", "noalign", "dagger")}
    for method, cfg in presets.items():
        for section in ("task", "ppo", "network", "train"):
            assert cfg[section] == presets["sitt"][section], (method, section)
        for key in ("align_iterations", "align_batch_size", "align_lr", "buffer_size"):
            assert cfg["method"][key] == presets["sitt"]["method"][key], (method, key)


def test_ramped_task_options_rise_linearly_to_their_value_and_survive_a_resume(
        tmp_path: Path) -> None:
    common = [*TINY, "method.name=bc", "task.kwargs.deviation_weight=0.3",
              "task.ramp_options=[deviation_weight]", "task.ramp_iterations=3",
              "train.checkpoint_every=2"]
    trainer = Trainer(load_config(overrides=[*common, "train.iterations=2"]), tmp_path,
                      show_progress=False)
    trainer.train()
    assert trainer.env.deviation_weight == pytest.approx(0.2)  # set before iteration 2
    resumed = Trainer(load_config(overrides=[*common, "train.iterations=4"]), tmp_path,
                      show_progress=False)
    resumed.resume()
    resumed.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["task/ramp_factor"] for r in rows] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert resumed.env.deviation_weight == pytest.approx(0.3)


def test_ramp_waits_for_teacher_success_and_options_must_be_numbers() -> None:
    ramp = SuccessRamp(after_success=0.5, ramp_iterations=2)
    factors = []
    for iteration, success in enumerate([None, 0.2, 0.7, 0.1, 0.9]):
        ramp.observe(iteration, success)
        factors.append(ramp.factor(iteration))
    assert factors == [0.0, 0.0, 0.5, 1.0, 1.0]  # starts at iteration 2 and stays started
    with pytest.raises(ConfigError, match="task.ramp_options: 'deviation_weight' must be a "
                                          "number in task.kwargs"):
        load_config(overrides=[*TINY, "task.ramp_options=[deviation_weight]"])
    with pytest.raises(ConfigError, match="task.ramp_options: expected a list, got"):
        load_config(overrides=[*TINY, "task.ramp_options=deviation_weight"])
    with pytest.raises(ConfigError, match=r"task.ramp_options\[1\]: expected a string, got 3"):
        load_config(overrides=[*TINY, "task.ramp_options=[deviation_weight, 3]"])
    with pytest.raises(ConfigError, match=r"network.hidden\[0\]: expected an integer"):
        load_config(overrides=[*TINY, "network.hidden=[true]"])
    env = make_task("quadrotor_noisy", 1, 0)
    env.set_task_option("deviation_weight", 0.4)  # the noisy task passes it to the quadrotor
    assert env.inner.deviation_weight == 0.4
    with pytest.raises(ValueError, match="no numeric option 'teacher_frame'"):
        env.set_task_option("teacher_frame", 1.0)


def test_terminal_kl_charge_counts_the_steps_a_crash_cut_off(tmp_path: Path) -> None:
    """Each crash's step is told how many (discounted) steps the crash cut off before the
    time limit (what ``method.kl_reward_terminal`` charges for); time-limit ends and
    ongoing steps get 0."""
    cfg = load_config(overrides=[*TINY, "method.name=sitt", "method.kl_reward_terminal=true",
                                 "task.kwargs={episode_steps: 60}", "ppo.rollout_steps=100",
                                 "ppo.init_log_std=1.5", "train.iterations=1"])
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    ends: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real_step, real_shape = trainer.env.step, trainer.method.shape_rewards
    seen: dict[str, torch.Tensor] = {}

    def step(actions):  # the real env, each step's episode ends noted
        out = real_step(actions)
        lengths = out[4]["episode"]["l"] if "episode" in out[4] else np.zeros(8, dtype=int)
        ends.append((out[2].copy(), out[3].copy(), lengths.copy()))
        return out

    def shape(rows, rewards, skipped=None):
        seen["skipped"] = skipped.clone()
        return real_shape(rows, rewards, skipped)

    trainer.env.step, trainer.method.shape_rewards = step, shape
    trainer.iterate()
    terminated = np.stack([t for t, _, _ in ends])
    truncated = np.stack([t for _, t, _ in ends])
    assert terminated.any() and truncated.any()  # both kinds of episode end happened
    gamma = cfg.ppo.gamma
    expected = np.zeros((100, 8))
    for t, (term, _, lengths) in enumerate(ends):
        expected[t, term] = gamma * (1 - gamma ** (60 - lengths[term])) / (1 - gamma)
    np.testing.assert_allclose(seen["skipped"].reshape(100, 8).numpy(), expected, rtol=1e-5)
    assert (expected[terminated] > 0).all()
