"""COSIL baseline (METHODS.md section 4): SAC for the student with the entropy term
replaced by a divergence to the teacher, weighted by an auto-tuned coefficient.

Two SAC learners in one loop (``offpolicy_trainer.COSILTrainer``):

* the **teacher**, plain SAC on true states ``s`` (as in L2T), acting in the
  environments that are not the student's;
* the **student**, acting with its own sampled actions on its own observation ``o`` (the
  task's student group: the L2T-noisy state at the full ``alpha``) in the first
  ``method.cosil_student_envs`` environments, and learning from those transitions only.
  For a batch ``(s, o, a, r, s', o', d)`` of its replay buffer:

      D(s, o)  = KL(pi_S(.|o) || pi_T(.|s))
      y        = r + gamma (1 - d) (min_j Qbar_S,j(s', a') - beta * D(s', o')),  a' ~ pi_S(.|o')
      L_Q      = 1/2 sum_j mean_b (Q_S,j(s, a) - y)^2
      L_pi     = mean_b (beta * D(s, o) - min_j Q_S,j(s, a~)),  a~ ~ pi_S(.|o) reparameterised
      L_beta   = -mean_b log(beta) * (D(s, o) - D_target)

  i.e. SAC's losses with ``alpha * log pi`` replaced by ``beta * D`` everywhere: the soft
  value of the critic's target is the same divergence-regularised objective the actor
  maximises, ``E[sum_t gamma^t (r_t - beta D_t)]``. ``L_beta`` is the dual of the
  constraint ``E[D] <= D_target`` (SAC's temperature loss with the entropy target
  replaced): beta rises while the student is further from the teacher than the target and
  falls while it is closer, so the imitation weight adapts to how imitable the teacher is.

Choices, and why:

* **Asymmetric critic** ``Q_S(s, a)`` on the true state (the critic is used in training
  only, so privileged inputs are allowed; Pinto et al. 2018). On these tasks it is also
  exact: the student's observation is a memoryless function of the current state plus
  fresh noise, so the student's policy is a Markov policy in ``s``,
  ``pi(a|s) = E_o pi_S(a|o)``, and ``Q_S(s, a)`` is its Q-function (the bias of
  state-based critics under partial observability needs observations that carry
  memory). A critic on ``o`` would learn from noisier inputs for no gain. The teacher's
  critic is not used for the student: it scores the teacher's policy, not the student's.
* **Divergence** ``KL(pi_S || pi_T)`` of the tanh-squashed Gaussians. ``tanh`` is a
  bijection, and KL is invariant under a shared bijection: the Jacobian terms of the two
  log-densities are the same at the same pre-tanh value ``u`` and cancel. So the
  squashed KL *equals* the KL of the pre-tanh Gaussians, which has a closed form.
  ``method.cosil_divergence``: ``analytic`` (the default) uses that closed form (exact,
  no sampling variance); ``sample`` uses the one-sample estimate
  ``log pi_S(a|o) - log pi_T(a|s)``, ``a = tanh(u)`` the student's reparameterised draw
  (its expectation is the same KL; the teacher's density is evaluated at the student's
  ``u``, so no ``atanh`` of a saturated action is needed). Reverse KL (the student's
  distribution first) is what replaces ``log pi_S``: it is ``-H(pi_S)`` plus the
  cross-entropy to the teacher, so the student keeps the teacher's spread of actions as
  its exploration instead of an entropy target of its own.
* **Target** ``D_target = method.cosil_target_divergence * |A|`` nats (0.5 per action
  dimension by default): the KL between two Gaussians of equal width whose means are
  ``delta`` standard deviations apart is ``delta^2 / 2`` per dimension, so 0.5 lets the
  student's mean sit about one teacher standard deviation from the teacher's, inside the
  teacher's own exploration noise, and makes it pay for more. Scaled by ``|A|`` like
  SAC's entropy target ``-|A|``. A target the noisy student cannot reach drives beta up
  until the student is a KL imitator; one it beats lets beta fall towards plain
  (entropy-free) RL.
* **Cap** ``beta <= method.cosil_max_beta`` (1.0 by default; the dual step is projected):
  on pendulum the mean KL outgrew the target late in training whatever beta did, because
  it is dominated by states where the teacher saturates. There the teacher's pre-tanh
  mean drifts to 3 and beyond (the action barely changes), and a student that cannot
  place the switching states exactly from noisy observations pays many nats there: in a
  pendulum run (12k steps) the median KL was 0.26 nats but the mean 4.8, the 20% of
  states with a saturated teacher (|pre-tanh mean| > 2) averaging 14. Uncapped, beta
  grew to ~1600, the student's soft values to -24,000 and its critic loss to 7e8. With
  beta at most 1, a nat costs about as much as a unit of reward per step; caps of 1, 3
  and 10 gave the same student returns there (within the 8-episode validation's noise)
  with critic losses 190, 1.6k and 20k.
* The teacher's networks give the divergence its ``pi_T`` without gradient: student
  losses never move the teacher, and the teacher's SAC update never reads the student.

The student's networks are ``SACNetworks`` with ``log_alpha`` as ``log(beta)``; both
learners use ``sac.SAC``'s update (the student's through the hooks of ``COSILStudent``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..buffers import Transitions
from ..config import Config, MethodConfig, SACConfig
from ..sac import (
    SAC,
    ActionScaler,
    PolicySample,
    SACNetworks,
    SquashedGaussianActor,
    gaussian_kl,
    squashed_log_prob,
)
from .l2t import PassThroughDecoder, box_action_space

DIVERGENCES = ("analytic", "sample")


class COSILPolicy(nn.Module):
    """Teacher and student SAC networks in one module (one state dict per checkpoint).

    ``teacher_out``/``student_out`` give deterministic actions (``tanh`` of the mean) in
    the task's bounds, the interface ``evaluation.evaluate`` uses for every method."""

    def __init__(self, state_dim: int, student_obs_dim: int, action_dim: int,
                 low: np.ndarray, high: np.ndarray, actor_hidden: Sequence[int],
                 critic_hidden: Sequence[int], init_temperature: float = 1.0,
                 init_beta: float = 1.0) -> None:
        super().__init__()
        self.teacher = SACNetworks(state_dim, action_dim, actor_hidden, critic_hidden,
                                   init_temperature)
        # The student's actor reads o, its critics the true state s (asymmetric).
        self.student = SACNetworks(student_obs_dim, action_dim, actor_hidden, critic_hidden,
                                   init_beta, critic_obs_dim=state_dim)
        self.scaler = ActionScaler(low, high)
        self.decoder = PassThroughDecoder()

    def teacher_out(self, obs_t: torch.Tensor) -> torch.Tensor:
        return self.scaler.to_env(self.teacher.actor.deterministic(obs_t))

    def student_out(self, obs_s: torch.Tensor) -> torch.Tensor:
        return self.scaler.to_env(self.student.actor.deterministic(obs_s))


