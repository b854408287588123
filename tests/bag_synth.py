"""Bags for replay tests and benchmarks: a QuadrotorVecEnv rollout driven by the exported
student, recorded as the policy node would see and answer it (camera, odometry, command,
action), with optional faults. Not a test module (no ``test_`` prefix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from test_policy_observation import command_msg, image_msg, odometry_msg

from sitt_policy_node.actions import TWIST_STAMPED_FIELDS, ActionMap, write_fields
from sitt_policy_node.contract import load_policy
from sitt_policy_node.observation import LUMA_RGB, ImageConverter, InputError, StateBuilder
from sitt_sim_bridge.bags import BagWriter
from sitt_training.envs.quadrotor import QuadrotorVecEnv

T0_NS = 1_000_000_000_000  # sim time of the first step: 1000 s
TOPICS = {"camera": "/drone/camera/image_raw", "odometry": "/drone/odom",
          "command": "/drone/cmd_vel", "action": "/drone/cmd_rates_thrust"}


def set_stamp(msg: Any, ns: int) -> Any:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(ns), 1_000_000_000)
    return msg


def frame_variant(rgb: np.ndarray, k: int) -> Image:
    """rgb8, bgr8, rgb8 with padded rows, mono8 in turn (the node takes all four)."""
    kind = k % 4
    if kind == 1:
        return image_msg(np.ascontiguousarray(rgb[..., ::-1]), "bgr8")
    if kind == 2:
        return image_msg(rgb, "rgb8", pad=16)
    if kind == 3:
        grey = np.rint(rgb.astype(np.float64) @ LUMA_RGB).astype(np.uint8)[..., None]
        return image_msg(grey, "mono8")
    return image_msg(rgb, "rgb8")


def action_msg(amap: ActionMap, action: np.ndarray, stamp_ns: int) -> TwistStamped:
    msg = set_stamp(TwistStamped(), stamp_ns)
    msg.header.frame_id = "base_link"
    fields = {n: TWIST_STAMPED_FIELDS[n] for n in amap.names}
    write_fields(msg, fields, amap.names, amap.to_physical(action))
    return msg


def write_rollout_bag(path: Path, model: Path, frames: int, *, storage: str = "mcap",
                      seed: int = 3, period_ns: int = 20_000_000, lockstep: bool = True,
                      distinct_images: int | None = None,
                      fault: Callable[[int, dict[str, Any]], None] | None = None) -> dict:
    """Record ``frames`` steps: per step odometry, command (stamped like the frame), the
    frame, then the student's answer 1 ms later (stamped like the frame when
    ``lockstep``, else unstamped). ``fault(k, msgs)`` may change or drop (set to None)
    step k's odometry / command / camera before they are written (and answered). Returns
    the recorded actions per step."""
    contract, session = load_policy(model)
    amap = ActionMap(contract["action"])
    builder = StateBuilder(contract["state_fields"])
    converter = ImageConverter(contract["camera"])
    env = QuadrotorVecEnv(num_envs=1, seed=seed)
    env.reset(seed=seed)
    ids = np.arange(1)
    prev = amap.safe.copy()
    latest: dict[str, Any] = {}
    rendered: list[np.ndarray] = []
    expected = []
    with BagWriter(path, storage) as bag:
        # Topics are added by their first message: a fault may leave one out entirely.
        for k in range(frames):
            t = T0_NS + k * period_ns
            if distinct_images is None or len(rendered) < distinct_images:
                rendered.append(env.render_images(ids)[0])
            rgb = rendered[k % len(rendered)]
            msgs: dict[str, Any] = {
                "odometry": set_stamp(odometry_msg(env.odometry(ids)), t),
                "command": set_stamp(command_msg(env.command_velocity(ids)[0]), t),
                "camera": set_stamp(frame_variant(rgb, k), t),
            }
            if fault is not None:
                fault(k, msgs)
            # Answer as the node would: from the newest odometry / command it has (a
            # dropped message leaves the previous one), the safe action while it lacks one
            # or cannot use the frame.
            latest.update({n: m for n, m in msgs.items() if m is not None})
            action = amap.safe
            if msgs["camera"] is not None and {"odometry", "command"} <= set(latest):
                try:
                    pixels = converter.convert(msgs["camera"])[None]
                    state = builder.build(latest, prev)
                    action = amap.clip(session.run(["action"], {"state": state[None],
                                                                  "image": pixels})[0][0])
                except InputError:
                    pass
            msgs["action"] = action_msg(amap, action, t if lockstep else 0)
            log = t + 5_000_000  # the recorder's clock runs 5 ms behind the sim's
            for offset, name in enumerate(("odometry", "command", "camera")):
                if msgs[name] is not None:
                    bag.write(TOPICS[name], msgs[name], log + offset * 1000)
            if msgs["action"] is not None:
                bag.write(TOPICS["action"], msgs["action"], log + 1_000_000)
            expected.append(action)
            prev = action
            env.step(action[None].astype(np.float32))
    env.close()
    return {"actions": np.array(expected), "contract": contract}
