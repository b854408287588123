"""The policy's inputs built from ROS messages, driven by the policy contract alone.

Pure NumPy: messages are read by attribute path (``twist.twist.linear``), so the same code
takes rclpy messages on the robot and plain objects in unit tests. Nothing here knows a
task: every field's source and transform comes from the contract's ``state_fields`` (see
``sitt_policy_node.contract``), and the camera conversion from its ``camera`` section.

Math is float64, cast to float32 at the end, as the environments do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PREVIOUS_ACTION = "previous_action"
JOINT_STATE = "joint_state"
DEFAULT_ORIENTATION_FIELD = "pose.pose.orientation"  # odometry's body -> world attitude
CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
# ITU-R BT.601 luma, what OpenCV uses for RGB -> grey.
LUMA_RGB = np.array([0.299, 0.587, 0.114])


class InputError(ValueError):
    """A message the policy must not use; the message says why."""


class NonFiniteInput(InputError):
    """A message with NaN or Inf in a value the policy uses."""


# --------------------------------------------------------------------------- helpers
def quaternion_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3), body -> world, of a quaternion in ROS order x, y, z, w.
    Normalised first: a robot's odometry is not always exactly unit length."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    norm = math.sqrt(float(q @ q))
    if not norm > 1e-9:
        raise InputError(f"orientation quaternion {q.tolist()} has no length")
    x, y, z, w = q / norm
    return np.array([
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y)],
        [2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x)],
        [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)],
    ])


def read_path(msg: Any, path: str) -> Any:
    """``msg.a.b.c`` for ``path == "a.b.c"`` (mappings are indexed by key)."""
    value = msg
    for part in path.split(".") if path else ():
        try:
            value = value[part] if isinstance(value, Mapping) else getattr(value, part)
        except (KeyError, AttributeError) as err:
            raise InputError(f"message has no field {path!r}") from err
    return value


def as_vector(value: Any) -> np.ndarray:
    """A message value as float64: quaternions as x, y, z, w, vectors as x, y, z,
    numbers as one value, sequences element-wise."""
    if all(hasattr(value, k) for k in ("x", "y", "z", "w")):
        return np.array([value.x, value.y, value.z, value.w], dtype=np.float64)
    if all(hasattr(value, k) for k in ("x", "y", "z")):
        return np.array([value.x, value.y, value.z], dtype=np.float64)
    return np.asarray(value, dtype=np.float64).reshape(-1)


# --------------------------------------------------------------------------- state
@dataclass(frozen=True)
class FieldSpec:
    """One ``state_fields`` entry of the contract, the parts the node needs."""

    name: str
    size: int
    ros_input: str
    ros_field: str
    transform: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_contract(cls, entry: Mapping[str, Any]) -> FieldSpec:
        return cls(str(entry["name"]), int(entry["size"]), str(entry["ros_input"]),
                   str(entry["ros_field"]), str(entry["transform"]),
                   dict(entry.get("params") or {}))


def _joint_values(spec: FieldSpec, msg: Any) -> np.ndarray:
    """The listed joints' values by name (a driver may publish joints in any order)."""
    wanted = spec.params.get("joints")
    if not wanted:
        raise InputError(f"field {spec.name!r}: joint_state field lists no params.joints")
    names = list(read_path(msg, "name"))
    values = np.asarray(read_path(msg, spec.ros_field), dtype=np.float64).reshape(-1)
    if len(values) != len(names):
        raise InputError(f"joint_state: {len(names)} names but {len(values)} "
                         f"{spec.ros_field} values")
    index = {n: i for i, n in enumerate(names)}
    missing = [j for j in wanted if j not in index]
    if missing:
        raise InputError(f"joint_state: no joint(s) {missing} (it has {names})")
    return values[[index[j] for j in wanted]]


def field_value(spec: FieldSpec, msg: Any) -> np.ndarray:
    """The field's float64 values from its message, transform applied."""
    if spec.ros_input == JOINT_STATE:
        value = _joint_values(spec, msg)
    else:
        value = as_vector(read_path(msg, spec.ros_field))
    if not np.isfinite(value).all():
        raise NonFiniteInput(f"field {spec.name!r} ({spec.ros_field}) is not finite: "
                             f"{value.tolist()}")
    if spec.transform == "rotate_body_to_world":
        path = spec.params.get("orientation_field", DEFAULT_ORIENTATION_FIELD)
        quat = as_vector(read_path(msg, path))
        if not np.isfinite(quat).all():
            raise NonFiniteInput(f"field {spec.name!r}: orientation {path} is not finite")
        value = quaternion_to_matrix(quat) @ value
    elif spec.transform == "rotation_matrix_columns_xy":
        rot = quaternion_to_matrix(value)
        value = np.concatenate([rot[:, 0], rot[:, 1]])
    elif spec.transform == "scale_offset":
        offset = np.asarray(spec.params.get("offset", 0.0), dtype=np.float64)
        scale = np.asarray(spec.params.get("scale", 1.0), dtype=np.float64)
        value = (value - offset) * scale
    elif spec.transform != "none":
        raise InputError(f"field {spec.name!r}: unknown transform {spec.transform!r}")
    if value.shape != (spec.size,):
        raise InputError(f"field {spec.name!r}: expected {spec.size} values, got "
                         f"{value.size} from {spec.ros_field!r}")
    return value


