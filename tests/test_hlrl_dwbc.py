"""HLRL and DWBC: their losses against hand computation, who moves what, the HLRL student's
own roll-out (acting, exclusion from the teacher's loss, time-limit bootstrap with its own
critic), and short learning runs of the TunnelVision presets."""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sitt_training.buffers import PairedBuffer
from sitt_training.config import ConfigError, MethodConfig, PPOConfig, load_config, preset_path
from sitt_training.evaluation import evaluate
from sitt_training.methods import make_method
from sitt_training.methods.dwbc import Discriminator, discriminator_loss, policy_loss
from sitt_training.methods.hlrl import bc_weight, student_loss
from sitt_training.networks import ActionSpec, TeacherStudentPolicy
from sitt_training.ppo import PPO, RolloutStorage
from sitt_training.trainer import Trainer

PARTS = ("teacher_encoder", "student_encoder", "proxy_encoder", "decoder", "critic",
         "student_critic")


def _policy(discrete: bool = True, student_critic: bool = False) -> TeacherStudentPolicy:
    torch.manual_seed(0)
    spec = ActionSpec(True, 4) if discrete else ActionSpec(False, 3)
    return TeacherStudentPolicy(6, 5, spec, feature_dim=8, hidden=(16,), critic_hidden=(16,),
                                student_critic=student_critic)


def _snapshot(module: torch.nn.Module, names: tuple[str, ...]) -> dict[str, dict]:
    return {n: copy.deepcopy(getattr(module, n).state_dict()) for n in names
            if getattr(module, n, None) is not None}


def _moved(before: dict, module: torch.nn.Module) -> set[str]:
    return {n for n, state in before.items()
            if any(not torch.equal(v, getattr(module, n).state_dict()[k])
                   for k, v in state.items())}


def _fake_rollout(method, policy, steps: int = 6, envs: int = 8, seed: int = 0):
    """Drive the HLRL hooks as the trainer does, on random observations."""
    gen = torch.Generator().manual_seed(seed)
    obs_t = torch.randn(steps, envs, 6, generator=gen)
    method.start_iteration(0, None)
    executed, masks = [], []
    for t in range(steps):
        with torch.no_grad():
            teacher_actions = policy.decoder.sample(policy.teacher_out(obs_t[t]))
        actions, for_teacher = method.choose_actions(
            teacher_actions, torch.randn(envs, 5, generator=gen), gen)
        executed.append(actions)
        masks.append(for_teacher)
    rewards = torch.randn(steps, envs, generator=gen)
    dones = (torch.rand(steps, envs, generator=gen) < 0.2).float()
    method.end_rollout(obs_t, rewards, dones, [], torch.randn(envs, 6, generator=gen))
    return torch.stack(executed), torch.stack(masks)


# ----------------------------------------------------------------------------- losses
def test_hlrl_bc_weight_decays_exponentially() -> None:
    assert [bc_weight(2.0, 0.5, k) for k in range(4)] == [2.0, 1.0, 0.5, 0.25]
    policy = _policy(student_critic=True)
    method = make_method(policy, MethodConfig(name="hlrl", hlrl_bc_coef=3.0,
                                              hlrl_bc_decay=0.9, hlrl_envs=2))
    method.start_iteration(7, None)
    assert method.weight == pytest.approx(3.0 * 0.9**7)


