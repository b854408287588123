"""``sitt-replay``: run an exported student on a recorded rosbag2 bag and compare its
actions with the recorded ones.

    sitt-replay --bag runs/flight_bag --model student.onnx [--plot actions.png] [--json]
    sitt-replay --bag ... --model ... --live [--rate 2.0] [--namespace drone1]

Offline (default): the bag's camera frames, odometry / joint states and commands become
observations through the policy node's own code (``StateBuilder``, ``ImageConverter`` from
the model's contract), the model runs on them as fast as it can (batched) and the report
gives the action error against the recorded actions, coverage, skips with reasons and
throughput. ``--live`` republishes the bag into a running ``policy_node`` instead (see
``replay_live.py``) and adds latency and drops.

Alignment: each camera frame is one step. Odometry / commands: the newest message at or
before the frame, by header stamp when every frame and input message has one, else by log
time. The recorded action answering a frame: the first one whose header stamp equals the
frame's (lockstep on a simulator clock), else the first one logged after the frame and
before the next frame (``replay_report.match_answers``).

Previous action: the state's ``previous_action`` is the *recorded* action the node had
published last before the frame (the answer to the previous frame, or a later safe action),
not the replayed model's own output. The replay then sees exactly what the node saw, so
one step's error does not feed into the next and every step is compared on the same
inputs. Without a recorded action topic the model's own (clipped) output is fed back.

Integrated joint targets (contract ``action.integrate``, the arm): the node publishes
absolute targets (``std_msgs/Float64MultiArray``), ``JointTargetIntegrator.step(targets,
measured, action)`` of its targets before the step, the measured joint positions and the
clipped action. The replayed answer to a frame is what the node would have published from
the *node's* integrator state just before that frame, rebuilt from the bag (the same
principle: the replay's own targets never feed the next step):

* measured: the joint positions (``action.integrate.joints`` by name) of the frame's joint
  state, the message its observation uses (the node integrates against its newest one);
* the targets before the step: the node continues from its previous targets only when its
  previous step was the policy's own (``node.py``: any other step makes the next RUNNING
  step restart from the measured joints). In the bag: the newest recorded target before
  the frame is the recorded answer to the previous frame, and the node ran that frame in
  ``RUNNING`` (the debug topic's state when recorded, else: the replay could build that
  frame's observation). Then the targets before the step are that recorded target.
  Otherwise (the bag's first frame, a frame after the node's safe action between episodes
  or after a held, skipped or unanswered frame) they are ``hold(measured)``, where the node
  restarts. Every node step publishes one target message once it has a joint state, so a
  recorded target after the previous answer is a step that was not the policy's own.
  Without recorded targets the replay reports coverage and skips only (no state to
  start from, nothing to compare).

Errors are reported on the targets (``target_error``, per joint, rad / m) and in action
units (``action_error``, same keys as the quadrotor's): the increment each target change
amounts to from the same targets before the step (``JointTargetIntegrator.applied_action``;
``physical`` = that x ``step_scale``, rad / m), for recorded and replayed targets alike.
``--fail-above`` applies to the action units; ``--plot`` draws the targets. The arm's state
has no previous action; a model whose state has one is refused here, since the node feeds
back its clipped normalised action, which the published targets do not give wherever a
limit or the lead clamp cut the increment. ``--live`` tells the node's answer to a frame
from its other steps by the node's ``~/debug`` topic (see ``replay_live.py``).

The offline replay holds the bag's messages in memory (1000 64x64 frames: about 12 MB of
pixels), which keeps the alignment simple (an answer comes after its frame).

Exit codes: 0 done; 1 ``--fail-above`` exceeded; 2 unusable bag, model or topics (the
reason in one line on stderr).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sitt_policy_node.actions import FLOAT64_ARRAY, TWIST_STAMPED, ActionMap, output_fields
from sitt_policy_node.contract import ContractError, load_policy
from sitt_policy_node.integrators import JointTargetIntegrator
from sitt_policy_node.observation import (
    CHANNELS,
    JOINT_STATE,
    PREVIOUS_ACTION,
    FieldSpec,
    ImageConverter,
    InputError,
    StateBuilder,
    field_value,
    read_path,
)

from .bags import BagError, BagReader, stamp_ns
from .replay_report import Key, action_errors, match_answers, plot_actions, text_report

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
RUNNING = 1  # sitt_policy_node.safety.State.RUNNING, the debug topic's "state" value
IMAGE = "sensor_msgs/msg/Image"
DEBUG_SUFFIX = "policy_node/debug"
# The policy node's defaults (node.py PARAMETERS): an input older than this at a frame
# makes the node hold, so the replay skips that frame too. 0: no limit.
DEFAULT_MAX_AGE_S = {"odometry": 0.1, "command": 1.0, "joint_state": 0.1}
DEFAULT_INPUT_TYPES = {"odometry": "nav_msgs/msg/Odometry",
                       "command": "geometry_msgs/msg/TwistStamped",
                       "joint_state": "sensor_msgs/msg/JointState"}
TOPIC_KEYS = ("camera", "odometry", "command", "joint_state", "action", "debug", "clock")
# Key of the integrator's measured joint positions among a frame's state parts.
MEASURED = "action.integrate.joints"


class ReplayError(RuntimeError):
    """The replay cannot run; the message says why in one line."""


# --------------------------------------------------------------------------- integrated
def integrator_of(contract: dict[str, Any]) -> JointTargetIntegrator | None:
    """The node's integrator for an integrated-action model (``action.integrate``), else
    None. ``load_policy`` has checked the section."""
    action = contract["action"]
    if "integrate" not in action:
        return None
    return JointTargetIntegrator.from_contract(action["integrate"], len(action["names"]))


def joint_reader(integrator: JointTargetIntegrator) -> FieldSpec:
    """Reads the measured joint positions by name, as the node does."""
    joints = list(integrator.joints)
    return FieldSpec(MEASURED, len(joints), JOINT_STATE, "position", "none",
                     {"joints": joints})


def state_inputs(builder: StateBuilder, integrator: JointTargetIntegrator | None
                 ) -> list[str]:
    """The ROS inputs the node subscribes to: the state's, plus the joint states an
    integrator needs (``node.py``)."""
    names = list(builder.inputs)
    if integrator is not None and JOINT_STATE not in names:
        names.append(JOINT_STATE)
    return names


def joint_units(contract: dict[str, Any], integrator: JointTargetIntegrator) -> list[str]:
    """Each target's unit: that of the action element that moves it."""
    units = contract["action"]["units"]
    return [str(units[k]) for k in integrator.action_index.tolist()]


