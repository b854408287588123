"""TSRA's core: the three encoder losses against hand computation, and who moves what."""

import copy
import math

import pytest
import torch

from sitt_training.buffers import PairedBuffer
from sitt_training.config import MethodConfig, PPOConfig
from sitt_training.methods import make_method
from sitt_training.methods.tsra import alignment_loss, info_nce, stability_loss
from sitt_training.networks import ActionSpec, TeacherStudentPolicy
from sitt_training.ppo import PPO, RolloutStorage


def _tsra_policy(discrete: bool = True) -> TeacherStudentPolicy:
    torch.manual_seed(0)
    spec = ActionSpec(True, 4) if discrete else ActionSpec(False, 3)
    return TeacherStudentPolicy(6, 5, spec, feature_dim=8, hidden=(16,), critic_hidden=(16,),
                                decoder_hidden=(16,), unit_features=True,
                                detach_teacher_features=True)


def _parts(policy: TeacherStudentPolicy) -> dict[str, dict[str, torch.Tensor]]:
    names = ("teacher_encoder", "student_encoder", "decoder", "critic")
    return {n: copy.deepcopy(getattr(policy, n).state_dict()) for n in names}


def _moved(before: dict, policy: TeacherStudentPolicy) -> set[str]:
    return {part for part, state in before.items()
            if any(not torch.equal(v, getattr(policy, part).state_dict()[k])
                   for k, v in state.items())}


def test_info_nce_matches_hand_computation() -> None:
    # Two pairs on the unit circle; tau = 0.5; anchor weights 0.25 / 0.75.
    s = 1 / math.sqrt(2)
    z_t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_s = torch.tensor([[s, s], [0.0, 1.0]])
    w = torch.tensor([0.25, 0.75])
    # anchor 0: positive z_t0.z_s0 = s, negative z_t0.z_s1 = 0
    l0 = -math.log(math.exp(s / 0.5) / (math.exp(s / 0.5) + math.exp(0.0)))
    # anchor 1: positive z_t1.z_s1 = 1, negative z_t1.z_s0 = s
    l1 = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + math.exp(s / 0.5)))
    loss = info_nce(z_t, z_s, torch.tensor(math.log(0.5)), w)
    assert loss.item() == pytest.approx(0.25 * l0 + 0.75 * l1, rel=1e-6)


def test_info_nce_temperature_is_learnable_and_the_positive_is_pulled_closer() -> None:
    torch.manual_seed(1)
    z_t = torch.nn.functional.normalize(torch.randn(8, 4), dim=-1)
    raw_s = torch.randn(8, 4, requires_grad=True)
    log_tau = torch.tensor(math.log(0.1), requires_grad=True)
    loss = info_nce(z_t, torch.nn.functional.normalize(raw_s, dim=-1), log_tau,
                    torch.full((8,), 1 / 8))
    loss.backward()
    assert log_tau.grad is not None and log_tau.grad.abs() > 0
    with torch.no_grad():  # one gradient step raises every pair's similarity on average
        before = (z_t * torch.nn.functional.normalize(raw_s, dim=-1)).sum(-1).mean()
        after = (z_t * torch.nn.functional.normalize(raw_s - 0.1 * raw_s.grad, dim=-1)
                 ).sum(-1).mean()
    assert after > before


def test_alignment_and_stability_losses_match_hand_computation() -> None:
    s = 1 / math.sqrt(2)
    z_t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_s = torch.tensor([[s, s], [0.0, 1.0]])
    w = torch.tensor([0.5, 0.5])
    assert alignment_loss(z_t, z_s, w).item() == pytest.approx(0.5 * (1 - s))
    new = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    old = torch.tensor([[0.0, 0.0], [3.0, 1.0]])
    # row 0: (1 + 4) / 2 = 2.5; row 1: (9 + 1) / 2 = 5
    assert stability_loss(new, old, w).item() == pytest.approx(0.5 * 2.5 + 0.5 * 5.0)


