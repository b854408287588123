"""The onboard policy node over real DDS: the node runs as its own process (the installed
``policy_node`` script), this test process publishes sensor messages and listens to the
action, debug and diagnostics topics with rclpy. Also: the launch file and its parameter
file (``ros2 launch`` cannot be installed here, so the file is parsed and the same node is
started from its parameter file)."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import onnx
import pytest
import rclpy
import torch
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import POLICY_NODE, policy_node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from test_policy_observation import command_msg, image_msg, odometry_msg

from sitt_policy_node.actions import ActionMap
from sitt_policy_node.contract import METADATA_KEY, contract_json, load_policy, sidecar_path
from sitt_policy_node.node import PolicyNode
from sitt_policy_node.safety import State
from sitt_training.cli import load_run
from sitt_training.config import load_config
from sitt_training.envs import make_task
from sitt_training.envs.quadrotor import QuadrotorVecEnv
from sitt_training.export import MODEL_NAME, export_student
from sitt_training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "ros2_ws" / "src" / "sitt_policy_node"
LAUNCH_FILE = REPO / "launch" / "policy.launch.py"
TINY = ["task.name=quadrotor", "task.num_envs=8", "task.student_envs=4", "method.name=sitt",
        "ppo.rollout_steps=8", "ppo.minibatches=2", "ppo.epochs=1", "method.align_iterations=2",
        "method.align_batch_size=16", "method.buffer_size=256", "network.hidden=[32]",
        "network.cnn_channels=[8, 8, 8, 8]", "network.normalize_obs=true",
        "train.iterations=1", "train.eval_every=0", "train.torch_threads=1",
        "train.checkpoint_buffer=false"]
RELAXED = ("max_age_camera_s:=5.0", "max_age_odometry_s:=5.0", "max_age_command_s:=5.0")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained quadrotor student, exported as sitt-export does. Its decoder starts
    near zero (gain 0.01), so it is scaled up first: actions of order 0.3 that change with
    the inputs make the parity check meaningful."""
    root = tmp_path_factory.mktemp("policy")
    cfg = load_config(overrides=TINY)
    Trainer(cfg, root / "run", show_progress=False).train()
    _, policy, _ = load_run(root / "run")
    with torch.no_grad():
        policy.decoder.linear.weight.mul_(100.0)
    env = make_task("quadrotor", 1, 0)
    path = export_student(policy, env, root / "run" / "exported", {"test": "policy node"})
    env.close()
    return path


@pytest.fixture(scope="module")
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


# --------------------------------------------------------------------------- harness
def segments(msg: Float64MultiArray) -> dict[str, np.ndarray]:
    """The debug message's named segments (layout.dim labels and sizes, in order)."""
    data, out, start = np.asarray(msg.data), {}, 0
    for dim in msg.layout.dim:
        out[dim.label] = data[start:start + dim.size]
        start += dim.size
    return out


