"""Deterministic evaluation of the teacher or the student on held-out seeds.

Seeds: training uses ``train.seed`` (< ``MAX_TRAIN_SEED``); validation during training uses
``VALIDATION_SEED``; the reported test numbers (``sitt-eval``) use ``TEST_SEED``. A task
builds environment ``i`` of a batch from ``(seed, i)``, so these sets never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .envs import make_task
from .networks import TeacherStudentPolicy
from .obs import to_torch
from .seeds import MAX_TRAIN_SEED, TEST_SEED, VALIDATION_SEED

__all__ = ["MAX_TRAIN_SEED", "ROLES", "TEST_SEED", "VALIDATION_SEED", "EvalResult", "evaluate"]

ROLES = ("teacher", "student")


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
             episodes: int, seed: int = TEST_SEED, record_traces: bool = False) -> EvalResult:
    """Run ``episodes`` episodes, one per environment, with deterministic actions."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_task(task, num_envs=episodes, seed=seed, **task_kwargs)
    env.set_student_mask(np.full(episodes, role == "student"))
    obs, _ = env.reset(seed=seed)
    finished = np.zeros(episodes, dtype=bool)
    summary: dict[str, np.ndarray] = {}
    traces: list[list[np.ndarray]] = [[] for _ in range(episodes)]
    scenes = env.scene() if record_traces else None
    if record_traces:
        _append(traces, env.trace(), finished)
    while not finished.all():
        if role == "teacher":
            out = policy.teacher_out(torch.from_numpy(obs["teacher"]))
        else:
            out = policy.student_out(to_torch(obs["student"]))
        actions = policy.decoder.deterministic(out).numpy()
        obs, _, _, _, infos = env.step(actions)
        ended = infos.get("_episode", np.zeros(episodes, dtype=bool)) & ~finished
        if record_traces:
            live = finished | ended  # ended episodes take their final point below
            _append(traces, env.trace(), live)
            if ended.any():
                _append(traces, infos["final_trace"], ~ended)
        for key, values in infos.get("episode", {}).items():
            summary.setdefault(key, np.zeros(episodes, dtype=np.float64))[ended] = values[ended]
        finished |= ended
        if role == "student" and ended.any():  # stop rendering for finished episodes
            env.set_student_mask(~finished)
    extra = {key: float(values.mean()) for key, values in summary.items()
             if key not in ("r", "l", "success")}
    return EvalResult(
        role=role,
        episodes=episodes,
        success=float(summary["success"].mean()),
        mean_return=float(summary["r"].mean()),
        mean_length=float(summary["l"].mean()),
        extra=extra,
        traces=[np.array(t) for t in traces] if record_traces else [],
        scenes=scenes,
        per_episode=summary,
    )


def _append(traces: list[list[np.ndarray]], points: np.ndarray | None,
            skip: np.ndarray) -> None:
    if points is None:
        return
    for i in np.flatnonzero(~skip):
        traces[i].append(points[i].copy())