def test_hlrl_student_loss_matches_hand_computation() -> None:
    # Two samples: ratios 2 and 1, advantages +1 / -1 (normalised: +-1/sqrt 2), clip 0.2.
    log_prob = torch.log(torch.tensor([0.5, 0.25]))
    old = torch.log(torch.tensor([0.25, 0.25]))
    loss, parts = student_loss(
        log_prob=log_prob, old_log_prob=old, advantages=torch.tensor([1.0, -1.0]),
        values=torch.tensor([1.0, 2.0]), returns=torch.tensor([0.0, 4.0]),
        entropy=torch.tensor([1.0, 3.0]), bc=torch.tensor([0.5, 1.5]), bc_weight=0.25,
        clip=0.2, value_coef=0.5, entropy_coef=0.1)
    a = 1 / math.sqrt(2)
    policy = -((min(2 * a, 1.2 * a)) + (-a)) / 2  # sample 0 clipped at 1.2, sample 1 ratio 1
    value = (1.0 + 4.0) / 2
    expected = policy + 0.5 * value - 0.1 * 2.0 + 0.25 * 1.0
    assert parts["policy_loss"].item() == pytest.approx(policy, rel=1e-5)
    assert parts["value_loss"].item() == pytest.approx(2.5)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_dwbc_losses_match_hand_computation() -> None:
    d_t, d_s = torch.tensor([0.8, 0.5]), torch.tensor([0.2, 0.4])
    w = torch.tensor([0.25, 0.75])
    eta = 0.5
    # eta * -log d_T  - log(1 - d_S)  - eta * -log(1 - d_T), per pair
    pair0 = eta * -math.log(0.8) - math.log(0.8) - eta * -math.log(0.2)
    pair1 = eta * -math.log(0.5) - math.log(0.6) - eta * -math.log(0.5)
    assert discriminator_loss(d_t, d_s, w, eta).item() == pytest.approx(
        0.25 * pair0 + 0.75 * pair1, rel=1e-6)
    # teacher weights alpha - eta / (d (1 - d)): 10 - 0.5 / 0.16 = 6.875 and 10 - 2 = 8;
    # student weights 1 / (1 - d): 1.25 and 5 / 3.
    nll_t, nll_s = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0])
    expected = 0.25 * (6.875 * 1.0 + 1.25 * 0.5) + 0.75 * (8.0 * 2.0 + 5 / 3 * 1.0)
    assert policy_loss(nll_t, nll_s, d_t, d_s, w, 10.0, eta).item() == pytest.approx(
        expected, rel=1e-6)
    # The weights are constants: the gradient reaches the log-likelihoods only.
    d_t.requires_grad_(True)
    nll = nll_t.clone().requires_grad_(True)
    policy_loss(nll, nll_s, d_t, d_s, w, 10.0, eta).backward()
    assert d_t.grad is None
    torch.testing.assert_close(nll.grad, torch.tensor([0.25 * 6.875, 0.75 * 8.0]))


def test_discriminator_output_is_clipped_and_reads_one_hot_actions() -> None:
    torch.manual_seed(0)
    disc = Discriminator(8, 4, True, [16], clip=0.1)
    with torch.no_grad():
        disc.net[-1].bias.fill_(100.0)
    d = disc(torch.randn(5, 8), torch.tensor([0, 1, 2, 3, 0]), torch.zeros(5))
    torch.testing.assert_close(d, torch.full((5,), 0.9))
    assert disc.net[0].in_features == 8 + 4 + 1


def test_config_checks_name_the_key() -> None:
    with pytest.raises(ConfigError, match="method.hlrl_envs: the student can only act"):
        load_config(overrides=["method.name=hlrl", "task.student_envs=10",
                               "method.hlrl_envs=20"])
    with pytest.raises(ConfigError, match="method.hlrl_envs: must be < task.num_envs"):
        load_config(overrides=["method.name=hlrl", "task.num_envs=10",
                               "task.student_envs=10", "method.hlrl_envs=10"])
    with pytest.raises(ConfigError, match="method.hlrl_bc_decay: must be in"):
        load_config(overrides=["method.hlrl_bc_decay=1.5"])
    with pytest.raises(ConfigError, match="method.dwbc_alpha: must be >= dwbc_eta"):
        load_config(overrides=["method.name=dwbc", "method.dwbc_alpha=2.0"])
    with pytest.raises(ConfigError, match="method.dwbc_d_clip"):
        load_config(overrides=["method.dwbc_d_clip=0.5"])


# ----------------------------------------------------------------------- who moves what
@pytest.mark.parametrize("discrete", [True, False])
def test_hlrl_student_update_moves_only_the_student_encoder_and_critic(discrete) -> None:
    policy = _policy(discrete, student_critic=True)
    method = make_method(policy, MethodConfig(name="hlrl", hlrl_envs=4),
                         PPOConfig(epochs=2, minibatches=2))
    _fake_rollout(method, policy)
    before = _snapshot(policy, PARTS)
    stats = method.update_student(PairedBuffer(8), torch.Generator().manual_seed(0))
    assert stats["hlrl/bc_weight"] == 1.0 and stats["hlrl/bc_loss"] > 0
    assert _moved(before, policy) == {"student_encoder", "student_critic"}
    for part in ("teacher_encoder", "decoder", "critic"):
        assert all(p.grad is None for p in getattr(policy, part).parameters()), part
    assert method.update_student(PairedBuffer(8), torch.Generator()) == {}  # consumed


