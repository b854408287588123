"""The arm student behind real ROS: the joint target integrator shared by the environment
and the policy node, export of an arm run, the node with an arm contract over DDS
(JointState in, absolute joint targets out as ros2_control's Float64MultiArray), the
sim bridge serving ``arm_drawer`` (lockstep HIL parity with the in-process evaluation, bad
actions, teacher demonstrations) and ``sitt-replay`` of the recorded HIL bag (offline,
``--live``, bad bags). Real pybullet, onnxruntime and rclpy/DDS; no mocks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rclpy
import torch
from rcl_interfaces.srv import GetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import live_replay, policy_node, process_env, replay_in_process, run_replay
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import SetBool
from test_policy_node import segments
from test_sim_bridge import SITT_HIL, Spinner, _bridge, _finish, _last_json

from sitt_policy_node.contract import (
    CONTRACT_VERSION,
    ContractError,
    load_policy,
    validate_contract,
)
from sitt_policy_node.integrators import JointTargetIntegrator
from sitt_policy_node.safety import State
from sitt_sim_bridge import hil
from sitt_sim_bridge.bags import BagReader, BagWriter
from sitt_sim_bridge.bridge import SUPPORTED_TASKS
from sitt_sim_bridge.messages import image_msg
from sitt_training.cli import load_run
from sitt_training.config import load_config
from sitt_training.envs import arm_world as aw
from sitt_training.envs import make_task
from sitt_training.envs.arm_drawer import (
    ACTION_NAMES,
    INTEGRATOR,
    SAFE_ACTION,
    STATE_DIM,
    ArmDrawerVecEnv,
)
from sitt_training.evaluation import evaluate
from sitt_training.export import MODEL_NAME, export_main, export_student
from sitt_training.obs import to_torch
from sitt_training.seeds import TEST_SEED
from sitt_training.trainer import Trainer

TINY = ["task.name=arm_drawer", "task.num_envs=4", "task.student_envs=2", "method.name=sitt",
        "ppo.rollout_steps=8", "ppo.minibatches=2", "ppo.epochs=1", "method.align_iterations=2",
        "method.align_batch_size=8", "method.buffer_size=64", "network.hidden=[32]",
        "network.cnn_channels=[8, 8, 8, 8]", "network.normalize_obs=true",
        "train.iterations=1", "train.eval_every=0", "train.torch_threads=1",
        "train.checkpoint_buffer=false"]
EPISODES, STEPS = 3, 20  # HIL parity: three shortened episodes
TARGETS_TOPIC = "forward_position_controller/commands"
RELAXED = ("max_age_camera_s:=5.0", "max_age_joint_state_s:=5.0")


def _contract(env: ArmDrawerVecEnv) -> dict:
    """The contract sitt-export writes for this task (without the model's provenance)."""
    space = env.single_observation_space["student"]
    return validate_contract({
        "version": CONTRACT_VERSION, **env.policy_contract(),
        "inputs": [{"name": "image", "shape": ["batch", *space["image"].shape],
                    "dtype": "uint8", "role": "camera"},
                   {"name": "state", "shape": ["batch", STATE_DIM], "dtype": "float32",
                    "role": "state"}],
        "outputs": [{"name": "action", "shape": ["batch", 8], "dtype": "float32"}],
    })


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A tiny arm run exported with ``sitt-export`` (``cli``), and the same policy with its
    decoder scaled up (large actions that change with the inputs and hit the joint limits
    and the lead clamp) exported for the ROS tests (``model``, torch ``policy``)."""
    root = tmp_path_factory.mktemp("arm")
    Trainer(load_config(overrides=TINY), root / "run", show_progress=False).train()
    assert export_main([str(root / "run")]) == 0
    _, policy, _ = load_run(root / "run")
    with torch.no_grad():
        policy.decoder.linear.weight.mul_(100.0)
    env = make_task("arm_drawer", 1, 0)
    model = export_student(policy, env, root / "scaled", {"test": "arm deploy"})
    env.close()
    return SimpleNamespace(run=root / "run", cli=root / "run" / "exported" / MODEL_NAME,
                           model=model, policy=policy)


@pytest.fixture(scope="module")
def hil_bag(arm, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``sitt-hil --task arm_drawer`` (bridge + node, lockstep) with ``--record``: its
    summary (``run``) and the bag (``bag``; the node's joint targets and debug topic in it)."""
    root = tmp_path_factory.mktemp("arm_hil")
    proc = subprocess.run(
        [str(SITT_HIL), "--task", "arm_drawer", "--model", str(arm.model), "--episodes",
         str(EPISODES), "--episode-steps", str(STEPS), "--json", "--record",
         str(root / "bag"), "--timeout", "120", "--log-dir", str(root / "logs")],
        env=process_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return SimpleNamespace(bag=root / "bag", run=_last_json(proc.stdout))


@pytest.fixture(scope="module")
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


# --------------------------------------------------------------------------- integrator
def test_env_and_node_integrators_give_identical_targets_and_the_bridge_path_is_exact():
    """The node's integrator (from the contract alone) reproduces the environment's targets
    bit for bit over random actions and measured joints; an environment driven by those
    absolute targets (the sim bridge's action_mode) steps the same physics and rewards."""
    contract = _contract(ArmDrawerVecEnv(1, seed=4, track_visibility=False))
    node_side = JointTargetIntegrator.from_contract(contract["action"]["integrate"], 8)
    env = ArmDrawerVecEnv(2, seed=4, track_visibility=False)
    by_targets = ArmDrawerVecEnv(2, seed=4, track_visibility=False, action_mode="targets")
    for e in (env, by_targets):
        e.set_student_mask(np.zeros(2, dtype=bool))
    rng = np.random.default_rng(0)
    targets = node_side.hold(env.joint_position)  # the node starts at the measured joints
    np.testing.assert_array_equal(targets, env.targets)
    clamped = 0
    for _ in range(30):
        actions = rng.uniform(-1.5, 1.5, (2, 8))  # also beyond the bounds: clipped first
        node_targets = node_side.step(targets, env.joint_position, np.clip(actions, -1, 1))
        clamped += int((node_side.applied_action(targets, node_targets)
                        != np.clip(actions, -1, 1)).any(axis=1).sum())
        _, reward, *_ = env.step(actions)
        np.testing.assert_array_equal(node_targets, env.targets)
        _, reward_t, *_ = by_targets.step(node_targets)
        np.testing.assert_array_equal(by_targets.targets, env.targets)
        np.testing.assert_array_equal(by_targets.joint_position, env.joint_position)
        np.testing.assert_array_equal(reward_t, reward)
        targets = node_targets
    assert clamped > 10  # the limits and the lead clamp took part
    with pytest.raises(ValueError, match="finite"):
        by_targets.step(np.full((2, 9), math.nan))
    for e in (env, by_targets):
        e.close()


def test_integrator_limits_lead_clamp_hold_and_contract_checks():
    integ = INTEGRATOR
    start = aw.START_JOINTS[None]
    # A blocked arm: targets never lead the measured joints by more than max_lead; the
    # fingers have no lead clamp but stop at their limits.
    targets = start.copy()
    for _ in range(20):
        targets = integ.step(targets, start, np.ones((1, 8)))
    np.testing.assert_allclose(targets[0, :7] - start[0, :7], integ.max_lead[:7])
    assert targets[0, 7] == targets[0, 8] == aw.FINGER_OPEN == integ.upper[7]
    targets = integ.step(targets, start, -np.ones((1, 8)))
    assert targets[0, 7] == pytest.approx(aw.FINGER_OPEN - integ.step_scale[7])
    # The zero (safe) increment holds; clamping is idempotent.
    np.testing.assert_array_equal(integ.step(targets, start, SAFE_ACTION[None]), targets)
    np.testing.assert_array_equal(integ.clamp(targets, start), targets)
    # Far outside the limits: clamped into them; applied_action says what was applied.
    wild = integ.clamp(np.full((1, 9), 10.0), np.full((1, 9), 10.0))
    np.testing.assert_array_equal(wild[0], integ.upper)
    applied = integ.applied_action(start, integ.step(start, start, np.full((1, 8), 0.5)))
    np.testing.assert_allclose(applied[0, :7], 0.5, rtol=1e-12)
    assert applied[0, 7] == 0.0  # the fingers were fully open: nothing applied
    # Contract round trip and errors that name the problem.
    section = integ.to_contract()
    assert section["max_lead"][7:] == [None, None] and section["joints"][7] == \
        "panda_finger_joint1"
    again = JointTargetIntegrator.from_contract(json.loads(json.dumps(section)), 8)
    np.testing.assert_array_equal(again.step(targets, start, np.ones((1, 8))),
                                  integ.step(targets, start, np.ones((1, 8))))
    good = _contract(ArmDrawerVecEnv(1, seed=0, track_visibility=False))
    for change, message in [
        (lambda c: c["action"]["integrate"].pop("max_lead"), r"missing key\(s\) max_lead"),
        (lambda c: c["action"]["integrate"].update(kind="velocity"), "kind 'velocity'"),
        (lambda c: c["action"]["integrate"]["joints"].pop(), "action_index: 9 values for 8"),
        (lambda c: c["action"]["integrate"]["action_index"].__setitem__(8, 9),
         "action_index must lie in 0..7"),
        (lambda c: c["action"]["integrate"].update(action_index=[0, 1, 2, 3, 4, 5, 6, 6, 6]),
         r"action element\(s\) \[7\] move no joint"),
        (lambda c: c["action"]["integrate"]["lower"].__setitem__(0, 5.0), "lower < upper"),
        (lambda c: c["action"]["integrate"]["max_lead"].__setitem__(0, 0.0), "max_lead"),
        (lambda c: c["action"]["scale"].__setitem__(0, 0.1), "scale equal integrate"),
        (lambda c: c["action"]["safe"].__setitem__(0, 0.5), "safe: must be all 0"),
        (lambda c: c["ros"]["action"].update(type="geometry_msgs/msg/TwistStamped"),
         "Float64MultiArray"),
    ]:
        broken = json.loads(json.dumps(good))
        change(broken)
        with pytest.raises(ContractError, match=message):
            validate_contract(broken)


# --------------------------------------------------------------------------- export
def test_sitt_export_of_an_arm_run_gives_the_joint_target_contract(arm) -> None:
    contract, session = load_policy(arm.cli)  # what the node does at start
    integrate = contract["action"]["integrate"]
    assert integrate["kind"] == "joint_position_target"
    assert integrate["joints"] == [*(f"panda_joint{i}" for i in range(1, 8)),
                                   "panda_finger_joint1", "panda_finger_joint2"]
    assert contract["ros"]["action"] == {
        "topic": TARGETS_TOPIC, "type": "std_msgs/msg/Float64MultiArray",
        "layout": contract["ros"]["action"]["layout"]}
    assert contract["ros"]["joint_state"]["type"] == "sensor_msgs/msg/JointState"
    assert [f["name"] for f in contract["state_fields"]] == ["joint_position",
                                                             "joint_velocity"]
    assert contract["task"] == "arm_drawer" and contract["robot_kind"] == "arm"
    # ONNX Runtime against torch on the arm's own observations.
    _, policy, _ = load_run(arm.run)
    env = ArmDrawerVecEnv(3, seed=1, track_visibility=False)
    obs = env.observe()["student"]
    onnx_action = session.run(["action"], obs)[0]
    with torch.no_grad():
        mean = policy.decoder(policy.student_encoder(to_torch(obs))).clamp(-1, 1).numpy()
    assert onnx_action.shape == (3, 8) and np.abs(onnx_action - mean).max() <= 1e-5
    env.close()


# --------------------------------------------------------------------------- policy node
class ArmClient:
    """The arm's side: camera and JointState publishers, target and debug subscribers."""

    def __init__(self, ns: str, targets_topic: str = TARGETS_TOPIC) -> None:
        self.node = n = rclpy.create_node(f"arm_client_{ns}")
        self.cam = n.create_publisher(Image, f"/{ns}/camera/image_raw", qos_profile_sensor_data)
        self.joints = n.create_publisher(JointState, f"/{ns}/joint_states", 10)
        self.estop = n.create_publisher(Bool, f"/{ns}/estop", 10)
        self.targets: list[np.ndarray] = []
        self.debug: list[dict[str, np.ndarray]] = []
        self.target_sub = n.create_subscription(
            Float64MultiArray, f"/{ns}/{targets_topic}",
            lambda m: self.targets.append(np.asarray(m.data)), 10)
        self.debug_sub = n.create_subscription(
            Float64MultiArray, f"/{ns}/policy_node/debug",
            lambda m: self.debug.append(segments(m)), 50)
        self.params = n.create_client(GetParameters, f"/{ns}/policy_node/get_parameters")
        self.enable = n.create_client(SetBool, f"/{ns}/policy_node/enable")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(n)

    def sync(self) -> None:
        """Return once the node has taken what was published before (rclpy serves
        subscriptions before services: the sim bridge's lockstep handshake)."""
        future = self.params.call_async(GetParameters.Request())
        assert self.spin_until(future.done, 10.0)

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def send_joints(self, env: ArmDrawerVecEnv, order: np.ndarray, drop: str = "") -> None:
        """The arm's JointState with its joints in ``order`` and an unrelated extra joint
        (a driver publishes what it has, in its own order)."""
        js = env.joint_states(np.arange(1))
        names = [js["name"][i] for i in order] + ["head_pan_joint"]
        pos = [float(js["position"][0][i]) for i in order] + [0.3]
        vel = [float(js["velocity"][0][i]) for i in order] + [0.0]
        if drop:
            k = names.index(drop)
            del names[k], pos[k], vel[k]
        self.joints.publish(JointState(name=names, position=pos, velocity=vel))

    def step(self, env: ArmDrawerVecEnv, expect: State) -> dict[str, np.ndarray]:
        """One camera frame; the debug record of the step it triggered (in ``expect``)."""
        count = len(self.debug)
        pixels = env.render_images(np.arange(1))[0]
        self.cam.publish(image_msg(pixels, 0, "camera_optical_frame"))

        def found() -> dict[str, np.ndarray] | None:
            # Before the first frame the watchdog adds WAITING steps: skip those.
            return next((d for d in self.debug[count:] if int(d["state"][0]) == expect), None)

        assert self.spin_until(lambda: found() is not None, 10.0), \
            [int(d["state"][0]) for d in self.debug[count:]]
        record = found()
        # The targets (another topic) arrive too: the last published are the step's.
        assert self.spin_until(lambda: bool(self.targets) and np.array_equal(
            self.targets[-1], record["target"]), 5.0), (self.targets[-1:], record["target"])
        self.spin_for(0.02)
        np.testing.assert_array_equal(self.targets[-1], record["target"])
        return record

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def test_node_arm_observation_targets_hold_and_estop(arm, ros, ros_env, tmp_path) -> None:
    """The node with the arm contract over DDS: JointState in a shuffled order gives the
    environment's student state; the published targets equal the environment's for the
    same actions, bit for bit; nothing is published before a joint state, then the measured
    positions are held; HOLD keeps the targets; back in RUNNING they restart from the
    measured joints; the e-stop latches and holds."""
    ns = f"arm_node_{os.getpid()}"
    log = tmp_path / "node.log"
    env = ArmDrawerVecEnv(1, seed=TEST_SEED, track_visibility=False)
    rng = np.random.default_rng(5)
    with policy_node(arm.model, ns, log, ros_env, "trigger:=camera", *RELAXED) as proc:
        c = ArmClient(ns)
        try:
            assert c.spin_until(lambda: (c.cam.get_subscription_count() > 0
                                         and c.joints.get_subscription_count() > 0
                                         and c.target_sub.get_publisher_count() > 0
                                         and c.params.service_is_ready()
                                         and len(c.debug) >= 3), 30.0), log.read_text()
            # WAITING without a joint state: steps run (debug), but no command goes out.
            assert all(int(d["state"][0]) == State.WAITING for d in c.debug)
            assert not c.targets and all(np.isnan(d["target"]).all() for d in c.debug)
            # A joint state (no camera yet): the node holds the measured positions.
            # Sent until it arrives: a message sent before the node's side of discovery has
            # matched our publisher is lost.
            def holding() -> bool:
                c.send_joints(env, rng.permutation(9))
                c.spin_for(0.02)
                return bool(c.targets)

            assert c.spin_until(holding, 5.0), log.read_text()
            np.testing.assert_array_equal(c.targets[-1], env.joint_position[0])
            ran = []
            for _ in range(6):
                c.send_joints(env, rng.permutation(9))
                c.sync()
                state = env.observe()["student"]["state"][0]
                record = c.step(env, State.RUNNING)
                np.testing.assert_array_equal(record["observation"], state)
                env.step(record["action"][None])  # the node's action, in process
                np.testing.assert_array_equal(c.targets[-1], env.targets[0])
                ran.append(record["action"])
            assert np.ptp(np.array(ran), axis=0).max() > 0.05  # actions vary with inputs
            # A joint state without panda_joint3: rejected, HOLD keeps the targets.
            held = c.targets[-1].copy()
            c.send_joints(env, np.arange(9), drop="panda_joint3")
            c.sync()
            record = c.step(env, State.HOLD)
            np.testing.assert_array_equal(record["action"], SAFE_ACTION)
            np.testing.assert_array_equal(c.targets[-1], held)
            # Valid again: the policy takes over from the measured joints.
            c.send_joints(env, rng.permutation(9))
            c.sync()
            record = c.step(env, State.RUNNING)
            measured = env.joint_position[0]
            expected = INTEGRATOR.step(INTEGRATOR.hold(measured), measured, record["action"])
            np.testing.assert_array_equal(c.targets[-1], expected)
            # The e-stop latches: targets held from then on, good data or not.
            held = c.targets[-1].copy()
            count = len(c.targets)
            c.estop.publish(Bool(data=True))
            assert c.spin_until(lambda: len(c.targets) > count, 5.0)
            for _ in range(2):
                c.send_joints(env, rng.permutation(9))
                c.sync()
                c.step(env, State.ESTOP)
                np.testing.assert_array_equal(c.targets[-1], held)
            assert proc.poll() is None
        finally:
            c.close()
    text = log.read_text()
    assert "no joint(s) ['panda_joint3']" in text and "ESTOP" in text
    assert f"action -> {TARGETS_TOPIC}" in text
    env.close()


def test_node_arm_on_a_timer_with_an_action_topic_override_and_disable(arm, ros, ros_env,
                                                                       tmp_path) -> None:
    """trigger:=timer steps at control_rate_hz on the latest inputs, each step integrating
    the previous target; action_topic moves the targets to another topic (nothing on the
    default one); disabling holds the targets (DISABLED, zero increments) until re-enabled."""
    ns = f"arm_timer_{os.getpid()}"
    log = tmp_path / "node.log"
    topic = "arm_controller/joint_commands"
    rate = 20.0
    env = ArmDrawerVecEnv(1, seed=TEST_SEED, track_visibility=False)
    with policy_node(arm.model, ns, log, ros_env, "trigger:=timer", f"control_rate_hz:={rate}",
                     f"action_topic:={topic}", *RELAXED) as proc:
        c = ArmClient(ns, targets_topic=topic)
        default: list[np.ndarray] = []
        c.node.create_subscription(Float64MultiArray, f"/{ns}/{TARGETS_TOPIC}",
                                   lambda m: default.append(np.asarray(m.data)), 10)
        try:
            assert c.spin_until(lambda: (c.cam.get_subscription_count() > 0
                                         and c.joints.get_subscription_count() > 0
                                         and c.target_sub.get_publisher_count() > 0
                                         and c.debug_sub.get_publisher_count() > 0
                                         and c.enable.service_is_ready()), 30.0), log.read_text()
            pixels = env.render_images(np.arange(1))[0]
            for _ in range(100):  # the arm streams the same state until the node runs
                c.send_joints(env, np.arange(9))
                c.cam.publish(image_msg(pixels, 0, "camera_optical_frame"))
                if c.spin_until(lambda: sum(int(d["state"][0]) == State.RUNNING
                                            for d in c.debug) >= 3, 0.1):
                    break
            assert sum(int(d["state"][0]) == State.RUNNING for d in c.debug) >= 3, \
                log.read_text()
            # The step rate: debug records over one second of wall time.
            count = len(c.debug)
            c.spin_for(1.0)
            assert 0.6 * rate <= len(c.debug) - count <= 1.4 * rate
            # Same inputs every step: the target integrates the increments step by step.
            measured = env.joint_position[0]
            running = [d for d in c.debug if int(d["state"][0]) == State.RUNNING]
            for before, after in zip(running[1:-1], running[2:], strict=False):
                np.testing.assert_array_equal(
                    after["target"], INTEGRATOR.step(before["target"], measured, after["action"]))
            assert c.targets and not default
            # Disabled: safe action, targets held, until enabled again.
            future = c.enable.call_async(SetBool.Request(data=False))
            assert c.spin_until(future.done, 10.0) and future.result().success
            c.spin_for(0.3)
            count, held = len(c.debug), c.targets[-1].copy()
            c.spin_for(0.5)
            disabled = c.debug[count:]
            assert disabled and all(int(d["state"][0]) == State.DISABLED for d in disabled)
            assert all(np.array_equal(d["action"], SAFE_ACTION) for d in disabled)
            np.testing.assert_array_equal(c.targets[-1], held)
            future = c.enable.call_async(SetBool.Request(data=True))
            assert c.spin_until(future.done, 10.0) and future.result().success
            count = len(c.debug)
            assert c.spin_until(lambda: any(int(d["state"][0]) == State.RUNNING
                                            for d in c.debug[count:]), 5.0)
            assert not default and proc.poll() is None
        finally:
            c.close()
    assert f"action -> {topic}" in log.read_text()
    env.close()


# --------------------------------------------------------------------------- sim bridge
def test_hil_lockstep_arm_equals_the_in_process_student_evaluation(arm, hil_bag) -> None:
    """sitt-hil --task arm_drawer (bridge + node, lockstep) against evaluate(..., "student")
    with the exported torch policy, episode by episode. From the bag the bridge recorded:
    the node's input is the environment's state and its published targets are the ones an
    in-process environment reaches with the node's actions, bit for bit."""
    assert set(hil.TASKS) == set(SUPPORTED_TASKS)
    bag, run = hil_bag.bag, hil_bag.run
    assert run["task"] == "arm_drawer" and run["complete"] and run["episodes"] == EPISODES
    for key in ("action_timeouts", "sync_timeouts", "hold_timeouts", "safe_actions",
                "actions_rejected"):
        assert run[key] == 0, (key, run)
    ref = evaluate(arm.policy, "arm_drawer", {"episode_steps": STEPS}, "student", EPISODES,
                   TEST_SEED)
    for k, ep in enumerate(run["per_episode"]):
        assert ep["success"] == bool(ref.per_episode["success"][k])
        assert ep["length"] == int(ref.per_episode["l"][k]) == STEPS
        assert ep["return"] == pytest.approx(ref.per_episode["r"][k], abs=1e-4)
        for key in ("max_opening", "max_drawer_speed", "grasped_fraction", "handle_visible"):
            assert ep[key] == pytest.approx(ref.per_episode[key][k], abs=1e-4), key
    for key, value in ref.summary().items():
        assert run[key] == pytest.approx(value, abs=1e-4), key

    with BagReader(bag) as reader:
        recorded = list(reader.messages())
    topics = {m.topic for m in recorded}
    assert {"/joint_states", f"/{TARGETS_TOPIC}", "/camera/image_raw",
            "/camera/camera_info", "/clock", "/policy_node/debug"} <= topics
    running = [segments(m.msg) for m in recorded if m.topic == "/policy_node/debug"
               and int(m.msg.data[-1]) == State.RUNNING]
    assert len(running) == EPISODES * STEPS
    env = ArmDrawerVecEnv(1, seed=TEST_SEED, episode_steps=STEPS, track_visibility=False)
    i = 0
    for k in range(EPISODES):
        env.reset_to(k)
        for _ in range(STEPS):
            np.testing.assert_array_equal(running[i]["observation"],
                                          env.observe()["student"]["state"][0])
            env.step(running[i]["action"][None])
            # The step's final targets are those the node published (and the bridge applied).
            if env.steps[0] > 0:
                np.testing.assert_array_equal(running[i]["target"], env.targets[0])
            i += 1
    env.close()


# Wall-clock timing on a shared machine: rerun up to twice (as the quadrotor's realtime test).
@pytest.mark.flaky(reruns=2)
def test_realtime_arm_applies_the_nodes_unstamped_targets(arm, ros_env, tmp_path) -> None:
    """Realtime at 30 Hz: each tick applies the newest targets that arrived after the last
    frame (Float64MultiArray has no stamp); next to none fall back to the safe action."""
    summary = hil.run_hil(arm.model, episodes=2, mode="realtime", episode_steps=30,
                          timeout_s=120, log_dir=tmp_path, env=ros_env)  # task: contract's
    assert summary["task"] == "arm_drawer" and summary["complete"]
    assert summary["steps"] == 60 and summary["period_ms"] == pytest.approx(1e3 / 30)
    assert summary["actions_rejected"] == 0
    assert summary["safe_actions"] <= 2, summary  # 1 % of steps (a descheduled node)
    assert summary["actions_received"] >= 58


def test_bridge_rejects_bad_joint_targets_and_holds_without_an_answer(ros, tmp_path) -> None:
    """Lockstep with the test as the policy: a wrong number of targets and NaN targets are
    rejected and counted; a frame left unanswered gets the safe action (hold)."""
    ns = f"armbad_{os.getpid()}"
    frames: list[Image] = []
    fake = Spinner("fake_arm_policy", ns)
    pub = fake.node.create_publisher(Float64MultiArray, TARGETS_TOPIC, 10)
    fake.node.create_subscription(Image, "camera/image_raw", frames.append,
                                  qos_profile_sensor_data)
    hold = aw.START_JOINTS.tolist()  # any 9 finite targets are valid
    with fake:
        proc = _bridge(ns, tmp_path, "task:=arm_drawer", "episodes:=1", "episode_steps:=6",
                       "policy_node:=''", "action_timeout_s:=0.3", "reset_hold_s:=0.1")
        answered = 0
        try:
            while proc.poll() is None or answered < len(frames):
                if answered >= len(frames):
                    time.sleep(0.002)
                    continue
                i = answered
                answered += 1
                if i == 1:
                    pub.publish(Float64MultiArray(data=hold[:8]))  # rejected: 8 values
                    pub.publish(Float64MultiArray(data=hold))
                elif i == 3:
                    pub.publish(Float64MultiArray(data=[math.nan] * 9))  # rejected; silence
                else:
                    pub.publish(Float64MultiArray(data=hold))
        finally:
            out, err = _finish(proc, tmp_path, 60)
    assert proc.returncode == 0, err
    summary = _last_json(out)
    assert summary["complete"] and summary["task"] == "arm_drawer"
    assert summary["per_episode"][0]["length"] == 6 and len(frames) == 6
    assert summary["actions_rejected"] == 2 and summary["per_episode"][0]["rejected_actions"] == 2
    assert summary["action_timeouts"] == 1 and summary["safe_actions"] == 1
    # The first rejection is logged (the next within 2 s only counted: throttled).
    assert "action rejected: expected 9 joint targets, got 8" in err


def test_arm_teacher_demonstrations_equal_the_teacher_evaluation(arm, tmp_path) -> None:
    """The bridge runs the arm run's teacher and publishes its actions as joint targets
    (integrated with the contract's integrator), recorded to a bag."""
    bag = tmp_path / "demo"
    checkpoint = arm.run / "model_1.pt"
    proc = _bridge(f"armdemo_{os.getpid()}", tmp_path, "task:=arm_drawer", "episodes:=2",
                   "episode_steps:=10", f"teacher_checkpoint:={checkpoint}", f"record:={bag}")
    out, err = _finish(proc, tmp_path, 120)
    assert proc.returncode == 0, err
    summary = _last_json(out)
    assert summary["policy"] == "teacher" and summary["complete"]
    _, teacher, _ = load_run(arm.run, checkpoint)
    ref = evaluate(teacher, "arm_drawer", {"episode_steps": 10}, "teacher", 2, TEST_SEED)
    for k, ep in enumerate(summary["per_episode"]):
        assert ep["length"] == int(ref.per_episode["l"][k])
        assert ep["return"] == pytest.approx(ref.per_episode["r"][k], abs=1e-4)
    with BagReader(bag) as reader:
        counts: dict[str, int] = {}
        for item in reader.messages():
            topic = item.topic.split("/", 2)[-1]  # without the test's namespace
            counts[topic] = counts.get(topic, 0) + 1
    steps = summary["steps"]
    assert counts[TARGETS_TOPIC] == counts["camera/image_raw"] == steps
    assert counts["joint_states"] == steps  # one per step (a teacher needs no hold message)
    assert counts["sim_bridge/episode_result"] == 2


# --------------------------------------------------------------------------- sitt-replay
FRAMES = EPISODES * STEPS
JOINTS = list(INTEGRATOR.joints)


def _copy_bag(src: Path, dst: Path, edit: Callable[[str, Any], Any]) -> Path:
    """A copy of a bag, each message passed through ``edit(topic, msg)`` (None drops it),
    log times kept."""
    with BagReader(src) as reader, BagWriter(dst) as writer:
        for item in reader.messages():
            msg = edit(item.topic, item.msg)
            if msg is not None:
                writer.write(item.topic, msg, item.log_ns)
    return dst


def test_offline_replay_of_the_hil_bag_reproduces_the_nodes_joint_targets(arm, hil_bag,
                                                                         tmp_path) -> None:
    """Each replayed answer is the absolute target the node would publish from its own
    integrator state before the frame, rebuilt from the bag: its previous target within an
    episode, the measured joints at each episode's first frame (after the node's hold).
    Batched (the default), to float32 tolerance: ONNX Runtime need not give a batch the
    bits of single runs (it did here). With ``--batch 1``, the node's own call on the same
    inputs, exactly; there without the debug topic, so the rule reads the frames alone."""
    plot = tmp_path / "targets.png"
    proc = run_replay("--bag", hil_bag.bag, "--model", arm.model, "--json", "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["frames"] == {"total": FRAMES, "replayed": FRAMES, "compared": FRAMES,
                                "unanswered": 0, "not_running": 0}, report
    assert report["topics"]["action"] == f"/{TARGETS_TOPIC}"
    assert report["topics"]["debug"] == "/policy_node/debug"
    assert report["previous_action"] == "not in the state"
    assert report["targets"] == {"source": "the recorded targets", "joints": JOINTS,
                                 "continued": FRAMES - EPISODES, "restarted": EPISODES}
    target, action = report["target_error"], report["action_error"]
    assert target["names"] == JOINTS and target["units"] == ["rad"] * 7 + ["m"] * 2
    assert target["count"] == action["count"] == FRAMES
    assert target["max_overall"] <= 1e-6 and action["max_normalised"] <= 1e-5, report
    assert action["names"] == list(ACTION_NAMES) and len(action["physical"]["max"]) == 8
    assert all(c is None or c > 0.999 for c in action["normalised"]["corr"])
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "Traceback" not in proc.stderr

    bare = _copy_bag(hil_bag.bag, tmp_path / "no_debug",
                     lambda topic, msg: None if topic.endswith("/debug") else msg)
    code, out, err = replay_in_process("--bag", bare, "--model", arm.model, "--json",
                                       "--batch", 1)
    assert code == 0, err
    single = json.loads(out)
    assert single["topics"]["debug"] is None and single["targets"] == report["targets"]
    assert single["frames"]["compared"] == FRAMES
    assert single["target_error"]["max_overall"] == 0.0
    assert single["action_error"]["max_normalised"] == 0.0

    # Without the node's targets: coverage only, and no state to integrate from.
    code, out, err = replay_in_process(
        "--bag", _copy_bag(bare, tmp_path / "no_targets",
                           lambda topic, msg: None if topic == f"/{TARGETS_TOPIC}" else msg),
        "--model", arm.model, "--json")
    assert code == 0, err
    own = json.loads(out)
    assert own["frames"]["replayed"] == FRAMES and "action_error" not in own
    assert own["targets"]["continued"] is None
    assert any("no recorded action topic" in w for w in own["warnings"])


def test_live_replay_of_the_hil_bag_into_a_node_matches_its_targets(arm, hil_bag,
                                                                    tmp_path) -> None:
    """--live into a fresh node (trigger camera, sim time): it integrates its own targets
    from the same inputs, so they equal the recorded ones bit for bit; the targets its
    watchdog publishes between episodes (camera stale) are not taken for answers."""
    ns = f"armlive_{os.getpid()}"
    report = live_replay(arm.model, hil_bag.bag, ns, tmp_path / "node.log", FRAMES)
    assert report["live_topics"]["debug"] == f"/{ns}/policy_node/debug"
    assert report["live_topics"]["/joint_states"] == f"/{ns}/joint_states"
    # Between the 3 episodes the node held (at least one target each time) besides answering.
    assert report["actions_received"] >= FRAMES + EPISODES - 1, report
    assert report["latency_ms"]["count"] == FRAMES
    assert report["frames"]["compared"] == FRAMES
    assert report["target_error"]["max_overall"] == 0.0, report["target_error"]
    assert report["action_error"]["max_normalised"] == 0.0
    assert report["targets"]["restarted"] == EPISODES


def test_live_arm_replay_without_the_nodes_debug_topic_exits_2(arm, hil_bag,
                                                               tmp_path) -> None:
    ns = f"armnodebug_{os.getpid()}"
    log = tmp_path / "node.log"
    with policy_node(arm.model, ns, log, process_env(), "trigger:=camera",
                     "use_sim_time:=true", "publish_debug:=false") as node:
        end = time.monotonic() + 30
        while "ready:" not in log.read_text() and node.poll() is None \
                and time.monotonic() < end:
            time.sleep(0.1)
        proc = run_replay("--bag", hil_bag.bag, "--model", arm.model, "--live",
                          "--namespace", ns, "--wait", 5)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("sitt-replay: error: no policy_node found after 5 s: "
                                  f"nobody publishes /{ns}/policy_node/debug"), proc.stderr
    assert "run the node with publish_debug" in proc.stderr and proc.stderr.count("\n") == 1


def _without_joint(name: str) -> Callable[[str, Any], Any]:
    def edit(topic: str, msg: Any) -> Any:
        if topic == "/joint_states":
            keep = [i for i, n in enumerate(msg.name) if n != name]
            msg = JointState(header=msg.header, name=[msg.name[i] for i in keep],
                             position=[msg.position[i] for i in keep],
                             velocity=[msg.velocity[i] for i in keep])
        return msg
    return edit


BAD_BAGS = {  # case: (edit of the HIL bag, the message)
    "no_joint_states": (lambda t, m: None if t == "/joint_states" else m,
                        "the bag has no joint_state topic 'joint_states'"),
    "joint_missing": (_without_joint("panda_joint3"),
                      f"no frame could be replayed (skipped: invalid_joint_state {FRAMES}); "
                      "invalid_joint_state: joint_state: no joint(s) ['panda_joint3']"),
    "eight_targets": (lambda t, m: Float64MultiArray(data=m.data[:8])
                      if t == f"/{TARGETS_TOPIC}" else m,
                      f"recorded targets on /{TARGETS_TOPIC} have 8 values, the model's "
                      "integrator 9 joints"),
    "targets_not_an_array": (lambda t, m: String(data="x") if t == f"/{TARGETS_TOPIC}" else m,
                             f"topic /{TARGETS_TOPIC} is std_msgs/msg/String, the model "
                             "needs std_msgs/msg/Float64MultiArray"),
}


@pytest.mark.parametrize("case", list(BAD_BAGS))
def test_bad_arm_bags_exit_2_with_one_line(arm, hil_bag, tmp_path, case) -> None:
    edit, message = BAD_BAGS[case]
    bag = _copy_bag(hil_bag.bag, tmp_path / case, edit)
    if case == "joint_missing":  # the installed script, as a user runs it
        proc = run_replay("--bag", bag, "--model", arm.model)
        code, err = proc.returncode, proc.stderr
    else:
        code, _, err = replay_in_process("--bag", bag, "--model", arm.model)
    assert code == 2
    assert err.startswith("sitt-replay: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
