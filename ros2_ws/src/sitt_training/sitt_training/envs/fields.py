"""Named fields of a proprioceptive observation vector: the one description of its layout.

A task lists the fields of its student ``state`` vector in order. The environment builds
the vector from this list (``concat_fields``), the exporter writes the list into the
policy contract, and the policy node builds the same vector from the contract and ROS
messages alone. Each field says where it comes from on ROS (``ros``): which input
(``odometry``, ``command``, ``joint_state`` or ``previous_action``), which message field,
and the transform applied to it. Transforms known to the deploy side:

* ``none``: the message field as it is (a vector3 as x, y, z; a scalar as one value);
* ``rotate_body_to_world``: a vector in the odometry child (body) frame, rotated into the
  odometry header (world) frame by ``pose.pose.orientation``;
* ``rotation_matrix_columns_xy``: the first two columns of the rotation matrix of a
  quaternion (body -> world), column-major: R[:,0] then R[:,1];
* ``scale_offset``: ``(value - offset) * scale`` element-wise, with ``offset`` and ``scale``
  given in ``params`` (joint positions mapped to [-1, 1], for example).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

ROS_INPUTS = ("odometry", "command", "joint_state", "previous_action")
TRANSFORMS = ("none", "rotate_body_to_world", "rotation_matrix_columns_xy", "scale_offset")


@dataclass(frozen=True)
class ObsField:
    """One named slice of an observation vector."""

    name: str
    size: int
    unit: str  # SI unit, e.g. "m/s", "rad/s", "1" for dimensionless
    frame: str  # e.g. "world (ENU)", "body (FLU)", "-" when not a vector
    description: str
    ros_input: str  # one of ROS_INPUTS
    ros_field: str  # message field path, e.g. "twist.twist.linear"; "" for previous_action
    transform: str = "none"  # one of TRANSFORMS
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"field {self.name!r}: size must be >= 1, got {self.size}")
        if self.ros_input not in ROS_INPUTS:
            raise ValueError(f"field {self.name!r}: ros_input must be one of {ROS_INPUTS}, "
                             f"got {self.ros_input!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"field {self.name!r}: transform must be one of {TRANSFORMS}, "
                             f"got {self.transform!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fields_size(fields: Sequence[ObsField]) -> int:
    return sum(f.size for f in fields)


def field_slices(fields: Sequence[ObsField]) -> dict[str, slice]:
    """Where each field lies in the vector."""
    out, start = {}, 0
    for f in fields:
        out[f.name] = slice(start, start + f.size)
        start += f.size
    return out


def concat_fields(fields: Sequence[ObsField], values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The observation vector ``(batch, fields_size)`` from per-field arrays ``(batch, size)``,
    in the listed order. Missing, extra or wrongly sized fields are errors."""
    missing = [f.name for f in fields if f.name not in values]
    extra = sorted(set(values) - {f.name for f in fields})
    if missing or extra:
        raise ValueError(f"observation fields: missing {missing}, unexpected {extra}")
    parts = []
    for f in fields:
        v = np.asarray(values[f.name], dtype=np.float32)
        v = v.reshape(v.shape[0], -1)
        if v.shape[1] != f.size:
            raise ValueError(f"field {f.name!r}: expected {f.size} values, got {v.shape[1]}")
        parts.append(v)
    return np.concatenate(parts, axis=1)
