"""Deterministic evaluation of the teacher or the student on held-out seeds.

Seeds: training uses ``train.seed`` (< ``MAX_TRAIN_SEED``); validation during training uses
``VALIDATION_SEED``; the reported test numbers (``sitt-eval``) use ``TEST_SEED``. A task
builds environment ``i`` of a batch from ``(seed, i)``, so these sets never overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .envs import TASKS, make_task
from .networks import TeacherStudentPolicy
from .obs import to_torch
from .seeds import MAX_TRAIN_SEED, TEST_SEED, VALIDATION_SEED

__all__ = ["MAX_TRAIN_SEED", "ROLES", "TEST_SEED", "VALIDATION_SEED", "EvalResult",
           "deterministic_actions", "evaluate"]

ROLES = ("teacher", "student")
# The student's observations of a batch -> its actions (num_envs, action_dim). One with
# state across steps may have a ``reset()`` method: ``evaluate`` calls it whenever a batch
# of episodes starts, so that its call count is the episodes' step index.
StudentActions = Callable[[Any], np.ndarray]


@dataclass
class EvalResult:
    role: str
    episodes: int
    success: float
    mean_return: float
    mean_length: float
    extra: dict[str, float] = field(default_factory=dict)  # task metrics, averaged
    traces: list[np.ndarray] = field(default_factory=list)  # per episode, if recorded
    scenes: np.ndarray | None = None  # per episode layout (task's scene()), if recorded
    per_episode: dict[str, np.ndarray] = field(default_factory=dict)  # summary arrays

    def summary(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "success": self.success,
                "return": self.mean_return, "length": self.mean_length, **self.extra}


@torch.no_grad()
def evaluate(policy: TeacherStudentPolicy, task: str, task_kwargs: dict[str, Any], role: str,
             episodes: int, seed: int = TEST_SEED, record_traces: bool = False,
             student_actions: StudentActions | None = None) -> EvalResult:
    """Run ``episodes`` episodes, episode ``k`` in the layout of environment ``k`` of the
    task built with ``seed``, with deterministic actions. Tasks whose environments are
    heavy (``max_eval_envs``, e.g. one physics client each) run in batches of at most that
    many environments, each started on its episodes' layouts by ``reset_to``.
    ``student_actions`` (role ``student`` only) computes the actions from the student's
    observations in place of the torch networks, e.g. the exported ONNX graph
    (``export.onnx_student_actions``); its ``reset()``, if it has one, is called as each
    batch of episodes starts."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if student_actions is not None and role != "student":
        raise ValueError(f"student_actions is for role 'student', got {role!r}")
    def act(obs: dict[str, Any]) -> np.ndarray:
        if student_actions is not None:
            return student_actions(obs["student"])
        return deterministic_actions(policy, role, obs)
    batch = getattr(TASKS[task], "max_eval_envs", None) or episodes
    summary: dict[str, list[np.ndarray]] = {}
    traces: list[np.ndarray] = []
    scenes: list[np.ndarray] = []
    for first in range(0, episodes, batch):
        ids = np.arange(first, min(first + batch, episodes))
        env = make_task(task, num_envs=len(ids), seed=seed, **task_kwargs)
        part = _run(env, act, role, seed, ids if first else None, record_traces,
                    getattr(student_actions, "reset", None))
        env.close()
        for key, values in part[0].items():
            summary.setdefault(key, []).append(values)
        traces += part[1]
        if part[2] is not None:
            scenes.append(part[2])
    merged = {key: np.concatenate(values) for key, values in summary.items()}
    extra = {key: float(values.mean()) for key, values in merged.items()
             if key not in ("r", "l", "success")}
    return EvalResult(
        role=role,
        episodes=episodes,
        success=float(merged["success"].mean()),
        mean_return=float(merged["r"].mean()),
        mean_length=float(merged["l"].mean()),
        extra=extra,
        traces=traces,
        scenes=np.concatenate(scenes) if scenes else None,
        per_episode=merged,
    )


@torch.no_grad()
def deterministic_actions(policy: TeacherStudentPolicy, role: str,
                          obs: dict[str, Any]) -> np.ndarray:
    """The ``role``'s deterministic actions for a batch of the task's observations."""
    if role == "teacher":
        out = policy.teacher_out(torch.from_numpy(obs["teacher"]))
    else:
        out = policy.student_out(to_torch(obs["student"]))
    return policy.decoder.deterministic(out).numpy()


def _run(env: Any, act: Callable[[dict[str, Any]], np.ndarray], role: str, seed: int,
         layouts: np.ndarray | None, record_traces: bool,
         on_start: Callable[[], Any] | None = None
         ) -> tuple[dict[str, np.ndarray], list[np.ndarray], np.ndarray | None]:
    """One episode per environment of ``env`` (on environments ``layouts`` of the seed, if
    given), acting with ``act(observations)``; ``on_start()`` is called once the episodes
    are reset. Returns the episode summaries, and traces and scenes when recorded."""
    n = env.num_envs
    env.set_student_mask(np.full(n, role == "student"))
    obs, _ = env.reset(seed=seed)
    if layouts is not None:
        obs, _ = env.reset_to(layouts)
    if on_start is not None:
        on_start()
    finished = np.zeros(n, dtype=bool)
    summary: dict[str, np.ndarray] = {}
    traces: list[list[np.ndarray]] = [[] for _ in range(n)]
    scenes = env.scene() if record_traces else None
    if record_traces:
        _append(traces, env.trace(), finished)
    while not finished.all():
        obs, _, _, _, infos = env.step(act(obs))
        ended = infos.get("_episode", np.zeros(n, dtype=bool)) & ~finished
        if record_traces:
            live = finished | ended  # ended episodes take their final point below
            _append(traces, env.trace(), live)
            if ended.any():
                _append(traces, infos["final_trace"], ~ended)
        for key, values in infos.get("episode", {}).items():
            summary.setdefault(key, np.zeros(n, dtype=np.float64))[ended] = values[ended]
        finished |= ended
        if role == "student" and ended.any():  # stop rendering for finished episodes
            env.set_student_mask(~finished)
    return summary, [np.array(t) for t in traces] if record_traces else [], scenes


def _append(traces: list[list[np.ndarray]], points: np.ndarray | None,
            skip: np.ndarray) -> None:
    if points is None:
        return
    for i in np.flatnonzero(~skip):
        traces[i].append(points[i].copy())