@pytest.mark.parametrize("discrete", [True, False])
def test_dwbc_update_moves_only_the_student_encoder_and_discriminator(discrete) -> None:
    policy = _policy(discrete)
    method = make_method(policy, MethodConfig(name="dwbc", align_iterations=3,
                                              align_batch_size=32))
    buffer = PairedBuffer(128)
    buffer.add(torch.randn(64, 6), torch.randn(64, 5))
    before = _snapshot(policy, PARTS)
    disc_before = copy.deepcopy(method.discriminator.state_dict())
    stats = method.update_student(buffer, torch.Generator().manual_seed(0))
    assert set(stats) >= {"dwbc/d_loss", "dwbc/policy_loss", "dwbc/d_teacher"}
    assert _moved(before, policy) == {"student_encoder"}
    assert any(not torch.equal(v, method.discriminator.state_dict()[k])
               for k, v in disc_before.items())
    for part in ("teacher_encoder", "decoder", "critic"):
        assert all(p.grad is None for p in getattr(policy, part).parameters()), part


@pytest.mark.parametrize("name", ["hlrl", "dwbc"])
def test_teacher_ppo_update_never_moves_the_student_side(name) -> None:
    policy = _policy(student_critic=name == "hlrl")
    method = make_method(policy, MethodConfig(name=name, hlrl_envs=4))
    ppo = PPO(policy, PPOConfig(epochs=2, minibatches=2))
    owned = [*policy.student_encoder.parameters()]
    owned += [*policy.student_critic.parameters()] if name == "hlrl" else [
        *method.discriminator.parameters()]
    assert not {id(p) for p in owned} & {id(p) for p in ppo.params}
    st = RolloutStorage(4, 8, 6, (), True)
    st.obs.normal_()
    st.actions.random_(0, 4)
    st.rewards.normal_()
    st.compute_gae(torch.zeros(8), 0.99, 0.95)
    before = [p.detach().clone() for p in owned]
    ppo.update(st, torch.Generator().manual_seed(0), method.extra_policy_loss)
    assert all(torch.equal(b, p) for b, p in zip(before, owned, strict=True))
    assert all(p.grad is None for p in owned)


# ------------------------------------------------------------- HLRL's own roll-out
def test_hlrl_student_acts_in_its_envs_only() -> None:
    policy = _policy(student_critic=True)
    method = make_method(policy, MethodConfig(name="hlrl", hlrl_envs=6))
    with torch.no_grad():  # the student's choice unmistakable: always action 0
        policy.decoder.linear.bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
    method.start_iteration(0, None)
    teacher_actions = torch.full((10,), 3, dtype=torch.long)
    actions, for_teacher = method.choose_actions(teacher_actions, torch.randn(10, 5),
                                                 torch.Generator())
    assert actions.tolist() == [0] * 6 + [3] * 4
    assert for_teacher.tolist() == [False] * 6 + [True] * 4  # from the first iteration on


def test_hlrl_bootstraps_its_truncations_with_the_student_critic() -> None:
    policy = _policy(student_critic=True)
    with torch.no_grad():  # V_S = 5 and V_T = -7 everywhere
        for critic, value in ((policy.student_critic, 5.0), (policy.critic, -7.0)):
            critic[-1].weight.zero_()
            critic[-1].bias.fill_(value)
    gamma = 0.9
    method = make_method(policy, MethodConfig(name="hlrl", hlrl_envs=2),
                         PPOConfig(gamma=gamma, gae_lambda=1.0))
    steps, envs = 3, 4
    method.start_iteration(0, None)
    for _ in range(steps):
        method.choose_actions(torch.zeros(envs, dtype=torch.long), torch.randn(envs, 5),
                              torch.Generator())
    rewards = torch.ones(steps, envs)
    dones = torch.zeros(steps, envs)
    dones[1, [0, 3]] = 1.0  # env 0 (the student's) and env 3 (the teacher's) truncated at t=1
    truncations = [(1, np.array([0, 3]), np.random.rand(2, 6).astype(np.float32))]
    method.end_rollout(torch.randn(steps, envs, 6), rewards, dones, truncations,
                       torch.randn(envs, 6))
    st = method.rollout
    assert st.rewards.shape == (steps, 2)
    expected = torch.ones(steps, 2)
    expected[1, 0] += gamma * 5.0  # the student critic's value, not the teacher's -7
    torch.testing.assert_close(st.rewards, expected)
    assert torch.equal(rewards, torch.ones(steps, envs))  # the trainer's tensor untouched
    # lambda = 1: returns are discounted sums, bootstrapped with V_S = 5 at the end.
    env0 = [1 + gamma * (1 + gamma * 5.0), 1 + gamma * 5.0, 1 + gamma * 5.0]
    torch.testing.assert_close(st.returns[:, 0], torch.tensor(env0))


