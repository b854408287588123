"""L2T on the off-policy SAC core: noise model, SAC and student losses by hand, gradient
isolation, the student's absence from the environment, the curriculum, exact resume, the
run directory and CLI, the L2T tasks, and a short learning run."""

import json
import math
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from point_task import POINT_STEPS, register_point_task
from run_checks import assert_resume_continues_exactly, train_tiny_run

from sitt_training import cli
from sitt_training.buffers import ReplayBuffer, Transitions
from sitt_training.config import ConfigError, load_config
from sitt_training.envs import make_task
from sitt_training.methods.l2t import L2T, L2TPolicy, student_loss
from sitt_training.noise import (
    curriculum_alpha,
    l2t_observation,
    noisy_observation,
    unit_noise_torch,
)
from sitt_training.offpolicy_trainer import OffPolicyTrainer
from sitt_training.sac import SAC, SACNetworks, actor_loss, critic_loss, soft_target
from sitt_training.sac import temperature_loss as sac_temperature_loss
from sitt_training.trainer import checkpoints


# ------------------------------------------------------------------ a fast task
@pytest.fixture
def point_task(monkeypatch: pytest.MonkeyPatch) -> str:
    return register_point_task(monkeypatch)


TINY = ["method.name=l2t", "task.num_envs=4", "sac.rollout_steps=5", "sac.gradient_steps=2",
        "sac.batch_size=16", "sac.learning_starts=8", "sac.buffer_size=1000",
        "sac.actor_hidden=[16,16]", "sac.critic_hidden=[16,16]", "train.eval_every=0",
        "train.torch_threads=1"]


def tiny(task: str, *extra: str):
    return load_config(overrides=[f"task.name={task}", *TINY, *extra])


# ------------------------------------------------------------------------ noise
def test_noise_is_the_formula_within_bounds_and_zero_at_alpha_zero() -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4000, 5) * torch.tensor([0.01, 1.0, 10.0, 100.0, 1.0])
    s[:, 4] = 0.0  # exact zeros stay exact
    u = unit_noise_torch(tuple(s.shape), g)
    for alpha in (0.0, 0.1, 0.4):
        o = noisy_observation(s, u, alpha)
        assert torch.equal(o, s + alpha * u * s.abs())
        assert ((o - s).abs() <= alpha * s.abs() * (1 + 1e-6)).all()
    assert torch.equal(noisy_observation(s, u, 0.0), s)
    assert torch.equal(noisy_observation(s, u, 0.4)[:, 4], s[:, 4])
    # eps = (o - s) / alpha lies in [-|s|, |s|] and eps / |s| = u is uniform on [-1, 1].
    eps = (noisy_observation(s, u, 0.4) - s) / 0.4
    unit = (eps[:, :4] / s[:, :4].abs()).flatten()
    assert unit.min() >= -1.0 - 1e-5 and unit.max() <= 1.0 + 1e-5
    assert unit.min() < -0.99 and unit.max() > 0.99
    assert abs(unit.mean().item()) < 0.03 and abs(unit.var().item() - 1 / 3) < 0.02
    counts = torch.histc(unit, bins=10, min=-1.0, max=1.0)
    assert (counts / unit.numel() - 0.1).abs().max() < 0.02


def test_numpy_noise_and_the_task_student_observation_obey_the_bounds() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(1000, 3)).astype(np.float32)
    o = l2t_observation(s, 0.4, rng)
    assert (np.abs(o - s) <= 0.4 * np.abs(s) + 1e-6).all()
    assert np.abs(o - s).max() > 0.3 * np.abs(s).max()  # the noise is not trivially small
    env = make_task("pendulum", 16, 3, noise_alpha=0.4)
    obs, _ = env.reset(seed=3)
    diff = np.abs(obs["student"] - obs["teacher"])
    assert (diff <= 0.4 * np.abs(obs["teacher"]) + 1e-6).all() and diff.max() > 0
    env.set_student_mask(np.zeros(16, dtype=bool))  # training: no student observation
    obs, *_ = env.step(np.zeros((16, 1)))
    assert not obs["student"].any()


