"""``hlrl``: the student learns by RL on its own observations plus a behaviour-cloning loss
whose weight decays exponentially (Radosavovic et al. 2024, as the SITT paper runs it;
METHODS.md section 4). The teacher trains with PPO alone, as in BC.

* Acting: in the first ``hlrl_envs`` environments the student acts, sampling from its own
  policy pi_S = D o E_S, from the first iteration on. Those transitions are off-policy for the
  teacher (``for_teacher`` False): the teacher learns from the other environments.
* Student loss, per minibatch of the student's own roll-out (PPO's epochs and minibatches):

      L_S = L_clip(pi_S; A_S) + c_v * (V_S(o_T) - R_S)^2 - c_e * H(pi_S) + w_k * KL(pi_T || pi_S)

  with PPO's clip, value and entropy coefficients, GAE advantages A_S and returns R_S of the
  student's own rewards, and w_k = hlrl_bc_coef * hlrl_bc_decay^k at iteration k. The BC term
  is BC's loss (``bc.py``) on the states the student visited, labelled by the current teacher
  (both terms on the same samples; the paired buffer is not used). The student's optimisers
  (E_S and V_S) use ``align_lr``.
* Shared decoder: pi_S reads D with its weights detached (``decoder.frozen``, log-std
  included), so the student's gradients reach E_S (and V_S) only, never D or the teacher.

The student critic V_S(o_T) (``network_options``: built only for this method, saved with the
policy, never in the teacher's optimiser) is asymmetric: it reads the privileged teacher
observation. The critic exists only in training, where o_T is produced for every environment
at every step; the student's returns depend on hidden state (TunnelVision's student cannot
see the cells beside it), so a V(o_S) would average over what it cannot see and give noisier
advantages (asymmetric actor-critic, Pinto et al. 2018). It must be the student's own critic:
the teacher's V estimates the teacher's returns, not those of the policy that acted.

Time limits: the trainer bootstraps truncated episodes with the teacher's critic, which is
wrong for the student's rows; ``end_rollout`` receives the raw rewards and bootstraps the
student's truncated episodes (and the roll-out's last step) with V_S instead.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..buffers import PairedBuffer
from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy
from ..obs import ObsTree, take
from ..ppo import RolloutStorage
from .base import Method


def bc_weight(coef: float, decay: float, iteration: int) -> float:
    """w_k = w0 * decay^k: the weight of the BC term at iteration k."""
    return coef * decay**iteration


def student_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
                 values: torch.Tensor, returns: torch.Tensor, entropy: torch.Tensor,
                 bc: torch.Tensor, bc_weight: float, clip: float, value_coef: float,
                 entropy_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """HLRL's student loss on one minibatch (per-sample tensors): PPO's clipped surrogate
    with the minibatch's advantages normalised (as in the teacher's update), the value loss
    of V_S, the entropy bonus and the weighted BC term."""
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = (log_prob - old_log_prob).exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    parts = {"policy_loss": -surrogate.mean(),
             "value_loss": (values - returns).pow(2).mean(),
             "entropy": entropy.mean(),
             "bc_loss": bc.mean()}
    loss = (parts["policy_loss"] + value_coef * parts["value_loss"]
            - entropy_coef * parts["entropy"] + bc_weight * parts["bc_loss"])
    return loss, parts


class HLRL(Method):
    name = "hlrl"
    network_options = {"student_critic": True}

    def __init__(self, policy: TeacherStudentPolicy, cfg: MethodConfig,
                 ppo: PPOConfig | None = None) -> None:
        super().__init__(policy, cfg, ppo)
        if policy.student_critic is None:
            raise ValueError("hlrl needs a policy built with student_critic=True "
                             "(trainer.build_policy passes HLRL.network_options)")
        self.critic_optimizer = torch.optim.Adam(policy.student_critic.parameters(),
                                                 lr=cfg.align_lr)
        self.weight = bc_weight(cfg.hlrl_bc_coef, cfg.hlrl_bc_decay, 0)
        # This roll-out's student steps (filled by choose_actions), then its storage.
        self._obs_s: list[ObsTree] = []
        self._actions: list[torch.Tensor] = []
        self._log_prob: list[torch.Tensor] = []
        self.rollout: RolloutStorage | None = None
        self.student_obs: ObsTree | None = None  # (T * k, ...) rows of the roll-out
        self.student_reward = 0.0  # mean raw reward per step in the student's envs

    def start_iteration(self, iteration: int, teacher_success: float | None,
                        episodes: int = 0) -> None:
        super().start_iteration(iteration, teacher_success, episodes)
        self.weight = bc_weight(self.cfg.hlrl_bc_coef, self.cfg.hlrl_bc_decay, iteration)
        self._obs_s, self._actions, self._log_prob = [], [], []
        self.rollout, self.student_obs = None, None

    # ------------------------------------------------------------------ roll-out
    def choose_actions(self, teacher_actions: torch.Tensor, obs_s: ObsTree,
                       generator: torch.Generator, student_rows: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """The student samples its own action in the first ``hlrl_envs`` environments."""
        k = self.cfg.hlrl_envs
        mine = take(obs_s, slice(0, k))
        mine = ({key: v.clone() for key, v in mine.items()} if isinstance(mine, dict)
                else mine.clone())
        with torch.no_grad():
            out = self.policy.student_out(mine)
            student_actions = self.policy.decoder.sample(out)
            log_prob = self.policy.decoder.log_prob(out, student_actions)
        self._obs_s.append(mine)
        self._actions.append(student_actions)
        self._log_prob.append(log_prob)
        actions = teacher_actions.clone()
        actions[:k] = student_actions
        for_teacher = torch.ones(teacher_actions.shape[0], dtype=torch.bool)
        for_teacher[:k] = False
        return actions, for_teacher

    def end_rollout(self, obs_t: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor,
                    truncations: list[tuple[int, np.ndarray, np.ndarray]],
                    last_obs_t: torch.Tensor) -> None:
        """The student's roll-out: its rows' raw rewards, truncations bootstrapped with V_S
        (not the teacher's critic), V_S values and GAE with PPO's gamma and lambda."""
        k, p, ppo = self.cfg.hlrl_envs, self.policy, self.ppo
        steps = len(self._actions)
        spec = p.decoder.spec
        st = RolloutStorage(steps, k, obs_t.shape[-1], () if spec.discrete else (spec.n,),
                            spec.discrete)
        st.obs = obs_t[:, :k].clone()
        st.actions = torch.stack(self._actions)
        st.log_prob = torch.stack(self._log_prob)
        st.rewards = rewards[:, :k].clone()
        st.dones = dones[:, :k].clone()
        with torch.no_grad():
            st.values = p.student_value(st.obs.reshape(steps * k, -1)).reshape(steps, k)
            for t, envs, final_obs in truncations:
                ours = envs < k
                if ours.any():
                    finals = p.student_value(torch.from_numpy(final_obs[ours]))
                    st.rewards[t, torch.from_numpy(envs[ours])] += ppo.gamma * finals
            last_value = p.student_value(last_obs_t[:k])
        st.compute_gae(last_value, ppo.gamma, ppo.gae_lambda)
        self.rollout = st
        self.student_obs = _cat(self._obs_s)
        self.student_reward = rewards[:, :k].mean().item()
        self._obs_s, self._actions, self._log_prob = [], [], []

    # -------------------------------------------------------------------- update
    def update_student(self, buffer: PairedBuffer, generator: torch.Generator
                       ) -> dict[str, float]:
        """PPO epochs on the student's own roll-out, plus the decaying BC term."""
        st = self.rollout
        if st is None:
            return {}
        p, ppo = self.policy, self.ppo
        total = st.steps * st.num_envs
        obs_t = st.obs.reshape(total, -1)
        actions = st.actions.reshape(total, *st.actions.shape[2:])
        old_log_prob = st.log_prob.reshape(total)
        advantages = st.advantages.reshape(total)
        returns = st.returns.reshape(total)
        params = [*p.student_encoder.parameters(), *p.student_critic.parameters()]
        sums: dict[str, float] = {}
        count = 0
        for _ in range(ppo.epochs):
            order = torch.randperm(total, generator=generator)
            for idx in order.chunk(ppo.minibatches):
                out_s = p.decoder.frozen(p.student_encoder(take(self.student_obs, idx)))
                with torch.no_grad():
                    out_t = p.teacher_out(obs_t[idx])
                loss, parts = student_loss(
                    log_prob=p.decoder.log_prob(out_s, actions[idx], frozen=True),
                    old_log_prob=old_log_prob[idx], advantages=advantages[idx],
                    values=p.student_value(obs_t[idx]), returns=returns[idx],
                    entropy=p.decoder.entropy(out_s, frozen=True),
                    bc=p.decoder.kl(out_t, out_s, frozen=True), bc_weight=self.weight,
                    clip=ppo.clip, value_coef=ppo.value_coef, entropy_coef=ppo.entropy_coef)
                self.student_optimizer.zero_grad(set_to_none=True)
                self.critic_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, ppo.max_grad_norm)
                self.student_optimizer.step()
                self.critic_optimizer.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value.item()
                count += 1
        self.rollout, self.student_obs = None, None
        stats = {f"hlrl/{key}": value / count for key, value in sums.items()}
        stats["hlrl/bc_weight"] = self.weight
        stats["hlrl/student_reward"] = self.student_reward
        return stats

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.student_optimizer, "student_critic": self.critic_optimizer}


def _cat(steps: list[ObsTree]) -> ObsTree:
    """Per-step student observations (k rows each) as one (T * k, ...) batch, step-major
    like ``RolloutStorage``'s flattening."""
    if isinstance(steps[0], dict):
        return {key: torch.cat([s[key] for s in steps]) for key in steps[0]}
    return torch.cat(steps)
