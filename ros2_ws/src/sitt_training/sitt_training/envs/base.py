"""The vectorised task interface shared by training, evaluation and the sim bridge.

A task is a batch of ``num_envs`` copies of one environment with two observation groups:

* ``teacher``: the privileged observation, built for every environment at every step;
* ``student``: what the deployable student sees (an array, or a dict of arrays such as
  ``{"image": uint8 HxWx3, "state": float32}``), built only for the environments in
  ``student_mask`` (rendering camera images is the expensive part of SITT, so training
  renders for a subset only). Rows of environments that did not render are zero and
  ``infos["student_valid"]`` says which rows are real.

The class follows gymnasium's ``VectorEnv`` API with same-step autoreset: when an episode
ends, the returned observation is already the first one of the next episode and the last
observation of the finished one is in ``infos["final_obs"]`` (rows marked by
``infos["_final_obs"]``). Finished episodes are summarised in ``infos["episode"]``.

NumPy only: no torch here (the sim bridge and evaluation run without it).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv


class TeacherStudentVecEnv(VectorEnv):
    """Base class of every task. Subclasses implement the five ``_``-methods below."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}
    # Attributes that hold the simulation state, for exact checkpoint/resume.
    _state_attrs: tuple[str, ...] = ()
    _layout_attrs: tuple[str, ...] = ()  # the episode counters of ``LayoutVecEnv``
    # Evaluation runs at most this many environments at once (None: all episodes at once).
    # A task that sets it must have ``reset_to(env_ids)`` (see ``LayoutVecEnv``).
    max_eval_envs: int | None = None

    def __init__(
        self,
        num_envs: int,
        single_teacher_space: gym.spaces.Box,
        single_student_space: gym.spaces.Box | gym.spaces.Dict,
        single_action_space: gym.Space,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Dict(
            {"teacher": single_teacher_space, "student": single_student_space}
        )
        self.single_action_space = single_action_space
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(single_action_space, num_envs)
        self.student_mask = np.ones(num_envs, dtype=bool)
        self._episode_return = np.zeros(num_envs, dtype=np.float64)
        self._episode_length = np.zeros(num_envs, dtype=np.int64)

    # ----------------------------------------------------------------- task hooks
    @abstractmethod
    def _seed(self, seed: int | None) -> None:
        """(Re)seed the task's random streams (layouts, initial states)."""

    @abstractmethod
    def _reset_envs(self, env_ids: np.ndarray) -> None:
        """Start a new episode in the given environments."""

    @abstractmethod
    def _step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advance every environment one control step.

        Returns reward, terminated, truncated (each shape ``(num_envs,)``) and per-env
        arrays for the episode summary (e.g. ``success``), read where an episode ended.
        """

    @abstractmethod
    def _teacher_obs(self) -> np.ndarray:
        """Teacher observation of every environment, ``(num_envs, *teacher_shape)``."""

    @abstractmethod
    def _student_obs(self, env_ids: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        """Student observation of the given environments only (a dict for Dict spaces)."""

    def trace(self) -> np.ndarray | None:
        """A point per environment for trajectory plots (e.g. the position), or None."""
        return None

    def scene(self) -> np.ndarray | None:
        """Per-environment layout of the current episodes for plots (e.g. obstacle
        positions), or None."""
        return None

    # ------------------------------------------------------------ public interface
    def state_dict(self) -> dict[str, np.ndarray]:
        """The full simulation state; ``load_state_dict`` continues exactly from it."""
        names = (*self._state_attrs, *self._layout_attrs, "student_mask", "_episode_return",
                 "_episode_length")
        return {name: np.copy(getattr(self, name)) for name in names}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name, value in state.items():
            current = getattr(self, name)
            if np.shape(current) != np.shape(value):
                raise ValueError(f"env state {name!r}: shape {np.shape(value)} does not match "
                                 f"this task's {np.shape(current)} (different num_envs?)")
            setattr(self, name, np.copy(value))

    def set_task_option(self, name: str, value: float) -> None:
        """Change a numeric task option (a constructor keyword kept as an attribute of the
        same name, e.g. a reward weight) from the next step on: training ramps some in."""
        current = getattr(self, name, None)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise ValueError(f"task {type(self).__name__} has no numeric option {name!r}")
        setattr(self, name, float(value))

    def set_student_mask(self, mask: np.ndarray) -> None:
        """Choose which environments build the (expensive) student observation."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"student mask must have shape ({self.num_envs},), got {mask.shape}")
        self.student_mask = mask.copy()

    def observe(self, only: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Both observation groups for the current state (student rows per the mask, and
        only among the rows ``only`` when given)."""
        space = self.single_observation_space["student"]
        ids = np.flatnonzero(self.student_mask if only is None else self.student_mask & only)
        rows = self._student_obs(ids) if ids.size else None
        if isinstance(space, gym.spaces.Dict):
            student: Any = {}
            for key, sub in space.spaces.items():
                student[key] = np.zeros((self.num_envs, *sub.shape), dtype=sub.dtype)
                if rows is not None:
                    student[key][ids] = rows[key]
        else:
            student = np.zeros((self.num_envs, *space.shape), dtype=space.dtype)
            if rows is not None:
                student[ids] = rows
        return {"teacher": self._teacher_obs(), "student": student}

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if isinstance(seed, list):
            seed = seed[0]
        if seed is not None:
            self._seed(seed)
        self._reset_envs(np.arange(self.num_envs))
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0
        return self.observe(), {"student_valid": self.student_mask.copy()}

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        reward, terminated, truncated, summary = self._step(actions)
        self._episode_return += reward
        self._episode_length += 1
        done = terminated | truncated
        infos: dict[str, Any] = {"student_valid": self.student_mask.copy()}
        if done.any():
            # Student rows only where an episode ended: rendering is the expensive part.
            infos["final_obs"] = self.observe(only=done)
            infos["_final_obs"] = done.copy()
            trace = self.trace()
            if trace is not None:
                infos["final_trace"] = trace
            infos["episode"] = {
                "r": self._episode_return.copy(),
                "l": self._episode_length.copy(),
                **{key: np.asarray(value).copy() for key, value in summary.items()},
            }
            infos["_episode"] = done.copy()
            ids = np.flatnonzero(done)
            self._reset_envs(ids)
            self._episode_return[ids] = 0.0
            self._episode_length[ids] = 0
        return self.observe(), reward, terminated, truncated, infos


def layout_rng(seed: int, env_id: int, episode: int) -> np.random.Generator:
    """The random stream of episode ``episode`` of environment ``env_id``: independent of
    the batch size, so evaluation with a seed is reproducible for any number of envs."""
    return np.random.default_rng([seed, env_id, episode])


class LayoutVecEnv(TeacherStudentVecEnv):
    """A task whose episode ``k`` in environment ``i`` is drawn from ``(seed, i, k)`` alone.

    Results then do not depend on the batch size, and ``reset_to`` replays any
    environment's episodes in another (evaluation runs 256 held-out episodes in batches,
    the sim bridge flies one of them behind ROS). Subclasses call ``_init_layouts(seed)``
    in ``__init__`` and draw each new episode in ``_reset_envs`` from
    ``_episode_rngs(env_ids)`` (or ``_next_episodes`` for a vectorised sampler).
    """

    _layout_attrs: tuple[str, ...] = ("episode_index", "layout_seed", "layout_ids")

    def _init_layouts(self, seed: int | None) -> None:
        self.episode_index = np.zeros(self.num_envs, dtype=np.int64)  # started since seeding
        self._seed(seed)

    def _seed(self, seed: int | None) -> None:
        self.layout_seed = np.array(0 if seed is None else seed, dtype=np.int64)
        self.episode_index[:] = 0
        # Which environment's episodes each env runs: its own unless reset_to moved it.
        self.layout_ids = np.arange(self.num_envs, dtype=np.int64)

    def _next_episodes(self, env_ids: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """``(seed, layout ids, episode indices)`` of the episodes starting now in
        ``env_ids``, which count as started from here on."""
        env_ids = np.asarray(env_ids, dtype=np.int64)
        episodes = self.episode_index[env_ids].copy()
        self.episode_index[env_ids] += 1
        return int(self.layout_seed), self.layout_ids[env_ids].copy(), episodes

    def _episode_rngs(self, env_ids: np.ndarray) -> list[np.random.Generator]:
        """One random stream per environment in ``env_ids`` for the episode starting now."""
        seed, ids, episodes = self._next_episodes(env_ids)
        return [layout_rng(seed, int(i), int(k)) for i, k in zip(ids, episodes, strict=True)]

    def reset_to(self, env_index: int | np.ndarray, episode_index: int = 0
                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start every environment in the layout of environment ``env_index`` (an int, or
        one per environment), episode ``episode_index``, of the current seed; later
        autoresets continue with that environment's next episodes. With one environment,
        ``reset_to(k)`` runs what environment ``k`` of the task built with ``num_envs=N``
        and the same seed runs after ``reset``."""
        ids = np.broadcast_to(np.asarray(env_index, dtype=np.int64), (self.num_envs,))
        if (ids < 0).any() or episode_index < 0:
            raise ValueError(f"env_index and episode_index must be >= 0, got {env_index}, "
                             f"{episode_index}")
        self.layout_ids = ids.copy()
        self.episode_index[:] = episode_index
        self._reset_envs(np.arange(self.num_envs))
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0
        return self.observe(), {"student_valid": self.student_mask.copy()}


class SingleTaskEnv(gym.Env):
    """One environment of a vectorised task, for ``gymnasium.make`` and other RL libraries.

    The episode does not restart by itself: after ``terminated`` or ``truncated`` call
    ``reset`` as with any gymnasium environment.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, vec_env: TeacherStudentVecEnv) -> None:
        if vec_env.num_envs != 1:
            raise ValueError("SingleTaskEnv wraps a vectorised task with num_envs == 1")
        self.vec = vec_env
        self.observation_space = vec_env.single_observation_space
        self.action_space = vec_env.single_action_space

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        obs, _ = self.vec.reset(seed=seed, options=options)
        return _first(obs), {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, infos = self.vec.step(np.asarray(action)[None])
        info: dict[str, Any] = {}
        if "final_obs" in infos:
            obs = infos["final_obs"]
            info = {key: value[0] for key, value in infos["episode"].items()}
        return _first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info


def _first(obs: dict[str, Any]) -> dict[str, Any]:
    return {key: _first(value) if isinstance(value, dict) else value[0]
            for key, value in obs.items()}