def debug_segments(msg: Any) -> dict[str, np.ndarray]:
    """The node's ``~/debug`` message by its ``layout.dim`` labels."""
    data, out, start = np.asarray(msg.data, dtype=np.float64), {}, 0
    for dim in msg.layout.dim:
        out[dim.label] = data[start:start + dim.size]
        start += dim.size
    return out


# --------------------------------------------------------------------------- topics
def parse_pairs(text: str | None, what: str) -> dict[str, str]:
    """``a=x,b=y`` -> {a: x, b: y}."""
    out: dict[str, str] = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ReplayError(f"{what}: expected name=value pairs, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def resolve_topic(bag: BagReader, name: str, type_name: str | None) -> str | None:
    """The bag topic for ``name``: itself when absolute, ``/name``, or the one topic that
    ends with ``/name`` (a namespaced robot). None when there is none."""
    topics = set(bag.topics) | set(bag.skipped)
    if name.startswith("/"):
        found = [name] if name in topics else []
    elif f"/{name}" in topics:
        found = [f"/{name}"]
    else:
        found = sorted(t for t in topics if t.endswith(f"/{name}"))
    if len(found) > 1:
        raise ReplayError(f"several topics match {name!r} ({', '.join(found)}); choose one "
                          f"with --topics")
    if not found:
        return None
    topic = found[0]
    bag.require([topic])
    if type_name and bag.topics[topic] != type_name:
        raise ReplayError(f"topic {topic} is {bag.topics[topic]}, the model needs {type_name}")
    return topic


@dataclass
class Topics:
    camera: str | None
    inputs: dict[str, str]
    action: str | None
    debug: str | None
    clock: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"camera": self.camera, **self.inputs, "action": self.action,
                "debug": self.debug, "clock": self.clock}


