"""``sitt-replay --live``: republish a bag into a running ``policy_node`` and record what
it answers.

The camera, odometry / joint state and command messages (and ``/clock`` when recorded)
are published as recorded bytes at their recorded log-time spacing (``--rate`` scales
it). The node must run with ``trigger:=camera`` (one action per frame); with
``use_sim_time:=true`` it follows the republished ``/clock``, and ``--clock`` makes one
from the frames' stamps when the bag has none. Each frame's answer is matched as offline
(same stamp first, else the first action received after publishing it and before the
next frame), giving latency (publish -> action received) and drops (frames without one).

Inputs before their frame: in a simulator bag (``sitt-hil --record``: the bridge's lockstep)
a step's clock, odometry / joint state and command share the frame's log time, so they are
republished right before it, and the node serves its image subscription first: it could
step on the frame with the previous step's inputs. So before each frame the replay calls
the node's ``get_parameters`` service and waits for the answer (at most
``ANSWER_TIMEOUT_S``; timeouts: ``sync_timeouts``), as the sim bridge's lockstep does:
rclpy serves subscriptions before services, so by then the node has taken the inputs
published before the frame. It does so twice (``SYNC_ROUND_TRIPS``): rclpy serves timers
before services too, so the second answer comes after the timers the new clock made due
have run, e.g. the watchdog's step on the stale camera after an episode gap (as recorded:
its safe action restarts the node's previous action, and that action, stamped with the
frame's time, arrives before the frame is published, so it is not taken for its answer).
The node is ``<namespace>/policy_node``, named after its debug topic (``~/debug``,
below). Without that service after discovery (a node named otherwise) a model with
stamped actions is replayed without the sync and the report warns; integrated joint
targets need it.

Integrated joint targets (the arm): the targets are unstamped and the node also publishes
them from steps no frame triggered (its watchdog holds while the camera is stale, e.g.
across the bag's episode gaps), so arrival order cannot tell a frame's answer. The replay
then reads the node's ``~/debug`` topic (``<namespace>/policy_node/debug``; the node must
run with ``publish_debug``, its default): a frame's step is the first one after it whose
camera age is 0 (the node stamps a frame's arrival with that step's time; its watchdog
only steps on a missing, stale or rejected camera), and its answer is the target message
received with the same values (the debug record carries the published targets). The next
frame waits until the node's step for this one was seen (at most ``ANSWER_TIMEOUT_S``).

DDS settings come from the environment (ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE,
FASTDDS_DEFAULT_PROFILES_FILE), as for every ROS process of this project.
"""

from __future__ import annotations

import argparse
import bisect
import struct
import time
from typing import Any

import numpy as np

from sitt_policy_node.actions import ActionMap

from .bags import BagReader, message_class
from .replay import DEBUG_SUFFIX, Plan, ReplayError, Topics, _action_reader, debug_segments
from .replay_report import latency_stats, match_answers

SPIN_S = 0.002  # longest sleep between two publishes: actions are taken in meanwhile
TAIL_S = 1.0  # after the last frame: wait this long for the outstanding answers
ANSWER_TIMEOUT_S = 2.0  # the longest wait for the node's sync answer (integrated: its step)
SYNC_ROUND_TRIPS = 2  # get_parameters calls before each frame (see run_live)
SYNC_DISCOVERY_S = 1.0  # stamped actions: after the topics matched, wait this long for the
# node's get_parameters service (it comes with the node's topics; a missing one: no sync)
CAMERA_AGE = "age_camera_s"  # the node's debug segment: camera age at the step [s]


def _cdr_stamp(data: bytes) -> int:
    """Header stamp [ns] of a serialised stamped message: the header is its first field,
    right after the 4-byte CDR encapsulation (byte 1 says little or big endian)."""
    fmt = "<iI" if data[1] == 1 else ">iI"
    sec, nanosec = struct.unpack_from(fmt, data, 4)
    return sec * 1_000_000_000 + nanosec


def live_topics(args: argparse.Namespace, contract: dict[str, Any], topics: Topics
                ) -> dict[str, str]:
    """{bag topic or 'action': topic on the live graph}."""
    ros = contract["ros"]

    def target(key: str, bag_topic: str | None, default: str | None = None) -> str:
        name = ros.get(key, {}).get("topic", default or key)
        if args.namespace is not None:  # "" (the launch file's default): the root
            ns = args.namespace.strip("/")
            return name if name.startswith("/") else "/".join(["", *filter(None, [ns]), name])
        return bag_topic or (name if name.startswith("/") else f"/{name}")

    out = {topics.camera: target("camera", topics.camera)}
    out.update({t: target(k, t) for k, t in topics.inputs.items()})
    out["action"] = target("action", topics.action)
    debug = target("debug", topics.debug, DEBUG_SUFFIX)  # the node's debug topic
    if "integrate" in contract["action"]:  # read to tell a frame's answer
        out["debug"] = debug
    out["node"] = debug.removesuffix("/debug")  # its node: the sync's get_parameters
    return out


