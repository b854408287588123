"""FIFO buffer of paired (teacher, student) observations for the student-side updates."""

from __future__ import annotations

from typing import Any

import torch

from .obs import ObsTree, take


def _zeros(capacity: int, like: ObsTree) -> ObsTree:
    """Storage for ``capacity`` rows shaped and typed like the tensors of ``like``."""
    if isinstance(like, dict):
        return {key: _zeros(capacity, value) for key, value in like.items()}
    return torch.zeros(capacity, *like.shape[1:], dtype=like.dtype)


def _assign(dest: ObsTree, rows: slice, src: ObsTree) -> None:
    if isinstance(dest, dict):
        for key in dest:
            dest[key][rows] = src[key]
    else:
        dest[rows] = src


class PairedBuffer:
    """Ring buffer of ``(o_T, o_S)`` pairs; the oldest pairs are overwritten first.

    Student observations may be a tensor or a dict of tensors (camera tasks) and keep their
    dtype (``uint8`` images stay small). Storage is allocated on the first ``add``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.teacher: torch.Tensor | None = None
        self.student: ObsTree | None = None
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs_t: torch.Tensor, obs_s: ObsTree) -> None:
        n = obs_t.shape[0]
        if n == 0:
            return
        if self.teacher is None:
            self.teacher = _zeros(self.capacity, obs_t)
            self.student = _zeros(self.capacity, obs_s)
        if n > self.capacity:  # only the newest pairs fit
            obs_t, obs_s = obs_t[-self.capacity :], take(obs_s, slice(-self.capacity, None))
            n = self.capacity
        first = min(n, self.capacity - self.cursor)  # up to the end, then wrap around
        self.teacher[self.cursor : self.cursor + first] = obs_t[:first]
        _assign(self.student, slice(self.cursor, self.cursor + first), take(obs_s, slice(first)))
        self.teacher[: n - first] = obs_t[first:]
        _assign(self.student, slice(n - first), take(obs_s, slice(first, None)))
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, ObsTree]:
        """A random batch; ``batch_size`` 0 (or >= size) returns every stored pair."""
        if self.size == 0:
            raise ValueError("sampling from an empty buffer")
        if batch_size <= 0 or batch_size >= self.size:
            return self.teacher[: self.size], take(self.student, slice(self.size))
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return self.teacher[idx], take(self.student, idx)

    def state_dict(self) -> dict[str, Any]:
        if self.size == 0:
            return {"teacher": None, "student": None, "cursor": 0}
        return {"teacher": self.teacher[: self.size].clone(),
                "student": _clone(take(self.student, slice(self.size))),
                "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher, self.student, self.size, self.cursor = None, None, 0, 0
        if state["teacher"] is None:
            return
        self.add(state["teacher"], state["student"])
        self.cursor = int(state["cursor"]) % self.capacity


def _clone(obs: ObsTree) -> ObsTree:
    if isinstance(obs, dict):
        return {key: value.clone() for key, value in obs.items()}
    return obs.clone()