def test_embeddings_are_unit_norm_and_the_student_acts_through_the_same_decoder() -> None:
    policy = _tsra_policy()
    obs_t, obs_s = torch.randn(10, 6), torch.randn(10, 5)
    z_t, z_s = policy.teacher_features(obs_t), policy.student_encoder(obs_s)
    torch.testing.assert_close(z_t.norm(dim=-1), torch.ones(10))
    torch.testing.assert_close(z_s.norm(dim=-1), torch.ones(10))
    torch.testing.assert_close(policy.student_out(obs_s), policy.decoder(z_s))


def test_policy_gradients_never_reach_the_encoders() -> None:
    policy = _tsra_policy()
    ppo = PPO(policy, PPOConfig(epochs=2, minibatches=2))
    assert not {id(p) for p in policy.teacher_encoder.parameters()} & {id(p) for p in ppo.params}
    st = RolloutStorage(4, 8, 6, (), True)
    st.obs.normal_()
    st.actions.random_(0, 4)
    st.rewards.normal_()
    st.compute_gae(torch.zeros(8), 0.99, 0.95)
    before = _parts(policy)
    ppo.update(st, torch.Generator().manual_seed(0))
    assert _moved(before, policy) == {"decoder", "critic"}
    assert all(p.grad is None for p in policy.teacher_encoder.parameters())


@pytest.mark.parametrize("discrete", [True, False])
def test_encoder_phase_moves_the_encoders_only(discrete: bool) -> None:
    policy = _tsra_policy(discrete)
    method = make_method(policy, MethodConfig(name="tsra", align_iterations=3,
                                              align_batch_size=32))
    buffer = PairedBuffer(128)
    buffer.add(torch.randn(64, 6), torch.randn(64, 5))
    before = _parts(policy)
    stats = method.update_student(buffer, torch.Generator().manual_seed(0))
    assert _moved(before, policy) == {"teacher_encoder", "student_encoder"}
    assert all(p.grad is None for p in (*policy.decoder.parameters(),
                                        *policy.critic.parameters()))
    assert stats["tsra/temperature"] != pytest.approx(0.1, abs=1e-9)  # tau learns
    assert set(stats) >= {"tsra/cl", "tsra/align", "tsra/stab", "tsra/loss"}


def test_encoder_phase_aligns_paired_embeddings() -> None:
    # Student sees a fixed linear view of the teacher's observation: the shared content.
    torch.manual_seed(3)
    policy = _tsra_policy()
    view = torch.randn(6, 5)
    obs_t = torch.randn(256, 6)
    buffer = PairedBuffer(256)
    buffer.add(obs_t, obs_t @ view)
    method = make_method(policy, MethodConfig(name="tsra", align_iterations=200,
                                              align_batch_size=64, align_lr=3e-3))

    def paired_similarity() -> float:
        with torch.no_grad():
            z_t = policy.teacher_features(obs_t)
            z_s = policy.student_encoder(obs_t @ view)
            return (z_t * z_s).sum(-1).mean().item()

    start = paired_similarity()
    method.update_student(buffer, torch.Generator().manual_seed(0))
    assert paired_similarity() > max(0.9, start + 0.3)


def test_stability_term_keeps_the_policy_outputs() -> None:
    # With a large stability weight the decoder's outputs on the teacher's embeddings move
    # far less than without it.
    changes = {}
    for coef in (0.0, 100.0):
        policy = _tsra_policy()
        with torch.no_grad():  # a decoder that reacts to the embedding
            for p in policy.decoder.parameters():
                p.normal_()
        obs_t = torch.randn(128, 6)
        buffer = PairedBuffer(128)
        buffer.add(obs_t, torch.randn(128, 5))
        before = policy.teacher_out(obs_t).detach()
        method = make_method(policy, MethodConfig(name="tsra", align_iterations=50,
                                                  align_batch_size=64, align_lr=3e-3,
                                                  tsra_stability_coef=coef))
        method.update_student(buffer, torch.Generator().manual_seed(0))
        changes[coef] = (policy.teacher_out(obs_t).detach() - before).pow(2).mean().item()
    assert changes[100.0] < 0.2 * changes[0.0]
