"""A fast test-only task for the off-policy methods (tests/test_l2t.py, tests/test_cosil.py):
point reaching in the plane, wrapped with the L2T observation noise like the shipped
noisy-state tasks. ``register_point_task(monkeypatch)`` adds it to ``TASKS`` as "point"
for one test."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from sitt_training.envs import TASKS
from sitt_training.envs.base import LayoutVecEnv
from sitt_training.envs.noisy_state import NoisyStateVecEnv

POINT_STEPS = 20


class PointReach(LayoutVecEnv):
    """A point in the plane moves 0.2 * a per step towards a random goal; reward minus the
    distance; 20 steps. State (position, goal). Learns in about a thousand SAC updates."""

    _state_attrs = ("pos", "goal", "steps")

    def __init__(self, num_envs: int, seed: int) -> None:
        box = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        super().__init__(num_envs, box, box, gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
        self.pos = np.zeros((num_envs, 2))
        self.goal = np.zeros((num_envs, 2))
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self._init_layouts(seed)
        self._reset_envs(np.arange(num_envs))

    def _reset_envs(self, env_ids: np.ndarray) -> None:
        for i, rng in zip(env_ids, self._episode_rngs(env_ids), strict=True):
            self.pos[i], self.goal[i] = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2)
        self.steps[env_ids] = 0

    def _step(self, actions: np.ndarray):
        self.pos = self.pos + 0.2 * np.clip(actions, -1.0, 1.0)
        self.steps += 1
        reward = -np.linalg.norm(self.pos - self.goal, axis=1).astype(np.float32)
        return (reward, np.zeros(self.num_envs, dtype=bool), self.steps >= POINT_STEPS,
                {"success": np.full(self.num_envs, np.nan)})

    def _teacher_obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.goal], axis=1).astype(np.float32)

    def _student_obs(self, env_ids: np.ndarray) -> np.ndarray:
        return self._teacher_obs()[env_ids]


class PointTask(NoisyStateVecEnv):
    def __init__(self, num_envs: int = 1, seed: int = 0, noise_alpha: float = 0.1) -> None:
        super().__init__(PointReach(num_envs, seed), noise_alpha, seed)


def register_point_task(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register ``PointTask`` as the task "point" for the current test; returns the name."""
    monkeypatch.setitem(TASKS, "point", PointTask)
    return "point"
