"""Count-based exploration bonus for the teacher: ``beta / sqrt(n(phi(s)))``.

Not part of SITT. It exists because SITT's KL penalty can leave the teacher with no reward
signal at all: on the color maze, once the penalty pushes the teacher out of the maze, every
state it still visits is worth 0, advantages are noise, and whether it ever finds the way
round the maze is luck (docs/color_maze_tuning.md). A bonus for rarely visited states
(Tang et al. 2017, "#Exploration") gives it a direction: away from the cells it has
wandered over for thousands of steps, toward the side corridors it has not.

How states are counted depends on ``bits``:

* ``bits = 0``: exactly, one count per distinct observation (a 64-bit digest of its bytes).
  Right for grid tasks, whose observations repeat exactly.
* ``bits > 0``: by SimHash, ``phi(s)`` = the sign pattern of ``bits`` random projections
  of ``[s, 1]`` (the constant makes the hash depend on the scale of ``s`` too), so nearby
  continuous states share a count. Coarse by design: on a grid it merges neighbouring cells.

Counts accumulate over the whole run (the bonus decays as states become familiar) and are
part of the checkpoint.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from .rows import Rows


class CountBonus:
    """SimHash state counts and the bonus they give."""

    def __init__(self, obs_dim: int, coef: float, bits: int = 0, seed: int = 0) -> None:
        if not 0 <= bits <= 63:
            raise ValueError(f"bits must be in 0..63, got {bits}")
        self.coef = coef
        self.bits = bits
        rng = np.random.default_rng(seed)
        self.projection = rng.standard_normal((obs_dim + 1, bits)).astype(np.float32)
        self.powers = (1 << np.arange(bits, dtype=np.int64))
        self.keys = np.zeros(0, dtype=np.int64)  # sorted
        self.counts = np.zeros(0, dtype=np.int64)

    def hash(self, obs: np.ndarray) -> np.ndarray:
        """One int64 key per row of ``obs``."""
        if self.bits == 0:
            rows = np.ascontiguousarray(obs, dtype=np.float32)
            return np.array([int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(),
                                            "little", signed=True) for r in rows],
                            dtype=np.int64)
        x = np.concatenate([obs.astype(np.float32, copy=False),
                            np.ones((len(obs), 1), np.float32)], axis=1)
        return ((x @ self.projection) > 0).astype(np.int64) @ self.powers

    def add_and_score(self, obs: Rows) -> tuple[torch.Tensor, dict[str, float]]:
        """Count every sample of ``obs``, then return each sample's bonus."""
        index = obs.index if obs.index is not None else torch.arange(len(obs.unique))
        keys = self.hash(obs.unique.numpy())
        batch_keys, inverse = np.unique(keys, return_inverse=True)
        batch_counts = np.bincount(inverse[index.numpy()], minlength=len(batch_keys))
        merged = np.concatenate([self.keys, batch_keys])
        self.keys, where = np.unique(merged, return_inverse=True)
        counts = np.zeros(len(self.keys), dtype=np.int64)
        np.add.at(counts, where[:len(self.counts)], self.counts)
        np.add.at(counts, where[len(self.counts):], batch_counts)
        self.counts = counts
        per_key = self.coef / np.sqrt(counts[np.searchsorted(self.keys, batch_keys)])
        bonus = torch.from_numpy(per_key[inverse].astype(np.float32)).index_select(0, index)
        return bonus, {"explore/bonus": bonus.mean().item(),
                       "explore/states_seen": float(len(self.keys))}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys.copy(), "counts": self.counts.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.keys, self.counts = state["keys"].copy(), state["counts"].copy()
