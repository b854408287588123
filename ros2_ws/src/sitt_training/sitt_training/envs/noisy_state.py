"""Tasks for L2T (METHODS.md section 3): the student observes the teacher's state through
the L2T noise ``o = s + alpha * eps``, ``eps_i ~ U[-|s_i|, |s_i|]``.

``NoisyStateVecEnv`` wraps any task: its ``teacher`` group is the inner task's teacher
observation (the true state ``s``), its ``student`` group is that state with fresh L2T
noise of scale ``noise_alpha`` at every step, for the environments in the student mask.
That is the student's deployment condition, so evaluating the student on the task
evaluates it at the full ``alpha``. The inner task never builds its own student
observation (no camera images are rendered).

During training the off-policy trainer does not use this group: it draws the noise itself
and stores it with each transition, so that the curriculum can scale it (``noise.py``).

``quadrotor_noisy``: the quadrotor's 28-d privileged state (velocities, attitude, rates,
previous action, altitude, pillar offsets) for both, noisy for the student.
``arm_drawer_noisy``: the arm's 23-d privileged state (joint positions and velocities,
grasp-point-to-handle vector, drawer opening and speed), likewise.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ..noise import l2t_observation
from .arm_drawer import EPISODE_STEPS as ARM_EPISODE_STEPS
from .arm_drawer import ArmDrawerVecEnv
from .base import TeacherStudentVecEnv
from .quadrotor import QuadrotorVecEnv

# Added to the task seed for the noise stream, so noise and layouts are independent.
NOISE_STREAM = 0x4C3254  # "L2T"


class NoisyStateVecEnv(TeacherStudentVecEnv):
    """``inner``'s teacher observation for the teacher, its L2T-noisy copy for the student.

    Subclasses build the inner task and pass it here; they are what ``TASKS`` registers."""

    # Read by config validation: the tasks the off-policy L2T method can train on.
    noisy_state_student = True

    def __init__(self, inner: TeacherStudentVecEnv, noise_alpha: float, seed: int) -> None:
        if not noise_alpha >= 0:
            raise ValueError(f"noise_alpha must be >= 0, got {noise_alpha}")
        teacher_space = inner.single_observation_space["teacher"]
        if not isinstance(teacher_space, gym.spaces.Box):
            raise ValueError(f"the teacher observation must be a Box, got {teacher_space}")
        student_space = gym.spaces.Box(-np.inf, np.inf, teacher_space.shape, np.float32)
        super().__init__(inner.num_envs, teacher_space, student_space, inner.single_action_space)
        self.inner = inner
        self.inner.set_student_mask(np.zeros(inner.num_envs, dtype=bool))  # never renders
        self.noise_alpha = float(noise_alpha)
        self._noise_rng = np.random.default_rng([seed, NOISE_STREAM])

    # ------------------------------------------------------------ inner task's hooks
    def _seed(self, seed: int | None) -> None:
        self.inner._seed(seed)
        self._noise_rng = np.random.default_rng([0 if seed is None else seed, NOISE_STREAM])

    def _reset_envs(self, env_ids: np.ndarray) -> None:
        self.inner._reset_envs(env_ids)

    def _step(self, actions: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        return self.inner._step(actions)

    def _teacher_obs(self) -> np.ndarray:
        return self.inner._teacher_obs()

    def _student_obs(self, env_ids: np.ndarray) -> np.ndarray:
        state = self.inner._teacher_obs()[env_ids]
        return l2t_observation(state, self.noise_alpha, self._noise_rng)

    # ------------------------------------------------------------------ delegation
    def reset_to(self, env_index: int | np.ndarray, episode_index: int = 0
                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.inner.reset_to(env_index, episode_index)
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0
        return self.observe(), {"student_valid": self.student_mask.copy()}

    def trace(self) -> np.ndarray | None:
        return self.inner.trace()

    def scene(self) -> np.ndarray | None:
        return self.inner.scene()

    def close_extras(self, **kwargs: object) -> None:
        self.inner.close()

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(),
                "noise_rng": self._noise_rng.bit_generator.state,
                "student_mask": self.student_mask.copy(),
                "_episode_return": self._episode_return.copy(),
                "_episode_length": self._episode_length.copy()}

    def set_task_option(self, name: str, value: float) -> None:
        self.inner.set_task_option(name, value)  # the options are the inner task's

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        self._noise_rng.bit_generator.state = state["noise_rng"]
        super().load_state_dict({k: state[k] for k in
                                 ("student_mask", "_episode_return", "_episode_length")})


class QuadrotorNoisyVecEnv(NoisyStateVecEnv):
    """``quadrotor_noisy``: the quadrotor task without the camera; the student sees the
    teacher's 28-d state through L2T noise. ``noise_alpha`` defaults to 0.1, the paper's
    value for its robot (Cassie, section 4.2.1; 0.4 is its MuJoCo-benchmark value): the
    pillar offsets decide crashes, and 40% of their size is a metre or more."""

    def __init__(self, num_envs: int = 1, seed: int = 0, noise_alpha: float = 0.1,
                 **task_options: Any) -> None:
        # Every other keyword is a quadrotor task option (``QuadrotorVecEnv``), passed on,
        # so a reward recipe tuned on the camera task (bench/teacher_recipes.py) applies
        # to the noisy one unchanged.
        super().__init__(QuadrotorVecEnv(num_envs, seed=seed, **task_options), noise_alpha, seed)


class ArmDrawerNoisyVecEnv(NoisyStateVecEnv):
    """``arm_drawer_noisy``: the drawer task without the camera; the student sees the
    teacher's 23-d state through L2T noise. ``noise_alpha`` defaults to 0.1, as
    ``quadrotor_noisy``: the grasp-point-to-handle vector decides the grasp, and 40% of it
    is several centimetres at the handle. The handle-visibility rays are off by default
    (no camera to hide the handle from)."""

    # One pybullet world per environment: evaluation runs at most this many at once.
    max_eval_envs = ArmDrawerVecEnv.max_eval_envs

    def __init__(self, num_envs: int = 1, seed: int = 0, noise_alpha: float = 0.1,
                 episode_steps: int = ARM_EPISODE_STEPS,
                 track_visibility: bool = False) -> None:
        super().__init__(ArmDrawerVecEnv(num_envs, seed=seed, episode_steps=episode_steps,
                                         track_visibility=track_visibility),
                         noise_alpha, seed)
