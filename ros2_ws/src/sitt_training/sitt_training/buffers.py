"""FIFO buffer of paired (teacher, student) observations for the student-side updates."""

from __future__ import annotations

import torch


class PairedBuffer:
    """Ring buffer of ``(o_T, o_S)`` pairs; the oldest pairs are overwritten first.

    Student observations keep their dtype (``uint8`` images stay small)."""

    def __init__(self, capacity: int, teacher_shape: tuple[int, ...],
                 student_shape: tuple[int, ...], student_dtype: torch.dtype) -> None:
        self.capacity = capacity
        self.teacher = torch.zeros(capacity, *teacher_shape)
        self.student = torch.zeros(capacity, *student_shape, dtype=student_dtype)
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs_t: torch.Tensor, obs_s: torch.Tensor) -> None:
        n = obs_t.shape[0]
        if n > self.capacity:  # only the newest pairs fit
            obs_t, obs_s, n = obs_t[-self.capacity :], obs_s[-self.capacity :], self.capacity
        first = min(n, self.capacity - self.cursor)  # up to the end, then wrap around
        self.teacher[self.cursor : self.cursor + first] = obs_t[:first]
        self.student[self.cursor : self.cursor + first] = obs_s[:first]
        self.teacher[: n - first] = obs_t[first:]
        self.student[: n - first] = obs_s[first:]
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch; ``batch_size`` 0 (or >= size) returns every stored pair."""
        if batch_size <= 0 or batch_size >= self.size:
            return self.teacher[: self.size], self.student[: self.size]
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return self.teacher[idx], self.student[idx]

    def state_dict(self) -> dict[str, object]:
        return {"teacher": self.teacher[: self.size].clone(),
                "student": self.student[: self.size].clone(),
                "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, object]) -> None:
        teacher, student = state["teacher"], state["student"]
        self.size = teacher.shape[0]
        self.teacher[: self.size] = teacher
        self.student[: self.size] = student
        self.cursor = int(state["cursor"])
