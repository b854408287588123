"""SITT's core: KL formulas, the sign of the penalty, and who moves what."""

import copy

import numpy as np
import pytest
import torch

from sitt_training.buffers import PairedBuffer
from sitt_training.config import MethodConfig
from sitt_training.methods import make_method
from sitt_training.networks import ActionDecoder, ActionSpec, TeacherStudentPolicy
from sitt_training.ppo import Batch
from sitt_training.rows import Rows, paired_rows, unique_rows

torch.manual_seed(0)


def test_categorical_kl_matches_closed_form() -> None:
    dec = ActionDecoder(4, ActionSpec(True, 3))
    p_logits = torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.2, 0.2]])
    q_logits = torch.tensor([[0.0, 0.5, 0.0], [3.0, -1.0, 0.0]])
    p = torch.softmax(p_logits, -1)
    q = torch.softmax(q_logits, -1)
    expected = (p * (p.log() - q.log())).sum(-1)
    torch.testing.assert_close(dec.kl(p_logits, q_logits), expected)
    # By hand for the first row: sum p_i log(p_i / q_i).
    p0, q0 = p[0].tolist(), q[0].tolist()
    by_hand = sum(a * np.log(a / b) for a, b in zip(p0, q0, strict=True))
    assert dec.kl(p_logits, q_logits)[0].item() == pytest.approx(by_hand, rel=1e-5)
    assert dec.kl(p_logits, p_logits).abs().max().item() < 1e-6


def test_gaussian_kl_with_shared_std_matches_closed_form() -> None:
    dec = ActionDecoder(4, ActionSpec(False, 2), init_log_std=0.0)
    with torch.no_grad():
        dec.log_std.copy_(torch.tensor([np.log(0.5), np.log(2.0)]))
    mu_p = torch.tensor([[1.0, 2.0]])
    mu_q = torch.tensor([[0.0, 0.0]])
    # 0.5 * ((1-0)^2 / 0.25 + (2-0)^2 / 4) = 0.5 * (4 + 1) = 2.5
    assert dec.kl(mu_p, mu_q).item() == pytest.approx(2.5)
    p = torch.distributions.Independent(torch.distributions.Normal(mu_p, dec.log_std.exp()), 1)
    q = torch.distributions.Independent(torch.distributions.Normal(mu_q, dec.log_std.exp()), 1)
    reference = torch.distributions.kl_divergence(p, q).item()
    assert dec.kl(mu_p, mu_q).item() == pytest.approx(reference)


