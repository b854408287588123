"""Observation batches stored as unique rows plus an index: exact, and much cheaper when
observations repeat.

Grid tasks revisit the same observations constantly (the color maze's 250k-sample roll-out
holds a few thousand distinct teacher observations), so running a network on the unique
rows and gathering the outputs gives the same values and the same gradients as running it
on every sample, at a fraction of the cost. Image observations never repeat; for them
``Rows.of(x, dedupe=False)`` is a plain batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .obs import ObsTree, is_flat

_HASH_WEIGHTS: dict[int, np.ndarray] = {}


def _weights(width: int) -> np.ndarray:
    if width not in _HASH_WEIGHTS:
        rng = np.random.default_rng(width)
        _HASH_WEIGHTS[width] = rng.integers(1, 2**63, size=width, dtype=np.uint64) | 1
    return _HASH_WEIGHTS[width]


def unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unique, index)`` with ``unique[index] == x`` exactly, for a 2-D tensor.

    Rows are hashed to 64 bits (a sort of one integer per row is far faster than
    ``torch.unique(dim=0)``); the result is verified and recomputed exactly on a collision.
    """
    flat = x.reshape(x.shape[0], -1).contiguous()
    raw = flat.numpy()
    bits = raw.view(np.uint8) if raw.dtype.itemsize == 1 else raw.view(f"u{raw.dtype.itemsize}")
    keys = (bits.astype(np.uint64) * _weights(bits.shape[1])).sum(axis=1, dtype=np.uint64)
    _, first, index = np.unique(keys, return_index=True, return_inverse=True)
    unique = flat[torch.from_numpy(first)]
    index_t = torch.from_numpy(index.reshape(-1))
    if not torch.equal(unique[index_t], flat):  # hash collision: exact fallback
        unique, index_t = torch.unique(flat, dim=0, return_inverse=True)
    return unique.reshape(-1, *x.shape[1:]), index_t


@dataclass
class Rows:
    """A batch of observations: ``unique[index]``, or just ``unique`` when index is None."""

    unique: torch.Tensor
    index: torch.Tensor | None = None

    @classmethod
    def of(cls, x: torch.Tensor, dedupe: bool) -> Rows:
        if not dedupe:
            return cls(x)
        unique, index = unique_rows(x)
        # Not worth the gather when most rows are distinct.
        return cls(unique, index) if len(unique) < 0.5 * len(x) else cls(x)

    def __len__(self) -> int:
        return len(self.unique) if self.index is None else len(self.index)

    def subset(self, idx: torch.Tensor) -> Rows:
        if self.index is None:
            return Rows(self.unique[idx])
        return Rows(self.unique, self.index[idx])

    def apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``fn`` of every row, computed once per distinct row."""
        out = fn(self.unique)
        return out if self.index is None else out[self.index]

    def dense(self) -> torch.Tensor:
        return self.unique if self.index is None else self.unique[self.index]


def paired_rows(obs_t: torch.Tensor, obs_s: ObsTree
                ) -> tuple[torch.Tensor, ObsTree, torch.Tensor]:
    """Distinct ``(o_T, o_S)`` pairs and their weights (count / total), so that a mean
    over all pairs equals the weighted sum over distinct ones. Pairs with image student
    observations are returned as they are, with equal weights."""
    n = obs_t.shape[0]
    if not is_flat(obs_s) or obs_t.dim() != 2:
        return obs_t, obs_s, torch.full((n,), 1.0 / n)
    joint = torch.cat([obs_t, obs_s.to(obs_t.dtype)], dim=1)
    unique, index = unique_rows(joint)
    weights = torch.bincount(index, minlength=len(unique)).to(obs_t.dtype) / n
    width = obs_t.shape[1]
    return unique[:, :width], unique[:, width:].to(obs_s.dtype), weights
