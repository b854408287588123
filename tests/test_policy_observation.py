"""Unit tests of the policy node's pure parts: the observation builder (state fields and
camera conversion from the contract), the action map and the safety state machine."""

from types import SimpleNamespace

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image, JointState

from sitt_policy_node.actions import ActionMap, output_fields, write_fields
from sitt_policy_node.contract import validate_contract
from sitt_policy_node.observation import (
    ImageConverter,
    InputError,
    NonFiniteInput,
    StateBuilder,
    quaternion_to_matrix,
)
from sitt_policy_node.safety import InputStatus, SafetyMonitor, State
from sitt_training.envs.quadrotor import QuadrotorVecEnv


# --------------------------------------------------------------------------- messages
def odometry_msg(od: dict[str, np.ndarray], i: int = 0) -> Odometry:
    """A nav_msgs/Odometry from QuadrotorVecEnv.odometry() (twist in the body frame)."""
    msg = Odometry()
    msg.header.frame_id, msg.child_frame_id = "world", "base_link"
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = map(float, od["position"][i])
    q.x, q.y, q.z, q.w = map(float, od["orientation_xyzw"][i])
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    lin.x, lin.y, lin.z = map(float, od["linear_velocity_body"][i])
    ang.x, ang.y, ang.z = map(float, od["angular_velocity_body"][i])
    return msg


def command_msg(velocity: np.ndarray) -> TwistStamped:
    msg = TwistStamped()
    msg.header.frame_id = "world"
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = map(float, velocity)
    return msg


