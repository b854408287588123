"""Soft actor-critic: the off-policy core (the L2T teacher, METHODS.md section 3).

Twin Q critics with Polyak-averaged target copies, a tanh-squashed Gaussian actor and an
entropy temperature learnt towards the target entropy ``-|A|`` (Haarnoja et al., "Soft
Actor-Critic Algorithms and Applications", 2018). For a batch ``(s, a, r, s', d)`` with
``d`` = terminated (a time-limit truncation bootstraps):

    y      = r + gamma * (1 - d) * (min_j Qbar_j(s', a') - alpha * log pi(a'|s')),  a' ~ pi(.|s')
    L_Q    = 1/2 * sum_j mean_b (Q_j(s, a) - y)^2
    L_pi   = mean_b (alpha * log pi(a~|s) - min_j Q_j(s, a~)),  a~ ~ pi(.|s) reparameterised
    L_temp = -mean_b log(alpha) * (log pi(a~|s) + H_target)   (gradient into log(alpha) only)

One ``SAC.update`` steps the critics, then the actor (critics frozen), then the
temperature, then moves the targets: ``Qbar <- (1 - tau) Qbar + tau Q``.

The same update serves regularisers other than the entropy (COSIL, ``methods/cosil.py``):
the losses take a *penalty* ``P(s, a)`` per sampled action (SAC: ``log pi(a|s)``), and
read ``alpha * P`` where SAC reads ``alpha * log pi``; the coefficient's loss keeps
``E[P]`` near a bound (SAC: ``-H_target``). The actor may read another observation than
the critics (``SACNetworks(critic_obs_dim=...)``: an asymmetric critic on the true state).

Actions here live in [-1, 1] (the tanh's range), and so do the ones in the replay buffer;
``ActionScaler`` maps them to the task's bounds.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .buffers import Transitions
from .config import SACConfig
from .networks import mlp

# Bounds of the actor's log-std (Stable-Baselines3's): exp(2) = 7.4 already saturates tanh.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Within the block, gradients of losses do not reach these modules' parameters
    (they still flow through them to the inputs, e.g. to an action)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class ActionScaler(nn.Module):
    """Maps actions in [-1, 1] affinely to the task's Box bounds ``[low, high]``."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        low, high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
        if not (np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()):
            raise ValueError(f"SAC needs finite action bounds with high > low, got {low}, {high}")
        self.register_buffer("low", torch.from_numpy(low))
        self.register_buffer("high", torch.from_numpy(high))

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        return self.low + (action + 1.0) * 0.5 * (self.high - self.low)


class SquashedGaussianActor(nn.Module):
    """``a = tanh(u)``, ``u ~ N(mu(s), sigma(s)^2)`` per action dimension."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for w in hidden:
            layers += [nn.Linear(width, w), nn.ReLU()]
            width = w
        self.trunk = nn.Sequential(*layers)
        self.mean = nn.Linear(width, action_dim)
        self.log_std = nn.Linear(width, action_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (clamped) log-std of the pre-tanh Gaussian."""
        h = self.trunk(obs)
        return self.mean(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in (-1, 1) per row and its log-density (global RNG)."""
        drawn = self.rsample(obs)
        return drawn.action, drawn.log_prob

    def rsample(self, obs: torch.Tensor) -> PolicySample:
        """``sample`` with the distribution and the pre-tanh value kept (same RNG draw)."""
        mean, log_std = self(obs)
        noise = torch.randn_like(mean)
        action, log_prob = squashed_sample(mean, log_std, noise)
        return PolicySample(action, log_prob, mean + log_std.exp() * noise, mean, log_std)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """``tanh(mu(s))``: the action used for evaluation and as the BC target."""
        return torch.tanh(self(obs)[0])


@dataclass
class PolicySample:
    """One reparameterised draw per row: ``action = tanh(pre_tanh)``,
    ``pre_tanh = mean + exp(log_std) * noise``, and ``log_prob = log pi(action)``."""

    action: torch.Tensor  # (B, A) in (-1, 1)
    log_prob: torch.Tensor  # (B,)
    pre_tanh: torch.Tensor  # (B, A)
    mean: torch.Tensor  # (B, A) of the pre-tanh Gaussian
    log_std: torch.Tensor  # (B, A)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
                         ) -> torch.Tensor:
    """``log N(x; mean, diag(exp(log_std))^2)``, summed over the last dimension."""
    z = (x - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - _HALF_LOG_2PI).sum(dim=-1)


def gaussian_kl(mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor,
                log_std_q: torch.Tensor) -> torch.Tensor:
    """``KL(N_p || N_q)`` of diagonal Gaussians, summed over the last dimension:
    ``sum_i log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``."""
    var_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    mahalanobis = ((mean_p - mean_q) * torch.exp(-log_std_q)).pow(2)
    return (log_std_q - log_std_p + 0.5 * (var_ratio + mahalanobis) - 0.5).sum(dim=-1)


def squashed_sample(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``a = tanh(mean + exp(log_std) * noise)`` and ``log pi(a)``: the Gaussian density of
    the pre-tanh value minus the log-Jacobian of tanh, ``log(1 - tanh(u)^2)``, written as
    ``2 (log 2 - u - softplus(-2u))`` (exact, and stable where tanh saturates)."""
    u = mean + log_std.exp() * noise
    gaussian = (-0.5 * noise.pow(2) - log_std - _HALF_LOG_2PI).sum(dim=-1)
    return torch.tanh(u), gaussian - tanh_log_jacobian(u)


def tanh_log_jacobian(u: torch.Tensor) -> torch.Tensor:
    """``sum_i log(1 - tanh(u_i)^2)``, as ``2 (log 2 - u - softplus(-2u))``."""
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(dim=-1)


def squashed_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
                      ) -> torch.Tensor:
    """``log pi(tanh(u))`` of the tanh-squashed ``N(mean, exp(log_std)^2)``, given the
    pre-tanh value ``u`` (which ``atanh`` of a saturated action could not recover)."""
    return gaussian_log_density(u, mean, log_std) - tanh_log_jacobian(u)