def test_curriculum_ramps_linearly_to_alpha_then_stays() -> None:
    values = [curriculum_alpha(0.4, k, 100, 0.5) for k in (0, 10, 25, 50, 80, 99)]
    assert values == pytest.approx([0.0, 0.08, 0.2, 0.4, 0.4, 0.4])
    assert curriculum_alpha(0.4, 0, 100, 0.0) == 0.4  # no curriculum
    assert curriculum_alpha(0.4, 3, 4, 1.0) == pytest.approx(0.3)


# ----------------------------------------------------------------- SAC by hand
def _np_mlp(seq: torch.nn.Sequential, x: np.ndarray) -> np.ndarray:
    """ReLU MLP forward pass in float64 NumPy, from the module's weights."""
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        x = _np_linear(lin, x)
        if i < len(linears) - 1:
            x = np.maximum(x, 0.0)
    return x


def _np_linear(lin: torch.nn.Linear, x: np.ndarray) -> np.ndarray:
    return x @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()


def _np_actor(nets: SACNetworks, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and clamped log-std of the pre-tanh Gaussian: ReLU trunk, two linear heads."""
    h = obs
    for lin in (m for m in nets.actor.trunk if isinstance(m, torch.nn.Linear)):
        h = np.maximum(_np_linear(lin, h), 0.0)
    return _np_linear(nets.actor.mean, h), np.clip(_np_linear(nets.actor.log_std, h), -20, 2)


def _np_sample(nets: SACNetworks, obs: np.ndarray, noise: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """tanh-Gaussian action and its log-density, the textbook way (change of variables)."""
    mean, log_std = _np_actor(nets, obs)
    u = mean + np.exp(log_std) * noise
    std = np.exp(log_std)
    gauss = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    log_prob = (gauss - np.log(1.0 - np.tanh(u) ** 2)).sum(axis=1)
    return np.tanh(u), log_prob


def _np_q(twin: torch.nn.Module, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    x = np.concatenate([obs, act], axis=1)
    return np.minimum(_np_mlp(twin.q1, x)[:, 0], _np_mlp(twin.q2, x)[:, 0])


def _tiny_nets(seed: int = 0) -> SACNetworks:
    torch.manual_seed(seed)
    nets = SACNetworks(obs_dim=3, action_dim=2, actor_hidden=[5], critic_hidden=[4],
                       init_temperature=0.3)
    with torch.no_grad():  # targets differ from the critics, as after training
        for p in nets.critic_target.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return nets


def _batch(n: int = 6, seed: int = 1) -> Transitions:
    g = torch.Generator().manual_seed(seed)
    return Transitions(obs=torch.randn(n, 3, generator=g),
                       actions=torch.rand(n, 2, generator=g) * 2 - 1,
                       rewards=torch.randn(n, generator=g),
                       next_obs=torch.randn(n, 3, generator=g),
                       terminated=torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0][:n]),
                       noise=torch.rand(n, 3, generator=g) * 2 - 1)


def test_critic_target_has_the_entropy_term_and_masks_terminal_states() -> None:
    nets, batch, gamma = _tiny_nets(), _batch(), 0.9
    torch.manual_seed(7)
    y = soft_target(nets, batch, gamma).double().numpy()
    torch.manual_seed(7)
    noise = torch.randn(6, 2).double().numpy()  # the draw soft_target made
    s2 = batch.next_obs.double().numpy()
    a2, logp2 = _np_sample(nets, s2, noise)
    soft_v = _np_q(nets.critic_target, s2, a2) - 0.3 * logp2
    done = batch.terminated.double().numpy()
    expected = batch.rewards.double().numpy() + gamma * (1 - done) * soft_v
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    terminal = done == 1.0
    np.testing.assert_allclose(y[terminal], batch.rewards.numpy()[terminal], atol=1e-7)

    torch.manual_seed(7)
    loss, _ = critic_loss(nets, batch, gamma)
    x = np.concatenate([batch.obs.double().numpy(), batch.actions.double().numpy()], axis=1)
    q1, q2 = _np_mlp(nets.critic.q1, x)[:, 0], _np_mlp(nets.critic.q2, x)[:, 0]
    hand = 0.5 * (np.mean((q1 - expected) ** 2) + np.mean((q2 - expected) ** 2))
    assert loss.item() == pytest.approx(hand, rel=1e-5)


def test_actor_and_temperature_losses_by_hand() -> None:
    nets, batch = _tiny_nets(), _batch()
    torch.manual_seed(3)
    loss, log_prob, _ = actor_loss(nets, batch.obs)
    torch.manual_seed(3)
    noise = torch.randn(6, 2).double().numpy()
    s = batch.obs.double().numpy()
    a, logp = _np_sample(nets, s, noise)
    np.testing.assert_allclose(log_prob.double().numpy(), logp, rtol=1e-5, atol=1e-5)
    hand = np.mean(0.3 * logp - _np_q(nets.critic, s, a))
    assert loss.item() == pytest.approx(hand, rel=1e-5, abs=1e-6)

    target_entropy = -2.0  # -|A|
    t_loss = sac_temperature_loss(nets.log_alpha, log_prob, target_entropy)
    assert t_loss.item() == pytest.approx(-math.log(0.3) * np.mean(logp + target_entropy),
                                          rel=1e-5)
    # The temperature rises while the entropy -log pi is below the target, falls above it.
    for logp_value, rises in ((5.0, True), (-5.0, False)):
        log_alpha = torch.tensor(0.0, requires_grad=True)
        sac_temperature_loss(log_alpha, torch.full((4,), logp_value), target_entropy).backward()
        assert (log_alpha.grad.item() < 0) == rises


def test_l2t_student_loss_by_hand_l1_bc_plus_frozen_critic_term() -> None:
    torch.manual_seed(0)
    policy = L2TPolicy(3, 2, np.array([-1.0, -2.0]), np.array([1.0, 2.0]), [5], [4])
    batch = _batch()
    obs_s = noisy_observation(batch.obs, batch.noise, 0.4)
    s, o = batch.obs.double().numpy(), obs_s.double().numpy()
    mean_t, _ = _np_actor(policy.teacher, s)
    a_t = np.tanh(mean_t)
    a_s = np.tanh(_np_mlp(policy.student.net, o))
    bc = np.abs(a_s - a_t).sum(axis=1).mean()
    q = _np_q(policy.teacher.critic, s, a_s)
    for normalize, bc_coef, q_coef in ((False, 1.0, 1.0), (True, 1.0, 1.0), (True, 0.5, 2.0)):
        cfg = load_config(overrides=["task.name=pendulum", "method.name=l2t",
                                     f"method.l2t_q_normalize={str(normalize).lower()}",
                                     f"method.l2t_bc_coef={bc_coef}",
                                     f"method.l2t_q_coef={q_coef}"]).method
        loss, stats = student_loss(policy.student, policy.teacher, obs_s, batch.obs, cfg)
        q_term = -q.mean() / (np.abs(q).mean() if normalize else 1.0)
        assert loss.item() == pytest.approx(bc_coef * bc + q_coef * q_term, rel=1e-5)
        assert stats["l2t/bc_loss"] == pytest.approx(bc, rel=1e-5)
    # Actions in the task's bounds for evaluation: [-1, 1] per dimension -> [low, high].
    with torch.no_grad():
        out = policy.student_out(obs_s)
    np.testing.assert_allclose(out.numpy(), a_s * np.array([1.0, 2.0]), rtol=1e-5, atol=1e-6)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def test_gradients_reach_only_the_network_each_loss_belongs_to() -> None:
    torch.manual_seed(0)
    policy = L2TPolicy(3, 2, -np.ones(2), np.ones(2), [8], [8])
    cfg = load_config(overrides=["task.name=pendulum", "method.name=l2t"])
    l2t = L2T(policy, cfg.sac, cfg.method)
    batch = _batch()
    teacher, student = _snapshot(policy.teacher), _snapshot(policy.student)

    l2t.update_student(batch, alpha=0.4)
    assert not _changed(teacher, policy.teacher)  # actor, critics, targets, temperature
    assert all(p.grad is None for p in policy.teacher.parameters())
    assert _changed(student, policy.student) == set(_snapshot(policy.student))

    student = _snapshot(policy.student)
    policy.student.zero_grad(set_to_none=True)
    l2t.sac.update(batch)
    assert not _changed(student, policy.student)
    assert all(p.grad is None for p in policy.student.parameters())
    changed = _changed(teacher, policy.teacher)
    assert {"log_alpha"} <= changed
    assert any(k.startswith("actor.") for k in changed)
    assert any(k.startswith("critic.") for k in changed)
    assert any(k.startswith("critic_target.") for k in changed)  # Polyak step


def test_polyak_moves_targets_by_tau() -> None:
    nets = _tiny_nets()
    cfg = load_config(overrides=["task.name=pendulum", "method.name=l2t", "sac.tau=0.25",
                                 "sac.lr=1e-12"]).sac
    before_t = _snapshot(nets.critic_target)
    SAC(nets, cfg).update(_batch())
    for key, value in nets.critic_target.state_dict().items():
        online = nets.critic.state_dict()[key]
        torch.testing.assert_close(value, 0.75 * before_t[key] + 0.25 * online)


# ---------------------------------------------------------------- replay buffer
def test_replay_buffer_is_a_ring_and_round_trips() -> None:
    buf = ReplayBuffer(5, obs_dim=2, action_dim=1, noise=True)
    for start in range(0, 12, 3):
        rows = torch.arange(start, start + 3, dtype=torch.float32)
        buf.add(Transitions(rows[:, None].repeat(1, 2), rows[:, None], rows, rows[:, None]
                            .repeat(1, 2) + 0.5, torch.zeros(3), torch.zeros(3, 2)))
    assert len(buf) == 5 and buf.cursor == 12 % 5
    assert sorted(buf.rewards.tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0]  # the newest five
    copy = ReplayBuffer(5, 2, 1, noise=True)
    copy.load_state_dict(buf.state_dict())
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = buf.sample(8, g1), copy.sample(8, g2)
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "noise"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert torch.equal(a.next_obs, a.obs + 0.5)


def test_truncation_bootstraps_from_the_final_state(point_task: str, tmp_path: Path) -> None:
    trainer = OffPolicyTrainer(tiny(point_task, "sac.learning_starts=1000"), tmp_path,
                               show_progress=False)
    for _ in range(POINT_STEPS + 1):
        trainer.step_envs()
    buf, n = trainer.buffer, 4
    assert not buf.terminated[: len(buf)].any()  # time limits are not terminal
    for t in range(POINT_STEPS):
        now, later = slice(t * n, (t + 1) * n), slice((t + 1) * n, (t + 2) * n)
        if t < POINT_STEPS - 1:  # s' is the next stored state
            assert torch.equal(buf.next_obs[now], buf.obs[later])
        else:  # the last step's s' is the final state, not the next episode's first
            assert not torch.equal(buf.next_obs[now], buf.obs[later])
            moved = buf.next_obs[now, :2] - buf.obs[now, :2]
            expected = 0.2 * buf.actions[now]
            torch.testing.assert_close(moved, expected)


# ---------------------------------------------- the student never steps the env
def test_the_student_never_acts_or_observes_in_training(point_task: str, tmp_path: Path
                                                        ) -> None:
    def run(scramble: bool) -> tuple[list[np.ndarray], int, OffPolicyTrainer]:
        trainer = OffPolicyTrainer(tiny(point_task), tmp_path / str(scramble),
                                   show_progress=False)
        if scramble:  # a different student must not change what the environment executes
            with torch.no_grad():
                for p in trainer.policy.student.parameters():
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(9)))
        executed: list[np.ndarray] = []
        calls = {"student_in_env": 0}
        step = trainer.env.step

        def spy(actions: np.ndarray):
            executed.append(np.array(actions))
            assert not trainer.env.student_mask.any()  # no student observation is made
            return step(actions)

        stepping = {"on": False}

        def count(*_: object) -> None:
            calls["student_in_env"] += stepping["on"]

        trainer.env.step = spy
        trainer.policy.student.register_forward_hook(count)
        inner_step_envs = trainer.step_envs

        def step_envs():
            stepping["on"] = True
            try:
                return inner_step_envs()
            finally:
                stepping["on"] = False

        trainer.step_envs = step_envs
        for _ in range(4):
            stats = trainer.iterate()
        assert stats["l2t/bc_loss"] > 0  # the student was trained meanwhile
        return executed, calls["student_in_env"], trainer

    plain, calls, trainer = run(False)
    scrambled, _, _ = run(True)
    assert calls == 0
    assert len(plain) == 4 * 5 and trainer.env_steps == 4 * 5 * 4
    for a, b in zip(plain, scrambled, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- checkpoints
def test_resume_gives_the_same_continuation(point_task: str, tmp_path: Path) -> None:
    cfg = tiny(point_task, "train.iterations=6", "train.checkpoint_every=3",
               "method.l2t_curriculum=0.5")
    # Stopped after 3 of 6 iterations (the curriculum spans all 6).
    straight, resumed = assert_resume_continues_exactly(OffPolicyTrainer, cfg, tmp_path, 3)
    assert torch.equal(straight.buffer.noise[:len(straight.buffer)],
                       resumed.buffer.noise[:len(resumed.buffer)])


def test_run_directory_sigint_and_sitt_eval(point_task: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    lines = train_tiny_run(point_task, "l2t", run, TINY)
    assert "eval/student_return" in lines[1] and math.isnan(lines[1]["eval/student_success"])

    capsys.readouterr()
    assert cli.eval_main([str(run), "--episodes", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "l2t" and report["iteration"] == 4
    assert math.isnan(report["student_success"]) and report["student"]["return"] < 0
    assert cli.eval_main([str(run), "--episodes", "2", "--checkpoint", "best"]) == 0
    assert "student return" in capsys.readouterr().out

    # A stop request (SIGINT/SIGTERM) finishes the iteration, saves and stops.
    cfg = load_config(run / "config.yaml", ["train.iterations=100"])
    trainer = OffPolicyTrainer(cfg, run, show_progress=False)
    trainer.resume()
    trainer._request_stop(signal.SIGINT, None)
    result = trainer.train()
    assert result["status"] == "interrupted" and result["iteration"] == 5
    assert checkpoints(run)[-1].name == "model_5.pt"


@pytest.mark.parametrize("overrides,message", [
    (["task.name=color_maze"], "task.name: method 'l2t' needs a task"),
    (["sac.tau=0"], "sac.tau"),
    (["method.l2t_curriculum=1.5"], "method.l2t_curriculum"),
    (["sac.buffer_size=2"], "sac.buffer_size"),
    (["sac.actor_hidden=[]"], "sac.actor_hidden"),
    (["sac.gama=0.9"], "did you mean 'gamma'"),
])
def test_config_errors_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(overrides=["task.name=pendulum", *TINY, *overrides])


# ------------------------------------------------------------------------ tasks
def test_quadrotor_noisy_is_the_teacher_state_without_a_camera() -> None:
    env = make_task("quadrotor_noisy", 3, 2, episode_steps=5)
    obs, _ = env.reset(seed=2)
    assert obs["teacher"].shape == (3, 28) and obs["student"].shape == (3, 28)
    np.testing.assert_array_equal(obs["teacher"], env.inner._teacher_obs())
    assert (np.abs(obs["student"] - obs["teacher"]) <= 0.1 * np.abs(obs["teacher"]) + 1e-6).all()
    ended = [env.step(np.zeros((3, 4)))[4] for _ in range(5)][-1]
    assert ended["_episode"].all() and "success" in ended["episode"]
    assert env.inner._camera is None  # nothing was ever rendered


def test_quadrotor_noisy_passes_the_task_options_on() -> None:
    env = make_task("quadrotor_noisy", 1, 0, overspeed_weight=2.0, teacher_frame="command",
                    crash_scale=3.0, pillar_range=7.0, lateral_weight=0.5,
                    deviation_weight=0.2, other_pillar_lateral=6.0)
    inner = env.inner
    assert (inner.overspeed_weight, inner.teacher_frame, inner.crash_scale,
            inner.pillar_range, inner.lateral_weight, inner.deviation_weight,
            inner.other_pillar_lateral) == (2.0, "command", 3.0, 7.0, 0.5, 0.2, 6.0)
    env.close()


def test_arm_drawer_noisy_is_the_teacher_state_without_a_camera(tmp_path: Path) -> None:
    env = make_task("arm_drawer_noisy", 2, 3, episode_steps=4)
    obs, _ = env.reset(seed=3)
    assert obs["teacher"].shape == (2, 23) and obs["student"].shape == (2, 23)
    np.testing.assert_array_equal(obs["teacher"], env.inner._teacher_obs())
    assert (np.abs(obs["student"] - obs["teacher"]) <= 0.1 * np.abs(obs["teacher"]) + 1e-6).all()
    assert not np.array_equal(obs["student"], obs["teacher"])
    ended = [env.step(np.zeros((2, 8))) for _ in range(4)][-1][4]
    assert ended["_episode"].all() and "success" in ended["episode"]
    assert "handle_visible" not in ended["episode"]  # no camera, no visibility rays
    assert not env.inner.student_mask.any()  # the arm never rendered an image
    env.close()
    # The preset trains end to end (4 tiny iterations) and its student evaluates.
    lines = train_tiny_run("arm_drawer_noisy", "l2t", tmp_path / "run",
                           [*TINY, "task.kwargs={episode_steps: 10}"])
    assert "eval/student_success" in lines[1]


def test_half_cheetah_task_resumes_exactly_and_reports_no_success() -> None:
    pytest.importorskip("mujoco")
    env = make_task("half_cheetah", 2, 4, episode_steps=30)
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (40, 2, 6))
    for a in actions[:10]:
        env.step(a)
    state = env.state_dict()
    first = [env.step(a) for a in actions[10:]]
    other = make_task("half_cheetah", 2, 99, episode_steps=30)  # another seed
    other.load_state_dict(state)
    second = [other.step(a) for a in actions[10:]]
    for (o1, r1, *_), (o2, r2, *_) in zip(first, second, strict=True):
        np.testing.assert_array_equal(o1["teacher"], o2["teacher"])
        np.testing.assert_array_equal(o1["student"], o2["student"])
        np.testing.assert_array_equal(r1, r2)
    ended = [info for *_, info in first if "_episode" in info]
    assert ended and np.isnan(ended[0]["episode"]["success"]).all()
    assert env.single_observation_space["teacher"].shape == (17,) and env.noise_alpha == 0.4


# ------------------------------------------------------------------- learning
def test_short_l2t_run_learns_teacher_and_student(point_task: str, tmp_path: Path) -> None:
    """Point reaching with L2T noise 0.1: the SAC teacher and the student (evaluated on
    noisy observations) both learn to reach the goal, and the student imitates the
    final teacher far better than it did untrained."""
    cfg = load_config(overrides=[
        f"task.name={point_task}", "method.name=l2t", "task.num_envs=8",
        "sac.rollout_steps=10", "sac.gradient_steps=4", "sac.batch_size=64", "sac.gamma=0.9",
        "sac.actor_hidden=[32,32]", "sac.critic_hidden=[32,32]", "sac.lr=0.003",
        "sac.buffer_size=20000", "train.iterations=40", "train.eval_every=0",
        "train.torch_threads=1", "method.l2t_curriculum=0.5"])
    trainer = OffPolicyTrainer(cfg, tmp_path, show_progress=False)
    untrained_student = _snapshot(trainer.policy.student)
    before = trainer.validate(episodes=16)
    result = trainer.train()
    after = trainer.validate(episodes=16)
    assert result["status"] == "finished"
    # Seen: teacher -20.7 -> -2.6, student -21.8 -> -3.1 (the goal is ~1 away on average,
    # 5 steps at full speed; an untrained policy barely moves).
    assert before["eval/teacher_return"] < -15 and before["eval/student_return"] < -15
    assert after["eval/teacher_return"] > -6, after
    assert after["eval/student_return"] > -8, after

    batch = trainer.buffer.sample(2048, torch.Generator().manual_seed(0))
    obs_s = noisy_observation(batch.obs, batch.noise, trainer.noise_alpha)
    with torch.no_grad():
        target = trainer.policy.teacher.actor.deterministic(batch.obs)
        trained_bc = (trainer.policy.student(obs_s) - target).abs().sum(-1).mean().item()
        trainer.policy.student.load_state_dict(untrained_student)
        untrained_bc = (trainer.policy.student(obs_s) - target).abs().sum(-1).mean().item()
    assert trained_bc < 0.4 * untrained_bc, (trained_bc, untrained_bc)  # seen: 0.23 vs 1.12