def choose_topics(bag: BagReader, contract: dict[str, Any], inputs: list[str],
                  given: dict[str, str]) -> tuple[Topics, list[str]]:
    """Bag topics for the model's inputs (defaults from the contract's ``ros`` section).
    Missing inputs raise ReplayError; a missing action topic is a warning."""
    unknown = sorted(set(given) - set(TOPIC_KEYS))
    if unknown:
        raise ReplayError(f"--topics: unknown name(s) {unknown} (use {', '.join(TOPIC_KEYS)})")
    ros = contract["ros"]
    warnings: list[str] = []

    def pick(key: str, default: str, type_name: str | None, required: bool) -> str | None:
        name = given.get(key, default)
        topic = resolve_topic(bag, name, type_name)
        if topic is None and required:
            have = ", ".join(sorted(bag.topics)) or "none"
            raise ReplayError(f"the bag has no {key} topic {name!r} (it has: {have}); "
                              f"give --topics {key}=<topic>")
        return topic

    has_camera = any(i["role"] == "camera" for i in contract["inputs"])
    if not has_camera:
        raise ReplayError("the model has no camera input; sitt-replay steps once per "
                          "camera frame and needs one")
    camera = pick("camera", ros.get("camera", {}).get("topic", "camera/image_raw"), IMAGE,
                  True)
    found_inputs = {}
    for name in inputs:
        spec = ros.get(name, {})
        found_inputs[name] = pick(name, spec.get("topic", name),
                                  spec.get("type", DEFAULT_INPUT_TYPES[name]), True)
    action_spec = ros.get("action", {})
    action = pick("action", action_spec.get("topic", "policy_action"),
                  action_spec.get("type", TWIST_STAMPED), False)
    if action is None:
        fed_back = ("" if "integrate" in contract["action"] else
                    "; the model's own output is fed back as the previous action")
        warnings.append(f"no recorded action topic ({given.get('action', action_spec.get('topic'))}"
                        f"): no action error{fed_back}")
    debug = given.get("debug")
    if debug is not None:
        debug = pick("debug", debug, FLOAT64_ARRAY, True)
    else:
        found = [t for t, ty in bag.topics.items()
                 if t.endswith(DEBUG_SUFFIX) and ty == FLOAT64_ARRAY]
        debug = found[0] if len(found) == 1 else None
    clock = pick("clock", given.get("clock", "/clock"), "rosgraph_msgs/msg/Clock", False)
    return Topics(camera, found_inputs, action, debug, clock), warnings


