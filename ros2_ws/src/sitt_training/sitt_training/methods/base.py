"""What a method may change in the shared training loop, as named hooks.

The trainer runs, every iteration: roll-out (teacher acts; ``choose_actions`` may hand some
steps to the student; after the roll-out ``end_rollout`` sees what the environments returned,
then ``shape_rewards`` may change the teacher's rewards) -> PPO update of the
teacher (``extra_policy_loss`` added to its loss) -> ``update_student`` on the FIFO buffer of
paired observations. A method is one small class overriding only what it changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..buffers import PairedBuffer
from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy
from ..obs import ObsTree
from ..ppo import Batch
from ..rows import Rows, paired_rows


class Method:
    """Teacher trained by plain PPO; no student update (subclasses add one)."""

    name = "base"
    # Keyword arguments for TeacherStudentPolicy that this method needs (trainer.build_policy).
    network_options: dict[str, bool] = {}

    def __init__(self, policy: TeacherStudentPolicy, cfg: MethodConfig,
                 ppo: PPOConfig | None = None) -> None:
        self.policy = policy
        self.cfg = cfg
        # The run's PPO settings (HLRL's student runs the same RL algorithm as the teacher).
        self.ppo = ppo if ppo is not None else PPOConfig()
        self.iteration = 0
        self.student_optimizer = torch.optim.Adam(policy.student_encoder.parameters(),
                                                  lr=cfg.align_lr)

    def start_iteration(self, iteration: int, teacher_success: float | None,
                        episodes: int = 0) -> None:
        """Called before each roll-out, for schedules; ``teacher_success`` is the success
        rate of the ``episodes`` that ended in the previous roll-out (None if none did)."""
        self.iteration = iteration

    # ------------------------------------------------------------ roll-out hooks
    def shape_rewards(self, obs_t: Rows, rewards: torch.Tensor,
                      skipped: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """Rewards the teacher learns from, given the whole roll-out at once (after it):
        ``rewards[i]`` was earned by acting in state ``obs_t`` row i; ``skipped[i]``, where
        that step ended its episode by a termination, the discounted number of steps the
        termination cut off before the time limit (0 elsewhere)."""
        return rewards, {}

    def choose_actions(self, teacher_actions: torch.Tensor,
                       obs_s: ObsTree, generator: torch.Generator,
                       student_rows: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions to execute, and a mask of the transitions the teacher may learn from.
        ``student_rows`` marks the environments that render this roll-out (None: all)."""
        return teacher_actions, torch.ones(teacher_actions.shape[0], dtype=torch.bool)

    def end_rollout(self, obs_t: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor,
                    truncations: list[tuple[int, np.ndarray, np.ndarray]],
                    last_obs_t: torch.Tensor) -> None:
        """Called once after each roll-out with what the environments returned, before the
        trainer bootstraps truncated episodes with the *teacher's* critic and shapes the
        teacher's rewards: ``obs_t`` (T, N, D), the raw ``rewards`` and ``dones`` (T, N), the
        ``truncations`` as (step, environments, their final o_T) and the o_T after the last
        step. For methods that learn from their own transitions; copy what you keep."""

    # -------------------------------------------------------------- update hooks
    def extra_policy_loss(self, batch: Batch, teacher_out: torch.Tensor
                          ) -> tuple[torch.Tensor, dict[str, float]] | None:
        """A term added to the teacher's PPO loss, or None. ``teacher_out`` holds the
        teacher's output for each row of ``batch.obs.unique``."""
        return None

    def update_student(self, buffer: PairedBuffer, generator: torch.Generator
                       ) -> dict[str, float]:
        """Student-side training after each PPO update. Never moves the teacher or D."""
        return {}

    # ------------------------------------------------------------- checkpointing
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.student_optimizer}

    def state_dict(self) -> dict[str, Any]:
        """Schedule state that a resumed run needs (beyond the policy's networks and the
        optimisers), and the networks a method owns outside the policy."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def l1(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over samples given with weights that sum to one."""
    return ((a - b).abs().mean(dim=-1) * weights).sum()


def paired_batches(buffer: PairedBuffer, cfg: MethodConfig, generator: torch.Generator
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``align_iterations`` batches of distinct (o_T, o_S) pairs with their weights.

    With ``align_batch_size`` 0 every iteration uses the whole buffer (paper, color maze),
    so its distinct pairs are found once."""
    whole = None
    for _ in range(cfg.align_iterations):
        if cfg.align_batch_size <= 0 or cfg.align_batch_size >= len(buffer):
            whole = whole or paired_rows(*buffer.sample(0, generator))
            yield whole
        else:
            yield paired_rows(*buffer.sample(cfg.align_batch_size, generator))
