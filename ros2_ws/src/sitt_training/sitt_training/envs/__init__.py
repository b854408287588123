"""Tasks with ``teacher`` and ``student`` observation groups, registered with gymnasium.

    import gymnasium as gym
    import sitt_training.envs  # registers the ids below
    env = gym.make("sitt/ColorMaze-v0")                    # one environment
    vec = gym.make_vec("sitt/ColorMaze-v0", num_envs=256)  # the batched task

``arm_drawer`` (``sitt/ArmDrawer-v0``) needs pybullet at construction (one physics client
per environment); its module is imported here, pybullet only when an arm env is built.

The L2T tasks (``quadrotor_noisy``, ``arm_drawer_noisy``, ``pendulum``, ``half_cheetah``;
``noisy_state.py``, ``gym_state.py``) give the student the teacher's state with L2T noise;
``half_cheetah`` needs mujoco only when it is built. They are not registered as gymnasium ids.
"""

from __future__ import annotations

import gymnasium as gym

from .arm_drawer import ArmDrawerVecEnv
from .base import SingleTaskEnv, TeacherStudentVecEnv
from .collect_health import CollectHealthVecEnv
from .color_maze import ColorMazeVecEnv
from .gym_state import HalfCheetahVecEnv, PendulumVecEnv
from .noisy_state import ArmDrawerNoisyVecEnv, QuadrotorNoisyVecEnv
from .quadrotor import QuadrotorVecEnv
from .tunnel_vision import TunnelVisionVecEnv

# Task name (as used in configs and the CLI) -> vectorised class.
TASKS: dict[str, type[TeacherStudentVecEnv]] = {
    "color_maze": ColorMazeVecEnv,
    "quadrotor": QuadrotorVecEnv,
    "arm_drawer": ArmDrawerVecEnv,
    "tunnel_vision": TunnelVisionVecEnv,
    "collect_health": CollectHealthVecEnv,
    "quadrotor_noisy": QuadrotorNoisyVecEnv,
    "arm_drawer_noisy": ArmDrawerNoisyVecEnv,
    "pendulum": PendulumVecEnv,
    "half_cheetah": HalfCheetahVecEnv,
}

# gymnasium ids: ``gym.make(id)`` gives one environment, ``gym.make_vec(id, n)`` the task.
GYM_IDS = {
    "sitt/ColorMaze-v0": ("color_maze", "ColorMazeEnv", "ColorMazeVecEnv"),
    "sitt/Quadrotor-v0": ("quadrotor", "QuadrotorEnv", "QuadrotorVecEnv"),
    "sitt/ArmDrawer-v0": ("arm_drawer", "ArmDrawerEnv", "ArmDrawerVecEnv"),
    "sitt/TunnelVision-v0": ("tunnel_vision", "TunnelVisionEnv", "TunnelVisionVecEnv"),
    "sitt/CollectHealth-v0": ("collect_health", "CollectHealthEnv", "CollectHealthVecEnv"),
}
for _id, (_module, _single, _vector) in GYM_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=f"sitt_training.envs.{_module}:{_single}",
                     vector_entry_point=f"sitt_training.envs.{_module}:{_vector}")


def make_task(name: str, num_envs: int, seed: int, **kwargs: object) -> TeacherStudentVecEnv:
    """Build a registered task by its config name."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name](num_envs=num_envs, seed=seed, **kwargs)


__all__ = ["TASKS", "SingleTaskEnv", "TeacherStudentVecEnv", "make_task"]