def test_gaussian_kl_gradient_raises_std_where_means_disagree() -> None:
    dec = ActionDecoder(4, ActionSpec(False, 2))
    kl = dec.kl(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
    kl.backward()
    # Minimising the KL by gradient descent moves log_std against its gradient: up on the
    # dimension where the means differ, unchanged where they agree.
    assert dec.log_std.grad[0] < 0 and dec.log_std.grad[1] == 0


def _policy(discrete: bool = True) -> TeacherStudentPolicy:
    spec = ActionSpec(True, 4) if discrete else ActionSpec(False, 3)
    return TeacherStudentPolicy(6, 5, spec, feature_dim=8, hidden=(16,), critic_hidden=(16,))


def _buffer(n: int = 64) -> PairedBuffer:
    buf = PairedBuffer(128)
    buf.add(torch.randn(n, 6), torch.randn(n, 5))
    return buf


@pytest.mark.parametrize("discrete", [True, False])
def test_decoder_log_prob_entropy_sample_match_torch_distributions(discrete) -> None:
    torch.manual_seed(0)
    spec = ActionSpec(True, 4) if discrete else ActionSpec(False, 3)
    dec = ActionDecoder(8, spec, init_log_std=-0.7)
    unique = torch.randn(6, spec.n) * 3
    index = torch.randint(0, 6, (50,))
    dist = dec.distribution(unique[index])
    actions = dist.sample()
    # Per distinct row + index equals the dense torch distribution.
    torch.testing.assert_close(dec.log_prob(unique, actions, index), dist.log_prob(actions))
    torch.testing.assert_close(dec.log_prob(unique[index], actions), dist.log_prob(actions))
    torch.testing.assert_close(dec.entropy(unique)[index], dist.entropy())
    # Sampling draws from the same distribution: sample means match the analytic mean.
    many = dec.sample(unique[:1].expand(20000, -1))
    if discrete:
        freq = torch.bincount(many, minlength=4).float() / 20000
        torch.testing.assert_close(freq, torch.softmax(unique[0], -1), atol=0.015, rtol=0)
    else:
        torch.testing.assert_close(many.mean(0), unique[0], atol=0.02, rtol=0)
        torch.testing.assert_close(many.std(0), torch.full((3,), np.exp(-0.7)), atol=0.02,
                                   rtol=0)


def test_kl_reward_penalty_lowers_reward_where_student_disagrees() -> None:
    policy = _policy()
    method = make_method(policy, MethodConfig(name="sitt", kl_reward_coef=0.5))
    obs_t = torch.randn(32, 6)
    with torch.no_grad():
        policy.teacher_encoder[-1].weight.mul_(50)  # a confident teacher
        kl = policy.decoder.kl(policy.teacher_out(obs_t), policy.proxy_out(obs_t))
    reward = torch.ones(32)
    shaped, stats = method.shape_rewards(Rows(obs_t), reward)
    assert (kl > 0).all()
    torch.testing.assert_close(shaped, reward - 0.5 * kl)  # a penalty, never a bonus
    assert (shaped < reward).all()
    assert stats["sitt/kl_penalty"] == pytest.approx((0.5 * kl).mean().item(), rel=1e-5)
    # Baselines leave the reward alone.
    for name in ("noalign", "bc", "dagger"):
        same, _ = make_method(policy, MethodConfig(name=name)).shape_rewards(Rows(obs_t), reward)
        assert torch.equal(same, reward)
    # Computed per distinct state and gathered: the same penalty.
    repeated = torch.cat([obs_t, obs_t[:5]])
    dedup, _ = method.shape_rewards(Rows.of(repeated, dedupe=True), torch.ones(37))
    torch.testing.assert_close(dedup, torch.cat([shaped, shaped[:5]]))
    # Centred (an option): zero on average, the same differences between states.
    centred = make_method(policy, MethodConfig(name="sitt", kl_reward_coef=0.5,
                                               kl_reward_centered=True))
    shaped_c, stats_c = centred.shape_rewards(Rows(obs_t), reward)
    torch.testing.assert_close(shaped_c, reward - 0.5 * (kl - kl.mean()))
    assert shaped_c.mean().item() == pytest.approx(1.0, abs=1e-6)
    assert stats_c["sitt/kl_rollout"] == pytest.approx(stats["sitt/kl_rollout"])
    # Terminal charge (an option): a crash's step also pays the mean penalty of the steps it
    # cut off; without the option the count is ignored.
    skipped = torch.zeros(32)
    skipped[[3, 17]] = torch.tensor([10.0, 2.5])
    terminal = make_method(policy, MethodConfig(name="sitt", kl_reward_coef=0.5,
                                                kl_reward_terminal=True))
    shaped_t, _ = terminal.shape_rewards(Rows(obs_t), reward, skipped)
    torch.testing.assert_close(shaped_t, reward - 0.5 * kl - 0.5 * kl.mean() * skipped)
    plain, _ = method.shape_rewards(Rows(obs_t), reward, skipped)
    torch.testing.assert_close(plain, shaped)


def test_kl_gradient_term_pulls_teacher_toward_proxy_only() -> None:
    policy = _policy()
    method = make_method(policy, MethodConfig(name="sitt", kl_grad_coef=0.01))
    obs = torch.randn(16, 6)
    batch = Batch(obs=Rows(obs), actions=torch.zeros(16, dtype=torch.long),
                  old_log_prob=torch.zeros(16), advantages=torch.zeros(16),
                  returns=torch.zeros(16), for_teacher=torch.ones(16, dtype=torch.bool))
    out = policy.teacher_out(obs)
    loss, stats = method.extra_policy_loss(batch, out)
    expected = 0.01 * policy.decoder.kl(out, policy.proxy_out(obs)).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is None for p in policy.proxy_encoder.parameters()), "sg(pi_P)"
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in policy.teacher_encoder.parameters())
    for name in ("noalign", "bc", "dagger"):
        assert make_method(policy, MethodConfig(name=name)).extra_policy_loss(batch, out) is None


