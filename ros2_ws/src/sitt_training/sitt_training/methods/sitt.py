"""SITT: the teacher is penalised for behaviour the student cannot imitate (METHODS.md 1).

Two terms on top of PPO, both with the proxy student pi_P = D o E_P standing in for the
student (it needs only teacher observations, so no rendering in the roll-out):

* roll-out: the teacher's reward becomes r_t - lambda_r * KL(pi_T(.|s_t) || pi_P(.|s_t));
* update:   lambda_g * KL(pi_T || sg(pi_P)) is added to the PPO loss.

The alignment phase (student and proxy) is the one of ``noalign``.
"""

from __future__ import annotations

import torch

from ..ppo import Batch
from .noalign import NoAlign


class SITT(NoAlign):
    name = "sitt"
    train_proxy = True

    def kl_reward_coef(self) -> float:
        """lambda_r at this iteration: constant (paper) unless a warm-up is configured."""
        cfg = self.cfg
        if self.iteration < cfg.kl_reward_start:
            return 0.0
        if cfg.kl_reward_ramp == 0:
            return cfg.kl_reward_coef
        done = (self.iteration - cfg.kl_reward_start + 1) / cfg.kl_reward_ramp
        return cfg.kl_reward_coef * min(1.0, done)

    def shape_reward(self, obs_t: torch.Tensor, teacher_out: torch.Tensor,
                     reward: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """KL reward penalty: states where the student cannot follow become unattractive."""
        with torch.no_grad():
            kl = self.policy.decoder.kl(teacher_out, self.policy.proxy_out(obs_t))
        coef = self.kl_reward_coef()
        penalty = coef * kl
        return reward - penalty, {"sitt/kl_rollout": kl.mean().item(),
                                  "sitt/kl_penalty": penalty.mean().item(),
                                  "sitt/kl_reward_coef": coef}

    def extra_policy_loss(self, batch: Batch, teacher_out: torch.Tensor
                          ) -> tuple[torch.Tensor, dict[str, float]]:
        """KL gradient term: pulls the teacher toward the (frozen) proxy student."""
        with torch.no_grad():
            proxy_out = batch.obs.apply(self.policy.proxy_out)
        kl = self.policy.decoder.kl(teacher_out, proxy_out).mean()
        return self.cfg.kl_grad_coef * kl, {"sitt/kl_update": kl.item()}
