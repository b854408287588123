"""The task-specific parts of the sim bridge: which state topics a task's robot publishes
besides the camera, how its action comes back, and what the safe action applies.

Everything else (``/clock``, camera and ``CameraInfo``, lockstep and realtime stepping,
episodes, recording) is the bridge's own and the same for every task.

* ``quadrotor``: odometry every step and the velocity command at ``command_rate_hz``; the
  action is the contract's ``geometry_msgs/TwistStamped`` (stamped: it names the frame it
  answers), decoded to the normalised action; safe: hover.
* ``arm_drawer``: ``sensor_msgs/JointState`` every step (also between episodes, so that a
  node that never saw the arm has a position to hold); the action is the node's absolute
  joint targets (``std_msgs/Float64MultiArray``, unstamped: it answers the newest frame sent
  before it arrived), applied as they are (the environment runs in ``action_mode="targets"``
  and clamps them with the integrator the node used: no second integration); safe: hold
  the current targets (the zero increment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from sitt_training.envs.quadrotor_dynamics import HOVER_ACTION

from .messages import (
    ActionCodec,
    JointTargetCodec,
    command_msg,
    joint_state_msg,
    odometry_msg,
    stamp_ns,
)

ONE = np.zeros(1, dtype=np.int64)  # the ids of the single simulated robot
Publish = Callable[[Any, Any, int], None]  # (publisher, message, sim time ns): records too


class TaskAdapter:
    """Base: subclasses set the class attributes and implement the methods."""

    inputs: ClassVar[tuple[str, ...]] = ()  # contract ``ros`` keys of the state topics
    action_type: ClassVar[type] = TwistStamped
    stamped: ClassVar[bool] = True  # actions carry the stamp of the frame they answer
    inputs_on_hold: ClassVar[bool] = False  # lockstep: state topics between episodes too
    env_kwargs: ClassVar[dict[str, Any]] = {}  # how the bridge builds the task

    def __init__(self, node: Node, env: Any, contract: dict[str, Any],
                 params: dict[str, Any], publish: Publish, dt_ns: int) -> None:
        self.node, self.env, self.params, self._publish = node, env, params, publish
        self.dt_ns = dt_ns  # the control period (sim time per step)
        self.publishers: list[Any] = []

    def create_publishers(self, topics: dict[str, str]) -> list[Any]:
        """The state topics' publishers (``topics``: contract ``ros`` key -> name)."""
        raise NotImplementedError

    def start_episode(self) -> None:
        """Called after the environment reset to the next episode."""

    def publish_inputs(self, ns: int) -> None:
        """This step's state messages, stamped ``ns``."""
        raise NotImplementedError

    def decode(self, msg: Any) -> tuple[int | None, np.ndarray]:
        """(stamp ns or None when unstamped, the env action). Raises ActionError."""
        raise NotImplementedError

    def encode(self, normalised: np.ndarray, ns: int) -> Any:
        """The action message a policy node would send for a normalised action (the
        teacher's demonstrations)."""
        raise NotImplementedError

    def safe_action(self) -> np.ndarray:
        """The env action applied when no valid action came."""
        raise NotImplementedError


def _reliable() -> QoSProfile:
    # Reliable writers match best-effort (sensor-data) readers too.
    return QoSProfile(depth=10)


class QuadrotorAdapter(TaskAdapter):
    inputs = ("odometry", "command")

    def __init__(self, node: Node, env: Any, contract: dict[str, Any],
                 params: dict[str, Any], publish: Publish, dt_ns: int) -> None:
        super().__init__(node, env, contract, params, publish, dt_ns)
        self.codec = ActionCodec.from_contract(contract["action"], params["base_frame"])
        self.safe = np.asarray(contract["action"].get("safe", HOVER_ACTION), np.float64)
        rate = float(params["command_rate_hz"]) or 1e9 / dt_ns  # 0: every step
        self.command_period_ns = round(1e9 / rate)
        self.command_due = 0

    def create_publishers(self, topics: dict[str, str]) -> list[Any]:
        self.odom_pub = self.node.create_publisher(Odometry, topics["odometry"], _reliable())
        self.cmd_pub = self.node.create_publisher(TwistStamped, topics["command"], _reliable())
        self.publishers = [self.odom_pub, self.cmd_pub]
        return self.publishers

    def start_episode(self) -> None:
        self.command_due = 0  # the new episode's command goes out with its first frame

    def publish_inputs(self, ns: int) -> None:
        world = self.params["world_frame"]
        od = self.env.odometry(ONE)
        self._publish(self.odom_pub, odometry_msg(od, ns, frame_id=world,
                                                  child_frame_id=self.params["base_frame"]), ns)
        if self.command_due <= ns:  # a planner's rate, not every step: one callback less
            self._publish(self.cmd_pub, command_msg(self.env.command_velocity(ONE)[0], ns,
                                                    world), ns)
            self.command_due = ns + self.command_period_ns

    def decode(self, msg: TwistStamped) -> tuple[int | None, np.ndarray]:
        return stamp_ns(msg.header.stamp), self.codec.decode(msg)

    def encode(self, normalised: np.ndarray, ns: int) -> TwistStamped:
        return self.codec.encode(normalised, ns)

    def safe_action(self) -> np.ndarray:
        return self.safe


class ArmAdapter(TaskAdapter):
    inputs = ("joint_state",)
    action_type = Float64MultiArray
    stamped = False
    # A node holds its targets only once it knows the joints: tell it before the hold.
    inputs_on_hold = True
    env_kwargs = {"action_mode": "targets"}

    def __init__(self, node: Node, env: Any, contract: dict[str, Any],
                 params: dict[str, Any], publish: Publish, dt_ns: int) -> None:
        super().__init__(node, env, contract, params, publish, dt_ns)
        if "integrate" not in contract["action"]:
            raise ValueError("the arm's contract has no action.integrate (joint targets)")
        self.codec = JointTargetCodec.from_contract(contract["action"])
        names = tuple(env.joint_states(ONE)["name"])
        if self.codec.joints != names:
            raise ValueError(f"action.integrate.joints {list(self.codec.joints)} are not the "
                             f"simulated arm's joints {list(names)} in order")
        self.low = np.asarray(contract["action"]["low"], dtype=np.float64)
        self.high = np.asarray(contract["action"]["high"], dtype=np.float64)

    def create_publishers(self, topics: dict[str, str]) -> list[Any]:
        self.joint_pub = self.node.create_publisher(JointState, topics["joint_state"],
                                                    _reliable())
        self.publishers = [self.joint_pub]
        return self.publishers

    def publish_inputs(self, ns: int) -> None:
        self._publish(self.joint_pub, joint_state_msg(self.env.joint_states(ONE), ns), ns)

    def decode(self, msg: Float64MultiArray) -> tuple[int | None, np.ndarray]:
        return None, self.codec.decode(msg)

    def encode(self, normalised: np.ndarray, ns: int) -> Float64MultiArray:
        action = np.clip(np.asarray(normalised, dtype=np.float64), self.low, self.high)
        targets = self.codec.integrator.step(self.env.targets[0], self.env.joint_position[0],
                                             action)
        return self.codec.encode(targets)

    def safe_action(self) -> np.ndarray:
        return self.env.targets[0].copy()  # = the zero increment: hold the targets


ADAPTERS: dict[str, type[TaskAdapter]] = {
    "quadrotor": QuadrotorAdapter,
    "arm_drawer": ArmAdapter,
}