def _snapshot(policy: TeacherStudentPolicy) -> dict[str, dict[str, torch.Tensor]]:
    parts = ("teacher_encoder", "student_encoder", "proxy_encoder", "decoder", "critic")
    return {p: copy.deepcopy(getattr(policy, p).state_dict()) for p in parts}


def _moved(before: dict, policy: TeacherStudentPolicy) -> set[str]:
    moved = set()
    for part, state in before.items():
        now = getattr(policy, part).state_dict()
        if any(not torch.equal(state[k], now[k]) for k in state):
            moved.add(part)
    return moved


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("name,expected", [
    ("sitt", {"student_encoder", "proxy_encoder"}),
    ("noalign", {"student_encoder"}),
    ("bc", {"student_encoder"}),
    ("dagger", {"student_encoder"}),
])
def test_student_update_moves_only_student_side(name, expected, discrete) -> None:
    policy = _policy(discrete)
    method = make_method(policy, MethodConfig(name=name, align_iterations=3))
    before = _snapshot(policy)
    stats = method.update_student(_buffer(), torch.Generator().manual_seed(0))
    assert stats
    assert _moved(before, policy) == expected
    # Nothing left behind that a later optimiser step could apply to the teacher side.
    for part in ("teacher_encoder", "decoder", "critic"):
        assert all(p.grad is None for p in getattr(policy, part).parameters())


def test_ppo_update_moves_teacher_decoder_critic_only() -> None:
    from sitt_training.config import PPOConfig
    from sitt_training.ppo import PPO, RolloutStorage

    policy = _policy()
    ppo = PPO(policy, PPOConfig(epochs=2, minibatches=2))
    st = RolloutStorage(4, 8, 6, (), True)
    st.obs.normal_()
    st.actions.random_(0, 4)
    st.rewards.normal_()
    st.compute_gae(torch.zeros(8), 0.99, 0.95)
    before = _snapshot(policy)
    method = make_method(policy, MethodConfig(name="sitt"))
    ppo.update(st, torch.Generator().manual_seed(0), method.extra_policy_loss)
    assert _moved(before, policy) == {"teacher_encoder", "decoder", "critic"}


def test_gae_matches_hand_computation() -> None:
    from sitt_training.ppo import RolloutStorage

    st = RolloutStorage(3, 1, 1, (), True)
    st.rewards[:, 0] = torch.tensor([1.0, 0.0, 2.0])
    st.values[:, 0] = torch.tensor([0.5, 0.2, 0.1])
    st.dones[:, 0] = torch.tensor([0.0, 1.0, 0.0])
    g, lam = 0.9, 0.8
    st.compute_gae(torch.tensor([0.3]), g, lam)
    d2 = 2.0 + g * 0.3 - 0.1
    d1 = 0.0 - 0.2  # episode ended after step 1: no bootstrap
    d0 = 1.0 + g * 0.2 - 0.5
    a2, a1 = d2, d1
    a0 = d0 + g * lam * a1
    torch.testing.assert_close(st.advantages[:, 0], torch.tensor([a0, a1, a2]))
    torch.testing.assert_close(st.returns[:, 0], torch.tensor([a0 + 0.5, a1 + 0.2, a2 + 0.1]))


def test_unique_rows_is_exact_and_weights_sum_to_one() -> None:
    x = torch.randint(0, 3, (500, 7)).float()
    unique, index = unique_rows(x)
    assert torch.equal(unique[index], x)
    assert len(unique) == len(torch.unique(x, dim=0))
    net = torch.nn.Linear(7, 2)
    rows = Rows.of(x, dedupe=True)
    torch.testing.assert_close(rows.apply(net), net(x))
    # Rows the 64-bit key cannot tell apart (a difference below float32 resolution) are
    # caught by the check and deduplicated exactly.
    close = torch.tensor([[1e8, 0.0], [1e8, 1.0], [1e8, 0.0]])
    unique, index = unique_rows(close)
    assert len(unique) == 2 and torch.equal(unique[index], close)
    small = torch.randint(0, 2, (64, 5), dtype=torch.uint8)
    unique, index = unique_rows(small)
    assert unique.dtype == torch.uint8 and torch.equal(unique[index], small)
    assert len(unique_rows(torch.zeros(0, 3))[0]) == 0
    t, s, w = paired_rows(x, x[:, :3])
    assert w.sum().item() == pytest.approx(1.0)
    # A weighted mean over distinct pairs equals the plain mean over all pairs.
    torch.testing.assert_close((net(t)[:, 0] * w).sum(), net(x)[:, 0].mean())


