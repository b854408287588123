"""``sitt-replay --live``: republish a bag into a running ``policy_node`` and record what
it answers.

The camera, odometry / joint state and command messages (and ``/clock`` when recorded)
are published as recorded bytes at their recorded log-time spacing (``--rate`` scales
it). The node must run with ``trigger:=camera`` (one action per frame); with
``use_sim_time:=true`` it follows the republished ``/clock``, and ``--clock`` makes one
from the frames' stamps when the bag has none. Each frame's answer is matched as offline
(same stamp first, else the first action received after publishing it and before the
next frame), giving latency (publish -> action received) and drops (frames without one).

DDS settings come from the environment (ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE,
FASTDDS_DEFAULT_PROFILES_FILE), as for every ROS process of this project.
"""

from __future__ import annotations

import argparse
import struct
import time
from typing import Any

import numpy as np

from sitt_policy_node.actions import ActionMap

from .bags import BagReader, message_class
from .replay import Plan, ReplayError, Topics, _action_reader
from .replay_report import latency_stats, match_answers

SPIN_S = 0.002  # longest sleep between two publishes: actions are taken in meanwhile
TAIL_S = 1.0  # after the last frame: wait this long for the outstanding answers


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

    def target(key: str, bag_topic: str | None) -> str:
        name = ros.get(key, {}).get("topic", key)
        if args.namespace is not None:  # "" (the launch file's default): the root
            ns = args.namespace.strip("/")
            return name if name.startswith("/") else "/".join(["", *filter(None, [ns]), name])
        return bag_topic or (name if name.startswith("/") else f"/{name}")

    out = {topics.camera: target("camera", topics.camera)}
    out.update({t: target(k, t) for k, t in topics.inputs.items()})
    out["action"] = target("action", topics.action)
    return out


def run_live(args: argparse.Namespace, bag: BagReader, contract: dict[str, Any],
             topics: Topics, plan: Plan) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock

    amap = ActionMap(contract["action"])
    action_type = contract["ros"]["action"].get("type", "geometry_msgs/msg/TwistStamped")
    to_norm = _action_reader(contract, action_type, amap)
    names = live_topics(args, contract, topics)
    rclpy.init(args=[])
    node = rclpy.create_node("sitt_replay")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    received: list[tuple[int, int, np.ndarray]] = []  # (monotonic ns, stamp ns, action)

    def on_action(msg: Any) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec \
            if hasattr(msg, "header") else 0
        received.append((time.monotonic_ns(), stamp, to_norm(msg)))

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
        _wait_for_node(executor, node, pubs, sub, names, topics, args.wait)

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
            pubs[topic].publish(data)
            published += 1
            if topic == topics.camera:
                frame_keys.append(((time.monotonic_ns(), published), plan.frame_stamps[frame]))
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

    answers = match_answers(frame_keys, [((t, 0), s) for t, s, _ in received])
    latencies = [(received[j][0] - frame_keys[i][0][0]) * 1e-6
                 for i, j in enumerate(answers) if j is not None]
    actions = np.full((len(plan.replayed), len(amap.names)), np.nan)
    for row, i in enumerate(plan.replayed):
        if answers[i] is not None:
            actions[row] = received[answers[i]][2]
    return {
        "actions": actions, "seconds": seconds, "published_messages": published,
        "published_frames": len(frame_keys),
        "drops": sum(j is None for j in answers),
        "latency_ms": latency_stats(latencies),
        "live_topics": {k: v for k, v in names.items()},
        "rate": args.rate,
        "actions_received": len(received),
    }


def _time_msg(ns: int) -> Any:
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _wait_for_node(executor: Any, node: Any, pubs: dict[str, Any], sub: Any,
                   names: dict[str, str], topics: Topics, timeout: float) -> None:
    """Discovery both ways, or ReplayError naming what nobody listens to."""
    inputs = [topics.camera, *topics.inputs.values()]
    end = time.monotonic() + timeout
    while True:
        deaf = [names[t] for t in inputs if pubs[t].get_subscription_count() == 0]
        if not deaf and sub.get_publisher_count() > 0:
            break
        if time.monotonic() > end:
            what = (f"nobody subscribes to {', '.join(deaf)}" if deaf else
                    f"nobody publishes {names['action']}")
            raise ReplayError(f"no policy_node found after {timeout:g} s: {what} (is it "
                              f"running, in this ROS_DOMAIN_ID, with these topic names?)")
        executor.spin_once(timeout_sec=0.05)
    time.sleep(0.2)  # matched, but let the node's readers settle before the first message
