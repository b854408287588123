"""TSRA: teacher-student representational alignment (METHODS.md section 2).

No reward change. E_T and E_S map their observations onto one unit-norm embedding space
(``network_options``); the policy D reads the teacher's embedding *detached*, so PPO moves
D and V only and can never smuggle privileged information into the embedding. After each
PPO update, the encoders alone minimise, on paired roll-out samples,

    L_CL + a * L_align + s * L_stab

* L_CL, InfoNCE with a learnable temperature tau: for each teacher embedding the student
  embedding of the same time step is the only positive, every other student embedding in
  the batch a negative;
* L_align = 1 - z_T . z_S of the pairs (the policy will read z_S in place of z_T);
* L_stab: squared change of D's outputs on the new embeddings against those before the
  phase, teacher and student; D's weights are detached, so only the encoders move.

The student acts with the same D on its own embedding: no separate student training.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..buffers import PairedBuffer
from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy
from .base import Method, paired_batches

MIN_TEMPERATURE = 0.01  # keeps the InfoNCE logits finite if tau is driven down


def info_nce(z_t: torch.Tensor, z_s: torch.Tensor, log_temperature: torch.Tensor,
             weights: torch.Tensor) -> torch.Tensor:
    """InfoNCE with teacher anchors: row i's positive is z_s[i], the other rows of z_s are
    its negatives. ``weights`` (summing to one) weigh the anchors."""
    temperature = log_temperature.exp().clamp(min=MIN_TEMPERATURE)
    logits = z_t @ z_s.T / temperature
    per_anchor = F.cross_entropy(logits, torch.arange(len(z_t)), reduction="none")
    return (per_anchor * weights).sum()


def alignment_loss(z_t: torch.Tensor, z_s: torch.Tensor, weights: torch.Tensor
                   ) -> torch.Tensor:
    """1 - cosine similarity of the pairs (the embeddings are unit-norm)."""
    return ((1.0 - (z_t * z_s).sum(dim=-1)) * weights).sum()


def stability_loss(new: torch.Tensor, old: torch.Tensor, weights: torch.Tensor
                   ) -> torch.Tensor:
    """Mean squared change of the policy's outputs (logits, or the action mean)."""
    return ((new - old).pow(2).mean(dim=-1) * weights).sum()


class TSRA(Method):
    name = "tsra"
    # How the shared networks are built for this method (trainer.build_policy).
    network_options = {"unit_features": True, "detach_teacher_features": True}

    def __init__(self, policy: TeacherStudentPolicy, cfg: MethodConfig,
                 ppo: PPOConfig | None = None) -> None:
        super().__init__(policy, cfg, ppo)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(cfg.tsra_init_temperature)))
        self.encoder_optimizer = torch.optim.Adam(
            [*policy.teacher_encoder.parameters(), *policy.student_encoder.parameters(),
             self.log_temperature], lr=cfg.align_lr)

    def update_student(self, buffer: PairedBuffer, generator: torch.Generator
                       ) -> dict[str, float]:
        """The encoder phase, on ``align_iterations`` batches of distinct pairs."""
        p, cfg = self.policy, self.cfg
        if len(buffer) == 0 or cfg.align_iterations == 0:
            return {}
        # The encoders as they were before the phase, for the stability targets.
        before_t = copy.deepcopy(p.teacher_encoder).requires_grad_(False)
        before_s = copy.deepcopy(p.student_encoder).requires_grad_(False)
        totals = dict.fromkeys(("cl", "align", "stab", "loss"), 0.0)
        for obs_t, obs_s, w in paired_batches(buffer, cfg, generator):
            z_t = p.teacher_features(obs_t)
            z_s = p.student_encoder(obs_s)
            with torch.no_grad():
                old_t = p.decoder(before_t(p.teacher_norm(obs_t)))
                old_s = p.decoder(before_s(obs_s))
            l_cl = info_nce(z_t, z_s, self.log_temperature, w)
            l_align = alignment_loss(z_t, z_s, w)
            l_stab = (stability_loss(p.decoder.frozen(z_t), old_t, w)
                      + stability_loss(p.decoder.frozen(z_s), old_s, w))
            loss = l_cl + cfg.tsra_align_coef * l_align + cfg.tsra_stability_coef * l_stab
            self.encoder_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.encoder_optimizer.step()
            for key, value in (("cl", l_cl), ("align", l_align), ("stab", l_stab),
                               ("loss", loss)):
                totals[key] += value.item()
        n = cfg.align_iterations
        stats = {f"tsra/{key}": value / n for key, value in totals.items()}
        stats["tsra/temperature"] = self.log_temperature.exp().item()
        return stats

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"encoders": self.encoder_optimizer}

    def state_dict(self) -> dict[str, float | int | None]:
        return {"log_temperature": self.log_temperature.item()}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        with torch.no_grad():
            self.log_temperature.fill_(float(state["log_temperature"]))
