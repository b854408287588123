"""Bags and replay evaluation: BagWriter / BagReader round trips (MCAP and sqlite3),
record -> offline replay of the real policy node, ``--live`` replay into a node, bags with
faults, and the replay launch file (parsed: ``ros2 launch`` cannot run here)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import time
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rclpy
import yaml
from bag_synth import T0_NS, frame_variant, set_stamp, write_rollout_bag
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import (
    POLICY_NODE,
    SITT_REPLAY,
    live_replay,
    policy_node,
    process_env,
    replay_in_process,
    run_replay,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String
from test_policy_node import exported  # noqa: F401 (fixture)
from test_policy_observation import command_msg, image_msg, odometry_msg
from test_sim_bridge import SITT_HIL, _last_json

from sitt_policy_node.actions import ActionMap
from sitt_policy_node.contract import load_policy
from sitt_policy_node.node import PARAMETERS
from sitt_sim_bridge import replay
from sitt_sim_bridge.bags import BagError, BagReader, BagWriter, read_bag
from sitt_training.envs.quadrotor import QuadrotorVecEnv

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "replay.launch.py"
PERIOD_NS = 20_000_000  # the quadrotor student's 50 Hz
HIL_EPISODES, HIL_STEPS = 3, 10  # the recorded lockstep HIL bag: short episodes


def assert_same(a: Any, b: Any, path: str = "msg") -> None:
    """Field by field (recursively), so a failure names the field."""
    assert type(a) is type(b), path
    if hasattr(a, "get_fields_and_field_types"):
        for name in a.get_fields_and_field_types():
            assert_same(getattr(a, name), getattr(b, name), f"{path}.{name}")
    elif isinstance(a, (list, tuple)) and a and hasattr(a[0], "get_fields_and_field_types"):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, (str, bytes)):
        assert a == b, (path, a, b)
    else:
        x, y = np.asarray(a), np.asarray(b)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (path, a, b)


# --------------------------------------------------------------------------- bags
def sample_messages() -> list[tuple[str, Any]]:
    """One of each message the sim bridge records, from a real rollout."""
    env = QuadrotorVecEnv(num_envs=1, seed=4)
    env.reset(seed=4)
    ids = np.arange(1)
    rgb = env.render_images(ids)[0]
    out: list[tuple[str, Any]] = []
    for k in range(4):  # rgb8, bgr8, rgb8 with padded rows, mono8
        out.append(("/camera/image_raw", set_stamp(frame_variant(rgb, k), T0_NS + k)))
    info_like = image_msg(np.zeros((3, 5, 1), np.uint8), "mono8", pad=3)
    out.append(("/camera/odd", info_like))
    out.append(("/odom", set_stamp(odometry_msg(env.odometry(ids)), T0_NS)))
    out.append(("/cmd_vel", set_stamp(command_msg(env.command_velocity(ids)[0]), T0_NS)))
    action = TwistStamped()
    action.header.frame_id = "base_link"
    action.twist.linear.z, action.twist.angular.x = 9.81, -0.25
    out.append(("/cmd_rates_thrust", action))
    debug = Float64MultiArray(data=[0.5, float("nan"), -1.0])
    debug.layout.dim = [MultiArrayDimension(label="observation", size=2, stride=2),
                        MultiArrayDimension(label="state", size=1, stride=1)]
    out.append(("/policy_node/debug", debug))
    out.append(("/episodes", String(data=json.dumps({"episode": 1, "success": True}))))
    out.append(("/clock", Clock(clock=Time(sec=1000, nanosec=5))))
    env.close()
    return out


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_writer_round_trip_field_by_field(tmp_path: Path, storage: str) -> None:
    messages = sample_messages()
    path = tmp_path / "bag"
    with BagWriter(path, storage) as bag:
        bag.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/camera/image_raw", "sensor_msgs/Image")  # same again: no-op
        for i, (topic, msg) in enumerate(messages):
            bag.write(topic, msg, 1_000 + i)  # other topics: added from the message type
        bag.flush()
    # metadata.yaml: what ros2 bag info/play read.
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == storage and meta["message_count"] == len(messages)
    assert meta["version"] == 9
    types = {t["topic_metadata"]["name"]: t["topic_metadata"]["type"]
             for t in meta["topics_with_message_count"]}
    assert types["/camera/image_raw"] == "sensor_msgs/msg/Image"
    assert types["/episodes"] == "std_msgs/msg/String"
    assert all(t["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
               for t in meta["topics_with_message_count"])
    with Reader(path) as raw:  # rosbags itself, and (MCAP) the schemas are in the file
        assert raw.message_count == len(messages)
        if storage == "mcap":
            assert all(c.msgdef.data for c in raw.connections)
    read = list(read_bag(path))
    assert [(t, n) for t, _, n, _ in read] == [(t, 1_000 + i) for i, (t, _) in
                                               enumerate(messages)]
    for (topic, msg), (_, type_name, _, got) in zip(messages, read, strict=True):
        assert type_name == f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"
        assert_same(msg, got, topic)
    # Camera frames come back as the same pixels through the node's converter.
    with BagReader(path) as bag:
        assert bag.storage == storage and bag.counts["/camera/image_raw"] == 4
        assert not bag.skipped
        bag.require(["/odom", "/clock"])
        with pytest.raises(BagError, match="no topic /nope in the bag"):
            bag.require(["/nope"])


def test_bag_writer_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        with pytest.raises(BagError, match="unknown to the ROS 2"):
            bag.add_topic("/x", "no_such_msgs/msg/Thing")
        with pytest.raises(BagError, match="pkg/msg/Type"):
            bag.add_topic("/x", "Image")
        bag.write("/odom", Odometry(), 1)
        with pytest.raises(BagError, match="records nav_msgs/msg/Odometry"):
            bag.write("/odom", Image(), 2)
        with pytest.raises(BagError, match="already recorded as nav_msgs/msg/Odometry"):
            bag.add_topic("/odom", "sensor_msgs/msg/Image")
    with pytest.raises(BagError, match="exists already"):
        BagWriter(path)
    with pytest.raises(BagError, match="storage 'rosbag1' not supported"):
        BagWriter(tmp_path / "other", storage="rosbag1")
    # An error inside the block still leaves a readable bag of what was written.
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError), BagWriter(crashed) as bag:
        bag.write("/odom", Odometry(), 5)
        raise RuntimeError("recorder died")
    assert [t for t, *_ in read_bag(crashed)] == ["/odom"]


def test_reader_takes_a_sqlite3_bag_written_by_rosbags_and_skips_unknown_types(
        tmp_path: Path) -> None:
    """A bag from elsewhere: written with rosbags' own serialiser, plus a custom type
    rclpy does not have."""
    store = get_typestore(Stores.ROS2_KILTED)
    Odom = store.types["nav_msgs/msg/Odometry"]  # noqa: N806 (a class)
    path = tmp_path / "foreign"
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        conn = w.add_connection("/odom", Odom.__msgtype__, typestore=store)
        custom = w.add_connection("/custom", "custom_msgs/msg/Thing", msgdef="int32 x",
                                  rihs01="RIHS01_" + "0" * 64)
        ref = odometry_msg({"position": np.array([[1.0, 2.0, 3.0]]),
                            "orientation_xyzw": np.array([[0.0, 0.0, 0.6, 0.8]]),
                            "linear_velocity_body": np.array([[0.1, 0.2, 0.3]]),
                            "angular_velocity_body": np.array([[-0.1, 0.0, 0.5]])})
        from rclpy.serialization import serialize_message
        w.write(conn, 7, serialize_message(ref))
        w.write(custom, 8, b"\x00\x01\x00\x00\x05\x00\x00\x00")
    with BagReader(path) as bag:
        assert bag.storage == "sqlite3"
        assert "/custom" in bag.skipped and "not installed" in bag.skipped["/custom"]
        (item,) = list(bag.messages())
        assert item.topic == "/odom" and item.log_ns == 7
        assert_same(ref, item.msg)
        with pytest.raises(BagError, match="cannot be read: message type custom_msgs"):
            bag.require(["/custom"])


# --------------------------------------------------------------------------- record
class Recorder:
    """The robot side of a recording: publishes sensors and /clock to the node, listens
    to its action and debug topics, and logs everything to a BagWriter (log time: this
    process's wall clock, as a recorder's)."""

    def __init__(self, ns: str, bag: BagWriter) -> None:
        self.bag, self.ns = bag, ns
        self.node = rclpy.create_node(f"replay_recorder_{ns}")
        n = self.node
        self.topics = {"camera": f"/{ns}/camera/image_raw", "odometry": f"/{ns}/odom",
                       "command": f"/{ns}/cmd_vel", "clock": "/clock"}
        self.pubs = {
            "camera": n.create_publisher(Image, self.topics["camera"],
                                         qos_profile_sensor_data),
            "odometry": n.create_publisher(Odometry, self.topics["odometry"], 10),
            "command": n.create_publisher(TwistStamped, self.topics["command"], 10),
            "clock": n.create_publisher(Clock, "/clock", 10),
        }
        self.actions: list[tuple[int, TwistStamped]] = []
        self.action_sub = n.create_subscription(
            TwistStamped, f"/{ns}/cmd_rates_thrust", self._on_action, 50)
        self.debug_sub = n.create_subscription(
            Float64MultiArray, f"/{ns}/policy_node/debug",
            lambda m: bag.write(f"/{ns}/policy_node/debug", m, time.time_ns()), 50)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(n)

    def _on_action(self, msg: TwistStamped) -> None:
        now = time.time_ns()
        self.bag.write(f"/{self.ns}/cmd_rates_thrust", msg, now)
        self.actions.append((now, msg))

    def publish(self, key: str, msg: Any) -> None:
        self.bag.write(self.topics[key], msg, time.time_ns())  # logged, then sent
        self.pubs[key].publish(msg)

    def spin_until(self, done: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.005)
        return True

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() > end, seconds + 1)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _clock(ns: int) -> Clock:
    return Clock(clock=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000))


@pytest.fixture(scope="module")
def recorded(exported: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
             ) -> Iterator[dict[str, Any]]:
    """The real policy_node (trigger camera, use_sim_time) in lockstep with a rollout of
    QuadrotorVecEnv on a simulated clock, everything recorded by this process."""
    root = tmp_path_factory.mktemp("recorded")
    contract, _ = load_policy(exported)
    amap = ActionMap(contract["action"])
    ns = f"rec_{os.getpid()}"
    env = QuadrotorVecEnv(num_envs=1, seed=7)
    env.reset(seed=7)
    ids = np.arange(1)
    rclpy.init()
    frames, node_actions = 12, []
    try:
        with BagWriter(root / "bag") as bag, \
                policy_node(exported, ns, root / "node.log", process_env(), "trigger:=camera",
                            "use_sim_time:=true") as proc:
            rec = Recorder(ns, bag)
            ready = rec.spin_until(lambda: proc.poll() is None and all(
                p.get_subscription_count() > 0 for p in rec.pubs.values())
                and rec.action_sub.get_publisher_count() > 0
                and rec.debug_sub.get_publisher_count() > 0, 30.0)
            assert ready, (root / "node.log").read_text()
            # Start the node's clock; its watchdog answers (safe action, camera missing).
            t = T0_NS - 10 * PERIOD_NS
            while not rec.actions and t < T0_NS:
                t += PERIOD_NS
                rec.publish("clock", _clock(t))
                rec.spin_for(0.05)
            assert rec.actions, (root / "node.log").read_text()
            rec.spin_for(0.1)  # every watchdog answer so far is in the bag before frame 0
            t0 = t
            for k in range(frames):
                t = t0 + k * PERIOD_NS
                if k:
                    rec.publish("clock", _clock(t))
                rec.publish("odometry", set_stamp(odometry_msg(env.odometry(ids)), t))
                rec.publish("command", set_stamp(command_msg(env.command_velocity(ids)[0]), t))
                rec.spin_for(0.05)  # clock, odometry and command reach the node first
                seen = len(rec.actions)
                rec.publish("camera", set_stamp(frame_variant(env.render_images(ids)[0], k), t))
                assert rec.spin_until(lambda s=seen: len(rec.actions) > s, 5.0)
                msg = rec.actions[-1][1]
                action = amap.to_normalised(np.array([msg.twist.linear.z, msg.twist.angular.x,
                                                      msg.twist.angular.y,
                                                      msg.twist.angular.z]))
                node_actions.append(action)
                env.step(action[None].astype(np.float32))
            rec.spin_for(0.1)
            rec.close()
            assert proc.poll() is None
    finally:
        rclpy.try_shutdown()
        env.close()
    actions = np.array(node_actions)
    assert 0.05 < np.abs(actions).mean() < 0.9  # real, varying actions
    yield {"bag": root / "bag", "frames": frames, "actions": actions, "ns": ns}


def test_record_then_offline_replay_reproduces_the_node(recorded, exported,  # noqa: F811
                                                        tmp_path) -> None:
    plot = tmp_path / "actions.png"
    proc = run_replay("--bag", recorded["bag"], "--model", exported, "--json", "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    frames = recorded["frames"]
    assert report["frames"] == {"total": frames, "replayed": frames, "compared": frames,
                                "unanswered": 0, "not_running": 0}, report
    assert report["coverage"] == 1.0 and report["skipped"] == {}
    assert report["clock"] == "header stamps" and report["previous_action"] == "recorded"
    err = report["action_error"]
    assert err["max_normalised"] <= 1e-5 and err["max_physical"] <= 1e-4, err
    assert len(err["normalised"]["mae"]) == 4 and all(
        c is None or c > 0.999 for c in err["normalised"]["corr"])
    ns = recorded["ns"]
    assert report["topics"]["camera"] == f"/{ns}/camera/image_raw"
    assert report["topics"]["debug"] == f"/{ns}/policy_node/debug"
    assert report["messages"][f"/{ns}/camera/image_raw"]["used"] == frames
    assert report["throughput"]["messages_per_s"] > 0
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "Traceback" not in proc.stderr


def test_live_replay_into_a_node_reports_latency_and_no_drops(recorded, exported,  # noqa: F811
                                                              tmp_path) -> None:
    ns = f"live_{os.getpid()}"
    log = tmp_path / "node.log"
    with policy_node(exported, ns, log, process_env(), "trigger:=camera", "use_sim_time:=true"):
        proc = run_replay("--bag", recorded["bag"], "--model", exported, "--live",
                          "--namespace", ns, "--json")
    assert proc.returncode == 0, proc.stderr + log.read_text()
    report = json.loads(proc.stdout)
    frames = recorded["frames"]
    assert report["mode"] == "live" and report["published_frames"] == frames
    assert report["drops"] == 0, report
    lat = report["latency_ms"]
    assert lat["count"] == frames and 0 < lat["p50"] <= lat["max"] < 1000, lat
    assert report["live_topics"][f"/{recorded['ns']}/camera/image_raw"] == \
        f"/{ns}/camera/image_raw"
    # The node sees the same inputs and feeds back its own (identical) actions.
    assert report["frames"]["compared"] == frames
    assert report["action_error"]["max_normalised"] <= 1e-5, report["action_error"]


@pytest.fixture(scope="module")
def hil_bag(exported: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
            ) -> SimpleNamespace:
    """``sitt-hil --task quadrotor`` (bridge + node, lockstep) with ``--record``: the bag
    (``bag``; clock, odometry, command and frame of a step share its log time) and the
    summary (``run``)."""
    root = tmp_path_factory.mktemp("quad_hil")
    proc = subprocess.run(
        [str(SITT_HIL), "--task", "quadrotor", "--model", str(exported), "--episodes",
         str(HIL_EPISODES), "--episode-steps", str(HIL_STEPS), "--json", "--record",
         str(root / "bag"), "--timeout", "120", "--log-dir", str(root / "logs")],
        env=process_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    run = _last_json(proc.stdout)
    assert run["episodes"] == HIL_EPISODES and run["sync_timeouts"] == 0, run
    return SimpleNamespace(bag=root / "bag", run=run)


def test_live_replay_of_a_lockstep_hil_bag_reproduces_the_nodes_actions(
        hil_bag, exported, tmp_path) -> None:  # noqa: F811
    """In the bag the sim bridge records, a step's clock, odometry and command share the
    frame's log time, so they are republished right before it: the replay makes sure the
    node has taken them, and has run the watchdog step the clock made due after an episode
    gap, before each frame (two get_parameters round trips). Then the node sees what the
    recorded one saw and, with its own (identical) previous action, answers the same
    bits: without the sync every frame differs, with one round trip an episode's first."""
    frames = sum(ep["length"] for ep in hil_bag.run["per_episode"])
    ns = f"hillive_{os.getpid()}"
    report = live_replay(exported, hil_bag.bag, ns, tmp_path / "node.log", frames)
    assert report["live_topics"]["node"] == f"/{ns}/policy_node"
    assert not any("get_parameters" in w for w in report["warnings"]), report["warnings"]
    assert report["frames"]["compared"] == frames, report["frames"]
    err = report["action_error"]
    assert err["max_normalised"] == 0.0 and err["max_physical"] == 0.0, err


