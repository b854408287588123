"""The simulated robot's ROS messages, built from a task's accessors, and the action back.

What a real quadrotor's drivers would publish (REP 103 / 105): odometry with the pose in
``world`` (ENU) and the twist in the child frame ``base_link`` (FLU), the camera image in
its optical frame with a matching ``CameraInfo``, the velocity command in ``world``, and
``/clock`` (the simulator owns time). The action comes back as the contract's
``geometry_msgs/TwistStamped`` (``twist.angular`` body rates, ``twist.linear.z``
mass-normalised thrust) and is mapped to the normalised env action with the contract's
``scale`` and ``offset``.

An arm's driver publishes ``sensor_msgs/JointState`` (names, positions, velocities) and
takes absolute joint position targets as ``std_msgs/Float64MultiArray`` (ros2_control's
forward position controller; ``JointTargetCodec``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray

from sitt_policy_node.integrators import JointTargetIntegrator

WORLD_FRAME = "world"
BASE_FRAME = "base_link"
# Where each action lands in the TwistStamped (the contract's ros.action.layout).
ACTION_FIELDS = {
    "collective_thrust": ("linear", "z"),
    "roll_rate": ("angular", "x"),
    "pitch_rate": ("angular", "y"),
    "yaw_rate": ("angular", "z"),
}


def stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_ns(t: Time) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def clock_msg(ns: int) -> Clock:
    return Clock(clock=stamp(ns))


def odometry_msg(od: Mapping[str, np.ndarray], ns: int, i: int = 0,
                 frame_id: str = WORLD_FRAME, child_frame_id: str = BASE_FRAME) -> Odometry:
    """Drone ``i`` of ``env.odometry(ids)``: pose in the world frame, twist in the body."""
    msg = Odometry()
    msg.header.stamp = stamp(ns)
    msg.header.frame_id, msg.child_frame_id = frame_id, child_frame_id
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = map(float, od["position"][i])
    q.x, q.y, q.z, q.w = map(float, od["orientation_xyzw"][i])
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    lin.x, lin.y, lin.z = map(float, od["linear_velocity_body"][i])
    ang.x, ang.y, ang.z = map(float, od["angular_velocity_body"][i])
    return msg


def joint_state_msg(joints: Mapping[str, Any], ns: int, i: int = 0) -> JointState:
    """Arm ``i`` of ``env.joint_states(ids)``: names, positions and velocities."""
    msg = JointState(name=list(joints["name"]))
    msg.header.stamp = stamp(ns)
    msg.position = np.asarray(joints["position"][i], dtype=np.float64).tolist()
    msg.velocity = np.asarray(joints["velocity"][i], dtype=np.float64).tolist()
    return msg


def command_msg(velocity: np.ndarray, ns: int, frame_id: str = WORLD_FRAME) -> TwistStamped:
    """The horizontal velocity command (world frame)."""
    msg = TwistStamped()
    msg.header.stamp = stamp(ns)
    msg.header.frame_id = frame_id
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = map(float, velocity)
    return msg


def image_msg(pixels: np.ndarray, ns: int, frame_id: str, encoding: str = "rgb8") -> Image:
    """(H, W, 3) uint8 pixels, row 0 at the top, as an unpadded Image."""
    h, w = pixels.shape[:2]
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0,
                step=w * (pixels.shape[2] if pixels.ndim == 3 else 1))
    msg.header.stamp = stamp(ns)
    msg.header.frame_id = frame_id
    msg.data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return msg


def camera_info_msg(camera: Mapping[str, Any], frame_id: str) -> CameraInfo:
    """Pinhole ``CameraInfo`` (no distortion) from the contract's ``camera`` section;
    the caller sets ``header.stamp`` per frame."""
    k = camera["intrinsics"]
    fx, fy, cx, cy = (float(k[n]) for n in ("fx", "fy", "cx", "cy"))
    msg = CameraInfo(width=int(camera["width"]), height=int(camera["height"]),
                     distortion_model="plumb_bob")
    msg.header.frame_id = frame_id
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class ActionError(ValueError):
    """An action message the simulation must not apply; the message says why."""


@dataclass(frozen=True)
class ActionCodec:
    """Normalised action <-> the contract's TwistStamped, with the contract's map
    ``physical = offset + scale * normalised``."""

    names: tuple[str, ...]
    scale: np.ndarray
    offset: np.ndarray
    low: np.ndarray
    high: np.ndarray
    frame_id: str = BASE_FRAME

    @classmethod
    def from_contract(cls, action: Mapping[str, Any], frame_id: str = BASE_FRAME
                      ) -> ActionCodec:
        missing = [n for n in action["names"] if n not in ACTION_FIELDS]
        if missing:
            raise ValueError(f"no TwistStamped field for action(s) {missing}")
        return cls(tuple(action["names"]), np.asarray(action["scale"], dtype=np.float64),
                   np.asarray(action["offset"], dtype=np.float64),
                   np.asarray(action["low"], dtype=np.float64),
                   np.asarray(action["high"], dtype=np.float64), frame_id)

    def decode(self, msg: TwistStamped) -> np.ndarray:
        """The normalised action (float64, clipped to the bounds). Raises ActionError for
        a wrong frame or non-finite values."""
        if msg.header.frame_id != self.frame_id:
            raise ActionError(f"action frame_id {msg.header.frame_id!r}, expected "
                              f"{self.frame_id!r}")
        physical = np.array([getattr(getattr(msg.twist, part), axis)
                             for part, axis in (ACTION_FIELDS[n] for n in self.names)])
        if not np.isfinite(physical).all():
            raise ActionError(f"action has non-finite values {physical.tolist()}")
        unused = (msg.twist.linear.x, msg.twist.linear.y)
        if not all(math.isfinite(v) for v in unused):
            raise ActionError(f"action has non-finite unused fields {list(unused)}")
        return np.clip((physical - self.offset) / self.scale, self.low, self.high)

    def encode(self, normalised: np.ndarray, ns: int) -> TwistStamped:
        """The action message of a normalised action (the teacher's demonstrations)."""
        physical = self.offset + self.scale * np.clip(
            np.asarray(normalised, dtype=np.float64), self.low, self.high)
        msg = TwistStamped()
        msg.header.stamp = stamp(ns)
        msg.header.frame_id = self.frame_id
        for name, value in zip(self.names, physical, strict=True):
            part, axis = ACTION_FIELDS[name]
            setattr(getattr(msg.twist, part), axis, float(value))
        return msg


@dataclass(frozen=True)
class JointTargetCodec:
    """Absolute joint position targets <-> ``std_msgs/Float64MultiArray`` (``data``: one
    target per joint in the contract's ``action.integrate.joints`` order, nothing else:
    what ros2_control's ``forward_command_controller`` takes). The message has no stamp."""

    integrator: JointTargetIntegrator

    @classmethod
    def from_contract(cls, action: Mapping[str, Any]) -> JointTargetCodec:
        return cls(JointTargetIntegrator.from_contract(action["integrate"],
                                                       len(action["names"])))

    @property
    def joints(self) -> tuple[str, ...]:
        return self.integrator.joints

    def decode(self, msg: Float64MultiArray) -> np.ndarray:
        """The targets (float64). Raises ActionError for a wrong length or non-finite
        values; the limits are the simulation's to enforce (it clamps as the node does)."""
        targets = np.asarray(msg.data, dtype=np.float64)
        if targets.shape != (len(self.joints),):
            raise ActionError(f"expected {len(self.joints)} joint targets, got {targets.size}")
        if not np.isfinite(targets).all():
            raise ActionError(f"joint targets are not finite: {targets.tolist()}")
        return targets

    def encode(self, targets: np.ndarray) -> Float64MultiArray:
        return Float64MultiArray(data=np.asarray(targets, dtype=np.float64).tolist())