class StateBuilder:
    """Builds the ``state`` input from the contract's ordered ``state_fields``.

    ``extract`` runs when a message arrives (so a bad message is rejected at once and the
    control step only concatenates); ``assemble`` joins the parts with the previous action.
    """

    def __init__(self, state_fields: Sequence[Mapping[str, Any]]) -> None:
        self.fields = [FieldSpec.from_contract(f) for f in state_fields]
        self.size = sum(f.size for f in self.fields)
        # The ROS inputs this state needs, in first-use order (previous_action is internal).
        self.inputs = tuple(dict.fromkeys(
            f.ros_input for f in self.fields if f.ros_input != PREVIOUS_ACTION))
        self._by_input = {name: [f for f in self.fields if f.ros_input == name]
                          for name in self.inputs}
        self._out = np.empty(self.size, dtype=np.float64)

    def extract(self, ros_input: str, msg: Any) -> dict[str, np.ndarray]:
        """Every field that comes from ``ros_input``, from one message. Raises InputError
        (NonFiniteInput for NaN/Inf) when the message cannot be used."""
        return {f.name: field_value(f, msg) for f in self._by_input[ros_input]}

    def assemble(self, parts: Mapping[str, np.ndarray],
                 previous_action: np.ndarray) -> np.ndarray:
        """The float32 state vector; ``parts`` holds every non-previous-action field."""
        start = 0
        for f in self.fields:
            if f.ros_input == PREVIOUS_ACTION:
                value = np.asarray(previous_action, dtype=np.float64)
                if value.shape != (f.size,):
                    raise InputError(f"field {f.name!r}: previous action has "
                                     f"{value.size} values, expected {f.size}")
            else:
                value = parts[f.name]
            self._out[start:start + f.size] = value
            start += f.size
        return self._out.astype(np.float32)

    def build(self, messages: Mapping[str, Any], previous_action: np.ndarray) -> np.ndarray:
        """``assemble`` straight from one message per ROS input (offline use, tests)."""
        parts: dict[str, np.ndarray] = {}
        for name in self.inputs:
            parts.update(self.extract(name, messages[name]))
        return self.assemble(parts, previous_action)


# --------------------------------------------------------------------------- camera
class ImageConverter:
    """``sensor_msgs/Image`` -> the model's ``uint8`` (H, W, C) pixels in the contract's
    encoding. Accepts rgb8, bgr8 and mono8 of the contract's size, any row stride."""

    def __init__(self, camera: Mapping[str, Any]) -> None:
        self.width = int(camera["width"])
        self.height = int(camera["height"])
        self.encoding = str(camera["encoding"])
        if self.encoding not in CHANNELS:
            raise InputError(f"contract camera encoding {self.encoding!r} not supported")

    def convert(self, msg: Any) -> np.ndarray:
        encoding = str(msg.encoding)
        if encoding not in CHANNELS:
            raise InputError(f"image encoding {encoding!r} not supported (expected one of "
                             f"{sorted(CHANNELS)})")
        width, height, step = int(msg.width), int(msg.height), int(msg.step)
        if (width, height) != (self.width, self.height):
            raise InputError(f"image is {width}x{height}, the model needs "
                             f"{self.width}x{self.height}")
        channels = CHANNELS[encoding]
        row = width * channels
        data = np.frombuffer(msg.data, dtype=np.uint8)
        if step < row or data.size < step * (height - 1) + row:
            raise InputError(f"image data ({data.size} bytes, step {step}) too short for "
                             f"{width}x{height} {encoding}")
        # Rows may be padded (step > width * channels): take each row's first bytes.
        pixels = np.lib.stride_tricks.as_strided(
            data, shape=(height, width, channels), strides=(step, channels, 1),
            writeable=False)
        return self._to_contract(pixels, encoding)

    def _to_contract(self, pixels: np.ndarray, encoding: str) -> np.ndarray:
        want = self.encoding
        if encoding == want:
            out = pixels
        elif want == "mono8":
            rgb = pixels[..., ::-1] if encoding == "bgr8" else pixels
            luma = rgb.astype(np.float64) @ LUMA_RGB
            out = np.rint(luma).astype(np.uint8)[..., None]
        elif encoding == "mono8":  # grey -> colour: repeat the channel
            out = np.repeat(pixels, 3, axis=2)
        else:  # rgb8 <-> bgr8: swap the channel order
            out = pixels[..., ::-1]
        return np.ascontiguousarray(out)
