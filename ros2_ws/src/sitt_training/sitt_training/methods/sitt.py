"""SITT: the teacher is penalised for behaviour the student cannot imitate (METHODS.md 1).

Two terms on top of PPO, both with the proxy student pi_P = D o E_P standing in for the
student (it needs only teacher observations, so no rendering in the roll-out):

* roll-out: the teacher's reward becomes r_t - lambda_r * KL(pi_T(.|s_t) || pi_P(.|s_t))
  (with ``kl_reward_centered``, not in the paper: minus the roll-out's mean KL inside;
  with ``kl_reward_terminal``, also not in the paper: a termination also pays the mean
  penalty of the steps it cut off);
* update:   lambda_g * KL(pi_T || sg(pi_P)) is added to the PPO loss.

The alignment phase (student and proxy) is the one of ``noalign``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy
from ..ppo import Batch
from ..rows import Rows
from ..schedules import SuccessRamp
from .noalign import NoAlign


class SITT(NoAlign):
    name = "sitt"
    train_proxy = True

    def __init__(self, policy: TeacherStudentPolicy, cfg: MethodConfig,
                 ppo: PPOConfig | None = None) -> None:
        super().__init__(policy, cfg, ppo)
        # The optional warm-up of the KL terms (its start: the iteration they started).
        self.ramp = SuccessRamp(cfg.kl_after_success, cfg.kl_ramp, cfg.kl_success_episodes)

    @property
    def penalty_start(self) -> int | None:
        return self.ramp.start

    def start_iteration(self, iteration: int, teacher_success: float | None,
                        episodes: int = 0) -> None:
        super().start_iteration(iteration, teacher_success, episodes)
        self.ramp.observe(iteration, teacher_success, episodes)

    def warmup(self) -> float:
        """Factor on both KL terms: 1 (paper), or 0 during the optional warm-up, then a ramp."""
        return self.ramp.factor(self.iteration)

    def kl_reward_coef(self) -> float:
        """lambda_r now."""
        return self.cfg.kl_reward_coef * self.warmup()

    def kl_grad_coef(self) -> float:
        """lambda_g now."""
        return self.cfg.kl_grad_coef * self.warmup()

    def state_dict(self) -> dict[str, Any]:
        return {"penalty_start": self.penalty_start, "ramp": self.ramp.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Checkpoints before kl_success_episodes hold only the start.
        self.ramp.load_state_dict(state.get("ramp", {"start": state["penalty_start"]}))

    def shape_rewards(self, obs_t: Rows, rewards: torch.Tensor,
                      skipped: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """KL reward penalty: states where the student cannot follow become unattractive."""
        p = self.policy
        with torch.no_grad():
            kl = obs_t.gather(p.decoder.kl(p.teacher_out(obs_t.unique),
                                           p.proxy_out(obs_t.unique)))
        coef = self.kl_reward_coef()
        # Centred (an option, not the paper): only KL above the roll-out's mean costs, so
        # ending an episode early no longer escapes a penalty that every step pays.
        penalty = coef * (kl - kl.mean() if self.cfg.kl_reward_centered else kl)
        if self.cfg.kl_reward_terminal and skipped is not None:
            # A crash also pays the mean penalty of the steps it skipped (an option).
            penalty = penalty + coef * kl.mean() * skipped
        return rewards - penalty, {"sitt/kl_rollout": kl.mean().item(),
                                   "sitt/kl_penalty": penalty.mean().item(),
                                   "sitt/kl_reward_coef": coef}

    def extra_policy_loss(self, batch: Batch, teacher_out: torch.Tensor
                          ) -> tuple[torch.Tensor, dict[str, float]]:
        """KL gradient term: pulls the teacher toward the (frozen) proxy student."""
        with torch.no_grad():
            proxy_out = self.policy.proxy_out(batch.obs.unique)
        kl = batch.obs.gather(self.policy.decoder.kl(teacher_out, proxy_out)).mean()
        return self.kl_grad_coef() * kl, {"sitt/kl_update": kl.item()}
