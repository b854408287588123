"""L2T, Learn to Teach (METHODS.md section 3; the paper's Algorithm 2, L2T-RL).

A SAC teacher learns on true states ``s``; the student never acts in the environment. On
every minibatch of the teacher's replay buffer, after the teacher's critic, actor and
temperature updates, the student (a deterministic actor on the noisy observation ``o``)
minimises

    L_S = c_bc * ||pi_S(o) - pi_T(s)||_1 + c_q * (-min_j Q_T,j(s, pi_S(o))) [/ mean_b |Q_T|]

with ``pi_T(s) = tanh(mu_T(s))`` the teacher's mean action (no gradient) and the teacher's
critics frozen: gradients reach the student only. The first term is the paper's L1 BC
loss (its eq. 3), the second its asymmetric actor loss (eq. 5) for a deterministic student:
the teacher's privileged critic scores the student's action. ``o = s + alpha_k * u * |s|``
with the transition's stored unit draw ``u`` and the curriculum's ``alpha_k``.

Not a ``Method`` of the PPO trainer: ``offpolicy_trainer.OffPolicyTrainer`` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ..buffers import Transitions
from ..config import Config, MethodConfig, SACConfig
from ..networks import mlp
from ..noise import noisy_observation
from ..sac import SAC, ActionScaler, SACNetworks, adam, frozen


class StudentActor(nn.Module):
    """``pi_S(o) = tanh(f(o))``: a deterministic action in [-1, 1] from the noisy state."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, action_dim, nn.ReLU)  # SAC's activation

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))


class PassThroughDecoder(nn.Module):
    """Evaluation reads ``policy.decoder.deterministic(out)``; L2T's ``*_out`` already are
    the deterministic actions in the task's bounds."""

    def deterministic(self, out: torch.Tensor) -> torch.Tensor:
        return out


class L2TPolicy(nn.Module):
    """Teacher (SAC networks) and student in one module, so a checkpoint is one state dict.

    ``teacher_out``/``student_out`` give deterministic actions in the task's bounds, the
    interface ``evaluation.evaluate`` and ``sitt-eval`` use for every method."""

    def __init__(self, obs_dim: int, action_dim: int, low: np.ndarray, high: np.ndarray,
                 actor_hidden: Sequence[int], critic_hidden: Sequence[int],
                 init_temperature: float = 1.0) -> None:
        super().__init__()
        self.teacher = SACNetworks(obs_dim, action_dim, actor_hidden, critic_hidden,
                                   init_temperature)
        self.student = StudentActor(obs_dim, action_dim, actor_hidden)
        self.scaler = ActionScaler(low, high)
        self.decoder = PassThroughDecoder()

    def teacher_out(self, obs_t: torch.Tensor) -> torch.Tensor:
        return self.scaler.to_env(self.teacher.actor.deterministic(obs_t))

    def student_out(self, obs_s: torch.Tensor) -> torch.Tensor:
        return self.scaler.to_env(self.student(obs_s))


def box_action_space(env: Any, method: str) -> gym.spaces.Box:
    """The task's action space, which the off-policy methods need to be a 1-d Box."""
    action_space = env.single_action_space
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"{method} needs a 1-d Box action space, got {action_space}")
    return action_space


def build_l2t_policy(cfg: Config, env: Any) -> L2TPolicy:
    """The networks for a task, from the config (training, evaluation and ``load_run``)."""
    teacher_space = env.single_observation_space["teacher"]
    action_space = box_action_space(env, "l2t")
    return L2TPolicy(int(np.prod(teacher_space.shape)), int(action_space.shape[0]),
                     action_space.low, action_space.high, cfg.sac.actor_hidden,
                     cfg.sac.critic_hidden, cfg.sac.init_temperature)


def student_loss(student: StudentActor, teacher: SACNetworks, obs_s: torch.Tensor,
                 obs_t: torch.Tensor, cfg: MethodConfig
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """``L_S`` above; ``obs_s`` the noisy observations of the true states ``obs_t``."""
    with torch.no_grad():
        target = teacher.actor.deterministic(obs_t)
    action = student(obs_s)
    bc = (action - target).abs().sum(dim=-1).mean()
    with frozen(teacher.critic):
        q = teacher.critic.min(obs_t, action)
    q_term = -q.mean()
    if cfg.l2t_q_normalize:
        q_term = q_term / q.detach().abs().mean().clamp_min(1e-6)
    loss = cfg.l2t_bc_coef * bc + cfg.l2t_q_coef * q_term
    return loss, {"l2t/student_loss": loss.item(), "l2t/bc_loss": bc.item(),
                  "l2t/student_q": q.mean().item()}


class L2T:
    """One L2T gradient step on a minibatch: the teacher's SAC update, then the student's."""

    def __init__(self, policy: L2TPolicy, sac_cfg: SACConfig, cfg: MethodConfig) -> None:
        self.policy = policy
        self.cfg = cfg
        self.sac = SAC(policy.teacher, sac_cfg)
        self.student_optimizer = adam(policy.student.parameters(), sac_cfg.lr)

    def update_student(self, batch: Transitions, alpha: float) -> dict[str, float]:
        if batch.noise is None:
            raise ValueError("L2T needs the noise draws of the student's observations")
        obs_s = noisy_observation(batch.obs, batch.noise, alpha)
        loss, stats = student_loss(self.policy.student, self.policy.teacher, obs_s,
                                   batch.obs, self.cfg)
        self.student_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.student_optimizer.step()
        return stats

    def update(self, batch: Transitions, alpha: float) -> dict[str, float]:
        """Teacher critic, actor and temperature, then the student, on the same batch."""
        stats = self.sac.update(batch)
        stats.update(self.update_student(batch, alpha))
        return stats

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**self.sac.optimizers(), "student": self.student_optimizer}