class Client:
    """The robot's side: sensor publishers, action/debug/diagnostics subscribers."""

    def __init__(self, ns: str, contract: dict) -> None:
        ros = contract["ros"]
        self.ns = ns
        self.node = rclpy.create_node(f"policy_test_client_{ns}")
        n = self.node
        self.cam = n.create_publisher(Image, f"/{ns}/{ros['camera']['topic']}",
                                      qos_profile_sensor_data)
        self.odom = n.create_publisher(Odometry, f"/{ns}/{ros['odometry']['topic']}", 10)
        self.cmd = n.create_publisher(TwistStamped, f"/{ns}/{ros['command']['topic']}", 10)
        self.estop = n.create_publisher(Bool, f"/{ns}/estop", 10)
        self.actions: list[tuple[float, TwistStamped]] = []
        self.debug: list[tuple[float, dict[str, np.ndarray]]] = []
        self.diagnostics: list[dict[str, str]] = []
        self.action_sub = n.create_subscription(
            TwistStamped, f"/{ns}/{ros['action']['topic']}",
            lambda m: self.actions.append((time.monotonic(), m)), 10)
        self.debug_sub = n.create_subscription(
            Float64MultiArray, f"/{ns}/policy_node/debug",
            lambda m: self.debug.append((time.monotonic(), segments(m))), 50)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(n)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{self.ns}/policy_node: policy":
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(left, 0.01))

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def wait_ready(self, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
        """Discovery both ways, then the node's first (safe) action: it is spinning."""
        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            return (all(p.get_subscription_count() > 0 for p in (self.cam, self.odom, self.cmd))
                    and self.action_sub.get_publisher_count() > 0
                    and self.debug_sub.get_publisher_count() > 0 and bool(self.actions))
        assert self.spin_until(ready, timeout), log.read_text()

    def wait_inputs_received(self, env: QuadrotorVecEnv, log: Path, timeout: float = 10.0
                             ) -> None:
        """Send odometry and command until the node's (frameless, watchdog) steps show it
        has them. Discovery is not symmetric: our publisher can see the node's subscription
        before the node's side has matched it, and a message sent in that gap is lost, so a
        first frame could find odometry missing (WAITING) and never step again."""
        def received() -> bool:
            self.send_inputs(env)
            self.spin_for(0.02)
            return bool(self.debug) and all(
                v[0] >= 0 for k, v in self.debug[-1][1].items()
                if k.startswith("age_") and k != "age_camera_s")
        assert self.spin_until(received, timeout), log.read_text()

    def states(self) -> list[int]:
        return [int(d["state"][0]) for _, d in self.debug]

    def send_inputs(self, env: QuadrotorVecEnv, odom_nan: bool = False) -> None:
        ids = np.arange(1)
        odom = odometry_msg(env.odometry(ids))
        if odom_nan:
            odom.twist.twist.linear.x = float("nan")
        self.odom.publish(odom)
        self.cmd.publish(command_msg(env.command_velocity(ids)[0]))

    def step_with_frame(self, image: Image, expect: State) -> dict[str, np.ndarray]:
        """Publish one frame (camera trigger) and return the debug record of the first
        step after it in state ``expect`` (while the camera is unusable, the watchdog adds
        safe steps at the control rate)."""
        count = len(self.debug)
        self.cam.publish(image)

        def found() -> dict[str, np.ndarray] | None:
            return next((d for _, d in self.debug[count:] if d["state"][0] == expect), None)

        assert self.spin_until(lambda: found() is not None, 5.0), self.states()[count:]
        self.spin_for(0.03)  # the action (another topic) arrives too
        return found()

    def call(self, srv_type: type, name: str, request: object) -> object:
        client = self.node.create_client(srv_type, f"/{self.ns}/policy_node/{name}")
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(request)
        assert self.spin_until(future.done, 10.0)
        self.node.destroy_client(client)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def client_for(ros: None) -> Iterator[Callable[[str, dict], Client]]:
    clients: list[Client] = []

    def make(ns: str, contract: dict) -> Client:
        clients.append(Client(ns, contract))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def physical(msg: TwistStamped) -> np.ndarray:
    return np.array([msg.twist.linear.z, msg.twist.angular.x, msg.twist.angular.y,
                     msg.twist.angular.z])


def camera_image(env: QuadrotorVecEnv, variant: int = 0) -> Image:
    """The drone's camera frame; variants: rgb8, bgr8, rgb8 with padded rows."""
    rgb = env.render_images(np.arange(1))[0]
    if variant % 3 == 1:
        return image_msg(rgb[..., ::-1], "bgr8")
    return image_msg(rgb, "rgb8", pad=16 if variant % 3 == 2 else 0)


def _ns(tag: str) -> str:
    return f"pn_{tag}_{os.getpid()}"


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("executor", ["single_threaded", "events"])
def test_actions_equal_onnxruntime_on_an_environment_rollout(exported, client_for, ros_env,
                                                             tmp_path, executor) -> None:
    contract, session = load_policy(exported)
    amap = ActionMap(contract["action"])
    env = QuadrotorVecEnv(num_envs=1, seed=7)
    env.reset(seed=7)
    log = tmp_path / "node.log"
    with policy_node(exported, _ns("parity"), log, ros_env, "trigger:=camera",
                     f"executor:={executor}",
                     *RELAXED) as proc:
        c = client_for(_ns("parity"), contract)
        c.wait_ready(proc, log)
        c.wait_inputs_received(env, log)
        expected_all, got_all = [], []
        for k in range(8):
            student = env.observe()["student"]
            expected = session.run(["action"], student)[0][0]
            c.send_inputs(env)
            c.spin_for(0.1)  # odometry and command reach the node before the frame
            # Before the first frame the watchdog adds WAITING steps at the control rate (more
            # of them on a loaded machine); each frame must give exactly one RUNNING step.
            running = sum(d["state"][0] == State.RUNNING for _, d in c.debug)
            dbg = c.step_with_frame(camera_image(env, k), State.RUNNING)
            assert sum(d["state"][0] == State.RUNNING for _, d in c.debug) == running + 1, \
                "one frame must give one control step"
            # The node's observation builder gives the environment's student state.
            np.testing.assert_allclose(dbg["observation"], student["state"][0], atol=1e-6)
            action = c.actions[-1][1]
            assert action.header.frame_id == "base_link"
            got = amap.to_normalised(physical(action))
            expected_all.append(expected)
            got_all.append(got)
            assert np.abs(got - expected).max() <= 1e-5, (k, got, expected)
            np.testing.assert_allclose(dbg["action"], expected, atol=1e-6)
            assert dbg["inference_ms"][0] > 0 and 0 <= dbg["age_camera_s"][0] < 1.0
            _, _, terminated, truncated, _ = env.step(expected[None])
            assert not (terminated[0] or truncated[0])
        # Real, varying actions (not all near zero or clipped), matched to 1e-5.
        assert 0.05 < np.abs(expected_all).mean() < 0.9
        assert np.ptp(np.array(expected_all), axis=0).max() > 0.01
        assert proc.poll() is None
    env.close()


@pytest.mark.parametrize("executor", ["single_threaded", "events"])
def test_stalled_camera_gives_the_safe_action_within_a_control_period(
        exported, client_for, ros_env, tmp_path, executor) -> None:
    contract, _ = load_policy(exported)
    amap = ActionMap(contract["action"])
    safe = amap.to_physical(amap.safe)
    limit, period, slack = 0.1, 1.0 / contract["control_rate_hz"], 0.1
    env = QuadrotorVecEnv(num_envs=1, seed=3)
    log = tmp_path / "node.log"
    with policy_node(exported, _ns("stall"), log, ros_env, "trigger:=timer",
                     f"executor:={executor}",
                     f"max_age_camera_s:={limit}", "max_age_odometry_s:=1.0",
                     "max_age_command_s:=5.0") as proc:
        c = client_for(_ns("stall"), contract)
        c.wait_ready(proc, log)
        image = camera_image(env)
        end = time.monotonic() + 0.6
        while time.monotonic() < end:  # all inputs at the control rate
            c.send_inputs(env)
            c.cam.publish(image)
            t_stop = time.monotonic()  # the last frame: the camera stalls after it
            c.spin_for(period)
        seen = len(c.debug)
        assert c.states()[-1] == State.RUNNING, log.read_text()

        def held() -> bool:
            c.send_inputs(env)  # odometry and command keep coming
            return any(int(d["state"][0]) == State.HOLD for _, d in c.debug[seen:])

        assert c.spin_until(held, 3.0), log.read_text()
        t_hold, dbg = next((t, d) for t, d in c.debug[seen:] if d["state"][0] == State.HOLD)
        assert limit - 0.02 <= t_hold - t_stop <= limit + period + slack, t_hold - t_stop
        np.testing.assert_array_equal(dbg["action"], amap.safe)
        assert dbg["age_camera_s"][0] > limit
        c.spin_for(0.1)
        late = [m for t, m in c.actions if t > t_hold + 0.02]
        assert late and all(np.allclose(physical(m), safe) for m in late)
        # The camera comes back: the policy acts again.
        seen = len(c.debug)
        c.cam.publish(image)
        assert c.spin_until(lambda: State.RUNNING in c.states()[seen:], 2.0)
        assert "HOLD" in log.read_text() and "stale camera" in log.read_text()
        assert proc.poll() is None
    env.close()


def test_bad_inputs_hold_with_an_error_and_the_node_recovers(exported, client_for, ros_env,
                                                             tmp_path) -> None:
    contract, _ = load_policy(exported)
    amap = ActionMap(contract["action"])
    safe = amap.to_physical(amap.safe)
    env = QuadrotorVecEnv(num_envs=1, seed=5)
    log = tmp_path / "node.log"
    ns = _ns("bad")
    with policy_node(exported, ns, log, ros_env, "trigger:=camera", *RELAXED) as proc:
        c = client_for(ns, contract)
        c.wait_ready(proc, log)
        c.wait_inputs_received(env, log)
        good = camera_image(env)

        def step(image: Image, expect: State, odom_nan: bool = False) -> None:
            c.send_inputs(env, odom_nan)
            c.spin_for(0.05)
            dbg = c.step_with_frame(image, expect)
            if expect is not State.RUNNING:
                np.testing.assert_array_equal(dbg["action"], amap.safe)
                np.testing.assert_allclose(physical(c.actions[-1][1]), safe)

        small = image_msg(np.zeros((32, 32, 3), np.uint8))
        rgba = image_msg(np.zeros((64, 64, 4), np.uint8), "rgba8")
        step(good, State.RUNNING)
        step(good, State.HOLD, odom_nan=True)
        step(good, State.RUNNING)
        step(small, State.HOLD)
        step(good, State.RUNNING)
        step(rgba, State.HOLD)
        step(good, State.RUNNING)
        # Counters reach /diagnostics (1 Hz).
        seen = len(c.diagnostics)
        assert c.spin_until(lambda: len(c.diagnostics) > seen, 3.0)
        diag = c.diagnostics[-1]
        assert (diag["nan_inputs"], diag["rejected_inputs"]) == ("1", "2"), diag
        assert diag["state"] == "RUNNING" and float(diag["inference_ms_p99"]) > 0
        # The estop topic latches.
        c.estop.publish(Bool(data=True))
        c.spin_for(0.2)
        step(good, State.ESTOP)
        assert c.states()[-1] == State.ESTOP
        assert proc.poll() is None
    text = log.read_text()
    assert "odometry message non-finite" in text and "linear_velocity" in text
    assert "image is 32x32, the model needs 64x64" in text
    assert "image encoding 'rgba8' not supported" in text
    assert "ESTOP" in text and "estop topic" in text
    env.close()


def test_enable_service_and_latched_emergency_stop(exported, client_for, ros_env,
                                                   tmp_path) -> None:
    contract, _ = load_policy(exported)
    env = QuadrotorVecEnv(num_envs=1, seed=9)
    log = tmp_path / "node.log"
    ns = _ns("estop")
    with policy_node(exported, ns, log, ros_env, "trigger:=camera", *RELAXED) as proc:
        c = client_for(ns, contract)
        c.wait_ready(proc, log)
        c.wait_inputs_received(env, log)
        good = camera_image(env)

        def step(expect: State) -> None:
            c.send_inputs(env)
            c.spin_for(0.05)
            c.step_with_frame(good, expect)
            assert c.states()[-1] == expect

        step(State.RUNNING)
        assert c.call(SetBool, "enable", SetBool.Request(data=False)).success
        step(State.DISABLED)
        assert c.call(SetBool, "enable", SetBool.Request(data=True)).success
        step(State.RUNNING)
        reply = c.call(Trigger, "emergency_stop", Trigger.Request())
        assert reply.success and "latched" in reply.message
        for _ in range(3):  # good data does not bring it back, nor does enabling
            step(State.ESTOP)
        assert not c.call(SetBool, "enable", SetBool.Request(data=True)).success
        step(State.ESTOP)
        safe = ActionMap(contract["action"])
        np.testing.assert_allclose(physical(c.actions[-1][1]), safe.to_physical(safe.safe))
        assert proc.poll() is None
    env.close()


def test_nan_output_and_inference_errors_hold_and_outputs_are_clipped(exported, ros) -> None:
    """In-process (no DDS needed for this): a fake session stands in for a model that
    returns NaN, raises, or leaves the bounds."""
    env = QuadrotorVecEnv(num_envs=1, seed=2)
    overrides = [Parameter("model_path", value=str(exported)),
                 Parameter("trigger", value="camera"), Parameter("publish_debug", value=False),
                 Parameter("max_age_camera_s", value=5.0)]
    node = PolicyNode(parameter_overrides=overrides)
    node.setup()
    try:
        def frame() -> State:
            ids = np.arange(1)
            node._on_state_input("odometry", odometry_msg(env.odometry(ids)))
            node._on_state_input("command", command_msg(env.command_velocity(ids)[0]))
            node._on_image(camera_image(env))
            return node.safety.state

        assert frame() is State.RUNNING
        real_run = node.session.run
        node.session.run = lambda *a, **k: [np.full((1, 4), np.nan, np.float32)]
        assert frame() is State.HOLD and node.nonfinite_outputs == 1
        np.testing.assert_array_equal(node.prev_action, node.actions.safe)

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("device lost")

        node.session.run = broken
        assert frame() is State.HOLD and node.inference_errors == 1
        assert "inference failed: device lost" in node.safety.reason
        node.session.run = lambda *a, **k: [np.array([[5.0, -3.0, 0.5, -0.25]], np.float32)]
        assert frame() is State.RUNNING
        np.testing.assert_array_equal(node.prev_action, [1.0, -1.0, 0.5, -0.25])
        node.session.run = real_run
        assert frame() is State.RUNNING
    finally:
        node.destroy_node()
        env.close()


def _tampered(model: Path, out: Path) -> Path:
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    shutil.copy(sidecar_path(model), sidecar_path(out))
    return out


def _corrupt(model: Path, out: Path) -> Path:
    out.write_bytes(b"not an onnx model")
    side = json.loads(sidecar_path(model).read_text())
    side["model_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    sidecar_path(out).write_text(json.dumps(side))
    return out


def _contract_not_the_graph(model: Path, out: Path) -> Path:
    """A consistent file and hash whose contract names an input the graph lacks."""
    proto = onnx.load(model)
    contract = json.loads(sidecar_path(model).read_text())
    contract.pop("model_sha256")
    contract["inputs"][0]["name"] = "rgb"
    for meta in proto.metadata_props:
        if meta.key == METADATA_KEY:
            meta.value = contract_json(contract)
    onnx.save(proto, out)
    contract["model_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    sidecar_path(out).write_text(json.dumps(contract))
    return out


@pytest.mark.parametrize("case, code, message", [
    ("missing", 2, "model file not found"),
    ("tampered", 2, "differs from the contract's"),
    ("corrupt", 2, "onnxruntime cannot load"),
    ("contract_not_graph", 2, "model has no input 'rgb'"),
    ("no_model_path", 1, "no model_path given"),
])
def test_unusable_models_stop_the_node_with_a_clear_message(exported, ros_env, tmp_path,
                                                            case, code, message) -> None:
    path = {
        "missing": lambda: tmp_path / "missing.onnx",
        "tampered": lambda: _tampered(exported, tmp_path / MODEL_NAME),
        "corrupt": lambda: _corrupt(exported, tmp_path / MODEL_NAME),
        "contract_not_graph": lambda: _contract_not_the_graph(exported, tmp_path / MODEL_NAME),
        "no_model_path": lambda: "",
    }[case]()
    args = ["--ros-args", "-p", f"model_path:={path}"] if path else []
    proc = subprocess.run([str(POLICY_NODE), *args], env=ros_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr, proc.stderr
    if case != "no_model_path":
        assert "cannot load the policy" in proc.stderr


@pytest.mark.parametrize("params,message", [
    (("executor:=events", "use_sim_time:=true"), "executor=events cannot run with "
                                                  "use_sim_time:=true"),
    (("executor:=fast",), "parameter executor='fast': expected one of"),
])
def test_bad_executor_choices_stop_the_node_with_exit_1(exported, ros_env, params,
                                                       message) -> None:
    cmd = [str(POLICY_NODE), "--ros-args", "-p", f"model_path:={exported}"]
    for p in params:
        cmd += ["-p", p]
    proc = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- launch
def _constants(tree: ast.Module) -> dict[str, object]:
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)):
            out[node.targets[0].id] = node.value.value
    return out


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name) and n.func.id == name]


