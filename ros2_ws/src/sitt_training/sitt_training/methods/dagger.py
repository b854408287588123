"""``dagger``: BC on the states the student itself visits (METHODS.md section 4).

In the first ``dagger_envs`` rendering environments the student's sampled action is executed
with probability 1 - beta_k, beta_k = beta0 * decay^k at iteration k; the teacher labels every
visited state (the buffer aggregates them, FIFO) and the student regresses those labels as
in BC. Once beta < 1 those environments collect for the student only: their transitions
(whoever acted) are shaped by the student and are left out of the teacher's PPO loss, so
the teacher learns from the other environments, as it would in BC."""

from __future__ import annotations

import torch

from ..buffers import PairedBuffer
from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy
from ..obs import ObsTree, take
from .bc import BC


class DAgger(BC):
    name = "dagger"

    def __init__(self, policy: TeacherStudentPolicy, cfg: MethodConfig,
                 ppo: PPOConfig | None = None) -> None:
        super().__init__(policy, cfg, ppo)
        self.beta = cfg.dagger_beta0

    def choose_actions(self, teacher_actions: torch.Tensor,
                       obs_s: ObsTree, generator: torch.Generator,
                       student_rows: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        self.beta = self.cfg.dagger_beta0 * self.cfg.dagger_beta_decay**self.iteration
        n = teacher_actions.shape[0]
        # The student can only act where it sees: the first dagger_envs rendering rows
        # (with task.rotate_student_envs they move to a new block each roll-out).
        rendering = (torch.arange(n) if student_rows is None
                     else torch.nonzero(student_rows).flatten())
        mine = rendering[: self.cfg.dagger_envs]
        for_teacher = torch.ones(n, dtype=torch.bool)
        if self.beta < 1.0:
            for_teacher[mine] = False
        student_turn = torch.zeros(n, dtype=torch.bool)
        student_turn[mine] = torch.rand(len(mine), generator=generator) >= self.beta
        if not student_turn.any():
            return teacher_actions, for_teacher
        with torch.no_grad():
            out = self.policy.student_out(take(obs_s, student_turn))
            student_actions = self.policy.decoder.sample(out)
        actions = teacher_actions.clone()
        actions[student_turn] = student_actions
        return actions, for_teacher

    def update_student(self, buffer: PairedBuffer, generator: torch.Generator
                       ) -> dict[str, float]:
        return {**super().update_student(buffer, generator), "dagger/beta": self.beta}
