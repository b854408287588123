"""Warm-ups that start once the teacher first succeeds often enough, then ramp in linearly.

Used for SITT's KL terms (``method.kl_after_success`` / ``kl_ramp``) and for task options
that would stop a teacher from learning the task at all if they applied from the start
(``task.ramp_options``: e.g. the quadrotor's ``deviation_weight``, under which teachers
learned to hover before the first pillar instead of passing it).
"""

from __future__ import annotations


class SuccessRamp:
    """A factor 0 until a roll-out's teacher success first reaches ``after_success``
    (``after_success`` <= 0: from iteration 0), then rising linearly to 1 over
    ``ramp_iterations`` iterations (0: at once)."""

    def __init__(self, after_success: float, ramp_iterations: int) -> None:
        self.after_success = float(after_success)
        self.ramp_iterations = int(ramp_iterations)
        self.start: int | None = 0 if self.after_success <= 0 else None

    def observe(self, iteration: int, teacher_success: float | None) -> None:
        """The previous roll-out's teacher success (None: no episode ended in it)."""
        if (self.start is None and teacher_success is not None
                and teacher_success >= self.after_success):
            self.start = iteration

    def factor(self, iteration: int) -> float:
        if self.start is None:
            return 0.0
        if self.ramp_iterations == 0:
            return 1.0
        return min(1.0, (iteration - self.start + 1) / self.ramp_iterations)
