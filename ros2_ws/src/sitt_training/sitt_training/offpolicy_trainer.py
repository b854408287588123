"""The training loops of the off-policy methods on the SAC core: ``l2t`` (SAC teacher +
L2T student, ``OffPolicyTrainer``) and ``cosil`` (SAC teacher + COSIL student,
``COSILTrainer``, a subclass that changes who acts where and what is stored).

Same run directory as ``trainer.Trainer`` (``config.yaml``, ``metrics.jsonl``, ``tb/``,
atomic ``model_<iter>.pt`` checkpoints with exact resume, ``best_model.pt``; SIGINT/SIGTERM
finish the iteration, save and stop): the loop, checkpoint writing, resume, model
selection and signal handling are ``trainer.TrainerBase``'s.

L2T's iteration: ``sac.rollout_steps`` times, step every environment once with the
teacher's sampled action (uniform random actions for the first ``sac.learning_starts``
transitions), store the transitions with a fresh unit noise draw each for the student's
observation, then run ``sac.gradient_steps`` L2T updates (teacher, then student, on one
minibatch each). The student never acts and never observes the environment here: its
observations are made from the stored states (``noise.py``), at the curriculum's noise
scale, which ramps from 0 to the task's ``noise_alpha`` over ``method.l2t_curriculum``
of training. Validation evaluates the student at the full ``noise_alpha`` (the task's
student observation).

COSIL's iteration (``COSILTrainer``): the same loop, but the student acts with its own
sampled actions on its own observations (the task's student group, the full
``noise_alpha``) in the first ``method.cosil_student_envs`` environments and the teacher
in the others; each agent's transitions go to its own replay buffer, and each gradient
step updates the teacher on a batch of its buffer, then the student on one of its own.
``env_steps`` counts both agents' steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .buffers import ReplayBuffer, Transitions
from .config import OFF_POLICY_METHODS, Config
from .methods.cosil import COSIL, build_cosil_policy
from .methods.l2t import L2T, build_l2t_policy
from .noise import curriculum_alpha, unit_noise_torch
from .trainer import TrainerBase


class OffPolicyTrainer(TrainerBase):
    """L2T's trainer, and the base of the other off-policy methods' (``COSILTrainer``):
    subclasses override ``setup``, ``step_envs``, ``ready``, ``update_once``, ``buffers``
    and ``iteration_stats``."""

    methods: tuple[str, ...] = ("l2t",)

    def __init__(self, cfg: Config, run_dir: Path, show_progress: bool = True) -> None:
        if cfg.method.name not in OFF_POLICY_METHODS:
            raise ValueError(f"OffPolicyTrainer runs {OFF_POLICY_METHODS}, got "
                             f"{cfg.method.name!r} (use trainer.Trainer)")
        if cfg.method.name not in self.methods:
            raise ValueError(f"{type(self).__name__} runs {self.methods}, got "
                             f"{cfg.method.name!r} (cli.make_trainer picks the trainer)")
        super().__init__(cfg, run_dir, show_progress)
        self.env = self.make_env()
        if not hasattr(self.env, "noise_alpha"):
            raise ValueError(f"task {cfg.task.name!r} has no L2T noise (noise_alpha)")
        self.noise_alpha = float(self.env.noise_alpha)
        self.setup()  # before the reset: the student mask decides what the reset observes
        self.obs, _ = self.env.reset(seed=cfg.train.seed)
        self.updates = 0

    def setup(self) -> None:
        """The student mask, networks, update rule (``algorithm``) and replay buffers."""
        cfg = self.cfg
        # The student never observes the environment during training.
        self.env.set_student_mask(np.zeros(cfg.task.num_envs, dtype=bool))
        self.policy = build_l2t_policy(cfg, self.env)
        self.l2t = self.algorithm = L2T(self.policy, cfg.sac, cfg.method)
        obs_dim = self.env.single_observation_space["teacher"].shape[0]
        action_dim = self.env.single_action_space.shape[0]
        self.buffer = ReplayBuffer(cfg.sac.buffer_size, obs_dim, action_dim, noise=True)

    def buffers(self) -> dict[str, ReplayBuffer]:
        """The replay buffers by their checkpoint key."""
        return {"buffer": self.buffer}

    # ------------------------------------------------------------------ acting
    def student_alpha(self) -> float:
        """The student's noise scale in this iteration (the curriculum)."""
        return curriculum_alpha(self.noise_alpha, self.iteration, self.cfg.train.iterations,
                                self.cfg.method.l2t_curriculum)

    @torch.no_grad()
    def teacher_actions(self, obs_t: torch.Tensor) -> torch.Tensor:
        """Actions in [-1, 1] to execute: the teacher's samples, or uniform random ones
        before ``learning_starts`` transitions."""
        if self.env_steps < self.cfg.sac.learning_starts:
            shape = (obs_t.shape[0], self.policy.teacher.action_dim)
            return unit_noise_torch(shape, self.generator)
        return self.policy.teacher.actor.sample(obs_t)[0]

    def step_envs(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """One step of every environment, stored in the replay buffer; the returns and
        success flags of the episodes that ended, by the role that acted in them."""
        obs_t = torch.from_numpy(self.obs["teacher"]).clone()
        actions = self.teacher_actions(obs_t)
        with torch.no_grad():
            env_actions = self.policy.scaler.to_env(actions).numpy()
        self.obs, reward, terminated, truncated, infos = self.env.step(env_actions)
        next_obs = torch.from_numpy(self.obs["teacher"]).clone()
        ended = terminated | truncated
        if ended.any():  # the transition's s' is the episode's last state, not the reset's
            next_obs[ended] = torch.from_numpy(infos["final_obs"]["teacher"][ended])
        self.buffer.add(Transitions(
            obs=obs_t, actions=actions, rewards=torch.from_numpy(reward).float(),
            next_obs=next_obs, terminated=torch.from_numpy(terminated).float(),
            noise=unit_noise_torch(tuple(obs_t.shape), self.generator)))
        self.env_steps += self.env.num_envs
        self.student_samples += self.env.num_envs
        return {"teacher": ended_episodes(infos)}

    def ready(self) -> bool:
        """Whether enough transitions are stored to start updating."""
        return len(self.buffer) >= max(1, self.cfg.sac.learning_starts)

    def update_once(self) -> dict[str, float]:
        """One gradient step of every learner."""
        batch = self.buffer.sample(self.cfg.sac.batch_size, self.generator)
        return self.l2t.update(batch, self.student_alpha())

    def iteration_stats(self) -> dict[str, float]:
        return {"l2t/noise_alpha": self.student_alpha()}

    # --------------------------------------------------------------- iteration
    def iterate(self) -> dict[str, float]:
        start = time.perf_counter()
        sac = self.cfg.sac
        ended: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        updates: list[dict[str, float]] = []
        env_time = 0.0
        for _ in range(sac.rollout_steps):
            t0 = time.perf_counter()
            for role, episodes in self.step_envs().items():
                ended.setdefault(role, []).append(episodes)
            env_time += time.perf_counter() - t0
            if not self.ready():
                continue
            for _ in range(sac.gradient_steps):
                updates.append(self.update_once())
        self.updates += len(updates)
        stats = {key: float(np.mean([u[key] for u in updates])) for key in updates[0]
                 } if updates else {}
        stats.update(self.iteration_stats())
        stats["sac/updates"] = float(self.updates)
        for role, episodes in ended.items():
            ended_returns = np.concatenate([r for r, _ in episodes])
            ended_success = np.concatenate([s for _, s in episodes])
            if not ended_returns.size:
                continue
            # The teacher's keep the PPO trainer's names (train/episode_return ...).
            return_key, count_key = (("train/episode_return", "train/episodes")
                                     if role == "teacher" else
                                     (f"train/{role}_return", f"train/{role}_episodes"))
            stats[return_key] = float(ended_returns.mean())
            stats[count_key] = float(ended_returns.size)
            if not np.isnan(ended_success).any():
                stats[f"train/{role}_success"] = float(ended_success.mean())
                if role == "teacher":
                    self.last_teacher_success = stats["train/teacher_success"]
        return self.finish_iteration(stats, start, sac.rollout_steps * self.env.num_envs,
                                     env_time)

    # ------------------------------------------------------------- checkpoints
    def state_dict(self, with_buffer: bool = True) -> dict[str, Any]:
        keep = with_buffer and self.cfg.train.checkpoint_buffer
        return {
            **self.base_state(),
            "updates": self.updates,
            "optimizers": {k: o.state_dict() for k, o in self.algorithm.optimizers().items()},
            # The current observations: observing again would draw the student's noise anew.
            "obs": {key: np.copy(value) for key, value in self.obs.items()},
            # Optional (``train.checkpoint_buffer``): a resumed run without them refills the
            # buffers for ``sac.learning_starts`` transitions before updating again.
            **{key: buf.state_dict() if keep else None for key, buf in self.buffers().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state(state)
        self.updates = state["updates"]
        for key, opt in self.algorithm.optimizers().items():
            opt.load_state_dict(state["optimizers"][key])
        self.obs = state["obs"] if state.get("obs") is not None else self.env.observe()
        for key, buf in self.buffers().items():
            if state[key] is not None:
                buf.load_state_dict(state[key])


def ended_episodes(infos: dict[str, Any], rows: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Returns and success flags of the episodes that ended in this step (among ``rows``,
    a boolean mask over the environments, when given)."""
    if "_episode" not in infos:
        return np.zeros(0), np.zeros(0)
    done = infos["_episode"] if rows is None else infos["_episode"] & rows
    return infos["episode"]["r"][done], infos["episode"]["success"][done]


class COSILTrainer(OffPolicyTrainer):
    """COSIL (``methods/cosil.py``): the student acts in the first
    ``method.cosil_student_envs`` environments on its own observations, the teacher in the
    others on true states; one replay buffer each."""

    methods = ("cosil",)

    def setup(self) -> None:
        cfg, env = self.cfg, self.env
        self.student_rows = np.zeros(cfg.task.num_envs, dtype=bool)
        self.student_rows[: cfg.method.cosil_student_envs] = True
        self.teacher_rows = ~self.student_rows
        # The environment builds the student's (noisy) observation where the student acts.
        env.set_student_mask(self.student_rows)
        self.policy = build_cosil_policy(cfg, env)
        self.cosil = self.algorithm = COSIL(self.policy, cfg.sac, cfg.method)
        spaces = env.single_observation_space
        state_dim = int(np.prod(spaces["teacher"].shape))
        student_dim = int(np.prod(spaces["student"].shape))
        action_dim = env.single_action_space.shape[0]
        self.buffer = ReplayBuffer(cfg.sac.buffer_size, state_dim, action_dim)  # teacher's
        self.student_buffer = ReplayBuffer(cfg.sac.buffer_size, state_dim, action_dim,
                                           student_obs_dim=student_dim)

    def buffers(self) -> dict[str, ReplayBuffer]:
        return {"buffer": self.buffer, "student_buffer": self.student_buffer}

    @torch.no_grad()
    def actions(self, obs_t: torch.Tensor, obs_s: torch.Tensor) -> torch.Tensor:
        """Actions in [-1, 1] to execute: the student's samples on its observations in its
        environments, the teacher's on true states in the others; uniform random ones
        everywhere before ``learning_starts`` transitions (of both agents together)."""
        shape = (obs_t.shape[0], self.policy.teacher.action_dim)
        if self.env_steps < self.cfg.sac.learning_starts:
            return unit_noise_torch(shape, self.generator)
        actions = torch.empty(shape)
        teacher, student = torch.from_numpy(self.teacher_rows), torch.from_numpy(self.student_rows)
        actions[teacher] = self.policy.teacher.actor.sample(obs_t[teacher])[0]
        actions[student] = self.policy.student.actor.sample(obs_s)[0]
        return actions

    def step_envs(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        teacher, student = self.teacher_rows, self.student_rows
        obs_t = torch.from_numpy(self.obs["teacher"]).clone()
        obs_s = torch.from_numpy(self.obs["student"][student]).float()
        actions = self.actions(obs_t, obs_s)
        with torch.no_grad():
            env_actions = self.policy.scaler.to_env(actions).numpy()
        self.obs, reward, terminated, truncated, infos = self.env.step(env_actions)
        next_t = torch.from_numpy(self.obs["teacher"]).clone()
        next_s = torch.from_numpy(self.obs["student"][student]).float()
        ended = terminated | truncated
        if ended.any():  # s' and o' are the episode's last observations, not the reset's
            final = infos["final_obs"]
            next_t[ended] = torch.from_numpy(final["teacher"][ended])
            ended_s = ended[student]
            if ended_s.any():
                next_s[torch.from_numpy(ended_s)] = torch.from_numpy(
                    final["student"][student][ended_s]).float()
        rewards = torch.from_numpy(reward).float()
        done = torch.from_numpy(terminated).float()
        t, s = torch.from_numpy(teacher), torch.from_numpy(student)
        self.buffer.add(Transitions(obs=obs_t[t], actions=actions[t], rewards=rewards[t],
                                    next_obs=next_t[t], terminated=done[t]))
        self.student_buffer.add(Transitions(
            obs=obs_t[s], actions=actions[s], rewards=rewards[s], next_obs=next_t[s],
            terminated=done[s], student_obs=obs_s, next_student_obs=next_s))
        self.env_steps += self.env.num_envs  # both agents' steps
        # Student observations the environment made: one per student step, one more at
        # each of its episode ends (the final observation).
        self.student_samples += int(student.sum() + (ended & student).sum())
        return {"teacher": ended_episodes(infos, teacher),
                "student": ended_episodes(infos, student)}

    def ready(self) -> bool:
        stored = len(self.buffer) + len(self.student_buffer)
        return (len(self.buffer) > 0 and len(self.student_buffer) > 0
                and stored >= max(1, self.cfg.sac.learning_starts))

    def update_once(self) -> dict[str, float]:
        size = self.cfg.sac.batch_size
        return self.cosil.update(self.buffer.sample(size, self.generator),
                                 self.student_buffer.sample(size, self.generator))

    def iteration_stats(self) -> dict[str, float]:
        return {}