def _tiny_hlrl(tmp_path: Path, *extra: str) -> Trainer:
    cfg = load_config(overrides=[
        "task.name=tunnel_vision", "task.num_envs=16", "task.student_envs=8",
        "method.name=hlrl", "method.hlrl_envs=4", "ppo.rollout_steps=12",
        "ppo.minibatches=2", "ppo.epochs=2", "train.eval_every=0", "train.torch_threads=1",
        "network.decoder_hidden=[16]", *extra])
    return Trainer(cfg, tmp_path, show_progress=False)


def test_hlrl_in_the_trainer_acts_and_is_left_out_of_the_teachers_loss(tmp_path) -> None:
    trainer = _tiny_hlrl(tmp_path)
    trainer.method.start_iteration(0, None)
    trainer.collect()
    st, student = trainer.storage, trainer.method.rollout
    assert not st.for_teacher[:, :4].any() and st.for_teacher[:, 4:].all()
    # The actions executed in the student's envs are the student's, with its log-probs.
    assert torch.equal(student.actions, st.actions[:, :4])
    with torch.no_grad():
        out = trainer.policy.student_out(trainer.method.student_obs)
        log_p = trainer.policy.decoder.log_prob(out, student.actions.reshape(-1))
    torch.testing.assert_close(student.log_prob.reshape(-1), log_p)
    stats = trainer.ppo.update(st, trainer.generator)
    assert stats["ppo/policy_loss"] == stats["ppo/policy_loss"]  # finite; masked rows out


def test_hlrl_truncations_in_the_trainer_use_the_student_critic(tmp_path) -> None:
    trainer = _tiny_hlrl(tmp_path, "task.kwargs={time_limit: 3}")
    with torch.no_grad():  # the student's envs hardly ever collide or succeed in 3 steps
        trainer.policy.student_critic[-1].bias.fill_(10.0)
    seen = {}
    original = trainer.method.end_rollout

    def spy(obs_t, rewards, dones, truncations, last_obs_t):
        seen["raw"] = rewards.clone()
        seen["truncations"] = truncations
        original(obs_t, rewards, dones, truncations, last_obs_t)

    trainer.method.end_rollout = spy
    trainer.method.start_iteration(0, None)
    trainer.collect()
    policy, gamma = trainer.policy, trainer.cfg.ppo.gamma
    expected = seen["raw"][:, :4].clone()
    checked = 0
    with torch.no_grad():
        for t, envs, final in seen["truncations"]:
            ours = envs < 4
            expected[t, torch.from_numpy(envs[ours])] += gamma * policy.student_value(
                torch.from_numpy(final[ours]))
            checked += int(ours.sum())
    assert checked >= 4
    torch.testing.assert_close(trainer.method.rollout.rewards, expected)
    # The teacher's storage bootstrapped the same rows with its own critic instead.
    assert not torch.allclose(trainer.storage.rewards[:, :4], expected)


# ---------------------------------------------------------------------- learning runs
ITERATIONS = 30


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    """Validation results of short runs of the TunnelVision presets, and of the untrained
    student (the same initial networks)."""
    results = {}
    for method in ("hlrl", "dwbc"):
        cfg = load_config(preset_path("tunnel_vision", method),
                          [f"train.iterations={ITERATIONS}", "train.eval_every=0"])
        trainer = Trainer(cfg, tmp_path_factory.mktemp(method), show_progress=False)
        untrained = evaluate(trainer.policy, "tunnel_vision", {}, "student", 100)
        trainer.train()
        results[method] = {
            "untrained_student": untrained.mean_return,
            **{f"{role}_{what}": getattr(r, what)
               for role in ("teacher", "student")
               for r in [evaluate(trainer.policy, "tunnel_vision", {}, role, 100)]
               for what in ("success", "mean_return")}}
    return results


def test_hlrl_preset_learns(trained: dict) -> None:
    r = trained["hlrl"]
    assert r["teacher_success"] >= 0.8, r
    # The student's own RL: from colliding at once (return -1) to reaching the goal.
    assert r["student_mean_return"] >= r["untrained_student"] + 0.5, r
    assert r["student_success"] >= 0.3, r


def test_dwbc_preset_learns(trained: dict) -> None:
    r = trained["dwbc"]
    assert r["teacher_success"] >= 0.8, r
    assert r["student_mean_return"] >= r["untrained_student"] + 0.5, r