def test_live_replay_goes_on_without_the_sync_when_the_node_is_named_otherwise(
        hil_bag, exported, tmp_path) -> None:  # noqa: F811
    """A stamped-action node the replay cannot find by name (no <ns>/policy_node/
    get_parameters): it replays without the sync and the report says so."""
    ns = f"hilname_{os.getpid()}"
    log = tmp_path / "node.log"
    with policy_node(exported, ns, log, process_env(), "trigger:=camera",
                     "use_sim_time:=true", args=("-r", "__node:=pilot")):
        proc = run_replay("--bag", hil_bag.bag, "--model", exported, "--live",
                          "--namespace", ns, "--rate", 4, "--json")
    assert proc.returncode == 0, proc.stderr + log.read_text()
    report = json.loads(proc.stdout)
    frames = sum(ep["length"] for ep in hil_bag.run["per_episode"])
    assert report["published_frames"] == frames and report["sync_timeouts"] == 0
    assert report["frames"]["compared"] + report["drops"] == frames, report
    assert any(w.startswith(f"no service /{ns}/policy_node/get_parameters (is the node "
                            "named otherwise?)") for w in report["warnings"]), report


# --------------------------------------------------------------------------- bad bags
def test_faulty_frames_are_skipped_with_reasons(exported, tmp_path, capsys) -> None:  # noqa: F811
    """Wrong size, bad encoding, out-of-order stamp, no odometry yet and stale odometry:
    counted with reasons, the rest replays exactly, no traceback."""
    def fault(k: int, msgs: dict[str, Any]) -> None:
        t = T0_NS + k * PERIOD_NS
        if k == 0:
            msgs["odometry"] = None
        elif k == 3:
            msgs["camera"] = set_stamp(image_msg(np.zeros((32, 32, 3), np.uint8)), t)
        elif k == 5:
            msgs["camera"] = set_stamp(image_msg(np.zeros((64, 64, 4), np.uint8), "rgba8"), t)
        elif k == 7:
            set_stamp(msgs["camera"], t - 10 * PERIOD_NS)
        elif 10 <= k <= 16:
            msgs["odometry"] = None  # frames 15 and 16 find it 120 / 140 ms old

    write_rollout_bag(tmp_path / "bag", exported, 24, fault=fault)
    code = replay.main(["--bag", str(tmp_path / "bag"), "--model", str(exported), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["skipped"] == {"no_odometry_yet": 1, "wrong_size": 1, "bad_encoding": 1,
                                 "out_of_order_stamps": 1, "stale_odometry": 2}, report
    assert "32x32" in report["skip_examples"]["wrong_size"]
    assert "rgba8" in report["skip_examples"]["bad_encoding"]
    assert report["frames"]["replayed"] == 18 and report["coverage"] == pytest.approx(0.75)
    assert report["frames"]["compared"] == 18
    assert report["action_error"]["max_normalised"] <= 1e-5
    # Text report names the reasons too.
    replay.main(["--bag", str(tmp_path / "bag"), "--model", str(exported)])
    text = capsys.readouterr().out
    assert "skipped: no_odometry_yet 1" in text and "coverage 75.0%" in text


def test_unstamped_answers_align_by_log_time_on_sqlite3(exported, tmp_path,  # noqa: F811
                                                        capsys) -> None:
    write_rollout_bag(tmp_path / "bag", exported, 10, storage="sqlite3", lockstep=False)
    assert replay.main(["--bag", str(tmp_path / "bag"), "--model", str(exported),
                        "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["storage"] == "sqlite3" and report["frames"]["compared"] == 10
    assert report["action_error"]["max_normalised"] <= 1e-5


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or directory"),
    ("file", "is not a rosbag2 directory"),
    ("no_metadata", "no metadata.yaml"),
    ("bad_metadata", "cannot read the bag"),
    ("no_camera", "the bag has no camera topic 'camera/image_raw'"),
])
def test_unusable_bags_exit_2_with_one_line(exported, tmp_path, case, message) -> None:  # noqa: F811
    path = tmp_path / "bag"
    if case == "file":
        path.write_text("not a bag")
    elif case == "no_metadata":
        path.mkdir()
    elif case == "bad_metadata":
        write_rollout_bag(path, exported, 2)
        (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: [")
    elif case == "no_camera":
        write_rollout_bag(path, exported, 3, fault=lambda k, m: m.update(camera=None))
    if case in ("missing", "no_camera"):  # the installed script, as a user runs it
        proc = run_replay("--bag", path, "--model", exported)
        code, err = proc.returncode, proc.stderr
    else:
        code, _, err = replay_in_process("--bag", path, "--model", exported)
    assert code == 2
    assert err.startswith("sitt-replay: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_frames_before_any_odometry_only_exit_2(exported, tmp_path, capsys) -> None:  # noqa: F811
    def late_odometry(k: int, msgs: dict[str, Any]) -> None:  # stamped after every frame
        set_stamp(msgs["odometry"], T0_NS + k * PERIOD_NS + 1_000_000_000)

    write_rollout_bag(tmp_path / "bag", exported, 3, fault=late_odometry)
    assert replay.main(["--bag", str(tmp_path / "bag"), "--model", str(exported)]) == 2
    err = capsys.readouterr().err
    assert "no frame could be replayed (skipped: no_odometry_yet 3)" in err


# --------------------------------------------------------------------------- launch
def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name) and n.func.id == name]


def test_replay_launch_file_names_what_exists() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text())
    consts = {n.targets[0].id: n.value.value for n in tree.body
              if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)}

    def value(node: ast.AST) -> Any:
        return consts[node.id] if isinstance(node, ast.Name) else ast.literal_eval(node)

    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names}
    assert {"Node", "LaunchDescription", "DeclareLaunchArgument", "ExecuteProcess"} <= imported
    # The node: package and console script exist, its parameters are the node's.
    (node,) = _calls(tree, "Node")
    kw = {k.arg: k.value for k in node.keywords}
    package, executable = value(kw["package"]), value(kw["executable"])
    scripts = {ep.name: ep.value for ep in distribution(package).entry_points
               if ep.group == "console_scripts"}
    assert scripts.get(executable) == "sitt_policy_node.node:main" and POLICY_NODE.is_file()
    (params,) = kw["parameters"].elts
    keys = {value(k): v for k, v in zip(params.keys, params.values, strict=True)}
    declared = {p.name for p in PARAMETERS} | {"use_sim_time"}
    assert set(keys) <= declared, set(keys) - declared
    assert value(keys["trigger"]) == "camera" and value(keys["use_sim_time"]) is True
    # The replay process: the sitt_sim_bridge console script, with flags sitt-replay takes.
    (proc,) = _calls(tree, "ExecuteProcess")
    cmd = {k.arg: k.value for k in proc.keywords}["cmd"].elts
    # cmd[0] is find_executable(REPLAY, "sitt_sim_bridge"): PATH or the colcon lib/ dir.
    assert isinstance(cmd[0], ast.Call) and cmd[0].func.id == "find_executable"
    script, package = (value(a) for a in cmd[0].args)
    assert package == "sitt_sim_bridge"
    bridge = {ep.name: ep.value for ep in distribution("sitt_sim_bridge").entry_points
              if ep.group == "console_scripts"}
    assert bridge.get(script) == "sitt_sim_bridge.replay:main" and SITT_REPLAY.is_file()
    def constant(e: ast.AST) -> bool:  # the rest are substitutions (LaunchConfiguration)
        return isinstance(e, ast.Constant) or (isinstance(e, ast.Name) and e.id in consts)

    flags = [value(e) for e in cmd[1:] if constant(e)]
    assert {"--live", "--bag", "--model", "--rate", "--namespace"} <= set(flags)
    substituted = iter(["bag", "model.onnx", "1.0", "ns"])
    argv = [value(e) if constant(e) else next(substituted) for e in cmd[1:]]
    args = replay.parse_args(argv)
    assert args.live and args.clock and args.bag == Path("bag") and args.rate == 1.0
    # Every LaunchConfiguration is declared.
    declared_args = {value(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument")}
    used = {value(c.args[0]) for c in _calls(tree, "LaunchConfiguration")}
    assert used <= declared_args and {"bag", "model_path", "rate"} <= used