def test_paired_buffer_is_fifo() -> None:
    buf = PairedBuffer(5)
    buf.add(torch.arange(3.0)[:, None], torch.arange(3.0)[:, None])
    buf.add(torch.arange(3.0, 7.0)[:, None], torch.arange(3.0, 7.0)[:, None])
    assert len(buf) == 5
    assert sorted(buf.teacher[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]  # 0, 1 dropped


def test_kl_warmup_waits_for_teacher_success_then_ramps_both_terms() -> None:
    policy = _policy()
    paper = make_method(policy, MethodConfig(name="sitt", kl_reward_coef=2.0))
    paper.start_iteration(0, None)
    assert paper.kl_reward_coef() == 2.0  # the paper: constant from the start
    method = make_method(policy, MethodConfig(name="sitt", kl_reward_coef=2.0,
                                              kl_grad_coef=0.1, kl_after_success=0.5,
                                              kl_ramp=4))
    schedule = []
    for iteration, success in enumerate([None, 0.1, 0.3, 0.6, 0.2, 0.9, 0.9, 0.9, 0.9]):
        method.start_iteration(iteration, success)
        schedule.append((method.kl_reward_coef(), method.kl_grad_coef()))
    assert [r for r, _ in schedule] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert [g for _, g in schedule] == pytest.approx([0, 0, 0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    # The start survives a checkpoint.
    resumed = make_method(policy, method.cfg)
    resumed.load_state_dict(method.state_dict())
    resumed.start_iteration(5, 0.0)
    assert resumed.kl_reward_coef() == 1.5
    obs_t = torch.randn(4, 6)
    fresh = make_method(policy, method.cfg)
    fresh.start_iteration(0, None)
    shaped, _ = fresh.shape_rewards(Rows(obs_t), torch.ones(4))
    assert torch.equal(shaped, torch.ones(4))  # no penalty during the warm-up


def test_kl_warmup_over_episodes_ignores_one_lucky_episode_and_resumes() -> None:
    """kl_success_episodes: the rate is over the latest roll-outs that ended at least that
    many episodes, so one success in a roll-out where one episode ended starts nothing."""
    cfg = MethodConfig(name="sitt", kl_reward_coef=1.0, kl_after_success=0.3, kl_ramp=0,
                       kl_success_episodes=10)
    method = make_method(_policy(), cfg)
    # (rate, episodes) of each previous roll-out.
    outcomes = [(None, 0), (1.0, 1), (0.0, 3), (0.25, 8), (0.5, 10), (0.0, 2)]
    coefs = []
    for iteration, (rate, episodes) in enumerate(outcomes):
        method.start_iteration(iteration, rate, episodes)
        coefs.append(method.kl_reward_coef())
        if iteration == 3:  # resume from a checkpoint in the middle of the window
            resumed = make_method(_policy(), cfg)
            resumed.load_state_dict(copy.deepcopy(method.state_dict()))
            method = resumed
    # 1 of 1 (too few episodes); 1 of 4; then 2 of the latest 11 (0.18); then 5 of 10.
    assert coefs == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert method.penalty_start == 4
    # A checkpoint from before the window (only the start) still loads.
    old = make_method(_policy(), cfg)
    old.load_state_dict({"penalty_start": 7})
    assert old.penalty_start == 7
    # Without the window, the one lucky episode would have started the penalty.
    per_rollout = make_method(_policy(), MethodConfig(name="sitt", kl_reward_coef=1.0,
                                                      kl_after_success=0.3))
    per_rollout.start_iteration(1, 1.0, 1)
    assert per_rollout.kl_reward_coef() == 1.0


def test_dagger_hands_actions_to_the_student_as_beta_decays() -> None:
    policy = _policy()
    cfg = MethodConfig(name="dagger", dagger_envs=6, dagger_beta0=1.0, dagger_beta_decay=0.0)
    method = make_method(policy, cfg)
    teacher_actions = torch.full((10,), 3, dtype=torch.long)
    obs_s = torch.randn(10, 5)
    gen = torch.Generator().manual_seed(0)
    method.start_iteration(0, None)  # beta = 1: the teacher acts everywhere
    actions, for_teacher = method.choose_actions(teacher_actions, obs_s, gen)
    assert torch.equal(actions, teacher_actions) and for_teacher.all()
    method.start_iteration(1, None)  # beta = 0: the student acts in the first 6 envs
    with torch.no_grad():  # make the student's choice unmistakable: always action 0
        policy.decoder.linear.bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
    actions, for_teacher = method.choose_actions(teacher_actions, obs_s, gen)
    assert for_teacher.tolist() == [False] * 6 + [True] * 4  # DAgger envs: student data only
    assert actions.tolist() == [0] * 6 + [3] * 4
    # With rendering rows given (rotating blocks), the student acts in the first 6 of them.
    rows = torch.tensor([True, False] * 5) | torch.tensor([False] * 7 + [True] * 3)
    actions, for_teacher = method.choose_actions(teacher_actions, obs_s, gen, rows)
    assert actions.tolist() == [0, 3, 0, 3, 0, 3, 0, 0, 0, 3]
    assert torch.equal(for_teacher, actions == 3)


def test_running_norm_matches_batch_statistics() -> None:
    from sitt_training.networks import RunningNorm

    rng = np.random.default_rng(0)
    data = rng.normal([1.0, -5.0, 0.0], [0.01, 3.0, 1.0], size=(1000, 3)).astype(np.float32)
    norm = RunningNorm(3)
    for chunk in np.array_split(data, 7):
        norm.update(torch.from_numpy(chunk))
    torch.testing.assert_close(norm.mean, torch.from_numpy(data.mean(axis=0)), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.var, torch.from_numpy(data.var(axis=0)), atol=1e-5, rtol=1e-4)
    z = norm(torch.from_numpy(data))
    assert z.mean(dim=0).abs().max() < 1e-3 and (z.std(dim=0) - 1).abs().max() < 1e-2
    # Gradients never move the statistics; they are plain buffers of the state dict.
    assert not list(norm.parameters()) and set(norm.state_dict()) == {"mean", "var", "count"}


def test_log_std_floor_bounds_the_gaussian_kl() -> None:
    from sitt_training.networks import ActionDecoder, ActionSpec

    spec = ActionSpec(discrete=False, n=2)
    free = ActionDecoder(4, spec, init_log_std=-4.0)
    floored = ActionDecoder(4, spec, init_log_std=-4.0, min_log_std=-2.0)
    p, q = torch.zeros(1, 2), torch.full((1, 2), 0.1)
    # KL = 0.5 * sum (dmu / sigma)^2 with sigma = exp(-4) without a floor, exp(-2) with it.
    assert free.kl(p, q).item() == pytest.approx(0.5 * 2 * (0.1 / np.exp(-4.0)) ** 2, rel=1e-5)
    assert floored.kl(p, q).item() == pytest.approx(0.5 * 2 * (0.1 / np.exp(-2.0)) ** 2,
                                                    rel=1e-5)
    # Below the floor the log-std gets no gradient (nothing pushes it further down).
    floored.kl(p, q).backward()
    assert floored.log_std.grad is not None and floored.log_std.grad.abs().max() == 0.0
    std = floored.distribution(torch.zeros(1, 2)).base_dist.scale
    torch.testing.assert_close(std, torch.full((1, 2), float(np.exp(-2.0))))


def test_advantages_are_normalised_over_the_teachers_own_samples() -> None:
    from sitt_training.ppo import normalised_advantages

    adv = torch.tensor([1.0, 2.0, 3.0, 100.0, -50.0])
    for_teacher = torch.tensor([True, True, True, False, False])
    out = normalised_advantages(adv, for_teacher)
    # Hand-computed over the teacher's rows 1, 2, 3: mean 2, sample std 1.
    torch.testing.assert_close(out[:3], torch.tensor([-1.0, 0.0, 1.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[3:], torch.tensor([98.0, -52.0]), atol=1e-4, rtol=0)
    # All rows the teacher's: exactly the plain normalisation (bit for bit).
    every = torch.ones(5, dtype=torch.bool)
    assert torch.equal(normalised_advantages(adv, every), (adv - adv.mean()) / (adv.std() + 1e-8))
    # No teacher rows: left as they are, never NaN.
    assert torch.equal(normalised_advantages(adv, torch.zeros(5, dtype=torch.bool)), adv)
