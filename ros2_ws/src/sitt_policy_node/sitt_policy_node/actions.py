"""The contract's action: bounds, safe value, map to physical units, and where each value
goes in the output message (pure NumPy, no ROS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .observation import read_path

# Where each quadrotor action lands in a geometry_msgs/TwistStamped (the contract's
# ros.action.layout): body rates in twist.angular, collective thrust in twist.linear.z.
# A contract may give its own map as ros.action.fields {action name: message path}.
TWIST_STAMPED_FIELDS = {
    "collective_thrust": "twist.linear.z",
    "roll_rate": "twist.angular.x",
    "pitch_rate": "twist.angular.y",
    "yaw_rate": "twist.angular.z",
}
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"


class ActionMap:
    """Normalised action (the model's output) -> clipped -> physical values."""

    def __init__(self, action: Mapping[str, Any]) -> None:
        self.names = [str(n) for n in action["names"]]
        self.low = np.asarray(action["low"], dtype=np.float32)
        self.high = np.asarray(action["high"], dtype=np.float32)
        self.scale = np.asarray(action["scale"], dtype=np.float64)
        self.offset = np.asarray(action["offset"], dtype=np.float64)
        self.safe = self.clip(np.asarray(action["safe"], dtype=np.float32))

    def clip(self, normalised: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(normalised, dtype=np.float32), self.low, self.high)

    def to_physical(self, normalised: np.ndarray) -> np.ndarray:
        return self.offset + self.scale * np.asarray(normalised, dtype=np.float64)

    def to_normalised(self, physical: np.ndarray) -> np.ndarray:
        """Inverse of ``to_physical`` (for checks and tools)."""
        return (np.asarray(physical, dtype=np.float64) - self.offset) / self.scale


def output_fields(ros_action: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    """{action name: message path} for a TwistStamped output; raises ValueError when an
    action has no place in the message."""
    fields = dict(ros_action.get("fields") or TWIST_STAMPED_FIELDS)
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"action(s) {missing} have no field in {TWIST_STAMPED} "
                         f"(known: {sorted(fields)}); give ros.action.fields in the contract")
    return {n: fields[n] for n in names}


class FieldWriter:
    """Writes each action's physical value to ``msg.<path>`` of one message that is reused
    for every publish (publishing serialises it): the paths are resolved once."""

    def __init__(self, msg: Any, fields: Mapping[str, str], names: Sequence[str]) -> None:
        self.msg = msg
        self._targets = []
        for name in names:
            parent, _, leaf = fields[name].rpartition(".")
            self._targets.append((read_path(msg, parent), leaf))

    def write(self, physical: np.ndarray) -> Any:
        for (obj, leaf), value in zip(self._targets, physical.tolist(), strict=True):
            setattr(obj, leaf, value)
        return self.msg


def write_fields(msg: Any, fields: Mapping[str, str], names: Sequence[str],
                 physical: np.ndarray) -> None:
    """Set ``msg.<path>`` to each action's physical value."""
    FieldWriter(msg, fields, names).write(np.asarray(physical, dtype=np.float64))
