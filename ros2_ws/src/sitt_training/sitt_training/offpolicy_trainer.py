"""The training loop of the off-policy methods (``l2t``): SAC teacher + L2T student.

Same run directory as ``trainer.Trainer`` (``config.yaml``, ``metrics.jsonl``, ``tb/``,
atomic ``model_<iter>.pt`` checkpoints with exact resume, ``best_model.pt``; SIGINT/SIGTERM
finish the iteration, save and stop): the loop, checkpoint writing, resume and signal
handling are ``Trainer``'s own methods, reused below.

An iteration: ``sac.rollout_steps`` times, step every environment once with the teacher's
sampled action (uniform random actions for the first ``sac.learning_starts``
transitions), store the transitions with a fresh unit noise draw each for the student's
observation, then run ``sac.gradient_steps`` L2T updates (teacher, then student, on one
minibatch each). The student never acts and never observes the environment here: its
observations are made from the stored states (``noise.py``), at the curriculum's noise
scale, which ramps from 0 to the task's ``noise_alpha`` over ``method.l2t_curriculum``
of training. Validation evaluates the student at the full ``noise_alpha`` (the task's
student observation).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .buffers import ReplayBuffer, Transitions
from .config import OFF_POLICY_METHODS, Config
from .envs import make_task
from .evaluation import MAX_TRAIN_SEED, VALIDATION_SEED, evaluate
from .methods.l2t import L2T, build_l2t_policy
from .noise import curriculum_alpha, unit_noise_torch
from .trainer import BEST_MODEL, BEST_RECORD, EVAL_STATE_KEYS, Trainer, atomic_save


class OffPolicyTrainer:
    def __init__(self, cfg: Config, run_dir: Path, show_progress: bool = True) -> None:
        if cfg.method.name not in OFF_POLICY_METHODS:
            raise ValueError(f"OffPolicyTrainer runs {OFF_POLICY_METHODS}, got "
                             f"{cfg.method.name!r} (use trainer.Trainer)")
        if cfg.train.seed >= MAX_TRAIN_SEED:
            raise ValueError(f"train.seed must be < {MAX_TRAIN_SEED} (higher seeds are "
                             f"reserved for evaluation), got {cfg.train.seed}")
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.show_progress = show_progress
        torch.set_num_threads(cfg.train.torch_threads)
        torch.manual_seed(cfg.train.seed)
        self.generator = torch.Generator().manual_seed(cfg.train.seed)

        self.env = make_task(cfg.task.name, cfg.task.num_envs, cfg.train.seed, **cfg.task.kwargs)
        if not hasattr(self.env, "noise_alpha"):
            raise ValueError(f"task {cfg.task.name!r} has no L2T noise (noise_alpha)")
        self.noise_alpha = float(self.env.noise_alpha)
        # The student never observes the environment during training.
        self.env.set_student_mask(np.zeros(cfg.task.num_envs, dtype=bool))
        self.obs, _ = self.env.reset(seed=cfg.train.seed)

        self.policy = build_l2t_policy(cfg, self.env)
        self.l2t = L2T(self.policy, cfg.sac, cfg.method)
        obs_dim = self.env.single_observation_space["teacher"].shape[0]
        action_dim = self.env.single_action_space.shape[0]
        self.buffer = ReplayBuffer(cfg.sac.buffer_size, obs_dim, action_dim, noise=True)
        self.iteration = 0
        self.env_steps = 0
        self.student_samples = 0  # noisy student observations stored (one per transition)
        self.updates = 0
        self.wall_time = 0.0
        self.last_teacher_success: float | None = None  # of the last iteration's episodes
        self.best_score: list[float] | None = None
        self._stop_signal: int | None = None

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

    def step_envs(self) -> tuple[np.ndarray, np.ndarray]:
        """One step of every environment, stored in the replay buffer; the returns and
        success flags of the episodes that ended."""
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
        if "_episode" not in infos:
            return np.zeros(0), np.zeros(0)
        done = infos["_episode"]
        return infos["episode"]["r"][done], infos["episode"]["success"][done]

    # --------------------------------------------------------------- iteration
    def iterate(self) -> dict[str, float]:
        start = time.perf_counter()
        sac = self.cfg.sac
        alpha = self.student_alpha()
        returns, successes, updates = [], [], []
        env_time = 0.0
        for _ in range(sac.rollout_steps):
            t0 = time.perf_counter()
            r, s = self.step_envs()
            env_time += time.perf_counter() - t0
            returns.append(r)
            successes.append(s)
            if len(self.buffer) < max(1, sac.learning_starts):
                continue
            for _ in range(sac.gradient_steps):
                batch = self.buffer.sample(sac.batch_size, self.generator)
                updates.append(self.l2t.update(batch, alpha))
        self.updates += len(updates)
        stats = {key: float(np.mean([u[key] for u in updates])) for key in updates[0]
                 } if updates else {}
        stats["l2t/noise_alpha"] = alpha
        stats["sac/updates"] = float(self.updates)
        ended_returns, ended_success = np.concatenate(returns), np.concatenate(successes)
        if ended_returns.size:
            stats["train/episode_return"] = float(ended_returns.mean())
            stats["train/episodes"] = float(ended_returns.size)
            if not np.isnan(ended_success).any():
                stats["train/teacher_success"] = float(ended_success.mean())
                self.last_teacher_success = stats["train/teacher_success"]
        elapsed = time.perf_counter() - start
        self.wall_time += elapsed
        self.iteration += 1
        steps = sac.rollout_steps * self.env.num_envs
        stats.update({"perf/env_steps_per_s": steps / elapsed,
                      "perf/rollout_steps_per_s": steps / max(env_time, 1e-9),
                      "perf/iteration_s": elapsed})
        if self.cfg.train.eval_every and self.iteration % self.cfg.train.eval_every == 0:
            stats.update(self.validate())
            self.keep_best(stats)
        return stats

    def validate(self, episodes: int | None = None) -> dict[str, float]:
        """Deterministic teacher (true state) and student (state with the full L2T noise)
        on the validation seeds. Tasks without success report NaN success."""
        n = episodes or self.cfg.train.eval_episodes
        out = {}
        for role in ("teacher", "student"):
            result = evaluate(self.policy, self.cfg.task.name, self.cfg.task.kwargs, role, n,
                              seed=VALIDATION_SEED)
            out[f"eval/{role}_success"] = result.success
            out[f"eval/{role}_return"] = result.mean_return
        return out

    def keep_best(self, stats: dict[str, float]) -> None:
        """As ``Trainer.keep_best`` (student, then teacher validation success; later
        iterations win ties), by return on tasks that define no success."""
        if not self.cfg.train.keep_best:
            return
        measure = "success"
        if math.isnan(stats["eval/student_success"]) or math.isnan(stats["eval/teacher_success"]):
            measure = "return"
        score = [stats[f"eval/student_{measure}"], stats[f"eval/teacher_{measure}"]]
        if self.best_score is not None and score < self.best_score:
            return
        self.best_score = score
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self.state_dict(with_buffer=False)
        atomic_save({k: state[k] for k in EVAL_STATE_KEYS}, self.run_dir / BEST_MODEL)
        record = {"iteration": self.iteration, "env_steps": self.env_steps,
                  **{k: v for k, v in stats.items() if k.startswith("eval/")}}
        tmp = self.run_dir / (BEST_RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(self.run_dir / BEST_RECORD)

    # ------------------------------------------------------------- checkpoints
    def state_dict(self, with_buffer: bool = True) -> dict[str, Any]:
        keep = with_buffer and self.cfg.train.checkpoint_buffer
        return {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "student_samples": self.student_samples,
            "updates": self.updates,
            "wall_time": self.wall_time,
            "last_teacher_success": self.last_teacher_success,
            "config": self.cfg.to_dict(),
            "policy": self.policy.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.l2t.optimizers().items()},
            "env": self.env.state_dict(),
            # Optional (``train.checkpoint_buffer``): a resumed run without it refills the
            # buffer for ``sac.learning_starts`` transitions before updating again.
            "buffer": self.buffer.state_dict() if keep else None,
            "rng": {"torch": torch.get_rng_state(), "generator": self.generator.get_state()},
            "best_score": self.best_score,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = state["iteration"]
        self.env_steps = state["env_steps"]
        self.student_samples = state["student_samples"]
        self.updates = state["updates"]
        self.wall_time = state["wall_time"]
        self.last_teacher_success = state["last_teacher_success"]
        self.policy.load_state_dict(state["policy"])
        for key, opt in self.l2t.optimizers().items():
            opt.load_state_dict(state["optimizers"][key])
        self.env.load_state_dict(state["env"])
        self.obs = self.env.observe()
        if state["buffer"] is not None:
            self.buffer.load_state_dict(state["buffer"])
        torch.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["rng"]["generator"])
        self.best_score = state["best_score"]

    # The run loop and its file contract are the PPO trainer's: these methods use only the
    # attributes set above (cfg, run_dir, iteration, counters, _stop_signal) and
    # iterate / state_dict / load_state_dict.
    save_checkpoint = Trainer.save_checkpoint
    resume = Trainer.resume
    train = Trainer.train
    _request_stop = Trainer._request_stop
