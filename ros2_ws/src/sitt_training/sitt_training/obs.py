"""Student observations on the torch side: a tensor (grid tasks) or a dict of tensors
(camera tasks: ``{"image": uint8 (N, H, W, 3), "state": float32 (N, D)}``).

These few helpers let the trainer, the buffer and the methods treat both alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ObsTree = torch.Tensor | dict[str, torch.Tensor]


def to_torch(obs: np.ndarray | dict[str, np.ndarray]) -> ObsTree:
    """NumPy observation(s) -> tensors sharing their memory."""
    if isinstance(obs, dict):
        return {key: torch.from_numpy(value) for key, value in obs.items()}
    return torch.from_numpy(obs)


def take(obs: ObsTree, index: Any) -> ObsTree:
    """Rows ``index`` (a mask, indices or a slice) of every tensor."""
    if isinstance(obs, dict):
        return {key: value[index] for key, value in obs.items()}
    return obs[index]


def num_rows(obs: ObsTree) -> int:
    if isinstance(obs, dict):
        return next(iter(obs.values())).shape[0]
    return obs.shape[0]


def is_flat(obs: ObsTree) -> bool:
    """A plain 2-D float/int vector batch (rows can be deduplicated)."""
    return isinstance(obs, torch.Tensor) and obs.dim() == 2
