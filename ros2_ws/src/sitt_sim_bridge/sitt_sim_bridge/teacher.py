"""The privileged teacher of a training run, acting on the simulator's teacher observation
(demonstrations: the bridge publishes its actions as a policy node would). Imports torch,
so the bridge loads this module only when ``teacher_checkpoint`` is set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sitt_training.cli import load_run


class TeacherActor:
    """Deterministic teacher actions from a run's ``model_<iter>.pt``."""

    def __init__(self, checkpoint: str | Path, task: str) -> None:
        checkpoint = Path(checkpoint)
        torch.set_num_threads(1)  # one drone per step: threads only add overhead
        cfg, self.policy, self.meta = load_run(checkpoint.parent, checkpoint)
        if cfg.task.name != task:
            raise ValueError(f"{checkpoint} was trained on task {cfg.task.name!r}, the bridge "
                             f"simulates {task!r}")
        self.task_kwargs = dict(cfg.task.kwargs)

    @torch.no_grad()
    def __call__(self, teacher_obs: np.ndarray) -> np.ndarray:
        """(1, teacher_dim) float32 -> (action_dim,) normalised action."""
        out = self.policy.teacher_out(torch.from_numpy(np.asarray(teacher_obs, np.float32)))
        return self.policy.decoder.deterministic(out).numpy()[0]