def _value(node: ast.AST, constants: dict[str, object]) -> object:
    if isinstance(node, ast.Name):
        return constants[node.id]
    return ast.literal_eval(node)


def test_launch_file_names_what_exists_and_its_parameter_file_runs(exported, client_for,
                                                                   ros_env, tmp_path) -> None:
    tree = ast.parse(LAUNCH_FILE.read_text())
    consts = _constants(tree)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names}
    assert {"Node", "LaunchDescription", "DeclareLaunchArgument"} <= imported
    (node_call,) = _calls(tree, "Node")
    kw = {k.arg: k.value for k in node_call.keywords}
    package, executable = _value(kw["package"], consts), _value(kw["executable"], consts)
    assert package == "sitt_policy_node"
    assert (PACKAGE_DIR / "package.xml").read_text().count(f"<name>{package}</name>") == 1
    scripts = {ep.name: ep.value for ep in distribution(package).entry_points
               if ep.group == "console_scripts"}
    assert scripts.get(executable) == "sitt_policy_node.node:main"
    assert POLICY_NODE.is_file()
    # Every LaunchConfiguration refers to a declared argument.
    declared = {_value(c.args[0], consts): c for c in _calls(tree, "DeclareLaunchArgument")}
    used = {_value(c.args[0], consts) for c in _calls(tree, "LaunchConfiguration")}
    assert used <= set(declared), used - set(declared)
    assert "params_file" in used and "model_path" in used
    # The parameter file's default: FindPackageShare(<package>) / config / policy_node.yaml,
    # present in the package and installed by setup.py.
    default = {k.arg: k.value for k in declared["params_file"].keywords}["default_value"]
    (join,) = _calls(default, "PathJoinSubstitution")
    first, *rest = join.args[0].elts
    (share,) = _calls(first, "FindPackageShare")
    assert _value(share.args[0], consts) == package
    relative = "/".join(_value(e, consts) for e in rest)
    params_file = PACKAGE_DIR / relative
    assert params_file.is_file(), params_file
    setup_py = (PACKAGE_DIR / "setup.py").read_text()
    assert f"'{relative}'" in setup_py and "/config'" in setup_py

    # Start the node as the launch file would: the parameter file plus model_path.
    (section,) = yaml.safe_load(params_file.read_text()).values()
    file_params = section["ros__parameters"]
    contract, _ = load_policy(exported)
    ns = _ns("launch")
    log = tmp_path / "node.log"
    with policy_node(exported, ns, log, ros_env,
                     args=("--params-file", str(params_file))) as proc:
        c = client_for(ns, contract)
        c.wait_ready(proc, log)
        listed = c.call(ListParameters, "list_parameters", ListParameters.Request())
        names = set(listed.result.names)
        assert set(file_params) <= names, set(file_params) - names
        assert {"model_path", "control_rate_hz", "camera_topic", "action_topic"} <= names
        reply = c.call(GetParameters, "get_parameters",
                       GetParameters.Request(names=list(file_params)))
        values = dict(zip(file_params, map(parameter_value_to_python, reply.values),
                          strict=True))
        assert values == file_params
        assert proc.poll() is None
    assert "ready:" in log.read_text()
