"""``noalign`` (SITT "w/o alignment"): shared decoder and paired L1 feature alignment of
the student, but the student has no influence on the teacher (no KL in reward or update).

The alignment phase lives here because SITT reuses it unchanged."""

from __future__ import annotations

import torch

from ..buffers import PairedBuffer
from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy
from .base import Method, l1, paired_batches


def alignment_loss(policy: TeacherStudentPolicy, z: torch.Tensor, obs_t: torch.Tensor,
                   weights: torch.Tensor) -> torch.Tensor:
    """L1(z, sg E_T(o_T)) + L1(D(z), sg D(E_T(o_T))): features ``z`` pulled toward the
    teacher's, in feature and action space. The decoder is applied with detached weights
    and the teacher is only read, so gradients reach ``z``'s encoder only."""
    with torch.no_grad():
        z_t = policy.teacher_features(obs_t)
        out_t = policy.decoder(z_t)
    return l1(z, z_t, weights) + l1(policy.decoder.frozen(z), out_t, weights)


class NoAlign(Method):
    name = "noalign"
    train_proxy = False  # only SITT needs the proxy student

    def __init__(self, policy: TeacherStudentPolicy, cfg: MethodConfig,
                 ppo: PPOConfig | None = None) -> None:
        super().__init__(policy, cfg, ppo)
        self.proxy_optimizer = torch.optim.Adam(policy.proxy_encoder.parameters(),
                                                lr=cfg.align_lr)

    def update_student(self, buffer: PairedBuffer, generator: torch.Generator
                       ) -> dict[str, float]:
        """Alignment phase (METHODS.md section 1):

        student: L1(E_S(o_S), sg E_T(o_T)) + L1(D(E_S(o_S)), sg D(E_T(o_T))), into E_S only;
        proxy:   L1(E_P(o_T), sg E_S(o_S)) + L1(D(E_P(o_T)), sg D(E_S(o_S))), into E_P only.
        The decoder is applied with detached weights and the teacher is only read."""
        p = self.policy
        stats = {"align/student_loss": 0.0, "align/proxy_loss": 0.0}
        if len(buffer) == 0 or self.cfg.align_iterations == 0:
            return {}
        for obs_t, obs_s, w in paired_batches(buffer, self.cfg, generator):
            z_s = p.student_encoder(obs_s)
            student_loss = alignment_loss(p, z_s, obs_t, w)
            self.student_optimizer.zero_grad(set_to_none=True)
            student_loss.backward()
            self.student_optimizer.step()
            stats["align/student_loss"] += student_loss.item()
            if self.train_proxy:
                z_s = z_s.detach()
                z_p = p.proxy_features(obs_t)
                proxy_loss = l1(z_p, z_s, w) + l1(p.decoder.frozen(z_p), p.decoder.frozen(z_s), w)
                self.proxy_optimizer.zero_grad(set_to_none=True)
                proxy_loss.backward()
                self.proxy_optimizer.step()
                stats["align/proxy_loss"] += proxy_loss.item()
        n = self.cfg.align_iterations
        return {key: value / n for key, value in stats.items()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.student_optimizer, "proxy": self.proxy_optimizer}
