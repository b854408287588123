"""The L2T observation noise (METHODS.md section 3; L2T paper, section 4.1.1):

    o = s + alpha * eps,   eps_i ~ U[-|s_i|, |s_i|]

i.e. every entry of the true state is perturbed by up to ``alpha`` times its own magnitude
(zero entries stay exact). We write ``eps = u * |s|`` with ``u_i ~ U[-1, 1]``: the unit
draw ``u`` does not depend on ``alpha``, so the off-policy trainer stores ``u`` once per
transition and scales it by the curriculum's current ``alpha_k`` when it samples
(``noisy_observation(s, u, alpha_k)``). The task side (evaluation, deployment condition)
uses ``l2t_observation`` with the full ``alpha``.

Works on NumPy arrays and torch tensors alike (the arithmetic is the same). No torch
import at module level: the tasks (``envs/``, also used by the sim bridge) must stay
torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

Array = TypeVar("Array", "np.ndarray", "torch.Tensor")


def noisy_observation(state: Array, unit: Array, alpha: float) -> Array:
    """``s + alpha * u * |s|`` for unit draws ``u`` in [-1, 1] (same shape as ``s``)."""
    return state + alpha * unit * abs(state)


def unit_noise_numpy(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``u ~ U[-1, 1]`` per entry (float32)."""
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def unit_noise_torch(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """``u ~ U[-1, 1]`` per entry (float32), from ``generator``."""
    import torch  # here, not at the top: see the module docstring

    return torch.rand(shape, generator=generator) * 2.0 - 1.0


def l2t_observation(state: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """One noisy observation of ``state`` at noise scale ``alpha`` (NumPy, for tasks)."""
    state = np.asarray(state, dtype=np.float32)
    return noisy_observation(state, unit_noise_numpy(rng, state.shape), alpha)


def curriculum_alpha(alpha: float, iteration: int, iterations: int, fraction: float) -> float:
    """The student's noise scale at ``iteration`` (0-based) of ``iterations``: it ramps
    linearly from 0 to ``alpha`` over the first ``fraction`` of training and stays at
    ``alpha`` after it; ``fraction`` 0 is no curriculum (``alpha`` from the start)."""
    ramp = fraction * iterations
    if ramp <= 0:
        return float(alpha)
    return float(alpha) * min(1.0, iteration / ramp)
