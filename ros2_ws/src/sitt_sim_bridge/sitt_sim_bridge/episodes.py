"""Episode results and the run summary, as JSON-ready dicts.

Each finished episode is published on ``~/episode_result`` (``std_msgs/String``, one JSON
object; custom messages cannot be built on these machines), e.g.::

    {"episode": 0, "seed": 1000033, "success": true, "return": 17.2, "length": 1000,
     "crash_pillar": false, "crash_bounds": false, "velocity_angle_deg": 12.5,
     "obstacles_in_view": 2.0, "progress_fraction": 0.83, "line_offset_m": 1.4,
     "sim_time_s": 20.52,
     "safe_actions": 0, "rejected_actions": 0}

(the arm's: ``max_opening``, ``max_drawer_speed``, ``grasped_fraction``, ``handle_visible``
instead of the quadrotor's crash flags and perception metrics).
``episode`` k ran the layout of environment k of ``evaluate(..., episodes=N, seed)``;
``return`` / ``length`` / ``success`` and the task metrics are the environment's own
episode summary (``infos["episode"]``). ``safe_actions``: steps of this episode that
applied the safe action because no valid action came in time; ``rejected_actions``:
action messages rejected (NaN/Inf, wrong frame, wrong number of joint targets) during it.

The summary (printed as one JSON line when the bridge finishes) has the same keys as
``EvalResult.summary()`` (``episodes``, ``success``, ``return``, ``length`` and the
task metrics, averaged), so HIL and in-process evaluation compare key by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

FLAGS = ("crash_pillar", "crash_bounds")  # 0/1 in the env summary, booleans here
NOT_AVERAGED = ("episode", "seed", "sim_time_s", "safe_actions", "rejected_actions")


def episode_result(index: int, seed: int, episode: Mapping[str, np.ndarray],
                   row: int = 0, **extra: Any) -> dict[str, Any]:
    """One finished episode from ``infos["episode"]`` (row ``row``)."""
    out: dict[str, Any] = {"episode": int(index), "seed": int(seed),
                           "success": bool(episode["success"][row] > 0.5),
                           "return": float(episode["r"][row]),
                           "length": int(episode["l"][row])}
    for key, values in episode.items():
        if key in ("r", "l", "success"):
            continue
        value = values[row]
        out[key] = bool(value > 0.5) if key in FLAGS else float(value)
    out.update(extra)
    return out


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the episodes, keyed like ``EvalResult.summary()``."""
    if not results:
        return {"episodes": 0}
    out: dict[str, Any] = {"episodes": len(results)}
    keys = [k for k, v in results[0].items()
            if k not in NOT_AVERAGED and isinstance(v, (bool, int, float))]
    for key in keys:
        out[key] = float(np.mean([float(r[key]) for r in results]))
    return out
