"""Gymnasium state-vector environments as teacher-student tasks for L2T.

``GymStateVecEnv`` runs ``num_envs`` copies of a gymnasium environment with a Box
observation (the true state) and Box actions, with the task interface's conventions:
episode ``k`` of environment ``i`` starts from the reset drawn with a seed made of
``(seed, i, k)`` (so results do not depend on the batch size and ``reset_to`` works), the
time limit is the task's ``episode_steps`` (truncation), and the physics state is part of
``state_dict`` for exact resume. Both observation groups are the state; the registered
tasks wrap it in ``NoisyStateVecEnv`` so that the student's is L2T-noisy.

These tasks define no success: every episode reports ``success`` = NaN, and their
result is the return.

* ``pendulum``: ``Pendulum-v1`` (swing up; 200 steps; returns from about -1500 to -150).
  Fast and pure NumPy: the tests' learning task.
* ``half_cheetah``: ``HalfCheetah-v5`` (MuJoCo; 1000 steps). The L2T paper's benchmark
  (it used v4; v5 has the same observation, action and reward). Needs ``mujoco``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .base import LayoutVecEnv
from .noisy_state import NoisyStateVecEnv


def episode_seed(seed: int, env_id: int, episode: int) -> int:
    """The reset seed of episode ``episode`` of environment ``env_id``."""
    return int(np.random.SeedSequence([seed, env_id, episode]).generate_state(1)[0])


class GymStateVecEnv(LayoutVecEnv):
    """``num_envs`` copies of gymnasium's ``env_id`` (its unwrapped class: no time limit or
    checker wrappers; ``episode_steps`` is the time limit)."""

    _state_attrs = ("physics", "obs", "steps")

    def __init__(self, env_id: str, num_envs: int, seed: int, episode_steps: int) -> None:
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
        self.envs = [_make_unwrapped(env_id) for _ in range(num_envs)]
        first = self.envs[0]
        space = first.observation_space
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise ValueError(f"{env_id}: needs a 1-d Box observation, got {space}")
        if not isinstance(first.action_space, gym.spaces.Box):
            raise ValueError(f"{env_id}: needs Box actions, got {first.action_space}")
        state_space = gym.spaces.Box(-np.inf, np.inf, space.shape, np.float32)
        super().__init__(num_envs, state_space, state_space, first.action_space)
        self.env_id = env_id
        self.episode_steps = int(episode_steps)
        self.low = first.action_space.low.astype(np.float64)
        self.high = first.action_space.high.astype(np.float64)
        self.obs = np.zeros((num_envs, space.shape[0]), dtype=np.float32)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self._init_layouts(seed)
        self._reset_envs(np.arange(num_envs))
        self.physics = np.stack([_get_physics(env) for env in self.envs])

    # ----------------------------------------------------------------- task hooks
    def _reset_envs(self, env_ids: np.ndarray) -> None:
        seed, layout_ids, episodes = self._next_episodes(env_ids)
        for i, layout_id, episode in zip(env_ids, layout_ids, episodes, strict=True):
            obs, _ = self.envs[i].reset(seed=episode_seed(seed, int(layout_id), int(episode)))
            self.obs[i] = obs
        self.steps[env_ids] = 0

    def _step(self, actions: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        actions = np.clip(np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1),
                          self.low, self.high)
        reward = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        for i, env in enumerate(self.envs):
            obs, r, term, _, _ = env.step(actions[i].astype(env.action_space.dtype))
            self.obs[i] = obs
            reward[i], terminated[i] = r, term
        self.steps += 1
        truncated = (self.steps >= self.episode_steps) & ~terminated
        return reward, terminated, truncated, {"success": np.full(self.num_envs, np.nan)}

    def _teacher_obs(self) -> np.ndarray:
        return self.obs.copy()

    def _student_obs(self, env_ids: np.ndarray) -> np.ndarray:
        return self.obs[env_ids].copy()

    # ------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, np.ndarray]:
        self.physics = np.stack([_get_physics(env) for env in self.envs])
        return super().state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        for env, physics in zip(self.envs, self.physics, strict=True):
            _set_physics(env, physics)

    def close_extras(self, **kwargs: object) -> None:
        for env in self.envs:
            env.close()


# The simulator state of one environment as a flat float64 vector, for exact resume.
# MuJoCo: the full integration state (time, qpos, qvel, actuators, controls and the
# solver's warm start: restoring qpos and qvel alone changes the next contact solve).
def _get_physics(env: Any) -> np.ndarray:
    if hasattr(env, "data") and hasattr(env, "model"):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(env.model, spec))
        mujoco.mj_getState(env.model, env.data, state, spec)
        return state
    if hasattr(env, "state"):  # classic control (Pendulum: theta, theta-dot)
        return np.asarray(env.state, dtype=np.float64).copy()
    raise NotImplementedError(f"no physics state accessor for {type(env).__name__}")


def _set_physics(env: Any, physics: np.ndarray) -> None:
    if hasattr(env, "data") and hasattr(env, "model"):
        import mujoco

        mujoco.mj_setState(env.model, env.data, physics, mujoco.mjtState.mjSTATE_INTEGRATION)
    else:
        env.state = np.asarray(physics, dtype=np.float64).copy()


def _make_unwrapped(env_id: str) -> gym.Env:
    """``gym.make(env_id).unwrapped``; MuJoCo's deprecation notice about the bundled
    models' ``settotalmass`` (printed once per model) is dropped, other warnings kept."""
    if not env_id.startswith(("HalfCheetah", "Hopper", "Walker", "Ant", "Humanoid")):
        return gym.make(env_id).unwrapped
    try:
        import mujoco
    except ImportError as err:
        raise ImportError(f"{env_id} needs mujoco (pip install -r requirements.txt)") from err
    previous = mujoco.get_mju_user_warning()

    def forward(message: str) -> None:
        if "settotalmass" not in message:
            import warnings

            warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)

    mujoco.set_mju_user_warning(forward)
    try:
        return gym.make(env_id).unwrapped
    finally:
        mujoco.set_mju_user_warning(previous)


class PendulumVecEnv(NoisyStateVecEnv):
    """``pendulum``: Pendulum-v1's state (cos, sin, angular velocity), L2T-noisy for the
    student (``noise_alpha``, default 0.4 as in the paper's MuJoCo tasks)."""

    def __init__(self, num_envs: int = 1, seed: int = 0, noise_alpha: float = 0.4,
                 episode_steps: int = 200) -> None:
        super().__init__(GymStateVecEnv("Pendulum-v1", num_envs, seed, episode_steps),
                         noise_alpha, seed)


class HalfCheetahVecEnv(NoisyStateVecEnv):
    """``half_cheetah``: HalfCheetah-v5's 17-d state, L2T-noisy for the student
    (``noise_alpha`` 0.4, the paper's setting)."""

    def __init__(self, num_envs: int = 1, seed: int = 0, noise_alpha: float = 0.4,
                 episode_steps: int = 1000) -> None:
        super().__init__(GymStateVecEnv("HalfCheetah-v5", num_envs, seed, episode_steps),
                         noise_alpha, seed)
