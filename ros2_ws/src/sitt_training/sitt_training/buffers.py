"""Buffers: the FIFO of paired (teacher, student) observations for the student-side
updates of the PPO methods, and the off-policy methods' replay buffer of transitions."""

from __future__ import annotations

from dataclasses import dataclass
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



@dataclass
class Transitions:
    """A batch of transitions ``(s, a, r, s', terminated)``; for L2T, the unit noise draw
    ``u`` of the student's observation of ``s`` (``noise.noisy_observation``); for COSIL,
    the student's own observations ``o`` and ``o'`` of ``s`` and ``s'`` (it acted on ``o``)."""

    obs: torch.Tensor  # (B, obs_dim) true state s
    actions: torch.Tensor  # (B, act_dim) in [-1, 1] (the actor's squashed scale)
    rewards: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, obs_dim); the final state where the episode ended
    terminated: torch.Tensor  # (B,) 1.0 where the episode terminated (not truncated)
    noise: torch.Tensor | None = None  # (B, obs_dim) u ~ U[-1, 1]
    student_obs: torch.Tensor | None = None  # (B, student_dim) o
    next_student_obs: torch.Tensor | None = None  # (B, student_dim) o'; final one at ends


# Transitions' optional fields, stored by a ReplayBuffer only when it was built with them.
_OPTIONAL = ("noise", "student_obs", "next_student_obs")


class ReplayBuffer:
    """Ring buffer of transitions for SAC; the oldest are overwritten first.

    Only ``terminated`` is stored as "done": a time-limit truncation is not an end of the
    MDP, so its target bootstraps from ``s'`` (the final state of the episode).

    With ``noise`` (L2T) each transition also keeps the unit draw ``u`` of the student's
    observation ``o = s + alpha * u * |s|``. Storing ``u`` rather than ``o`` fixes one
    noisy observation per transition, as if the simulator had emitted it, while the
    curriculum's ``alpha`` (which changes over training) scales it when it is sampled.

    With ``student_obs_dim`` (COSIL) each transition keeps the student's observations
    ``o`` and ``o'`` as the environment emitted them."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, noise: bool = False,
                 student_obs_dim: int | None = None) -> None:
        self.capacity = capacity
        # torch.empty: pages are touched only as the buffer fills.
        self.obs = torch.empty(capacity, obs_dim)
        self.actions = torch.empty(capacity, action_dim)
        self.rewards = torch.empty(capacity)
        self.next_obs = torch.empty(capacity, obs_dim)
        self.terminated = torch.empty(capacity)
        self.noise = torch.empty(capacity, obs_dim) if noise else None
        student = student_obs_dim is not None
        self.student_obs = torch.empty(capacity, student_obs_dim) if student else None
        self.next_student_obs = torch.empty(capacity, student_obs_dim) if student else None
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def _fields(self) -> dict[str, torch.Tensor]:
        fields = {"obs": self.obs, "actions": self.actions, "rewards": self.rewards,
                  "next_obs": self.next_obs, "terminated": self.terminated}
        for name in _OPTIONAL:
            if getattr(self, name) is not None:
                fields[name] = getattr(self, name)
        return fields

    def add(self, batch: Transitions) -> None:
        """Append one row per environment (at most ``capacity`` rows at once)."""
        n = batch.obs.shape[0]
        if n > self.capacity:
            raise ValueError(f"adding {n} transitions to a buffer of {self.capacity}")
        for name in _OPTIONAL:
            if (getattr(self, name) is None) != (getattr(batch, name) is None):
                raise ValueError(f"the buffer and the batch must both have {name}, or neither")
        rows = (self.cursor + torch.arange(n)) % self.capacity
        for name, storage in self._fields().items():
            storage[rows] = getattr(batch, name).to(storage.dtype)
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Transitions:
        """``batch_size`` transitions drawn uniformly, with replacement."""
        if self.size == 0:
            raise ValueError("sampling from an empty buffer")
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return Transitions(**{name: storage[idx] for name, storage in self._fields().items()})

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "cursor": self.cursor,
                **{name: storage[: self.size].clone()
                   for name, storage in self._fields().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"a buffer of {size} transitions does not fit {self.capacity}")
        for name, storage in self._fields().items():
            storage[:size] = state[name]
        self.size, self.cursor = size, int(state["cursor"])