def build_cosil_policy(cfg: Config, env: Any) -> COSILPolicy:
    """The networks for a task, from the config (training, evaluation and ``load_run``)."""
    spaces = env.single_observation_space
    action_space = box_action_space(env, "cosil")
    return COSILPolicy(int(np.prod(spaces["teacher"].shape)),
                       int(np.prod(spaces["student"].shape)), int(action_space.shape[0]),
                       action_space.low, action_space.high, cfg.sac.actor_hidden,
                       cfg.sac.critic_hidden, cfg.sac.init_temperature,
                       cfg.method.cosil_init_beta)


class DivergenceToTeacher:
    """The penalty ``D = KL(pi_S(.|o) || pi_T(.|s))`` of a student draw from ``pi_S(.|o)``
    (``analytic``: closed form; ``sample``: ``log pi_S(a|o) - log pi_T(a|s)`` at the draw).
    The teacher's distribution is computed without gradient; the student's keeps it."""

    def __init__(self, teacher: SquashedGaussianActor, estimator: str = "analytic") -> None:
        if estimator not in DIVERGENCES:
            raise ValueError(f"divergence estimator must be one of {DIVERGENCES}, "
                             f"got {estimator!r}")
        self.teacher = teacher
        self.estimator = estimator

    def __call__(self, state: torch.Tensor, drawn: PolicySample) -> torch.Tensor:
        with torch.no_grad():
            mean_t, log_std_t = self.teacher(state)
        if self.estimator == "analytic":
            return gaussian_kl(drawn.mean, drawn.log_std, mean_t, log_std_t)
        return drawn.log_prob - squashed_log_prob(drawn.pre_tanh, mean_t, log_std_t)


class COSILStudent(SAC):
    """SAC's update for the student: penalty ``D`` with weight beta (``log_alpha`` of its
    networks) kept near ``D_target``; the actor reads the stored student observations."""

    prefix = "cosil"
    coefficient_name = "beta"

    def __init__(self, nets: SACNetworks, sac_cfg: SACConfig, teacher: SquashedGaussianActor,
                 cfg: MethodConfig) -> None:
        super().__init__(nets, sac_cfg)
        self.divergence = DivergenceToTeacher(teacher, cfg.cosil_divergence)
        self.target_divergence = cfg.cosil_target_divergence * nets.action_dim
        self.max_log_beta = math.log(cfg.cosil_max_beta)

    def penalty(self, state: torch.Tensor, drawn: PolicySample) -> torch.Tensor:
        return self.divergence(state, drawn)

    @property
    def penalty_bound(self) -> float:
        return self.target_divergence

    def actor_obs(self, batch: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.student_obs is None or batch.next_student_obs is None:
            raise ValueError("the COSIL student needs the stored student observations")
        return batch.student_obs, batch.next_student_obs

    @torch.no_grad()
    def project_coefficient(self) -> None:
        """``beta <= cosil_max_beta``: the projected dual step."""
        self.nets.log_alpha.clamp_(max=self.max_log_beta)

    def penalty_stats(self, penalty: torch.Tensor) -> dict[str, float]:
        return {"cosil/divergence": penalty.mean().item()}


class COSIL:
    """One gradient step of each learner: the teacher's SAC update on a batch of its own
    transitions, then the student's COSIL update on a batch of the student's."""

    def __init__(self, policy: COSILPolicy, sac_cfg: SACConfig, cfg: MethodConfig) -> None:
        self.policy = policy
        self.teacher = SAC(policy.teacher, sac_cfg)
        self.student = COSILStudent(policy.student, sac_cfg, policy.teacher.actor, cfg)

    def update(self, teacher_batch: Transitions, student_batch: Transitions
               ) -> dict[str, float]:
        stats = self.teacher.update(teacher_batch)
        stats.update(self.student.update(student_batch))
        return stats

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**self.teacher.optimizers(),
                **{f"student_{key}": opt for key, opt in self.student.optimizers().items()}}