def run_live(args: argparse.Namespace, bag: BagReader, contract: dict[str, Any],
             topics: Topics, plan: Plan) -> dict[str, Any]:
    import rclpy
    from rcl_interfaces.srv import GetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Float64MultiArray

    amap = ActionMap(contract["action"])
    integrated = "integrate" in contract["action"]
    action_type = contract["ros"]["action"].get("type", "geometry_msgs/msg/TwistStamped")
    if integrated:  # the absolute joint targets, as they are
        def to_value(msg: Any) -> np.ndarray:
            return np.asarray(msg.data, dtype=np.float64)
    else:
        to_value = _action_reader(contract, action_type, amap)
    names = live_topics(args, contract, topics)
    rclpy.init(args=[])
    node = rclpy.create_node("sitt_replay")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    received: list[tuple[int, int, np.ndarray]] = []  # (monotonic ns, stamp ns, action)
    steps: list[tuple[int, np.ndarray]] = []  # integrated: frame steps (monotonic ns, targets)

    def on_action(msg: Any) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec \
            if hasattr(msg, "header") else 0
        received.append((time.monotonic_ns(), stamp, to_value(msg)))

    def on_debug(msg: Float64MultiArray) -> None:
        seg = debug_segments(msg)
        age = seg.get(CAMERA_AGE)
        if age is not None and age.size == 1 and age[0] == 0.0 and "target" in seg:
            steps.append((time.monotonic_ns(), seg["target"].copy()))

    def spin_until(done: Any, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > end:
                return False
            executor.spin_once(timeout_sec=SPIN_S)
        return True

    sync_timeouts = 0
    warnings: list[str] = []
    try:
        pubs = {}
        for bag_topic in [topics.camera, *topics.inputs.values()]:
            qos = qos_profile_sensor_data if bag_topic == topics.camera else QoSProfile(depth=100)
            pubs[bag_topic] = node.create_publisher(message_class(bag.topics[bag_topic]),
                                                    names[bag_topic], qos)
        clock_pub = None
        if topics.clock or args.clock:
            clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
            if topics.clock:
                pubs[topics.clock] = clock_pub
        sub = node.create_subscription(message_class(action_type), names["action"],
                                       on_action, QoSProfile(depth=1000))
        debug_sub = None
        if integrated:
            debug_sub = node.create_subscription(Float64MultiArray, names["debug"], on_debug,
                                                 QoSProfile(depth=1000))
        sync = node.create_client(GetParameters, f"{names['node']}/get_parameters")
        if not _wait_for_node(executor, node, pubs, sub, names, topics, args.wait,
                              debug_sub, sync, sync_required=integrated):
            warnings.append(
                f"no service {sync.srv_name} (is the node named otherwise?): frames "
                "published without making sure the node took the inputs recorded before "
                "them first; where they share the frame's log time (simulator bags) it may "
                "step with the previous ones")
            sync = None

        frame_keys: list[tuple[tuple[int, int], int]] = []
        frame = 0
        last_clock = -1
        published = 0
        t_start = time.perf_counter()
        start_ns, first_log = time.monotonic_ns() + 10_000_000, None
        for topic, _, log_ns, data in bag.raw(list(pubs)):
            first_log = log_ns if first_log is None else first_log
            due = start_ns + int((log_ns - first_log) / args.rate)
            while (left := due - time.monotonic_ns()) > 0:
                executor.spin_once(timeout_sec=min(left * 1e-9, SPIN_S))
            data = bytes(data)
            if clock_pub is not None and not topics.clock and topic != topics.clock:
                stamp = _cdr_stamp(data)  # a synthetic /clock: the step's stamp, first
                if stamp > last_clock:
                    clock_pub.publish(Clock(clock=_time_msg(stamp)))
                    last_clock = stamp
            if sync is not None and topic == topics.camera:
                # rclpy serves subscriptions before services: once the node answers, it has
                # taken the inputs published before this frame. Timers are served before
                # services too: the second answer comes after the timers the new clock made
                # due ran (the watchdog's step when the camera went stale, between episodes).
                for _ in range(SYNC_ROUND_TRIPS):
                    future = sync.call_async(GetParameters.Request())
                    if not spin_until(future.done, ANSWER_TIMEOUT_S):
                        sync_timeouts += 1
                        break
            pubs[topic].publish(data)
            published += 1
            if topic == topics.camera:
                frame_keys.append(((time.monotonic_ns(), published), plan.frame_stamps[frame]))
                if integrated and plan.image_ok[frame]:  # its step, before anything else
                    seen = len(steps)
                    spin_until(lambda seen=seen: len(steps) > seen, ANSWER_TIMEOUT_S)
                frame += 1
        # The outstanding answers: until one came after the last frame (and a little
        # more for stragglers), at most TAIL_S.
        deadline = time.monotonic() + TAIL_S
        last = frame_keys[-1][0][0] if frame_keys else 0
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=SPIN_S)
            if received and received[-1][0] > last:
                deadline = min(deadline, time.monotonic() + 0.05)
        seconds = time.perf_counter() - t_start
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()

    if integrated:
        answers = _target_answers(frame_keys, steps, received)
    else:
        answers = match_answers(frame_keys, [((t, 0), s) for t, s, _ in received])
    latencies = [(received[j][0] - frame_keys[i][0][0]) * 1e-6
                 for i, j in enumerate(answers) if j is not None]
    width = len(contract["action"]["integrate"]["joints"]) if integrated else len(amap.names)
    actions = np.full((len(plan.replayed), width), np.nan)
    for row, i in enumerate(plan.replayed):
        if answers[i] is not None:
            actions[row] = received[answers[i]][2]
    out = {
        "actions": actions, "seconds": seconds, "published_messages": published,
        "published_frames": len(frame_keys),
        "drops": sum(j is None for j in answers),
        "latency_ms": latency_stats(latencies),
        "live_topics": {k: v for k, v in names.items()},
        "rate": args.rate,
        "actions_received": len(received),
        "sync_timeouts": sync_timeouts,
        "warnings": warnings,
    }
    if integrated:
        out["frame_steps"] = len(steps)
    return out