def image_msg(pixels: np.ndarray, encoding: str = "rgb8", pad: int = 0) -> Image:
    """An Image of (H, W, C) pixels, rows padded by ``pad`` bytes (step > width * C)."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    if pad:
        rows = np.concatenate([rows, np.full((h, pad), 77, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=rows.shape[1])
    msg.data = np.ascontiguousarray(rows).tobytes()
    return msg


# --------------------------------------------------------------------------- state
def test_state_from_messages_equals_the_environments_student_state() -> None:
    env = QuadrotorVecEnv(num_envs=3, seed=11)
    contract = env.policy_contract()
    builder = StateBuilder(contract["state_fields"])
    assert builder.inputs == ("odometry", "command")
    rng = np.random.default_rng(1)
    prev = np.zeros((3, 4), np.float32)
    for _ in range(6):  # tilt and turn the drones so every transform matters
        obs = env.observe()["student"]["state"]
        od, cmd = env.odometry(np.arange(3)), env.command_velocity(np.arange(3))
        for i in range(3):
            state = builder.build({"odometry": odometry_msg(od, i),
                                   "command": command_msg(cmd[i])}, prev[i])
            assert state.dtype == np.float32 and state.shape == (20,)
            np.testing.assert_allclose(state, obs[i], rtol=0, atol=1e-6)
        prev = rng.uniform(-0.5, 0.5, (3, 4)).astype(np.float32)
        env.step(prev)
    env.close()


def test_quaternion_matrix_and_field_transforms() -> None:
    half = np.sqrt(0.5)
    rot = quaternion_to_matrix([0.0, 0.0, half, half])  # yaw +90 deg
    np.testing.assert_allclose(rot @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix([0.0, 0.0, 2.0, 2.0]), rot, atol=1e-12)
    with pytest.raises(InputError, match="no length"):
        quaternion_to_matrix([0.0, 0.0, 0.0, 0.0])
    fields = [
        {"name": "v", "size": 3, "ros_input": "odometry", "ros_field": "twist.twist.linear",
         "transform": "rotate_body_to_world"},
        {"name": "r", "size": 6, "ros_input": "odometry",
         "ros_field": "pose.pose.orientation", "transform": "rotation_matrix_columns_xy"},
        {"name": "z", "size": 1, "ros_input": "odometry", "ros_field": "pose.pose.position.z",
         "transform": "scale_offset", "params": {"offset": 1.0, "scale": 0.5}},
        {"name": "a", "size": 2, "ros_input": "previous_action", "ros_field": "",
         "transform": "none"},
    ]
    # Plain objects work too: the builder reads attribute paths, no rclpy needed.
    vec = SimpleNamespace
    msg = vec(pose=vec(pose=vec(position=vec(x=0.0, y=0.0, z=3.0),
                                orientation=vec(x=0.0, y=0.0, z=half, w=half))),
              twist=vec(twist=vec(linear=vec(x=2.0, y=0.0, z=0.5))))
    state = StateBuilder(fields).build({"odometry": msg}, np.array([0.25, -1.0]))
    expected = [0.0, 2.0, 0.5, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.25, -1.0]
    np.testing.assert_allclose(state, expected, atol=1e-7)


def test_non_finite_and_missing_fields_are_rejected() -> None:
    env = QuadrotorVecEnv(num_envs=1, seed=0)
    builder = StateBuilder(env.policy_contract()["state_fields"])
    msg = odometry_msg(env.odometry(np.arange(1)))
    builder.extract("odometry", msg)
    msg.twist.twist.angular.y = float("nan")
    with pytest.raises(NonFiniteInput, match="angular_velocity"):
        builder.extract("odometry", msg)
    msg = odometry_msg(env.odometry(np.arange(1)))
    msg.pose.pose.orientation.w = float("inf")
    with pytest.raises(NonFiniteInput):
        builder.extract("odometry", msg)
    with pytest.raises(InputError, match="no field 'twist.twist.linear'"):
        builder.extract("odometry", command_msg(np.zeros(3)))  # wrong message type
    env.close()


# --------------------------------------------------------------------------- joints
ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
LOWER = np.array([-2.9, -1.8, -2.9, -3.1, -2.9, -0.0, -2.9])
UPPER = np.array([2.9, 1.8, 2.9, -0.1, 2.9, 3.8, 2.9])


def arm_contract() -> dict:
    """An arm-style contract (there is no arm task yet): joint positions mapped to [-1, 1]
    and joint velocities, both matched by joint name."""
    fields = [
        {"name": "joint_position", "size": 7, "unit": "1", "frame": "-",
         "description": "joint positions scaled to [-1, 1]", "ros_input": "joint_state",
         "ros_field": "position", "transform": "scale_offset",
         "params": {"joints": ARM_JOINTS, "offset": ((LOWER + UPPER) / 2).tolist(),
                    "scale": (2 / (UPPER - LOWER)).tolist()}},
        {"name": "joint_velocity", "size": 7, "unit": "rad/s", "frame": "-",
         "description": "joint velocities", "ros_input": "joint_state",
         "ros_field": "velocity", "transform": "none", "params": {"joints": ARM_JOINTS}},
        {"name": "previous_action", "size": 8, "unit": "1", "frame": "-",
         "description": "last action", "ros_input": "previous_action", "ros_field": "",
         "transform": "none"},
    ]
    return validate_contract({
        "version": 1, "task": "drawer", "robot_kind": "arm", "control_rate_hz": 60.0,
        "inputs": [{"name": "state", "shape": ["batch", 22], "dtype": "float32",
                    "role": "state"}],
        "outputs": [{"name": "action", "shape": ["batch", 8], "dtype": "float32"}],
        "state_fields": fields,
        "action": {"names": [f"a{i}" for i in range(8)], "units": ["1"] * 8,
                   "low": [-1.0] * 8, "high": [1.0] * 8, "scale": [1.0] * 8,
                   "offset": [0.0] * 8, "meaning": "test", "safe": [0.0] * 8},
        "ros": {"joint_state": {"topic": "joint_states",
                                "type": "sensor_msgs/msg/JointState"}},
    })


def joint_msg(names: list[str], pos: np.ndarray, vel: np.ndarray) -> JointState:
    return JointState(name=names, position=[float(v) for v in pos],
                      velocity=[float(v) for v in vel])


def test_joints_in_shuffled_order_give_the_same_observation() -> None:
    builder = StateBuilder(arm_contract()["state_fields"])
    assert builder.inputs == ("joint_state",)
    rng = np.random.default_rng(4)
    pos, vel = rng.uniform(LOWER, UPPER), rng.normal(size=7)
    prev = rng.uniform(-1, 1, 8)
    # The fingers are extra joints the policy does not use; drivers add such joints.
    names = ARM_JOINTS + ["panda_finger_joint1", "panda_finger_joint2"]
    ordered = builder.build({"joint_state": joint_msg(
        names, np.r_[pos, 0.04, 0.04], np.r_[vel, 0.0, 0.0])}, prev)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(len(names))
        shuffled = joint_msg([names[i] for i in perm], np.r_[pos, 0.04, 0.04][perm],
                             np.r_[vel, 0.0, 0.0][perm])
        np.testing.assert_array_equal(builder.build({"joint_state": shuffled}, prev),
                                      ordered)
    expected = np.r_[(pos - (LOWER + UPPER) / 2) * 2 / (UPPER - LOWER), vel, prev]
    np.testing.assert_allclose(ordered, expected.astype(np.float32), rtol=1e-6)
    assert np.abs(ordered[:7]).max() <= 1.0


def test_joint_state_problems_are_rejected() -> None:
    builder = StateBuilder(arm_contract()["state_fields"])
    with pytest.raises(InputError, match=r"no joint\(s\) \['panda_joint7'\]"):
        builder.extract("joint_state", joint_msg(ARM_JOINTS[:6], np.zeros(6), np.zeros(6)))
    no_velocity = JointState(name=ARM_JOINTS, position=[0.0] * 7)
    with pytest.raises(InputError, match="7 names but 0 velocity"):
        builder.extract("joint_state", no_velocity)


# --------------------------------------------------------------------------- camera
CAMERA = {"width": 4, "height": 3, "encoding": "rgb8"}


def test_image_conversion_to_the_contracts_encoding() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    conv = ImageConverter(CAMERA)
    np.testing.assert_array_equal(conv.convert(image_msg(rgb)), rgb)
    np.testing.assert_array_equal(conv.convert(image_msg(rgb[..., ::-1], "bgr8")), rgb)
    np.testing.assert_array_equal(conv.convert(image_msg(rgb, pad=5)), rgb)  # row stride
    np.testing.assert_array_equal(conv.convert(image_msg(rgb[..., ::-1], "bgr8", pad=3)),
                                  rgb)
    grey = rgb[..., :1]
    np.testing.assert_array_equal(conv.convert(image_msg(grey, "mono8", pad=2)),
                                  np.repeat(grey, 3, axis=2))
    out = conv.convert(image_msg(rgb))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    # A mono8 model gets luma (BT.601) from colour images.
    mono = ImageConverter(dict(CAMERA, encoding="mono8"))
    luma = np.rint(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None]
    np.testing.assert_array_equal(mono.convert(image_msg(rgb[..., ::-1], "bgr8")), luma)
    np.testing.assert_array_equal(mono.convert(image_msg(grey, "mono8")), grey)


def test_wrong_images_are_rejected() -> None:
    conv = ImageConverter(CAMERA)
    with pytest.raises(InputError, match="is 5x3, the model needs 4x3"):
        conv.convert(image_msg(np.zeros((3, 5, 3), np.uint8)))
    with pytest.raises(InputError, match="encoding 'yuv422' not supported"):
        conv.convert(image_msg(np.zeros((3, 4, 2), np.uint8), "yuv422"))
    short = image_msg(np.zeros((3, 4, 3), np.uint8))
    short.data = bytes(20)
    with pytest.raises(InputError, match="too short"):
        conv.convert(short)
    narrow = image_msg(np.zeros((3, 4, 3), np.uint8))
    narrow.step = 8  # less than 4 * 3 bytes per row
    with pytest.raises(InputError, match="too short"):
        conv.convert(narrow)


# --------------------------------------------------------------------------- action
def test_action_map_clips_and_maps_to_physical_units() -> None:
    contract = QuadrotorVecEnv(num_envs=1).policy_contract()
    amap = ActionMap(contract["action"])
    np.testing.assert_array_equal(amap.safe, np.zeros(4, np.float32))
    clipped = amap.clip(np.array([1.5, -2.0, 0.5, np.float32(0.25)]))
    np.testing.assert_array_equal(clipped, np.array([1.0, -1.0, 0.5, 0.25], np.float32))
    physical = amap.to_physical(clipped)
    g = contract["action"]["offset"][0]
    np.testing.assert_allclose(physical, [2 * g, -3.0, 1.5, 0.5])
    np.testing.assert_allclose(amap.to_normalised(physical), clipped)
    msg = TwistStamped()
    write_fields(msg, output_fields(contract["ros"]["action"], amap.names), amap.names,
                 physical)
    assert msg.twist.linear.z == pytest.approx(2 * g)
    assert (msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z) == (-3.0, 1.5, 0.5)
    assert (msg.twist.linear.x, msg.twist.linear.y) == (0.0, 0.0)
    with pytest.raises(ValueError, match="have no field"):
        output_fields({}, ["gripper"])


# --------------------------------------------------------------------------- safety
FRESH = InputStatus()


def test_safety_waits_runs_holds_and_recovers() -> None:
    s = SafetyMonitor()
    assert s.state is State.WAITING and not s.may_act
    assert s.check_inputs(InputStatus(missing=("camera",))) is State.WAITING
    assert s.check_inputs(FRESH) is State.RUNNING and s.may_act
    assert s.check_output(True) is State.RUNNING
    assert s.check_inputs(InputStatus(stale=("camera",))) is State.HOLD
    assert "stale camera" in s.reason
    assert s.check_inputs(FRESH) is State.RUNNING
    assert s.check_inputs(InputStatus(invalid=("odometry",))) is State.HOLD
    assert "rejected odometry" in s.reason
    assert s.check_inputs(FRESH) is State.RUNNING
    assert s.check_output(False, "non-finite policy output") is State.HOLD
    assert s.reason == "non-finite policy output" and not s.may_act
    assert s.check_inputs(FRESH) is State.RUNNING


def test_safety_disable_and_latched_emergency_stop() -> None:
    s = SafetyMonitor()
    s.check_inputs(FRESH)
    assert s.set_enabled(False) is State.DISABLED
    assert s.check_inputs(FRESH) is State.DISABLED  # fresh data does not re-enable
    s.set_enabled(True)
    assert s.check_inputs(FRESH) is State.RUNNING
    assert s.emergency_stop("test") is State.ESTOP
    for _ in range(3):  # nothing brings it back: not fresh inputs, not enabling
        assert s.check_inputs(FRESH) is State.ESTOP
        assert s.set_enabled(True) is State.ESTOP
        assert s.check_output(True) is State.ESTOP
    assert not s.may_act and "test" in s.reason
    assert [int(x) for x in State] == [0, 1, 2, 3, 4]
