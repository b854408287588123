"""``policy_node``: runs the exported student (ONNX) on robot topics.

Everything task-specific comes from the model's policy contract (``contract.py``): which
inputs to subscribe to, how to build the state vector (``observation.py``), the camera
size and encoding, and what the action means (``actions.py``). The safety state machine
(``safety.py``) decides each control step whether the policy acts or the contract's safe
action is published.

Integrated actions (contract ``action.integrate``, the arm): the policy's action is a
per-step increment of joint position targets; the node integrates it with
``integrators.JointTargetIntegrator`` (the environment's own code) against the measured
joint positions of ``sensor_msgs/JointState`` (matched by name) and publishes the absolute
targets as ``std_msgs/Float64MultiArray`` (ros2_control's forward position controller).
The targets start at the first joint state received and restart from the measured
positions whenever the policy takes over (the first RUNNING step after any other state),
as an episode of the environment starts with its targets at the measured joints (and
targets that led the joints before a HOLD do not jerk the arm when it ends). In every other
state the safe action (a zero increment) holds the targets, still clamped to the limits and
the lead bound.
Before the first joint state there is nothing to hold: nothing is published.

Deploy-side rule: import only rclpy, numpy, onnxruntime and ROS messages here, never
torch, pybullet or sitt_training.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidTopicNameException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64MultiArray, MultiArrayDimension
from std_srvs.srv import SetBool, Trigger

from .actions import FLOAT64_ARRAY, TWIST_STAMPED, ActionMap, FieldWriter, output_fields
from .contract import ContractError, load_policy, sha256_file
from .integrators import JointTargetIntegrator
from .observation import (
    JOINT_STATE,
    FieldSpec,
    ImageConverter,
    InputError,
    NonFiniteInput,
    StateBuilder,
    field_value,
)
from .params import (
    EXECUTORS,
    EXIT_BAD_PARAMETER,
    Param,
    StartupError,
    choice,
    declare,
    make_executor,
    set_up,
)
from .safety import InputStatus, SafetyMonitor, State

NODE_NAME = "policy_node"
CAMERA = "camera"
EXIT_BAD_MODEL = 2
DEFAULT_INPUT_TYPES = {
    "odometry": "nav_msgs/msg/Odometry",
    "command": "geometry_msgs/msg/TwistStamped",
    "joint_state": "sensor_msgs/msg/JointState",
}
DEFAULT_TOPICS = {"camera": "camera/image_raw", "odometry": "odom", "command": "cmd_vel",
                  "joint_state": "joint_states", "action": "policy_action"}
LOG_THROTTLE_S = 1.0
LATENCY_WINDOW = 2000  # inference samples kept between two diagnostics reports


# Declared before the model is loaded. Every knob is read once at start (read-only).
PARAMETERS = (
    Param("model_path", "", "exported student .onnx; its policy contract "
          "(<model>.contract.json) must lie beside it"),
    Param("trigger", "timer", "'timer': one control step per 1/control_rate_hz; 'camera': "
          "one step per camera frame (a watchdog at control_rate_hz publishes the safe "
          "action while the camera is missing or stale)"),
    Param("max_age_camera_s", 0.1, "hold when the newest camera image is older [s]; "
          "0: no limit", 0.0, 3600.0),
    Param("max_age_odometry_s", 0.1, "hold when the newest odometry is older [s]; "
          "0: no limit", 0.0, 3600.0),
    Param("max_age_command_s", 1.0, "hold when the newest command is older [s]; "
          "0: no limit", 0.0, 3600.0),
    Param("max_age_joint_state_s", 0.1, "hold when the newest joint state is older [s]; "
          "0: no limit", 0.0, 3600.0),
    Param("onnx_threads", 1, "ONNX Runtime intra-op threads", 1, 64),
    Param("onnx_provider", "auto", "'auto' (CUDA when present, else CPU), 'cuda' or 'cpu'"),
    Param("warmup_runs", 10, "inferences run before reporting ready", 0, 10000),
    Param("publish_debug", True, "publish ~/debug every control step (while it has a "
          "subscriber)"),
    Param("diagnostics_period_s", 1.0, "period of /diagnostics reports [s]", 0.05, 60.0),
    Param("action_frame_id", "base_link", "header.frame_id of the published action"),
    Param("estop_topic", "estop", "std_msgs/Bool topic; True latches the emergency stop"),
    Param("executor", "single_threaded", "'single_threaded' (rclpy's Python executor: the "
          "lowest latency in bench/policy_latency.py) or 'events' (rclpy's experimental C++ "
          "EventsExecutor: about 30% less CPU; steady-clock timers, so not with "
          "use_sim_time)"),
)
# Declared after the model is loaded: their defaults come from its contract.
CONTRACT_PARAMETERS = (
    Param("control_rate_hz", None, "control rate [Hz]; default: the contract's",
          0.1, 10000.0),
    Param("camera_topic", None, "sensor_msgs/Image input; default: contract ros.camera"),
    Param("odometry_topic", None, "nav_msgs/Odometry input; default: contract ros.odometry"),
    Param("command_topic", None, "command input; default: contract ros.command"),
    Param("joint_state_topic", None, "sensor_msgs/JointState input; default: contract "
          "ros.joint_state"),
    Param("action_topic", None, "action output; default: contract ros.action"),
)


def message_class(type_name: str) -> type:
    """``pkg/msg/Type`` -> the rclpy message class."""
    pkg, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


@dataclass
class InputSlot:
    """The newest usable message of one input and its bookkeeping."""

    name: str
    max_age_s: float
    stamp_ns: int | None = None  # node-clock receive time of the newest accepted message
    error: str = ""  # why the newest message was rejected ("" when it was accepted)
    stale: int = 0  # control steps that found it older than max_age_s
    rejected: int = 0  # messages rejected (wrong size, encoding, fields, ...)
    nonfinite: int = 0  # messages with NaN/Inf in a used value

    def age_s(self, now_ns: int) -> float:
        return -1.0 if self.stamp_ns is None else (now_ns - self.stamp_ns) * 1e-9

    def is_stale(self, now_ns: int) -> bool:
        return (self.stamp_ns is not None and self.max_age_s > 0.0
                and now_ns - self.stamp_ns > self.max_age_s * 1e9)


class PolicyNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        """``node_kwargs`` go to ``rclpy.node.Node`` (``parameter_overrides``, ``context``,
        ... for composition and tests); ``setup()`` then does the work."""
        super().__init__(NODE_NAME, **node_kwargs)
        self.p: dict[str, Any] = {}
        self.safety = SafetyMonitor()
        self._last_log: dict[str, float] = {}

    # ------------------------------------------------------------------ parameters
    def _declare(self, p: Param, default: Any = None) -> Any:
        return declare(self, p, default)

    def _choice(self, name: str, choices: tuple[str, ...]) -> str:
        return choice(name, self.p[name], choices)

    @property
    def sim_time(self) -> bool:
        return bool(self.get_parameter("use_sim_time").value)

    def _executor_kind(self) -> str:
        kind = self._choice("executor", EXECUTORS)
        if kind == "events" and self.sim_time:
            # rclpy's events executor runs timers on the steady clock only (ros2/rclcpp#2457).
            raise StartupError("executor=events cannot run with use_sim_time:=true (its "
                               "timers ignore /clock); use single_threaded",
                               EXIT_BAD_PARAMETER)
        return kind

    def _providers(self) -> list[str]:
        wanted = self._choice("onnx_provider", ("auto", "cuda", "cpu"))
        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if wanted == "cuda" and not has_cuda:
            raise StartupError("onnx_provider=cuda but this onnxruntime has no CUDA "
                               f"provider (it has {ort.get_available_providers()})",
                               EXIT_BAD_PARAMETER)
        if wanted != "cpu" and has_cuda:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    # ------------------------------------------------------------------ start
    def setup(self) -> None:
        """Load and check the model, wire the topics, warm up. Raises StartupError."""
        self.p.update({p.name: self._declare(p) for p in PARAMETERS})
        if not self.p["model_path"]:
            raise StartupError("no model_path given (run with --ros-args -p "
                               "model_path:=/path/to/student.onnx)", EXIT_BAD_PARAMETER)
        self.trigger = self._choice("trigger", ("timer", CAMERA))
        self.executor_kind = self._executor_kind()
        providers = self._providers()
        try:
            self.contract, self.session = load_policy(
                self.p["model_path"], providers=providers, threads=int(self.p["onnx_threads"]))
        except ContractError as err:
            raise StartupError(f"cannot load the policy: {err}", EXIT_BAD_MODEL) from err
        c = self.contract
        ros = c["ros"]
        self.p["control_rate_hz"] = self._declare(CONTRACT_PARAMETERS[0],
                                                  float(c["control_rate_hz"]))
        for p in CONTRACT_PARAMETERS[1:]:
            key = p.name.removesuffix("_topic")
            self.p[p.name] = self._declare(
                p, str(ros.get(key, {}).get("topic", DEFAULT_TOPICS[key])))
        try:
            self._build_io()
        except InvalidTopicNameException as err:
            raise StartupError(f"bad topic name: {err}", EXIT_BAD_PARAMETER) from err
        except (InputError, ValueError, ImportError, AttributeError) as err:
            raise StartupError(f"cannot serve this contract: {err}", EXIT_BAD_MODEL) from err
        self._warm_up()
        period = 1.0 / self.p["control_rate_hz"]
        # Callbacks without arguments: the events executor hands a TimerInfo to any
        # callback that takes one.
        step = (lambda: self._control_step()) if self.trigger == "timer" else self._watchdog
        # Simulated time needs ROS-time timers; otherwise the steady clock, which the events
        # executor requires and which system-time jumps cannot stall.
        clock = None if self.sim_time else Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(period, step, clock=clock)
        self.create_timer(float(self.p["diagnostics_period_s"]),
                          lambda: self._publish_diagnostics(), clock=clock)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/emergency_stop", self._on_estop_service)
        self.create_subscription(Bool, self.p["estop_topic"], self._on_estop_topic, 10)
        self.get_logger().info(
            f"ready: {self.p['model_path']} (task {c['task']}, sha256 "
            f"{self.model_sha[:12]}, {self.session.get_providers()[0]}), trigger "
            f"{self.trigger} at {self.p['control_rate_hz']:g} Hz, inputs "
            f"{', '.join(f'{n}<-{self.topics[n]}' for n in self.slots)}, action -> "
            f"{self.p['action_topic']}; warm-up {self.warmup_ms:.2f} ms per inference; "
            f"{self.executor_kind} executor")
        self._publish_diagnostics(message="ready")

    def _build_io(self) -> None:
        c = self.contract
        self.model_sha = sha256_file(self.p["model_path"])  # load_policy checked it
        self.builder = StateBuilder(c["state_fields"])
        self.actions = ActionMap(c["action"])
        self.prev_action = self.actions.safe.copy()  # before the first step: the safe one
        self._setup_integrator(c["action"])
        self.parts: dict[str, np.ndarray] = {}
        state_input = next(i for i in c["inputs"] if i["role"] == "state")
        camera_input = next((i for i in c["inputs"] if i["role"] == CAMERA), None)
        self.state_name = state_input["name"]
        self.image_name = camera_input["name"] if camera_input else None
        self.out_names = [c["outputs"][0]["name"]]
        self.feeds: dict[str, np.ndarray] = {}
        self.image: np.ndarray | None = None
        names = ([CAMERA] if camera_input else []) + list(self.state_inputs)
        self.slots = {n: InputSlot(n, float(self.p[f"max_age_{n}_s"])) for n in names}
        self.topics = {n: self.p[f"{n}_topic"] for n in names}
        if camera_input:
            self.converter = ImageConverter(c["camera"])
            self.create_subscription(Image, self.topics[CAMERA], self._on_image,
                                     qos_profile_sensor_data)
        elif self.trigger == CAMERA:
            raise ValueError("trigger=camera but the model has no camera input")
        for name in self.state_inputs:
            type_name = c["ros"].get(name, {}).get("type", DEFAULT_INPUT_TYPES[name])
            # Odometry and joint states are sensor streams (best effort matches both kinds
            # of publisher); commands are usually reliable, so keep them reliable.
            qos = QoSProfile(depth=10) if name == "command" else qos_profile_sensor_data
            self.create_subscription(message_class(type_name), self.topics[name],
                                     lambda msg, n=name: self._on_state_input(n, msg), qos)
        self._setup_output(c["ros"]["action"])
        self._setup_debug()
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.steps = 0
        self.window_steps, self.window_start = 0, time.monotonic()
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.nonfinite_outputs = 0
        self.inference_errors = 0

    def _setup_integrator(self, action: dict[str, Any]) -> None:
        """Integrated actions need the measured joint positions, state fields or not."""
        self.state_inputs = list(self.builder.inputs)
        self.integrator: JointTargetIntegrator | None = None
        self.targets: np.ndarray | None = None  # the published joint targets
        self.measured: np.ndarray | None = None  # newest valid joint positions, target order
        self._acting = False  # the last step published the policy's own action
        if "integrate" not in action:
            return
        self.integrator = JointTargetIntegrator.from_contract(action["integrate"],
                                                              len(self.actions.names))
        joints = list(self.integrator.joints)
        self.joint_reader = FieldSpec("action.integrate.joints", len(joints), JOINT_STATE,
                                      "position", "none", {"joints": joints})
        if JOINT_STATE not in self.state_inputs:
            self.state_inputs.append(JOINT_STATE)

    def _setup_output(self, ros_action: dict[str, Any]) -> None:
        type_name = ros_action.get("type", TWIST_STAMPED)
        if type_name not in (TWIST_STAMPED, FLOAT64_ARRAY):
            raise ValueError(f"action type {type_name!r} not supported (use {TWIST_STAMPED} "
                             f"or {FLOAT64_ARRAY})")
        self.action_type = type_name
        self.action_msg = message_class(type_name)()  # reused: publish serialises it
        if type_name == TWIST_STAMPED:
            self.action_msg.header.frame_id = self.p["action_frame_id"]
            self.action_writer = FieldWriter(
                self.action_msg, output_fields(ros_action, self.actions.names),
                self.actions.names)
        self.action_pub = self.create_publisher(type(self.action_msg),
                                                self.p["action_topic"], 10)

    def _setup_debug(self) -> None:
        self.debug_pub = (self.create_publisher(Float64MultiArray, "~/debug", 10)
                          if self.p["publish_debug"] else None)
        n_act = len(self.actions.names)
        segments = [("observation", self.builder.size), ("action", n_act)]
        if self.integrator is not None:
            segments.append(("target", len(self.integrator.joints)))
        segments.append(("inference_ms", 1))
        segments += [(f"age_{n}_s", 1) for n in self.slots] + [("state", 1)]
        self.debug_dims = [MultiArrayDimension(label=label, size=size, stride=size)
                           for label, size in segments]
        self.debug_buf = np.zeros(sum(size for _, size in segments))

    def _warm_up(self) -> None:
        """First inferences allocate and tune; do them before the robot depends on it."""
        feeds = {self.state_name: np.zeros((1, self.builder.size), np.float32)}
        if self.image_name:
            cam = self.contract["camera"]
            feeds[self.image_name] = np.zeros(
                (1, cam["height"], cam["width"], 1 if cam["encoding"] == "mono8" else 3),
                np.uint8)
        runs = int(self.p["warmup_runs"])
        t0 = time.perf_counter()
        try:
            for _ in range(runs):
                self.session.run(self.out_names, feeds)
        except Exception as err:  # onnxruntime raises its own exception types
            raise StartupError(f"warm-up inference failed: {err}", EXIT_BAD_MODEL) from err
        self.warmup_ms = (time.perf_counter() - t0) * 1e3 / max(runs, 1)

    # ------------------------------------------------------------------ inputs
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _throttled_error(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -math.inf) >= LOG_THROTTLE_S:
            self._last_log[key] = now
            self.get_logger().error(text)

    def _reject(self, slot: InputSlot, err: InputError) -> None:
        slot.error = str(err)
        if isinstance(err, NonFiniteInput):
            slot.nonfinite += 1
            kind = "non-finite"
        else:
            slot.rejected += 1
            kind = "rejected"
        self._throttled_error(f"{slot.name}:{type(err).__name__}:{err.args[0][:40]}",
                              f"{slot.name} message {kind}: {err} (holding)")

    def _on_image(self, msg: Image) -> None:
        now = self._now_ns()
        slot = self.slots[CAMERA]
        try:
            self.image = self.converter.convert(msg)[None]
            slot.stamp_ns, slot.error = now, ""
        except InputError as err:
            self._reject(slot, err)
        if self.trigger == CAMERA:
            self._control_step(now)

    def _on_state_input(self, name: str, msg: Any) -> None:
        slot = self.slots[name]
        try:
            parts = self.builder.extract(name, msg) if name in self.builder.inputs else {}
            measured = (field_value(self.joint_reader, msg)
                        if name == JOINT_STATE and self.integrator is not None else None)
        except InputError as err:
            self._reject(slot, err)
            return
        self.parts.update(parts)
        if measured is not None:
            self.measured = measured
            if self.targets is None:  # the integration starts at the first joint state
                self.targets = self.integrator.hold(measured)
        slot.stamp_ns, slot.error = self._now_ns(), ""

    def _input_status(self, now: int) -> InputStatus:
        missing, stale, invalid = [], [], []
        for slot in self.slots.values():
            if slot.stamp_ns is None and not slot.error:
                missing.append(slot.name)
            elif slot.error:
                invalid.append(slot.name)
            elif slot.is_stale(now):
                slot.stale += 1
                stale.append(slot.name)
        return InputStatus(tuple(missing), tuple(stale), tuple(invalid))

    # ------------------------------------------------------------------ control
    def _watchdog(self) -> None:
        """Camera trigger: keep publishing (the safe action) while no usable frame comes."""
        camera = self.slots[CAMERA]
        now = self._now_ns()
        if camera.stamp_ns is None or camera.error or camera.is_stale(now):
            self._control_step(now)

    def _control_step(self, now: int | None = None) -> None:
        now = self._now_ns() if now is None else now
        before = self.safety.state
        state = self.safety.check_inputs(self._input_status(now))
        obs: np.ndarray | None = None
        out: np.ndarray | None = None
        inference_ms = math.nan
        if state is State.RUNNING:
            obs = self.builder.assemble(self.parts, self.prev_action)
            if not np.isfinite(obs).all():  # extract() rejects NaN, so this is a guard
                self.safety.check_output(False, "non-finite observation")
            else:
                out, inference_ms = self._infer(obs)
                if out is not None and not np.isfinite(out).all():
                    self.nonfinite_outputs += 1
                    self.safety.check_output(False, "non-finite policy output")
        # Only RUNNING after the output check lets the policy's action through.
        acting = self.safety.may_act
        action = self.actions.clip(out if acting else self.actions.safe)
        self.prev_action = action
        self._publish_action(action, acting)
        self.steps += 1
        self.window_steps += 1
        if self.safety.state is not before:
            self._log_transition(before)
        # Only when someone listens: serialising and sending it costs the robot's CPU.
        if self.debug_pub is not None and self.debug_pub.get_subscription_count() > 0:
            self._publish_debug(now, obs, action, inference_ms)

    def _infer(self, obs: np.ndarray) -> tuple[np.ndarray | None, float]:
        self.feeds[self.state_name] = obs[None]
        if self.image_name:
            self.feeds[self.image_name] = self.image
        t0 = time.perf_counter()
        try:
            out = self.session.run(self.out_names, self.feeds)[0][0]
        except Exception as err:  # any inference failure must hold, not crash the node
            self.inference_errors += 1
            self.safety.check_output(False, f"inference failed: {err}")
            self._throttled_error("inference", f"inference failed: {err} (holding)")
            return None, math.nan
        ms = (time.perf_counter() - t0) * 1e3
        self.latencies.append(ms)
        return out, ms

    def _log_transition(self, before: State) -> None:
        state, reason = self.safety.state, self.safety.reason
        text = f"state {before.name} -> {state.name}: {reason}"
        if state is State.RUNNING:
            self.get_logger().info(text)
        elif state is State.ESTOP:
            self.get_logger().error(text)
        else:
            self.get_logger().warning(text)

    def _integrate(self, action: np.ndarray, acting: bool) -> np.ndarray | None:
        """The joint targets after this step's (normalised) action; None before the first
        joint state."""
        if self.measured is None:
            return None
        if acting and not self._acting:  # the policy takes over: from the measured joints
            self.targets = self.integrator.hold(self.measured)
        self._acting = acting
        self.targets = self.integrator.step(self.targets, self.measured, action)
        return self.targets

    def _publish_action(self, action: np.ndarray, acting: bool) -> None:
        msg = self.action_msg
        if self.integrator is not None:
            targets = self._integrate(action, acting)
            if targets is None:
                return  # no joint state yet: no position to hold, so no command at all
            msg.data = targets.tolist()
            self.action_pub.publish(msg)
            return
        physical = self.actions.to_physical(action)
        if self.action_type == TWIST_STAMPED:
            msg.header.stamp = self.get_clock().now().to_msg()
            self.action_writer.write(physical)
        else:
            msg.data = physical.tolist()
        self.action_pub.publish(msg)

    def _publish_debug(self, now: int, obs: np.ndarray | None, action: np.ndarray,
                       inference_ms: float) -> None:
        buf, n = self.debug_buf, self.builder.size
        buf[:n] = math.nan if obs is None else obs
        k = n + len(action)
        buf[n:k] = action
        if self.integrator is not None:
            j = len(self.integrator.joints)
            buf[k:k + j] = math.nan if self.targets is None else self.targets
            k += j
        buf[k] = inference_ms
        for i, slot in enumerate(self.slots.values()):
            buf[k + 1 + i] = slot.age_s(now)
        buf[-1] = float(self.safety.state)
        msg = Float64MultiArray()
        msg.layout.dim = self.debug_dims
        msg.data = buf
        self.debug_pub.publish(msg)

    # ------------------------------------------------------------------ services
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response
                   ) -> SetBool.Response:
        before = self.safety.state
        if self.safety.set_enabled(bool(request.data)) is not before:
            self._log_transition(before)
        self._control_step()  # act on it now, not at the next tick or frame
        response.success = self.safety.state is not State.ESTOP or not request.data
        response.message = f"state {self.safety.state.name}: {self.safety.reason}"
        return response

    def _emergency_stop(self, source: str) -> None:
        before = self.safety.state
        self.safety.emergency_stop(f"emergency stop ({source}); latched until restart")
        if before is not State.ESTOP:
            self._log_transition(before)
        self._control_step()

    def _on_estop_service(self, request: Trigger.Request, response: Trigger.Response
                          ) -> Trigger.Response:
        self._emergency_stop("~/emergency_stop service")
        response.success = True
        response.message = self.safety.reason
        return response

    def _on_estop_topic(self, msg: Bool) -> None:
        if msg.data:
            self._emergency_stop(f"{self.p['estop_topic']} topic")

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self, message: str | None = None) -> None:
        state = self.safety.state
        now = time.monotonic()
        rate = self.window_steps / max(now - self.window_start, 1e-9)
        self.window_steps, self.window_start = 0, now
        lat = np.fromiter(self.latencies, dtype=np.float64)
        self.latencies.clear()
        level = {State.RUNNING: DiagnosticStatus.OK,
                 State.ESTOP: DiagnosticStatus.ERROR}.get(state, DiagnosticStatus.WARN)
        values = {
            "state": state.name, "state_code": int(state), "reason": self.safety.reason,
            "enabled": self.safety.enabled, "trigger": self.trigger,
            "control_rate_target_hz": f"{self.p['control_rate_hz']:g}",
            "control_rate_hz": f"{rate:.1f}", "control_steps": self.steps,
            "inference_ms_p50": f"{_percentile(lat, 50):.3f}",
            "inference_ms_p99": f"{_percentile(lat, 99):.3f}",
            "inference_ms_max": f"{lat.max() if lat.size else math.nan:.3f}",
            "stale_inputs": sum(s.stale for s in self.slots.values()),
            "rejected_inputs": sum(s.rejected for s in self.slots.values()),
            "nan_inputs": sum(s.nonfinite for s in self.slots.values()),
            "nan_outputs": self.nonfinite_outputs, "inference_errors": self.inference_errors,
            "provider": self.session.get_providers()[0], "model_sha256": self.model_sha,
        }
        for s in self.slots.values():
            values[f"{s.name}: stale/rejected/nan"] = f"{s.stale}/{s.rejected}/{s.nonfinite}"
        status = DiagnosticStatus(
            level=level, name=f"{self.get_fully_qualified_name()}: policy",
            hardware_id=self.model_sha[:12],
            message=message or f"{state.name}: {self.safety.reason}",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = PolicyNode()
    failed = set_up(node)
    if failed is not None:
        return failed
    executor = make_executor(node.executor_kind)
    executor.add_node(node)
    try:
        # spin_once in a loop, not spin(): this rclpy's EventsExecutor.spin() never fires
        # timers (its spin_once does), and the loop costs the Python executor nothing.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C or SIGTERM: a normal stop
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