# --------------------------------------------------------------------------- the plan
@dataclass
class InputStream:
    """One state input's accepted messages in time order, already extracted."""

    name: str
    times: list[Key] = field(default_factory=list)
    parts: list[dict[str, np.ndarray] | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    out_of_order: int = 0


@dataclass
class Plan:
    """What the replay needs from the bag, aligned: one entry per camera frame."""

    frame_keys: list[Key]  # (log ns, order in the bag)
    frame_stamps: list[int]  # header stamps (0: none)
    frame_times_ns: list[int]  # the alignment clock: stamps or log times
    replayed: list[int]  # indices of frames that make an observation
    image_ok: list[bool]  # per frame: the node takes its image (it runs a step for it)
    states: list[dict[str, np.ndarray]]  # per replayed frame: the state parts
    images: np.ndarray  # per replayed frame: the model's pixels
    skipped: Counter[str]
    skip_examples: dict[str, str]
    answers: list[int | None]  # per frame: index into the recorded actions
    action_keys: list[Key]
    action_norm: np.ndarray  # (actions, A) recorded, normalised (not integrated models)
    targets: np.ndarray  # (actions, J) recorded absolute targets (integrated models)
    node_states: list[int | None]  # per frame: the recorded node state (debug topic)
    use_stamps: bool
    counts: dict[str, int]  # messages read per topic
    used: dict[str, int]  # messages used per topic
    messages: int
    warnings: list[str]


def _skip(plan_skips: Counter[str], examples: dict[str, str], key: str, text: str) -> None:
    plan_skips[key] += 1
    examples.setdefault(key, text)


def _image_problem(converter: ImageConverter, msg: Any) -> tuple[str, str] | None:
    """(reason key, text) when the node would reject this frame."""
    if str(msg.encoding) not in CHANNELS:
        return "bad_encoding", f"image encoding {msg.encoding!r} (use {sorted(CHANNELS)})"
    if (int(msg.width), int(msg.height)) != (converter.width, converter.height):
        return "wrong_size", (f"image {msg.width}x{msg.height}, the model needs "
                              f"{converter.width}x{converter.height}")
    return None


def _action_reader(contract: dict[str, Any], type_name: str, amap: ActionMap):
    """Recorded action message -> normalised action (the node published
    ``offset + scale * action``; invert it)."""
    if type_name == TWIST_STAMPED:
        paths = list(output_fields(contract["ros"]["action"], amap.names).values())
        return lambda msg: amap.to_normalised(np.array([float(read_path(msg, p))
                                                        for p in paths]))
    if type_name == FLOAT64_ARRAY:
        return lambda msg: amap.to_normalised(np.asarray(msg.data, dtype=np.float64))
    raise ReplayError(f"recorded action type {type_name} not supported ({TWIST_STAMPED} or "
                      f"{FLOAT64_ARRAY})")


def _debug_state(msg: Any) -> int | None:
    dims = list(msg.layout.dim)
    if not dims or dims[-1].label != "state" or not len(msg.data):
        return None
    return int(msg.data[-1])


def build_plan(bag: BagReader, contract: dict[str, Any], topics: Topics,
               max_age_s: dict[str, float]) -> Plan:
    """One pass over the bag: frames, inputs, recorded actions and node states, aligned."""
    builder = StateBuilder(contract["state_fields"])
    converter = ImageConverter(contract["camera"])
    amap = ActionMap(contract["action"])
    integrator = integrator_of(contract)
    reader = joint_reader(integrator) if integrator is not None else None
    read = [topics.camera, *topics.inputs.values(), topics.action, topics.debug]
    by_topic = {t: [] for t in read if t}
    counts = Counter()
    for seq, m in enumerate(bag.messages(by_topic)):
        by_topic[m.topic].append((m.log_ns, seq, stamp_ns(m.msg) or 0, m.msg))
        counts[m.topic] += 1
    frames = by_topic[topics.camera]
    if not frames:
        raise ReplayError(f"topic {topics.camera} has no messages")
    # Header stamps only when every frame and input message has one: mixing a stamp with
    # another message's log time would compare two different clocks.
    use_stamps = all(s for t in [topics.camera, *topics.inputs.values()]
                     for _, _, s, _ in by_topic[t])

    def when(log_ns: int, seq: int, stamp: int, lookup: bool = False) -> Key:
        # With stamps, "at or before" includes an input stamped exactly like the frame.
        return (stamp, 1 if lookup else 0) if use_stamps else (log_ns, seq)

    streams: dict[str, InputStream] = {}
    used = Counter()
    for name, topic in topics.inputs.items():
        s = streams[name] = InputStream(name)
        for log_ns, seq, stamp, msg in by_topic[topic]:
            key = when(log_ns, seq, stamp)
            if s.times and key < s.times[-1]:
                s.out_of_order += 1
                continue
            try:  # as the node takes a message: every value it uses, or reject it
                part = builder.extract(name, msg) if name in builder.inputs else {}
                if reader is not None and name == JOINT_STATE:
                    part = {**part, MEASURED: field_value(reader, msg)}
                error = ""
                used[topic] += 1
            except InputError as err:
                part, error = None, str(err)
            s.times.append(key)
            s.parts.append(part)
            s.errors.append(error)

    skipped: Counter[str] = Counter()
    examples: dict[str, str] = {}
    warnings: list[str] = []
    replayed, states, images = [], [], []
    image_ok = [_image_problem(converter, msg) is None for _, _, _, msg in frames]
    last_time: int | None = None
    for i, (log_ns, seq, stamp, msg) in enumerate(frames):
        key = when(log_ns, seq, stamp, lookup=True)
        if use_stamps and last_time is not None and stamp < last_time:
            _skip(skipped, examples, "out_of_order_stamps",
                  f"frame stamped {stamp} after one stamped {last_time}")
            continue
        last_time = stamp if use_stamps else log_ns
        problem = _image_problem(converter, msg)
        if problem:
            _skip(skipped, examples, *problem)
            continue
        parts: dict[str, np.ndarray] = {}
        for name, s in streams.items():
            k = bisect.bisect_right(s.times, key) - 1
            limit = max_age_s.get(name, 0.0)
            if k < 0:
                _skip(skipped, examples, f"no_{name}_yet", f"no {name} before the frame")
                break
            if s.parts[k] is None:
                _skip(skipped, examples, f"invalid_{name}", s.errors[k])
                break
            age_ns = key[0] - s.times[k][0]
            if limit > 0 and age_ns > limit * 1e9:  # as the node compares
                _skip(skipped, examples, f"stale_{name}",
                      f"{name} {age_ns * 1e-9:.3f} s old at the frame (limit {limit:g} s)")
                break
            parts.update(s.parts[k])
        else:
            try:
                pixels = converter.convert(msg)
            except InputError as err:
                _skip(skipped, examples, "bad_image", str(err))
                image_ok[i] = False
                continue
            replayed.append(i)
            states.append(parts)
            images.append(pixels)
    used[topics.camera] = len(replayed)

    action_keys: list[Key] = []
    action_stamps: list[int] = []
    norms: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    if topics.action:
        if integrator is None:
            to_norm = _action_reader(contract, bag.topics[topics.action], amap)
        for log_ns, seq, stamp, msg in by_topic[topics.action]:
            if integrator is None:
                value = to_norm(msg)
                if value.shape != (len(amap.names),):
                    raise ReplayError(f"recorded action on {topics.action} has {value.size} "
                                      f"values, the model {len(amap.names)}")
                norms.append(value)
            else:  # the node's absolute joint targets, in action.integrate.joints order
                value = np.asarray(msg.data, dtype=np.float64)
                if value.shape != (len(integrator.joints),):
                    raise ReplayError(f"recorded targets on {topics.action} have {value.size} "
                                      f"values, the model's integrator "
                                      f"{len(integrator.joints)} joints")
                targets.append(value)
            action_keys.append((log_ns, seq))
            action_stamps.append(stamp)
    frame_keys = [(log_ns, seq) for log_ns, seq, _, _ in frames]
    frame_stamps = [stamp for _, _, stamp, _ in frames]
    answers = match_answers(list(zip(frame_keys, frame_stamps, strict=True)),
                            list(zip(action_keys, action_stamps, strict=True)))
    node_states: list[int | None] = [None] * len(frames)
    if topics.debug:
        debug = by_topic[topics.debug]
        matched = match_answers([(k, 0) for k in frame_keys],
                                [((log_ns, seq), 0) for log_ns, seq, _, _ in debug])
        node_states = [None if j is None else _debug_state(debug[j][3]) for j in matched]
    for s in streams.values():
        if s.out_of_order:
            warnings.append(f"{topics.inputs[s.name]}: {s.out_of_order} message(s) with "
                            f"out-of-order stamps ignored")
    return Plan(
        frame_keys=frame_keys, frame_stamps=frame_stamps,
        frame_times_ns=[s if use_stamps else log for log, _, s, _ in frames],
        replayed=replayed, image_ok=image_ok, states=states,
        images=(np.stack(images) if images else np.zeros((0, converter.height,
                                                          converter.width, 1), np.uint8)),
        skipped=skipped, skip_examples=examples, answers=answers, action_keys=action_keys,
        action_norm=np.array(norms).reshape(-1, len(amap.names)),
        targets=np.array(targets, dtype=np.float64).reshape(
            len(targets), len(integrator.joints) if integrator else 0),
        node_states=node_states,
        use_stamps=use_stamps, counts=dict(counts), used=dict(used),
        messages=sum(counts.values()), warnings=warnings)


def previous_actions(plan: Plan, safe: np.ndarray) -> np.ndarray:
    """Per replayed frame: the recorded action the node had published last before it (the
    later of the previous frame's answer and the last action logged before the frame)."""
    out = np.empty((len(plan.replayed), len(safe)), dtype=np.float64)
    for row, i in enumerate(plan.replayed):
        j = bisect.bisect_left(plan.action_keys, plan.frame_keys[i]) - 1
        if i > 0 and plan.answers[i - 1] is not None:
            j = max(j, plan.answers[i - 1])
        out[row] = safe if j < 0 else plan.action_norm[j]
    return out


# --------------------------------------------------------------------------- targets
@dataclass
class Targets:
    """An integrated-action model's replayed targets, per replayed frame."""

    before: np.ndarray  # (n, J) the node's targets just before the frame's step
    continued: np.ndarray  # (n,) bool: from its previous target (else restarted)
    source: str  # what the replayed targets are (offline: from the recorded state)
    replayed: np.ndarray | None = None  # (n, J) the replayed answers (None: live)


def _acted(plan: Plan, i: int, replayed: set[int]) -> bool:
    """Whether the node's step for frame ``i`` was the policy's own: RUNNING on the debug
    topic when recorded, else the replay could build that frame's observation."""
    state = plan.node_states[i]
    return state == RUNNING if state is not None else i in replayed


def recorded_targets_before(plan: Plan, integrator: JointTargetIntegrator) -> Targets:
    """The node's integrator state before each replayed frame's step, from the recorded
    targets (the rule in the module docstring)."""
    n = len(plan.replayed)
    before = np.empty((n, len(integrator.joints)), dtype=np.float64)
    continued = np.zeros(n, dtype=bool)
    replayed = set(plan.replayed)
    for row, i in enumerate(plan.replayed):
        # The node's last step before the frame published the newest target before it.
        j = bisect.bisect_left(plan.action_keys, plan.frame_keys[i]) - 1
        if i > 0 and j >= 0 and plan.answers[i - 1] == j and _acted(plan, i - 1, replayed):
            before[row] = plan.targets[j]
            continued[row] = True
        else:  # the node restarts from the measured joints
            before[row] = integrator.hold(plan.states[row][MEASURED])
    return Targets(before, continued, "the recorded targets")


def replay_targets(plan: Plan, integrator: JointTargetIntegrator,
                   actions: np.ndarray) -> Targets:
    """The targets the node would have published for the replayed (clipped) actions, each
    step from the recorded state before it (so independent: vectorised)."""
    measured = np.array([parts[MEASURED] for parts in plan.states]).reshape(
        len(plan.replayed), len(integrator.joints))
    out = recorded_targets_before(plan, integrator)
    out.replayed = integrator.step(out.before, measured, actions)
    return out


# --------------------------------------------------------------------------- inference
class Policy:
    """The model as the node runs it: contract inputs, clipped output."""

    def __init__(self, contract: dict[str, Any], session: Any) -> None:
        self.session = session
        self.builder = StateBuilder(contract["state_fields"])
        self.actions = ActionMap(contract["action"])
        self.state_name = next(i["name"] for i in contract["inputs"] if i["role"] == "state")
        self.image_name = next(i["name"] for i in contract["inputs"] if i["role"] == "camera")
        self.out_name = contract["outputs"][0]["name"]
        self.feeds_back = any(f.ros_input == PREVIOUS_ACTION for f in self.builder.fields)

    def run(self, states: np.ndarray, images: np.ndarray) -> np.ndarray:
        out = self.session.run([self.out_name], {self.state_name: states,
                                                 self.image_name: images})[0]
        return self.actions.clip(out)

    def replay(self, plan: Plan, batch: int) -> np.ndarray:
        """Replayed (clipped, normalised) actions of the replayed frames."""
        n = len(plan.replayed)
        out = np.empty((n, len(self.actions.names)), dtype=np.float32)
        if not n:
            return out
        if plan.action_keys or not self.feeds_back:  # the frames are independent
            prev = (previous_actions(plan, self.actions.safe) if self.feeds_back
                    else np.broadcast_to(self.actions.safe, out.shape))
            obs = np.stack([self.builder.assemble(p, a) for p, a in zip(plan.states, prev,
                                                                          strict=True)])
            for start in range(0, n, batch):
                sl = slice(start, start + batch)
                out[sl] = self.run(obs[sl], plan.images[sl])
            return out
        prev_action = self.actions.safe
        for row, parts in enumerate(plan.states):  # own output fed back: one at a time
            obs = self.builder.assemble(parts, prev_action)[None]
            out[row] = self.run(obs, plan.images[row:row + 1])[0]
            prev_action = out[row]
        return out


# --------------------------------------------------------------------------- report
def _compared_rows(plan: Plan, replayed: np.ndarray) -> tuple[list[int], list[int], int]:
    """(rows, recorded answer per row, frames not compared because the recorded node was
    not RUNNING): the replayed frames with a recorded answer and a replayed value."""
    rows, answers, not_running = [], [], 0
    for row, i in enumerate(plan.replayed):
        j = plan.answers[i]
        if j is None or np.isnan(replayed[row]).any():  # live: NaN = dropped
            continue
        if plan.node_states[i] not in (None, RUNNING):
            not_running += 1
            continue
        rows.append(row)
        answers.append(j)
    return rows, answers, not_running


def _plot_times(plan: Plan, rows: list[int]) -> np.ndarray:
    times = np.array([plan.frame_times_ns[plan.replayed[r]] for r in rows], dtype=np.float64)
    return (times - times[0]) * 1e-9 if len(times) else times


def compare(plan: Plan, replayed_actions: np.ndarray, contract: dict[str, Any]
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Action errors over the frames with a recorded answer while the node was running;
    returns (errors, plot data)."""
    amap = ActionMap(contract["action"])
    rows, answers, not_running = _compared_rows(plan, replayed_actions)
    rec = plan.action_norm[answers].reshape(-1, len(amap.names))
    rep = replayed_actions[rows].astype(np.float64)
    errors = action_errors(rec, rep, amap.names, contract["action"]["units"], amap.scale)
    plot = {"t": _plot_times(plan, rows), "recorded": amap.to_physical(rec),
            "replayed": amap.to_physical(rep), "names": amap.names,
            "units": contract["action"]["units"]}
    return dict(errors, not_running=not_running), plot


def compare_targets(plan: Plan, targets: np.ndarray, before: np.ndarray,
                    contract: dict[str, Any], integrator: JointTargetIntegrator
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``compare`` for integrated actions: ``targets`` (replayed, per replayed frame) against
    the recorded ones; action units from the same targets ``before`` each step. The errors
    carry ``targets``, the per-joint target error."""
    amap = ActionMap(contract["action"])
    rows, answers, not_running = _compared_rows(plan, targets)
    joints, units = list(integrator.joints), joint_units(contract, integrator)
    rec = plan.targets[answers].reshape(-1, len(joints))
    rep = targets[rows].astype(np.float64)
    start = before[rows]
    errors = action_errors(integrator.applied_action(start, rec),
                           integrator.applied_action(start, rep), amap.names,
                           contract["action"]["units"], amap.scale)
    per_joint = action_errors(rec, rep, joints, units, np.ones(len(joints)))
    errors["targets"] = {"names": joints, "units": units, "count": per_joint["count"],
                         **per_joint["physical"], "max_overall": per_joint["max_physical"]}
    plot = {"t": _plot_times(plan, rows), "recorded": rec, "replayed": rep,
            "names": joints, "units": units}
    return dict(errors, not_running=not_running), plot


def base_report(args: argparse.Namespace, bag: BagReader, topics: Topics, plan: Plan,
                mode: str, warnings: list[str], feeds_back: bool = True) -> dict[str, Any]:
    """The report's common part; ``feeds_back``: the state holds the previous action."""
    total = len(plan.frame_keys)
    unanswered = sum(plan.answers[i] is None for i in plan.replayed) if plan.action_keys \
        else len(plan.replayed)
    return {
        "mode": mode, "bag": str(bag.path), "storage": bag.storage, "model": str(args.model),
        "topics": topics.as_dict(),
        "clock": "header stamps" if plan.use_stamps else "log time",
        "previous_action": ("not in the state" if not feeds_back else
                            "the node's own (live)" if mode == "live" else
                            "recorded" if plan.action_keys else "replayed model output"),
        "frames": {"total": total, "replayed": len(plan.replayed), "compared": 0,
                   "unanswered": unanswered, "not_running": 0},
        "coverage": len(plan.replayed) / total if total else 0.0,
        "skipped": dict(plan.skipped), "skip_examples": plan.skip_examples,
        "messages": {t: {"type": bag.topics.get(t), "total": n, "used": plan.used.get(t, 0)}
                     for t, n in plan.counts.items()},
        "unreadable_topics": bag.skipped,
        "warnings": warnings + plan.warnings,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


# --------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sitt-replay", description=__doc__.split("\n\n")[0])
    p.add_argument("--bag", required=True, type=Path, help="rosbag2 directory (MCAP/sqlite3)")
    p.add_argument("--model", required=True, type=Path, help="exported student.onnx")
    p.add_argument("--topics", default="", help="camera=...,odometry=...,command=...,"
                   "action=...[,debug=...,clock=...]; default: the contract's ros topics")
    p.add_argument("--max-age", default="", help="odometry=S,command=S,...: skip a frame "
                   "whose input is older [s] (0: no limit); default: the node's defaults")
    p.add_argument("--plot", type=Path, help="write recorded vs replayed actions (PNG)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fail-above", type=float, help="exit 1 when the max normalised action "
                   "error exceeds this")
    p.add_argument("--batch", type=int, default=256, help="offline inference batch size")
    p.add_argument("--live", action="store_true", help="republish into a running "
                   "policy_node (trigger:=camera) instead of running the model here")
    p.add_argument("--rate", type=float, default=1.0, help="--live: playback speed factor")
    p.add_argument("--namespace", default=None, help="--live: publish to /NS/<contract "
                   "topic> (default: the bag's topic names)")
    p.add_argument("--clock", action="store_true", help="--live: publish /clock from the "
                   "frames' stamps when the bag has no /clock (policy_node use_sim_time)")
    p.add_argument("--wait", type=float, default=30.0, help="--live: seconds to wait for the "
                   "node's topics")
    args = p.parse_args(argv)
    if not args.rate > 0 or args.batch < 1:
        p.error("--rate must be > 0 and --batch >= 1")
    return args


def replay(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Run the replay the arguments ask for; returns (report, exit code)."""
    try:
        contract, session = load_policy(args.model)
    except ContractError as err:
        raise ReplayError(f"cannot load the model: {err}") from None
    integrator = integrator_of(contract)
    policy = Policy(contract, session)
    if integrator is not None and policy.feeds_back:
        raise ReplayError("the model's state holds its previous action and its actions are "
                          "integrated joint targets (action.integrate): the recorded "
                          "targets do not give that action, so the state cannot be rebuilt")
    max_age = dict(DEFAULT_MAX_AGE_S)
    for key, value in parse_pairs(args.max_age, "--max-age").items():
        try:
            max_age[key] = float(value)
        except ValueError:
            raise ReplayError(f"--max-age {key}={value!r}: not a number") from None
    t0 = time.perf_counter()
    with BagReader(args.bag) as bag:
        topics, warnings = choose_topics(bag, contract,
                                         state_inputs(policy.builder, integrator),
                                         parse_pairs(args.topics, "--topics"))
        plan = build_plan(bag, contract, topics, max_age)
        report = base_report(args, bag, topics, plan, "live" if args.live else "offline",
                             warnings, policy.feeds_back)
        if args.live:
            from .replay_live import run_live

            live = run_live(args, bag, contract, topics, plan)
            actions, seconds = live.pop("actions"), live.pop("seconds")
            report["warnings"] += live.pop("warnings")
            report.update(live)
        else:
            actions = policy.replay(plan, args.batch)
        targets = None
        if integrator is not None and plan.action_keys:
            if args.live:  # the node integrated (``actions`` are its targets); the recorded
                targets = recorded_targets_before(plan, integrator)  # state: action units
                targets.source = "the live node's own, action units from the recorded state"
            else:  # the targets the node would have published
                targets = replay_targets(plan, integrator, actions)
                actions = targets.replayed
        if not args.live:
            seconds = time.perf_counter() - t0
    if integrator is not None:  # without recorded targets there is no state to start from
        report["targets"] = {
            "source": targets.source if targets else "none (no recorded targets)",
            "joints": list(integrator.joints),
            "continued": int(targets.continued.sum()) if targets else None,
            "restarted": int((~targets.continued).sum()) if targets else None}
    if not plan.action_keys:
        errors, plot = None, None
    elif integrator is not None:
        errors, plot = compare_targets(plan, actions, targets.before, contract, integrator)
    else:
        errors, plot = compare(plan, actions, contract)
    if errors is not None:
        report["frames"]["compared"] = errors["count"]
        report["frames"]["not_running"] = errors.pop("not_running")
        if "targets" in errors:
            report["target_error"] = errors.pop("targets")
        report["action_error"] = errors
        if report["frames"]["not_running"]:
            report["warnings"].append(
                f"{report['frames']['not_running']} frame(s) answered while the recorded "
                f"node was not RUNNING (debug topic): not compared")
    messages = report.pop("published_messages", plan.messages)
    report["throughput"] = {
        "messages": messages, "frames": len(plan.replayed), "seconds": seconds,
        "messages_per_s": messages / seconds if seconds > 0 else math.inf,
        "frames_per_s": len(plan.replayed) / seconds if seconds > 0 else math.inf}
    if args.plot and plot is not None and len(plot["t"]):
        what = "normalised" if integrator is None else (
            f"normalised, targets {report['target_error']['max_overall']:.3g}")
        plot_actions(args.plot, plot["t"], plot["recorded"], plot["replayed"], plot["names"],
                     plot["units"], f"{args.bag.name}: recorded vs {report['mode']} replay "
                     f"(max error {errors['max_normalised']:.3g} {what})")
        report["plot"] = str(args.plot)
    elif args.plot:
        report["warnings"].append("no plot: no frame was compared with a recorded action")
    code = EXIT_OK
    if not plan.replayed:
        code = EXIT_UNUSABLE
        report["warnings"].append("no frame could be replayed")
    elif (args.fail_above is not None and errors is not None
          and (errors["max_normalised"] or 0.0) > args.fail_above):
        code = EXIT_FAILED
    return _jsonable(report), code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report, code = replay(args)
    except (ReplayError, BagError) as err:
        print(f"sitt-replay: error: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return 130
    try:
        print(json.dumps(report, indent=1) if args.json else text_report(report), flush=True)
    except BrokenPipeError:  # piped into head & co.
        sys.stderr.close()
        return code
    if code == EXIT_UNUSABLE:
        skipped = ", ".join(f"{k} {v}" for k, v in report["skipped"].items()) or "none"
        # The most frequent reason's first example says what is wrong with the bag.
        top = max(report["skipped"], key=report["skipped"].get, default=None)
        why = f"; {top}: {report['skip_examples'][top]}" if top else ""
        print(f"sitt-replay: error: no frame could be replayed (skipped: {skipped}){why}",
              file=sys.stderr)
    elif code == EXIT_FAILED:
        print(f"sitt-replay: max action error {report['action_error']['max_normalised']:.3g} "
              f"> --fail-above {args.fail_above:g}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