def _target_answers(frame_keys: list[tuple[tuple[int, int], int]],
                    steps: list[tuple[int, np.ndarray]],
                    received: list[tuple[int, int, np.ndarray]]) -> list[int | None]:
    """Integrated targets: per frame, the received target message that answered it (index
    into ``received``): the node's step for the frame (``steps``, from its debug topic,
    matched as offline) and the first unused target message after the frame with the
    step's values. None: no step, or its targets never arrived (a node without a joint
    state publishes none)."""
    matched = match_answers(frame_keys, [((t, 0), 0) for t, _ in steps])
    times = [t for t, _, _ in received]
    used: set[int] = set()
    out: list[int | None] = []
    for (key, _), j in zip(frame_keys, matched, strict=True):
        answer = None
        if j is not None:
            k = bisect.bisect_right(times, key[0])
            while k < len(received) and (k in used
                                         or not np.array_equal(received[k][2], steps[j][1])):
                k += 1
            if k < len(received):
                answer = k
                used.add(k)
        out.append(answer)
    return out


def _time_msg(ns: int) -> Any:
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _wait_for_node(executor: Any, node: Any, pubs: dict[str, Any], sub: Any,
                   names: dict[str, str], topics: Topics, timeout: float,
                   debug_sub: Any = None, sync: Any = None, sync_required: bool = True
                   ) -> bool:
    """Discovery both ways (integrated targets: the debug topic too) and the node's sync
    service, or ReplayError naming what is missing. Without ``sync_required`` a missing
    service is no error: once the topics matched it gets ``SYNC_DISCOVERY_S`` more (within
    ``timeout``), then False: replay without the sync."""
    inputs = [topics.camera, *topics.inputs.values()]
    end = time.monotonic() + timeout
    give_up, synced = None, True  # the optional service: when to go on without it
    while True:
        deaf = [names[t] for t in inputs if pubs[t].get_subscription_count() == 0]
        hint = "is it running, in this ROS_DOMAIN_ID, with these topic names?"
        if deaf:
            missing = f"nobody subscribes to {', '.join(deaf)}"
        elif sub.get_publisher_count() == 0:
            missing = f"nobody publishes {names['action']}"
        elif debug_sub is not None and debug_sub.get_publisher_count() == 0:
            missing = f"nobody publishes {names['debug']}"
            hint = "the live replay of joint targets needs it: run the node with publish_debug"
        elif sync is not None and not sync.service_is_ready():
            missing = f"no service {sync.srv_name}"
            if not sync_required:
                now = time.monotonic()
                give_up = give_up or min(end, now + SYNC_DISCOVERY_S)
                if now > give_up:
                    synced = False
                    break
        else:
            break
        if time.monotonic() > end:
            raise ReplayError(f"no policy_node found after {timeout:g} s: {missing} ({hint})")
        executor.spin_once(timeout_sec=0.05)
    time.sleep(0.2)  # matched, but let the node's readers settle before the first message
    return synced
