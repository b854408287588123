"""``dwbc``: discriminator-weighted behaviour cloning (Xu et al. 2022), offline on the paired
buffer (METHODS.md section 4). The teacher trains with PPO alone, as in BC; the student never
acts.

DWBC learns from a small expert set D_E and a larger unlabelled set D_O (expert and
sub-optimal actions mixed), with a discriminator d(s, a, log pi(a|s)) that tells expert
samples from the rest. Our mapping, on each batch of paired observations (o_T, o_S):

* D_E: (o_S, a_T) with a_T ~ pi_T(.|o_T), the current teacher's label (as in BC);
* D_O: (o_S, a_S) with a_S ~ pi_S(.|o_S), the student's own action on the same observation.

D_O is "unlabelled" in the paper's sense: where the student's observation suffices to tell
what the teacher does, its own actions are already teacher-like (positives hidden in D_O);
where it does not (the imitation gap), they differ. ``dwbc_eta`` is the assumed share of
teacher-like samples in D_O (the paper's class prior eta). Both sets hold the same
observations, so the discriminator has to judge the action given o_S, not the state.

Losses per batch (pair weights w from ``paired_batches``; d's output clipped to [c, 1 - c]):

* discriminator (positive-unlabelled, the paper's):
      L_d = eta E_E[-log d] + E_O[-log(1 - d)] - eta E_E[-log(1 - d)]
* student (the paper's policy objective, d detached):
      L_pi = alpha E_E[-log pi_S(a_T|o_S)] - E_E[-log pi_S(a_T|o_S) * eta / (d (1 - d))]
             + E_O[-log pi_S(a_S|o_S) / (1 - d)]
  alpha >= eta / (c (1 - c)) keeps every teacher label's weight non-negative (config check).

d reads o_S through the student's features sg E_S(o_S) (a function of o_S that exists for
every observation type, camera images included, at a fixed width), one-hot discrete actions
(continuous ones as they are) and log pi_S(a|o_S), detached: the discriminator never moves
the student, the student's loss never moves the discriminator. pi_S = D o E_S reads D with its
weights detached, so the student's gradients reach E_S only.

The discriminator is owned by this method: its weights travel in the method's state and its
optimiser with the others, so a resumed run continues exactly.

What to expect: d sees only what the student sees. The PU loss's optimum is
d = eta * p_T(a|o_S) / pi_S(a|o_S), with p_T(a|o_S) the teacher's label distribution given o_S
(averaged over the o_T behind it); a student that fits BC's loss converges to exactly that
distribution, so then teacher labels and the student's own actions look alike, d -> eta, the
weights become constants and DWBC reduces to BC (the own-action term's expected gradient is
zero). It differs from BC while the student underfits. On TunnelVision (seed 0, 100
iterations) d stayed at 0.50 +- 0.02 throughout.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..buffers import PairedBuffer
from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy, mlp
from .base import Method, paired_batches


def discriminator_loss(d_teacher: torch.Tensor, d_student: torch.Tensor,
                       weights: torch.Tensor, eta: float) -> torch.Tensor:
    """DWBC's positive-unlabelled discriminator loss; ``d_*`` per pair, weights sum to 1."""
    per_pair = (eta * -torch.log(d_teacher) - torch.log(1.0 - d_student)
                - eta * -torch.log(1.0 - d_teacher))
    return (per_pair * weights).sum()


def policy_loss(nll_teacher: torch.Tensor, nll_student: torch.Tensor, d_teacher: torch.Tensor,
                d_student: torch.Tensor, weights: torch.Tensor, alpha: float, eta: float
                ) -> torch.Tensor:
    """DWBC's weighted BC: ``nll_*`` = -log pi_S of the teacher's label and of the student's
    own action; the discriminator's outputs are constants here."""
    d_teacher, d_student = d_teacher.detach(), d_student.detach()
    teacher_weight = alpha - eta / (d_teacher * (1.0 - d_teacher))
    per_pair = teacher_weight * nll_teacher + nll_student / (1.0 - d_student)
    return (per_pair * weights).sum()


class Discriminator(nn.Module):
    """d(z_S, a, log pi_S(a|o_S)) in [clip, 1 - clip]: an ELU MLP and a sigmoid."""

    def __init__(self, feature_dim: int, action_n: int, discrete: bool,
                 hidden: list[int], clip: float) -> None:
        super().__init__()
        self.action_n, self.discrete, self.clip = action_n, discrete, clip
        self.net = mlp(feature_dim + action_n + 1, hidden, 1)

    def forward(self, features: torch.Tensor, actions: torch.Tensor, log_prob: torch.Tensor
                ) -> torch.Tensor:
        a = F.one_hot(actions, self.action_n).float() if self.discrete else actions
        x = torch.cat([features, a, log_prob.unsqueeze(-1)], dim=-1)
        d = torch.sigmoid(self.net(x).squeeze(-1))
        return d.clamp(self.clip, 1.0 - self.clip)


class DWBC(Method):
    name = "dwbc"

    def __init__(self, policy: TeacherStudentPolicy, cfg: MethodConfig,
                 ppo: PPOConfig | None = None) -> None:
        super().__init__(policy, cfg, ppo)
        spec = policy.decoder.spec
        self.discriminator = Discriminator(policy.feature_dim, spec.n, spec.discrete,
                                           cfg.dwbc_hidden, cfg.dwbc_d_clip)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(),
                                                        lr=cfg.align_lr)

    def update_student(self, buffer: PairedBuffer, generator: torch.Generator
                       ) -> dict[str, float]:
        """One discriminator step, then one student step, per batch of paired observations."""
        if len(buffer) == 0 or self.cfg.align_iterations == 0:
            return {}
        p, cfg = self.policy, self.cfg
        keys = ("d_loss", "policy_loss", "d_teacher", "d_student", "teacher_nll")
        sums = dict.fromkeys(keys, 0.0)
        for obs_t, obs_s, w in paired_batches(buffer, cfg, generator):
            z = p.student_encoder(obs_s)
            out_s = p.decoder.frozen(z)
            with torch.no_grad():
                teacher_actions = p.decoder.sample(p.teacher_out(obs_t))
                student_actions = p.decoder.sample(out_s)
            log_p_teacher = p.decoder.log_prob(out_s, teacher_actions, frozen=True)
            log_p_student = p.decoder.log_prob(out_s, student_actions, frozen=True)
            d_teacher = self.discriminator(z.detach(), teacher_actions, log_p_teacher.detach())
            d_student = self.discriminator(z.detach(), student_actions, log_p_student.detach())

            d_loss = discriminator_loss(d_teacher, d_student, w, cfg.dwbc_eta)
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.discriminator_optimizer.step()

            pi_loss = policy_loss(-log_p_teacher, -log_p_student, d_teacher, d_student, w,
                                  cfg.dwbc_alpha, cfg.dwbc_eta)
            self.student_optimizer.zero_grad(set_to_none=True)
            pi_loss.backward()
            self.student_optimizer.step()
            for key, value in (("d_loss", d_loss), ("policy_loss", pi_loss),
                               ("d_teacher", (d_teacher * w).sum()),
                               ("d_student", (d_student * w).sum()),
                               ("teacher_nll", (-log_p_teacher * w).sum())):
                sums[key] += value.item()
        n = cfg.align_iterations
        return {f"dwbc/{key}": value / n for key, value in sums.items()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.student_optimizer,
                "discriminator": self.discriminator_optimizer}

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
