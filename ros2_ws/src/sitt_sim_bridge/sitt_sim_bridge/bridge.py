"""``sim_bridge``: a sitt_training task served over ROS as a real robot would serve it.

One simulated robot (the task with ``num_envs=1``) publishes what its drivers would:
``/clock`` (the simulator owns time: every stamp is sim time), the camera image and its
``CameraInfo``, and the task's state topics; it applies what comes back on the action
topic. The task-specific parts live in ``adapters.py``: the quadrotor publishes odometry
and the velocity command and takes a ``TwistStamped`` (mapped back with the contract's
scale/offset); the arm (``arm_drawer``) publishes ``JointState`` and takes absolute joint
position targets (``Float64MultiArray``), which the environment applies as they are.
Episode ``k`` runs the layout of environment ``k`` of
``sitt_training.evaluation.evaluate(..., seed)``, so a HIL run compares with the in-process
evaluation episode by episode.

Modes:

* ``lockstep``: for each step publish clock and the state topics (the quadrotor's command
  at its rate), make sure the policy node has taken them (a round trip to its
  ``get_parameters`` service: rclpy serves subscriptions before services, and DDS delivers
  one participant's samples in order), then the image; wait for the action answering it
  (stamped actions: the stamp equals the observation's sim time; unstamped ones, the arm's
  targets: the first valid one that arrives after the image); step.
  Deterministic and faster than real time; the node must run with ``trigger:=camera`` and
  ``use_sim_time:=true``.
* ``realtime``: a wall-clock timer at the control rate; each tick applies the newest valid
  action (the safe action when none answered the last observation) and publishes the next
  observation. Late and missing actions and the loop's jitter are counted.

Between episodes the simulation holds ``reset_hold_s`` of sim time with no camera frames,
so the node's inputs go stale and it publishes its safe action: its previous action (part
of the quadrotor's observation) restarts from the safe one, and the arm node restarts its
joint targets from the measured joints at the next frame, as the environment does after a
reset. (Lockstep sends the arm's joint state before that hold, so that a node that never
had one has a position to hold and answers.)

With ``teacher_checkpoint`` the bridge runs a training run's privileged teacher itself and
publishes its actions on the action topic (demonstrations; no policy node needed).

Exit codes: 0 done (a JSON summary line on stdout), 1 bad parameter, 2 bad model contract
or teacher checkpoint, 3 the policy node did not appear or answer, 130 interrupted.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.srv import GetParameters
from rclpy._rclpy_pybind11 import RCLError
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidTopicNameException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import parameter_value_to_python
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from sitt_policy_node.params import (
    EXIT_BAD_PARAMETER,
    Param,
    StartupError,
    declare,
    make_executor,
    set_up,
)
from sitt_training.envs import TASKS
from sitt_training.seeds import TEST_SEED

from .adapters import ADAPTERS, ONE
from .episodes import episode_result, summarise
from .messages import (
    BASE_FRAME,
    WORLD_FRAME,
    ActionError,
    camera_info_msg,
    clock_msg,
    image_msg,
    stamp,
)

NODE_NAME = "sim_bridge"
MODES = ("lockstep", "realtime")
SUPPORTED_TASKS = tuple(ADAPTERS)  # tasks with a policy contract (ROS topics and a camera)
EXIT_BAD_MODEL = 2
EXIT_NO_NODE = 3
EXIT_INTERRUPTED = 130
HOLD_TIMEOUT_S = 2.0  # lockstep: wait this long for the node's safe action between episodes
SETTLE_S = 0.3  # after discovery, so the first messages are not lost to late matching
LOG_THROTTLE_S = 2.0


# Every knob is read once at start (read-only).
PARAMETERS = (
    Param("task", "quadrotor", "task of sitt_training.envs to simulate (quadrotor, "
          "arm_drawer)"),
    Param("episode_steps", 0, "episode length in control steps; 0: the task's own (shorter "
          "episodes for tests and benchmarks)", 0, 10**9),
    Param("task_options", "", "the task's options as a JSON object (a run's config "
          "task.kwargs, e.g. '{\"other_pillar_lateral\": 6}'); empty: those the model "
          "contract records (provenance.task_options, written by sitt-export), else the "
          "teacher checkpoint's run's, else the task's defaults"),
    Param("seed", TEST_SEED, "layout seed: episode k flies environment k of "
          "evaluate(..., episodes=N, seed) (default: the test seed)", 0, 2**31 - 1),
    Param("episodes", 10, "episodes to run, then print the summary", 1, 10**9),
    Param("mode", "lockstep", "'lockstep': wait for the action answering each observation "
          "(deterministic, faster than real time; node trigger:=camera); 'realtime': step "
          "at control_rate_hz of wall-clock time with the newest action"),
    Param("control_rate_hz", 0.0, "realtime: wall-clock steps per second; 0: the task's "
          "control rate. Sim time always advances by the task's control period per step",
          0.0, 10000.0),
    Param("command_rate_hz", 10.0, "quadrotor: rate of the velocity command (constant within "
          "an episode; also sent with each episode's first frame); 0: every step. Keep "
          "1/rate below the node's max_age_command_s", 0.0, 10000.0),
    Param("model_contract", "", "policy contract (student.contract.json or the .onnx beside "
          "it) whose ros topic names, camera and action map to use; empty: the task's own"),
    Param("debug_topic", "policy_node/debug", "the policy node's debug topic, recorded when "
          "record is set"),
    Param("policy_node", "policy_node", "name of the policy node: the bridge waits for it, "
          "checks its parameters and (lockstep) orders each observation with its "
          "get_parameters service; empty: no node handshake (any action publisher)"),
    Param("action_timeout_s", 5.0, "lockstep: wait this long for a valid action answering "
          "an observation, then apply the safe action", 0.001, 3600.0),
    Param("startup_timeout_s", 60.0, "wait this long for the policy node (or an action "
          "publisher) to appear", 0.0, 3600.0),
    Param("reset_hold_s", 0.5, "sim time with no sensor data between episodes; must exceed "
          "the node's max_age_camera_s so that it holds and restarts from the safe action",
          0.0, 3600.0),
    Param("record", "", "rosbag2 (MCAP) directory to record every published and received "
          "topic into; empty: no recording"),
    Param("teacher_checkpoint", "", "a training run's model_<iter>.pt: the bridge runs its "
          "privileged teacher and publishes the actions (demonstrations, no policy node)"),
    Param("realtime_priority", 0, "realtime: run the stepping thread with SCHED_FIFO at this "
          "priority (1-99; needs CAP_SYS_NICE) for less jitter; 0: normal scheduling", 0, 99),
    Param("executor", "events", "'events' (rclpy's experimental C++ EventsExecutor, faster) "
          "or 'single_threaded' (rclpy's Python SingleThreadedExecutor)"),
    Param("exit_on_done", True, "exit after the last episode; false: stay up (idle)"),
    Param("world_frame", WORLD_FRAME, "quadrotor: frame_id of odometry and command (ENU)"),
    Param("base_frame", BASE_FRAME, "quadrotor: child_frame_id of odometry; the action's "
          "frame_id"),
)
# Declared once the contract is known: their defaults come from its ros section. The state
# topics only for the tasks that publish them (odometry and command: quadrotor; joint
# states: arm_drawer).
TOPIC_PARAMETERS = (
    Param("camera_topic", None, "sensor_msgs/Image out (rgb8, sensor-data QoS)"),
    Param("camera_info_topic", None, "sensor_msgs/CameraInfo out; default: camera_info "
          "beside the image topic"),
    Param("odometry_topic", None, "nav_msgs/Odometry out"),
    Param("command_topic", None, "geometry_msgs/TwistStamped velocity command out"),
    Param("joint_state_topic", None, "sensor_msgs/JointState out"),
    Param("action_topic", None, "the contract's action in (out with a teacher): "
          "geometry_msgs/TwistStamped (quadrotor) or std_msgs/Float64MultiArray joint "
          "targets (arm_drawer)"),
)


def type_name(cls: type) -> str:
    """``sensor_msgs/msg/Image`` of a message class."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def _percentiles_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values) * 1e3
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max())}