class TwinQ(nn.Module):
    """Two independent critics ``Q_j(s, a)``."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.q1 = mlp(obs_dim + action_dim, hidden, 1, nn.ReLU)
        self.q2 = mlp(obs_dim + action_dim, hidden, 1, nn.ReLU)

    def forward(self, obs: torch.Tensor, action: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def min(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.minimum(*self(obs, action))


class SACNetworks(nn.Module):
    """Actor, critics, target critics and the log-temperature: one state dict.

    The critics read ``critic_obs_dim`` inputs (default: the actor's ``obs_dim``); a
    different size is an asymmetric critic, e.g. on the true state while the actor reads
    a noisy observation. ``log_alpha`` is the coefficient of the penalty (SAC's entropy
    temperature; COSIL's divergence weight beta)."""

    def __init__(self, obs_dim: int, action_dim: int, actor_hidden: Sequence[int],
                 critic_hidden: Sequence[int], init_temperature: float = 1.0,
                 critic_obs_dim: int | None = None) -> None:
        super().__init__()
        self.actor = SquashedGaussianActor(obs_dim, action_dim, actor_hidden)
        self.critic = TwinQ(critic_obs_dim or obs_dim, action_dim, critic_hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init_temperature)))
        self.action_dim = action_dim

    @property
    def alpha(self) -> torch.Tensor:
        """The temperature, detached (the losses other than its own treat it as fixed)."""
        return self.log_alpha.detach().exp()


# ------------------------------------------------------------------------ losses
# A penalty maps (the critics' observation of the state, the actor's draw) to one value
# per row; the losses weigh it by the coefficient alpha.
Penalty = Callable[[torch.Tensor, PolicySample], torch.Tensor]


def entropy_penalty(state: torch.Tensor, drawn: PolicySample) -> torch.Tensor:
    """SAC's: ``log pi(a|s)`` (a one-sample estimate of the negative entropy)."""
    return drawn.log_prob


def soft_target(nets: SACNetworks, batch: Transitions, gamma: float,
                penalty: Penalty = entropy_penalty, next_actor_obs: torch.Tensor | None = None
                ) -> torch.Tensor:
    """``y = r + gamma (1 - terminated) (min_j Qbar_j(s', a') - alpha P(s', a'))``,
    ``a' ~ pi(.|o')`` with ``o'`` = ``next_actor_obs`` (default: ``s'``, symmetric)."""
    with torch.no_grad():
        drawn = nets.actor.rsample(batch.next_obs if next_actor_obs is None else next_actor_obs)
        next_q = nets.critic_target.min(batch.next_obs, drawn.action)
        soft_value = next_q - nets.alpha * penalty(batch.next_obs, drawn)
        return batch.rewards + gamma * (1.0 - batch.terminated) * soft_value


def critic_loss(nets: SACNetworks, batch: Transitions, gamma: float,
                penalty: Penalty = entropy_penalty, next_actor_obs: torch.Tensor | None = None,
                prefix: str = "sac") -> tuple[torch.Tensor, dict[str, float]]:
    target = soft_target(nets, batch, gamma, penalty, next_actor_obs)
    q1, q2 = nets.critic(batch.obs, batch.actions)
    loss = 0.5 * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
    return loss, {f"{prefix}/critic_loss": loss.item(), f"{prefix}/q": q1.mean().item()}


