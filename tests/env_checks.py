"""Checks shared by the task tests."""

from __future__ import annotations

from typing import Any

import numpy as np


def assert_same_obs(first: Any, second: Any) -> None:
    """Observations equal in every group and key (arrays or nested dicts of arrays)."""
    if isinstance(first, dict):
        assert first.keys() == second.keys()
        for key in first:
            assert_same_obs(first[key], second[key])
    else:
        np.testing.assert_array_equal(first, second)


def assert_same_steps(first: list[tuple], second: list[tuple]) -> None:
    """Two runs of ``VecEnv.step`` results are identical: observations, rewards and episode
    ends (what a checkpoint/resume must reproduce exactly)."""
    assert len(first) == len(second)
    for (o1, r1, t1, u1, _), (o2, r2, t2, u2, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(u1, u2)
        assert_same_obs(o1, o2)