class SimBridge(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        """``node_kwargs`` go to ``rclpy.node.Node``; ``setup()`` then does the work."""
        super().__init__(NODE_NAME, **node_kwargs)
        self.p: dict[str, Any] = {}
        self._last_log: dict[str, float] = {}

    # ------------------------------------------------------------------ parameters
    def _declare(self, p: Param, default: Any = None) -> Any:
        return declare(self, p, default)

    def _bad(self, message: str) -> StartupError:
        return StartupError(message, EXIT_BAD_PARAMETER)

    # ------------------------------------------------------------------ start
    def setup(self) -> None:
        """Read parameters, build the task, wire the topics. Raises StartupError."""
        self.p.update({p.name: self._declare(p) for p in PARAMETERS})
        p = self.p
        if p["task"] not in SUPPORTED_TASKS:
            raise self._bad(f"parameter task={p['task']!r}: the bridge serves "
                            f"{', '.join(SUPPORTED_TASKS)}")
        if p["mode"] not in MODES:
            raise self._bad(f"parameter mode={p['mode']!r}: expected one of {', '.join(MODES)}")
        self.mode = p["mode"]
        self.spinner = make_executor(self.p["executor"])
        self.teacher = self._load_teacher()
        file_contract = self._file_contract()
        task_kwargs = self._task_options(file_contract)
        if p["episode_steps"]:
            task_kwargs["episode_steps"] = int(p["episode_steps"])
        adapter = ADAPTERS[p["task"]]
        try:
            self.env = TASKS[p["task"]](num_envs=1, seed=int(p["seed"]),
                                        **{**task_kwargs, **adapter.env_kwargs})
        except (TypeError, ValueError) as err:
            raise self._bad(f"cannot build task {p['task']} with {task_kwargs}: {err}") from err
        self.env.set_student_mask(np.zeros(1, dtype=bool))  # the bridge renders itself
        self.env.render_images(ONE)  # creates the renderer now, not in the first step
        self.contract = file_contract or self.env.policy_contract()
        self.dt_ns = round(1e9 / float(self.env.policy_contract()["control_rate_hz"]))
        rate = float(p["control_rate_hz"]) or 1e9 / self.dt_ns
        self.period_s = 1.0 / rate
        self.hold_steps = max(1, math.ceil(float(p["reset_hold_s"]) * 1e9 / self.dt_ns))
        try:
            self.adapter = adapter(self, self.env, self.contract, p, self._publish, self.dt_ns)
        except (KeyError, ValueError) as err:
            raise StartupError(f"cannot serve {p['task']} with this contract: {err}",
                               EXIT_BAD_MODEL) from err
        try:
            self._build_io()
        except InvalidTopicNameException as err:
            raise self._bad(f"bad topic name: {err}") from err
        self.spinner.add_node(self)
        self._reset_state()
        self.get_logger().info(
            f"ready: task {p['task']} seed {p['seed']}, {p['episodes']} episode(s), "
            f"{self.mode}{f' at {rate:g} Hz' if self.mode == 'realtime' else ''}; "
            f"out {', '.join(self.topic_names[k] for k in ('camera', *self.adapter.inputs))}, "
            f"action {'out (teacher)' if self.teacher else 'in'} "
            f"{self.topic_names['action']}"
            f"{'; recording to ' + p['record'] if p['record'] else ''}")

    def _load_teacher(self) -> Any:
        path = self.p["teacher_checkpoint"]
        if not path:
            return None
        try:
            from .teacher import TeacherActor  # torch: only when asked for

            return TeacherActor(path, self.p["task"])
        except (FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
            raise StartupError(f"cannot load teacher_checkpoint {path}: {err}",
                               EXIT_BAD_MODEL) from err

    def _task_options(self, file_contract: dict[str, Any] | None) -> dict[str, Any]:
        """The task's keyword options: the parameter, else the contract's, else the teacher
        run's (so the bridge simulates the world the model was trained in)."""
        text = self.p["task_options"].strip()
        if text:
            try:
                options = json.loads(text)
            except json.JSONDecodeError as err:
                raise self._bad(f"parameter task_options is not JSON: {err}") from err
            if not isinstance(options, dict):
                raise self._bad("parameter task_options must be a JSON object, got "
                                f"{type(options).__name__}")
            return options
        if file_contract is not None:
            return dict(file_contract.get("provenance", {}).get("task_options", {}))
        return dict(self.teacher.task_kwargs) if self.teacher else {}

    def _file_contract(self) -> dict[str, Any] | None:
        """The ``model_contract`` parameter's contract, or None when it is empty."""
        path = self.p["model_contract"]
        if not path:
            return None
        from sitt_policy_node.contract import ContractError, sidecar_path, validate_contract

        file = Path(path)
        if file.suffix == ".onnx":
            file = sidecar_path(file)
        try:
            contract = validate_contract(json.loads(file.read_text()))
        except (OSError, json.JSONDecodeError, ContractError) as err:
            raise StartupError(f"cannot read model_contract {file}: {err}",
                               EXIT_BAD_MODEL) from err
        if contract["task"] != self.p["task"]:
            raise StartupError(f"model_contract {file} is for task {contract['task']!r}, the "
                               f"bridge simulates {self.p['task']!r}", EXIT_BAD_MODEL)
        return contract

    def _build_io(self) -> None:
        c, p = self.contract, self.p
        ros = c["ros"]
        try:
            names = {key: ros[key]["topic"] for key in ("camera", "action",
                                                        *self.adapter.inputs)}
        except KeyError as err:
            raise StartupError(f"the contract's ros section has no {err} topic",
                               EXIT_BAD_MODEL) from err
        names["camera_info"] = names["camera"].rsplit("/", 1)[0] + "/camera_info" \
            if "/" in names["camera"] else "camera_info"
        for param in TOPIC_PARAMETERS:
            key = param.name.removesuffix("_topic")
            if key in names:
                p[param.name] = self._declare(param, names[key])
        self.camera_frame = c["camera"]["mount"]["frame_id"]
        self.camera_info = camera_info_msg(c["camera"], self.camera_frame)
        reliable = QoSProfile(depth=10)
        self.clock_pub = self.create_publisher(ClockMsg, "/clock", reliable)
        self.image_pub = self.create_publisher(Image, p["camera_topic"], qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, p["camera_info_topic"],
                                              qos_profile_sensor_data)
        self.input_pubs = self.adapter.create_publishers(
            {key: p[f"{key}_topic"] for key in self.adapter.inputs})
        latched = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.result_pub = self.create_publisher(String, "~/episode_result", latched)
        action_type = self.adapter.action_type
        if self.teacher is not None:
            self.action_pub = self.create_publisher(action_type, p["action_topic"], reliable)
            self.action_sub = None
        else:
            self.action_sub = self.create_subscription(action_type, p["action_topic"],
                                                       self._on_action, reliable)
        self.recorder = self._open_recorder()
        self.debug_sub = None
        if self.recorder is not None and self.teacher is None and p["debug_topic"]:
            self.debug_sub = self.create_subscription(
                Float64MultiArray, p["debug_topic"], self._on_debug, QoSProfile(depth=100))
            self.recorder.add_topic(self.debug_sub.topic_name, type_name(Float64MultiArray))
        self.sync_client = None
        if p["policy_node"] and self.teacher is None:
            self.sync_client = self.create_client(GetParameters,
                                                  f"{p['policy_node']}/get_parameters")
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.topic_names = {k: p[f"{k}_topic"] for k in names}

    def _open_recorder(self) -> Any:
        if not self.p["record"]:
            return None
        from .bags import BagError, BagWriter

        pubs = [self.clock_pub, self.image_pub, self.info_pub, *self.input_pubs,
                self.result_pub]
        pubs += [self.action_pub] if self.teacher is not None else []
        try:
            writer = BagWriter(Path(self.p["record"]))
            for pub in pubs:
                writer.add_topic(pub.topic_name, type_name(pub.msg_type))
            if self.action_sub is not None:
                writer.add_topic(self.action_sub.topic_name, type_name(self.adapter.action_type))
        except BagError as err:
            raise self._bad(f"cannot record: {err}") from err
        return writer

    def _reset_state(self) -> None:
        self.sim_step = 0  # sim time = sim_step * dt
        self.episode = 0
        self.results: list[dict[str, Any]] = []
        self.obs_ns: int | None = None  # stamp of the observation the node should answer
        # What an unstamped action answers: the newest frame (or lockstep hold) sent before
        # it arrived.
        self.answer_ns = -1
        self.latest: tuple[int, np.ndarray] | None = None  # newest valid action (stamp, a)
        self.reset_requested = False
        self.finished = False
        self.hold_left = 0
        self.counts = {"actions_received": 0, "actions_rejected": 0, "actions_late": 0,
                       "safe_actions": 0, "action_timeouts": 0, "hold_timeouts": 0,
                       "sync_timeouts": 0, "resets": 0}
        self.episode_counts = {"safe_actions": 0, "rejected_actions": 0}
        self.tick_times: list[float] = []
        self.tick_durations: list[float] = []
        self.steps = 0

    # ------------------------------------------------------------------ helpers
    def _throttled(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -math.inf) >= LOG_THROTTLE_S:
            self._last_log[key] = now
            self.get_logger().warning(text)

    def _publish(self, pub: Any, msg: Any, ns: int) -> None:
        pub.publish(msg)
        if self.recorder is not None:
            self.recorder.write(pub.topic_name, msg, ns)

    def _spin_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not done():
            if not self.context.ok():  # Ctrl-C / SIGTERM shut rclpy down
                raise ExternalShutdownException()
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.spinner.spin_once(timeout_sec=min(left, 0.05))
        return True

    def _now_ns(self) -> int:
        return self.sim_step * self.dt_ns

    # ------------------------------------------------------------------ callbacks
    def _on_action(self, msg: Any) -> None:
        if self.recorder is not None:
            self.recorder.write(self.action_sub.topic_name, msg, self._now_ns())
        try:
            ns, action = self.adapter.decode(msg)
        except ActionError as err:
            self.counts["actions_rejected"] += 1
            self.episode_counts["rejected_actions"] += 1
            self._throttled("reject", f"action rejected: {err}")
            return
        self.counts["actions_received"] += 1
        if ns is None:
            ns = self.answer_ns
        if self.mode == "realtime" and self.obs_ns is not None and ns < self.obs_ns:
            self.counts["actions_late"] += 1  # it answers an observation already replaced
        self.latest = (ns, action)

    def _on_debug(self, msg: Float64MultiArray) -> None:
        self.recorder.write(self.debug_sub.topic_name, msg, self._now_ns())

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        if self.finished:
            response.success, response.message = False, "all episodes done"
        else:
            self.reset_requested = True
            response.success = True
            response.message = f"restarting episode {self.episode}"
        return response

    # ------------------------------------------------------------------ the policy node
    def _wait_for_node(self) -> None:
        """Discovery both ways (image reader, action writer), then the node's parameters."""
        timeout = float(self.p["startup_timeout_s"])
        who = self.p["policy_node"] or "an action publisher"

        def discovered() -> bool:
            if (self.image_pub.get_subscription_count() == 0
                    or self.action_sub.get_publisher_count() == 0):
                return False
            return self.sync_client is None or (  # a policy node takes every input
                all(pub.get_subscription_count() > 0 for pub in self.input_pubs)
                and self.sync_client.service_is_ready())

        if not self._spin_until(discovered, timeout):
            raise StartupError(f"no policy node after {timeout:g} s: waited for {who} to "
                               f"subscribe to {self.image_pub.topic_name} and publish "
                               f"{self.action_sub.topic_name}", EXIT_NO_NODE)
        if self.sync_client is not None:
            self._check_node_parameters(timeout)
        self._spin_until(lambda: False, SETTLE_S)

    def _check_node_parameters(self, timeout: float) -> None:
        names = ["trigger", "use_sim_time", "max_age_camera_s"]
        future = self.sync_client.call_async(GetParameters.Request(names=names))
        if not self._spin_until(future.done, timeout):
            raise StartupError(f"policy node {self.p['policy_node']} does not answer "
                               "get_parameters", EXIT_NO_NODE)
        values = dict(zip(names, map(parameter_value_to_python, future.result().values),
                          strict=True))
        if not values["use_sim_time"]:
            raise self._bad(f"policy node {self.p['policy_node']} runs without use_sim_time: "
                            "its action stamps would not match the simulation's clock (start "
                            "it with -p use_sim_time:=true)")
        if self.mode == "lockstep" and values["trigger"] != "camera":
            raise self._bad(f"lockstep needs the policy node with trigger:=camera (one action "
                            f"per frame); it runs with trigger:={values['trigger']}")
        age = values["max_age_camera_s"] or 0.0
        if not 0.0 < age < self.hold_steps * self.dt_ns * 1e-9:
            self.get_logger().warning(
                f"the node's max_age_camera_s={age:g} is not below reset_hold_s: it will not "
                "hold between episodes, so its previous action carries over into the next")

    # ------------------------------------------------------------------ observation, step
    def _sync_request(self) -> Any:
        return (self.sync_client.call_async(GetParameters.Request())
                if self.sync_client is not None else None)

    def _sync_wait(self, future: Any) -> None:
        if future is not None and not self._spin_until(future.done,
                                                       float(self.p["action_timeout_s"])):
            self.counts["sync_timeouts"] += 1
            self._throttled("sync", "the policy node did not answer the sync request")

    def _publish_observation(self, sync: bool) -> int:
        """Clock, the state topics, (sync: the node has taken them), camera info, image."""
        ns = self._now_ns()
        self._publish(self.clock_pub, clock_msg(ns), ns)
        self.adapter.publish_inputs(ns)
        future = self._sync_request() if sync else None
        pixels = self.env.render_images(ONE)[0]  # while the request is on its way
        self._sync_wait(future)
        self.camera_info.header.stamp = stamp(ns)
        self._publish(self.info_pub, self.camera_info, ns)
        if self.mode == "lockstep":
            self.latest = None  # only an answer sent after this frame counts
        self.obs_ns = ns
        self.answer_ns = ns
        self._publish(self.image_pub, image_msg(pixels, ns, self.camera_frame), ns)
        if self.teacher is not None:
            action = self.teacher(self.env.observe()["teacher"])
            msg = self.adapter.encode(action, ns)
            self._publish(self.action_pub, msg, ns)
            self.latest = (ns, self.adapter.decode(msg)[1])  # as a node's action would arrive
        return ns

    def _safe(self) -> np.ndarray:
        self.counts["safe_actions"] += 1
        self.episode_counts["safe_actions"] += 1
        return self.adapter.safe_action()

    def _apply(self, action: np.ndarray) -> bool:
        """One env step; on the episode's end publish its result. True when it ended."""
        _, _, terminated, truncated, infos = self.env.step(np.asarray(action)[None])
        self.steps += 1
        self.obs_ns = None
        if not (terminated[0] or truncated[0]):
            return False
        ns = self._now_ns()
        result = episode_result(self.episode, int(self.p["seed"]), infos["episode"],
                                sim_time_s=ns * 1e-9, **self.episode_counts)
        self.results.append(result)
        self._publish(self.result_pub, String(data=json.dumps(result)), ns)
        self.get_logger().info(
            f"episode {self.episode}: success {result['success']}, return "
            f"{result['return']:.3f}, length {result['length']}")
        self.episode += 1
        if self.episode >= int(self.p["episodes"]):
            self.finished = True
        return True

    def _start_episode(self) -> None:
        self.env.reset_to(self.episode)
        self.adapter.start_episode()
        self.episode_counts = dict.fromkeys(self.episode_counts, 0)
        self.obs_ns = None

    # ------------------------------------------------------------------ lockstep
    def _hold_lockstep(self) -> None:
        """Advance the clock with no camera frame (the arm: its joint state first); with a
        policy node, wait for its safe action at that time (its camera went stale), so it
        restarts from the safe action (the arm: from the measured joints)."""
        self.sim_step += self.hold_steps
        ns = self._now_ns()
        self.latest = None
        if self.adapter.inputs_on_hold and self.teacher is None:
            # Taken by the node before the clock moves on, so it has them when it holds.
            self.adapter.publish_inputs(ns)
            self._sync_wait(self._sync_request())
        self.answer_ns = ns
        self._publish(self.clock_pub, clock_msg(ns), ns)
        if self.sync_client is None:
            return
        if not self._spin_until(lambda: self.latest is not None and self.latest[0] >= ns,
                                HOLD_TIMEOUT_S):
            self.counts["hold_timeouts"] += 1
            self._throttled("hold", "the policy node did not publish its safe action "
                                    "between episodes (is max_age_camera_s < reset_hold_s?)")

    def _run_lockstep(self) -> None:
        self._start_episode()
        self._hold_lockstep()
        timeout = float(self.p["action_timeout_s"])
        while not self.finished:
            if self.reset_requested:
                self.reset_requested = False
                self.counts["resets"] += 1
                self._start_episode()
                self._hold_lockstep()
                continue
            ns = self._publish_observation(sync=True)
            if self._spin_until(lambda ns=ns: self.latest is not None and self.latest[0] == ns,
                                timeout):
                action = self.latest[1]
            else:
                self.counts["action_timeouts"] += 1
                self._throttled("timeout", f"no valid action for the observation at "
                                           f"{ns * 1e-9:.2f} s within {timeout:g} s: "
                                           "applying the safe action")
                action = self._safe()
            ended = self._apply(action)
            self.sim_step += 1
            if ended and not self.finished:
                self._start_episode()
                self._hold_lockstep()

    # ------------------------------------------------------------------ realtime
    def _realtime_action(self) -> np.ndarray:
        if self.latest is not None and self.latest[0] >= self.obs_ns:
            return self.latest[1]
        newest = "none" if self.latest is None else f"{self.latest[0] * 1e-9:.2f} s"
        self._throttled("missing", f"no action answered the observation at "
                                   f"{self.obs_ns * 1e-9:.2f} s within a period (newest: "
                                   f"{newest}): applying the safe action")
        return self._safe()  # none answered the last observation (missing or stale)

    def _tick(self) -> None:
        t0 = time.perf_counter()
        self.tick_times.append(t0)
        if self.finished:
            return
        if self.obs_ns is not None:
            if self._apply(self._realtime_action()) and not self.finished:
                self._start_episode()
                self.hold_left = self.hold_steps
        if self.reset_requested and not self.finished:
            self.reset_requested = False
            self.counts["resets"] += 1
            self._start_episode()
            self.hold_left = self.hold_steps
        self.sim_step += 1
        if self.finished:
            return
        if self.hold_left > 0:  # between episodes: time passes, sensors are silent
            self.hold_left -= 1
            ns = self._now_ns()
            self._publish(self.clock_pub, clock_msg(ns), ns)
        else:
            self._publish_observation(sync=False)
        self.tick_durations.append(time.perf_counter() - t0)

    def _raise_priority(self) -> None:
        """Optional real-time scheduling of this (the stepping) thread; a robot's driver
        loop would run so. Other processes on a busy machine then cannot delay a tick."""
        priority = int(self.p["realtime_priority"])
        if priority <= 0:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except (OSError, AttributeError) as err:
            self.get_logger().warning(f"realtime_priority {priority}: cannot use SCHED_FIFO "
                                      f"({err}); running with normal scheduling")

    def _run_realtime(self) -> None:
        self._raise_priority()
        self._start_episode()
        self.hold_left = self.hold_steps
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # not sim time: the bridge owns it
        timer = self.create_timer(self.period_s, self._tick, clock=steady)
        try:
            while not self.finished:
                if not self.context.ok():
                    raise ExternalShutdownException()
                self.spinner.spin_once(timeout_sec=0.1)
        finally:
            timer.cancel()
            self.destroy_timer(timer)

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """Run every episode; returns the summary."""
        if self.teacher is None:
            self._wait_for_node()
        t0 = time.perf_counter()
        try:
            if self.mode == "lockstep":
                self._run_lockstep()
            else:
                self._run_realtime()
        finally:
            self.wall_s = time.perf_counter() - t0
        if self.recorder is not None:
            self._spin_until(lambda: False, SETTLE_S)  # the last action and debug messages
        return self.summary()

    def summary(self) -> dict[str, Any]:
        wall = getattr(self, "wall_s", 0.0)
        out: dict[str, Any] = {
            "summary": NODE_NAME, "task": self.p["task"], "mode": self.mode,
            "seed": int(self.p["seed"]), **summarise(self.results),
            "complete": len(self.results) == int(self.p["episodes"]),
            "policy": "teacher" if self.teacher is not None else "action topic",
            "steps": self.steps, "wall_s": wall,
            "steps_per_s": self.steps / wall if wall > 0 else 0.0,
            **self.counts,
        }
        if self.mode == "realtime" and len(self.tick_times) > 1:
            intervals = np.diff(self.tick_times)
            out["period_ms"] = self.period_s * 1e3
            out["ticks"] = len(self.tick_times)
            out["jitter_ms"] = _percentiles_ms(list(np.abs(intervals - self.period_s)))
            out["tick_ms"] = _percentiles_ms(self.tick_durations)
        out["per_episode"] = self.results
        return out

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        self.env.close()


def _idle(node: SimBridge) -> None:
    """After the last episode (exit_on_done false): serve ~/reset answers until stopped."""
    try:
        while node.context.ok():
            node.spinner.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = SimBridge()
    code = set_up(node)
    if code is not None:
        return code
    code = 0
    try:
        summary = node.run()
        print(json.dumps(summary), flush=True)
        if not node.p["exit_on_done"]:
            _idle(node)
    except StartupError as err:
        node.get_logger().fatal(str(err))
        code = err.code
    except (KeyboardInterrupt, ExternalShutdownException, RCLError) as err:
        if isinstance(err, RCLError) and node.context.ok():
            raise
        print(json.dumps(node.summary()), flush=True)  # the episodes finished so far
        code = EXIT_INTERRUPTED
    finally:
        node.close()
        node.spinner.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
