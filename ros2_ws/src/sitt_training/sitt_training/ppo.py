"""The PPO core every method shares: roll-out storage, GAE and the clipped update.

Methods change PPO only through two named hooks (see ``methods/base.py``):
``shape_rewards`` after the roll-out and ``extra_policy_loss`` inside the update.
Shapes: T roll-out steps, N environments, B = T*N samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .config import PPOConfig
from .networks import TeacherStudentPolicy
from .rows import Rows


@dataclass
class Batch:
    """A minibatch of teacher transitions (flattened over T and N)."""

    obs: Rows  # (B, teacher_dim), stored as distinct rows + index
    actions: torch.Tensor  # (B,) discrete or (B, act_dim)
    old_log_prob: torch.Tensor  # (B,)
    advantages: torch.Tensor  # (B,)
    returns: torch.Tensor  # (B,)
    for_teacher: torch.Tensor  # (B,) bool: False for transitions the teacher must not learn from


class RolloutStorage:
    """Teacher roll-out of T steps x N envs, on the CPU."""

    def __init__(self, steps: int, num_envs: int, obs_dim: int, action_shape: tuple[int, ...],
                 discrete: bool) -> None:
        self.steps, self.num_envs = steps, num_envs
        self.obs = torch.zeros(steps, num_envs, obs_dim)
        dtype = torch.long if discrete else torch.float32
        self.actions = torch.zeros(steps, num_envs, *action_shape, dtype=dtype)
        self.log_prob = torch.zeros(steps, num_envs)
        self.rewards = torch.zeros(steps, num_envs)
        self.values = torch.zeros(steps, num_envs)
        self.dones = torch.zeros(steps, num_envs)  # episode ended after this step
        self.for_teacher = torch.ones(steps, num_envs, dtype=torch.bool)
        self.advantages = torch.zeros(steps, num_envs)
        self.returns = torch.zeros(steps, num_envs)
        self.rows: Rows | None = None  # ``obs`` as distinct rows + index, see ``index_rows``

    def index_rows(self) -> Rows:
        """The roll-out's observations as distinct rows + index; every network pass over
        the roll-out (values, KL penalty, PPO epochs) then runs once per distinct state."""
        self.rows = Rows.of(self.obs.reshape(self.steps * self.num_envs, -1), dedupe=True)
        return self.rows

    def compute_gae(self, last_value: torch.Tensor, gamma: float, lam: float) -> None:
        """Generalised advantage estimation. Truncated episodes were already bootstrapped
        into ``rewards`` by the trainer, so ``dones`` cuts every finished episode."""
        gae = torch.zeros(self.num_envs)
        next_value = last_value
        for t in reversed(range(self.steps)):
            not_done = 1.0 - self.dones[t]
            delta = self.rewards[t] + gamma * next_value * not_done - self.values[t]
            gae = delta + gamma * lam * not_done * gae
            self.advantages[t] = gae
            next_value = self.values[t]
        self.returns = self.advantages + self.values

    def minibatches(self, obs: Rows, count: int, generator: torch.Generator) -> list[Batch]:
        total = self.steps * self.num_envs
        flat = {
            "actions": self.actions.reshape(total, *self.actions.shape[2:]),
            "old_log_prob": self.log_prob.reshape(total),
            "advantages": self.advantages.reshape(total),
            "returns": self.returns.reshape(total),
            "for_teacher": self.for_teacher.reshape(total),
        }
        if count == 1:  # one full batch: the order of samples does not matter
            return [Batch(obs=obs, **flat)]
        order = torch.randperm(total, generator=generator)
        return [Batch(obs=obs.subset(idx), **{k: v[idx] for k, v in flat.items()})
                for idx in order.chunk(count)]


def normalised_advantages(advantages: torch.Tensor, for_teacher: torch.Tensor) -> torch.Tensor:
    """Advantages scaled to zero mean and unit std over the teacher's own samples. Rows
    another policy shaped (DAgger's or HLRL's student) are excluded from the statistics as
    they are from the loss: their advantages describe the student's actions, not the
    teacher's, and would shift the teacher's baseline."""
    own = advantages[for_teacher]
    if own.numel() < 2:  # nothing (or one sample) to normalise over: the loss masks these
        return advantages
    return (advantages - own.mean()) / (own.std() + 1e-8)


ExtraLoss = Callable[[Batch, torch.Tensor], tuple[torch.Tensor, dict[str, float]] | None]


class PPO:
    """Clipped-objective PPO on the teacher's parameters (E_T, D, log-std, V)."""

    def __init__(self, policy: TeacherStudentPolicy, cfg: PPOConfig) -> None:
        self.policy = policy
        self.cfg = cfg
        self.params: list[nn.Parameter] = policy.teacher_parameters()
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr)

    def update(self, storage: RolloutStorage, generator: torch.Generator,
               extra_loss: ExtraLoss | None = None) -> dict[str, float]:
        """``extra_loss(batch, teacher_out)`` is added to the PPO loss (SITT's KL term);
        ``teacher_out`` holds one row per entry of ``batch.obs.unique``."""
        cfg = self.cfg
        stats: dict[str, float] = {}
        count = 0
        obs = storage.rows if storage.rows is not None else storage.index_rows()
        decoder = self.policy.decoder
        for _ in range(cfg.epochs):
            for batch in storage.minibatches(obs, cfg.minibatches, generator):
                # Network outputs per distinct state; gathered per sample only as scalars.
                out = self.policy.teacher_out(batch.obs.unique)
                log_prob = decoder.log_prob(out, batch.actions, batch.obs.index)
                adv = normalised_advantages(batch.advantages, batch.for_teacher)
                ratio = (log_prob - batch.old_log_prob).exp()
                surrogate = torch.min(
                    ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv
                )
                # Transitions shaped by another policy (DAgger's student) are off-policy for
                # the teacher: they take no part in its policy or value loss.
                mask = batch.for_teacher.float()
                n_teacher = mask.sum().clamp(min=1.0)
                policy_loss = -(surrogate * mask).sum() / n_teacher
                value = batch.obs.gather(self.policy.value(batch.obs.unique))
                value_loss = ((value - batch.returns).pow(2) * mask).sum() / n_teacher
                entropy = batch.obs.gather(decoder.entropy(out)).mean()
                loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
                extra = extra_loss(batch, out) if extra_loss is not None else None
                extra_stats: dict[str, float] = {}
                if extra is not None:
                    loss = loss + extra[0]
                    extra_stats = extra[1]
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    clip_frac = ((ratio - 1).abs() > cfg.clip).float().mean()
                    # Low-variance estimator of KL(old || new) on the teacher's samples.
                    log_ratio = log_prob - batch.old_log_prob
                    approx_kl = (((log_ratio.exp() - 1) - log_ratio) * mask).sum() / n_teacher
                if cfg.desired_kl > 0:
                    self._adapt_lr(approx_kl.item())
                step_stats = {
                    "ppo/policy_loss": policy_loss.item(),
                    "ppo/value_loss": value_loss.item(),
                    "ppo/entropy": entropy.item(),
                    "ppo/clip_fraction": clip_frac.item(),
                    "ppo/approx_kl": approx_kl.item(),
                    "ppo/lr": self.optimizer.param_groups[0]["lr"],
                    **extra_stats,
                }
                for key, value in step_stats.items():
                    stats[key] = stats.get(key, 0.0) + value
                count += 1
        return {key: value / count for key, value in stats.items()}

    def _adapt_lr(self, kl: float) -> None:
        """Step the lr toward keeping each update's KL near ``cfg.desired_kl``."""
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            if kl > 2.0 * cfg.desired_kl:
                group["lr"] = max(group["lr"] / 1.5, cfg.lr_min)
            elif kl < 0.5 * cfg.desired_kl:
                group["lr"] = min(group["lr"] * 1.5, cfg.lr_max)
