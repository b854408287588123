"""Warm-ups that start once the teacher first succeeds often enough, then ramp in linearly.

Used for SITT's KL terms (``method.kl_after_success`` / ``kl_ramp`` /
``kl_success_episodes``) and for task options that would stop a teacher from learning the
task at all if they applied from the start (``task.ramp_options``: e.g. the quadrotor's
``deviation_weight``, under which teachers learned to hover before the first pillar instead
of passing it).
"""

from __future__ import annotations

from collections import deque
from typing import Any


class SuccessRamp:
    """A factor 0 until the teacher's success rate first reaches ``after_success``
    (``after_success`` <= 0: from iteration 0), then rising linearly to 1 over
    ``ramp_iterations`` iterations (0: at once).

    The rate is the previous roll-out's (``min_episodes`` 0), or, with ``min_episodes``
    N > 0, that of the latest roll-outs that together ended at least N episodes: one lucky
    episode in a roll-out where only one ended does not count as a teacher that succeeds."""

    def __init__(self, after_success: float, ramp_iterations: int,
                 min_episodes: int = 0) -> None:
        self.after_success = float(after_success)
        self.ramp_iterations = int(ramp_iterations)
        self.min_episodes = int(min_episodes)
        self.start: int | None = 0 if self.after_success <= 0 else None
        # (successes, episodes) of the latest roll-outs, while min_episodes > 0.
        self.window: deque[tuple[float, int]] = deque()

    def observe(self, iteration: int, teacher_success: float | None,
                episodes: int = 0) -> None:
        """The previous roll-out's teacher success rate over the ``episodes`` that ended in
        it (None: no episode ended)."""
        if self.start is not None or teacher_success is None:
            return
        rate = teacher_success
        if self.min_episodes > 0:
            self.window.append((teacher_success * episodes, episodes))
            total = sum(n for _, n in self.window)
            while total - self.window[0][1] >= self.min_episodes:
                total -= self.window.popleft()[1]
            if total < self.min_episodes:
                return
            rate = sum(s for s, _ in self.window) / total
        if rate >= self.after_success:
            self.start = iteration

    def state_dict(self) -> dict[str, Any]:
        return {"start": self.start, "window": [list(pair) for pair in self.window]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.start = state["start"]
        self.window = deque((float(s), int(n)) for s, n in state.get("window", []))

    def factor(self, iteration: int) -> float:
        if self.start is None:
            return 0.0
        if self.ramp_iterations == 0:
            return 1.0
        return min(1.0, (iteration - self.start + 1) / self.ramp_iterations)
