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


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """A 64-bit key per row: two float32 dot products with fixed random weights, read as
    one integer. One small matrix product, far cheaper than hashing every byte; equal rows
    get equal keys, and ``unique_rows`` verifies the rare distinct rows that collide."""
    width = rows.shape[1]
    if width not in _HASH_WEIGHTS:
        rng = np.random.default_rng(width)
        _HASH_WEIGHTS[width] = (0.5 + rng.random((width, 2))).astype(np.float32)
    return np.ascontiguousarray(rows.astype(np.float32, copy=False) @ _HASH_WEIGHTS[width]
                                ).view(np.uint64).reshape(-1)


def unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unique, index)`` with ``unique[index] == x`` exactly, for a 2-D tensor.

    Rows are keyed to 64 bits and the keys sorted (far faster than
    ``torch.unique(dim=0)``); the result is verified and recomputed exactly on a collision.
    """
    if x.shape[0] == 0:
        return x, torch.zeros(0, dtype=torch.long)
    flat = x.reshape(x.shape[0], -1).contiguous()
    keys = _row_keys(flat.numpy())
    order = np.argsort(keys)
    sorted_keys = keys[order]
    starts = np.empty(len(keys), dtype=bool)  # first of each run of equal keys
    starts[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    index = np.empty(len(keys), dtype=np.int64)
    index[order] = np.cumsum(starts) - 1
    unique = flat[torch.from_numpy(order[starts])]
    index_t = torch.from_numpy(index)
    if not torch.equal(unique.index_select(0, index_t), flat):  # collision: exact fallback
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

    def gather(self, per_row: torch.Tensor) -> torch.Tensor:
        """Values computed on ``unique`` (one per distinct row), one per sample."""
        # index_select: its backward (index_add) is several times faster than indexing's.
        return per_row if self.index is None else per_row.index_select(0, self.index)

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