def actor_loss(nets: SACNetworks, obs: torch.Tensor, penalty: Penalty = entropy_penalty,
               critic_obs: torch.Tensor | None = None, prefix: str = "sac"
               ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """The actor's loss ``mean(alpha P(s, a~) - min_j Q_j(s, a~))``, ``a~ ~ pi(.|obs)``
    (critics frozen; ``critic_obs`` the critics' view of the same states, default
    ``obs``), and the detached penalties, which the coefficient's loss reuses (SAC:
    the log-probabilities)."""
    state = obs if critic_obs is None else critic_obs
    drawn = nets.actor.rsample(obs)
    with frozen(nets.critic):
        q = nets.critic.min(state, drawn.action)
    value = penalty(state, drawn)
    loss = (nets.alpha * value - q).mean()
    return loss, value.detach(), {f"{prefix}/actor_loss": loss.item(),
                                  f"{prefix}/entropy": -drawn.log_prob.mean().item()}


def coefficient_loss(log_coef: torch.Tensor, penalty: torch.Tensor, bound: float
                     ) -> torch.Tensor:
    """The dual of the constraint ``E[P] <= bound``: ``-mean(log_coef * (P - bound))``
    with ``P`` detached. Its gradient step raises the coefficient while the penalty is
    above the bound and lowers it below."""
    return -(log_coef * (penalty - bound)).mean()


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float
                     ) -> torch.Tensor:
    """Raises alpha while the policy's entropy ``-log pi`` is below the target, lowers it
    above (``log_prob`` detached): ``E[log pi] <= -H_target``."""
    return coefficient_loss(log_alpha, log_prob, -target_entropy)


@torch.no_grad()
def polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) target + tau source``, parameter by parameter."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.lerp_(s, tau)


def adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel: SAC steps four optimisers per update on small networks,
    where the default per-parameter loop costs more than the networks' passes."""
    return torch.optim.Adam(params, lr=lr, fused=True)


class SAC:
    """The update of ``SACNetworks``, with one Adam optimiser per loss.

    Subclasses change the regulariser through ``penalty`` and ``penalty_bound`` and the
    actor's observation through ``actor_obs`` (COSIL's student, ``methods/cosil.py``)."""

    prefix = "sac"  # of the stats' keys
    coefficient_name = "temperature"

    def __init__(self, nets: SACNetworks, cfg: SACConfig) -> None:
        self.nets = nets
        self.cfg = cfg
        self.target_entropy = -cfg.target_entropy_scale * nets.action_dim
        self.critic_optimizer = adam(nets.critic.parameters(), cfg.lr)
        self.actor_optimizer = adam(nets.actor.parameters(), cfg.lr)
        self.temperature_optimizer = adam([nets.log_alpha], cfg.lr)

    # ------------------------------------------------------------ regulariser hooks
    def penalty(self, state: torch.Tensor, drawn: PolicySample) -> torch.Tensor:
        return entropy_penalty(state, drawn)

    @property
    def penalty_bound(self) -> float:
        """The coefficient keeps ``E[penalty]`` near this (SAC: ``-H_target``)."""
        return -self.target_entropy

    def actor_obs(self, batch: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's observations of ``s`` and ``s'`` (SAC: the states themselves)."""
        return batch.obs, batch.next_obs

    # ------------------------------------------------------------------- update
    def update(self, batch: Transitions) -> dict[str, float]:
        nets, prefix = self.nets, self.prefix
        obs, next_obs = self.actor_obs(batch)
        loss, stats = critic_loss(nets, batch, self.cfg.gamma, self.penalty, next_obs, prefix)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()

        loss, penalty, actor_stats = actor_loss(nets, obs, self.penalty, batch.obs, prefix)
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()

        loss = coefficient_loss(nets.log_alpha, penalty, self.penalty_bound)
        self.temperature_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.temperature_optimizer.step()
        self.project_coefficient()

        polyak(nets.critic_target, nets.critic, self.cfg.tau)
        return {**stats, **actor_stats, **self.penalty_stats(penalty),
                f"{prefix}/{self.coefficient_name}": nets.alpha.item()}

    def project_coefficient(self) -> None:
        """Keeps the coefficient in its allowed range after its step (SAC: any alpha > 0)."""

    def penalty_stats(self, penalty: torch.Tensor) -> dict[str, float]:
        """Extra stats of the actor's penalties (SAC: none beyond the entropy)."""
        return {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.critic_optimizer, "actor": self.actor_optimizer,
                "temperature": self.temperature_optimizer}
