"""Latency of the onboard policy node, against the DDS floor, in one run.

    python bench/policy_latency.py                      # untrained student, preset network
    python bench/policy_latency.py --model runs/<run>/exported/student.onnx --seconds 5

Rows (p50 / p99 / max in ms):

* DDS floor: this process publishes a 64x64 rgb8 ``sensor_msgs/Image`` (sensor-data QoS)
  to an echo process (rclpy, single-threaded executor) that answers each with a
  ``geometry_msgs/TwistStamped``: the same messages, QoS and process hops as the node's
  camera -> action path, with nothing done in between. Round trip publish -> reply.
* ONNX Runtime alone: ``session.run`` on one observation, in this process.
* node end to end: ``policy_node`` (trigger ``camera``, debug topic on) as a subprocess, one
  per ``--executors`` entry (rclpy's events executor, the node's default without sim time,
  and the Python single-threaded one);
  odometry then the camera frame are published at the rate; latency from the frame's
  publish to the action's arrival. Dropped: frames without an action. CPU and RSS of the
  node process from /proc over the timed window.

Floor and nodes run side by side and are measured in alternating 0.5 s blocks, so all see
the same load from the rest of the machine (the ratio is what the targets compare).

Every ROS process stays on loopback (the repository's Fast DDS profile), in its own domain.
Prints a Markdown table with the command line above it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Loopback-only DDS in this process and its children (docs: PLATFORM.md); set before rclpy.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" /
                                                          "fastdds_localhost.xml"))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 101))

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from untrained_student import default_model  # noqa: E402

from sitt_policy_node.contract import load_policy  # noqa: E402
from sitt_sim_bridge.hil import stop_process  # noqa: E402
from sitt_sim_bridge.messages import image_msg  # noqa: E402

POLICY_NODE = Path(sys.executable).parent / "policy_node"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIZE = 64


# --------------------------------------------------------------------------- echo
def echo_main(ns: str) -> int:
    """The DDS floor's other end: answer each image with a TwistStamped, nothing else."""
    rclpy.init()
    node = rclpy.create_node("latency_echo", namespace=ns)
    pub = node.create_publisher(TwistStamped, "pong", 10)

    def reply(msg: Image) -> None:
        out = TwistStamped()
        out.header.stamp = node.get_clock().now().to_msg()
        out.twist.linear.z = float(msg.width)
        pub.publish(out)

    node.create_subscription(Image, "ping", reply, qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


# --------------------------------------------------------------------------- helpers
@dataclass
class Row:
    what: str
    rate: str
    latencies_ms: np.ndarray
    sent: int = 0
    dropped: int = 0
    cpu_pct: float = float("nan")
    rss_mb: float = float("nan")
    note: str = ""

    def cells(self) -> list[str]:
        lat = self.latencies_ms
        p50, p99, mx = ((np.percentile(lat, 50), np.percentile(lat, 99), lat.max())
                        if lat.size else (np.nan,) * 3)
        fmt = lambda v, d=3: "-" if np.isnan(v) else f"{v:.{d}f}"  # noqa: E731
        return [self.what, self.rate, str(lat.size), fmt(p50), fmt(p99), fmt(mx),
                str(self.dropped) if self.sent else "-", fmt(self.cpu_pct, 1),
                fmt(self.rss_mb, 1), self.note]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    kb = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            kb[key] = int(value.split()[0])
    return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024


def odometry_msg() -> Odometry:
    msg = Odometry()
    msg.header.frame_id, msg.child_frame_id = "world", "base_link"
    msg.pose.pose.position.z = 1.5
    msg.pose.pose.orientation.w = 1.0
    msg.twist.twist.linear.x = 0.5
    return msg


@dataclass
class Target:
    """One process answering camera frames: the echo (DDS floor) or the policy node."""

    what: str
    proc: subprocess.Popen
    pub: Any  # the image publisher
    before: Callable[[], None] | None = None  # published before each frame (odometry)
    received: list[float] = field(default_factory=list)
    ns: str = ""


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    dropped: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0


class Bench:
    def __init__(self) -> None:
        rclpy.init()
        self.node: Node = rclpy.create_node("latency_bench")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.diagnostics: dict[str, dict[str, str]] = {}  # per node namespace
        rng = np.random.default_rng(0)
        self.frames = [image_msg(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), 0,
                                 "camera_optical_frame") for _ in range(8)]
        self.entities: list[Any] = []

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def block(self, target: Target, rate: float, n: int, tally: Tally | None) -> None:
        """``n`` frames at ``rate``; replies are matched to frames in order (FIFO)."""
        target.received.clear()
        sent: list[float] = []
        period = 1.0 / rate
        cpu0, t0 = proc_cpu_s(target.proc.pid), time.monotonic()
        next_t = time.perf_counter()
        for i in range(n):
            if target.before is not None:
                target.before()
            sent.append(time.perf_counter())
            target.pub.publish(self.frames[i % len(self.frames)])
            next_t += period
            while (left := next_t - time.perf_counter()) > 0:
                self.executor.spin_once(timeout_sec=left)
        self.spin_until(lambda: len(target.received) >= n, 0.5)  # the last replies
        if tally is None:  # warm-up
            return
        got = target.received[:n]
        tally.latencies += ((np.array(got) - np.array(sent[:len(got)])) * 1e3).tolist()
        tally.sent += n
        tally.dropped += n - len(got)
        tally.cpu_s += proc_cpu_s(target.proc.pid) - cpu0
        tally.wall_s += time.monotonic() - t0

    def measure(self, targets: list[Target], rate: float, seconds: float,
                block_s: float = 0.5) -> list[Row]:
        """Alternate short blocks between the targets, so that each sees the same load
        from the rest of the machine."""
        tallies = [Tally() for _ in targets]
        for t in targets:
            self.block(t, rate, 20, None)
        n = max(1, int(block_s * rate))
        for _ in range(max(1, round(seconds / block_s))):
            for t, tally in zip(targets, tallies, strict=True):
                self.block(t, rate, n, tally)
        rows = []
        for t, tally in zip(targets, tallies, strict=True):
            rss, hwm = proc_rss_mb(t.proc.pid)
            rows.append(Row(t.what, f"{rate:g} Hz", np.array(tally.latencies),
                            sent=tally.sent, dropped=tally.dropped,
                            cpu_pct=100 * tally.cpu_s / max(tally.wall_s, 1e-9), rss_mb=rss,
                            note=f"peak RSS {hwm:.1f} MB"))
        return rows

    def subscribe_replies(self, target: Target, topic: str) -> Any:
        sub = self.node.create_subscription(
            TwistStamped, topic, lambda m: target.received.append(time.perf_counter()), 10)
        self.entities.append(sub)
        return sub


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def echo_target(bench: Bench) -> Target:
    ns = f"/lat_echo_{os.getpid()}"
    proc = start([sys.executable, __file__, "--echo", ns])
    pub = bench.node.create_publisher(Image, f"{ns}/ping", qos_profile_sensor_data)
    target = Target("DDS floor: Image -> TwistStamped echo (rclpy)", proc, pub, ns=ns)
    sub = bench.subscribe_replies(target, f"{ns}/pong")
    if not bench.spin_until(lambda: pub.get_subscription_count() > 0
                            and sub.get_publisher_count() > 0, 20.0):
        raise RuntimeError(f"echo process not discovered (exit {proc.poll()})")
    return target


def node_target(bench: Bench, model: Path, contract: dict, executor: str) -> Target:
    ns = f"/lat_node_{executor}_{os.getpid()}"
    ros = contract["ros"]
    cmd = [str(POLICY_NODE), "--ros-args", "-r", f"__ns:={ns}", "-p", f"model_path:={model}",
           "-p", "trigger:=camera", "-p", f"executor:={executor}"]
    for name in ("camera", "odometry", "command"):
        cmd += ["-p", f"max_age_{name}_s:=2.0"]
    proc = start(cmd)
    node = bench.node
    cam = node.create_publisher(Image, f"{ns}/{ros['camera']['topic']}",
                                qos_profile_sensor_data)
    odom = node.create_publisher(Odometry, f"{ns}/{ros['odometry']['topic']}", 10)
    twist = node.create_publisher(TwistStamped, f"{ns}/{ros['command']['topic']}", 10)
    odom_msg, cmd_msg = odometry_msg(), TwistStamped()
    cmd_msg.twist.linear.x = 1.2
    count = [0]

    def inputs() -> None:  # odometry with every frame, the command at a tenth of it
        if count[0] % 10 == 0:
            twist.publish(cmd_msg)
        count[0] += 1
        odom.publish(odom_msg)

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"{ns}/policy_node: policy":
                bench.diagnostics[ns] = {kv.key: kv.value for kv in status.values}

    bench.entities.append(node.create_subscription(DiagnosticArray, "/diagnostics",
                                                   on_diag, 10))
    target = Target(f"node end to end ({executor} executor)", proc, cam, inputs, ns=ns)
    sub = bench.subscribe_replies(target, f"{ns}/{ros['action']['topic']}")
    if not bench.spin_until(lambda: all(p.get_subscription_count() > 0
                                        for p in (cam, odom, twist))
                            and sub.get_publisher_count() > 0, 30.0):
        raise RuntimeError(f"policy node not discovered (exit {proc.poll()})")
    return target


def ort_row(model: Path, runs: int, threads: int) -> Row:
    contract, session = load_policy(model, threads=threads)
    cam = contract["camera"]
    feeds = {"image": np.random.default_rng(0).integers(
                 0, 256, (1, cam["height"], cam["width"], 3), dtype=np.uint8),
             "state": np.zeros((1, sum(f["size"] for f in contract["state_fields"])),
                               np.float32)}
    for _ in range(20):
        session.run(["action"], feeds)
    lat = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        session.run(["action"], feeds)
        lat[i] = (time.perf_counter() - t0) * 1e3
    return Row(f"ONNX Runtime alone ({threads} thread)", "-", lat)




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="exported student.onnx (default: an "
                        "untrained student with the quadrotor preset's network)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    parser.add_argument("--rates", type=float, nargs="+", default=[30.0, 100.0])
    parser.add_argument("--ort-runs", type=int, default=2000)
    parser.add_argument("--executors", nargs="+", default=["events", "single_threaded"],
                        choices=["events", "single_threaded"],
                        help="one node per executor, measured side by side")
    parser.add_argument("--echo", metavar="NS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo:
        return echo_main(args.echo)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp))
        contract, _ = load_policy(model)
        rows = [ort_row(model, args.ort_runs, 1)]
        bench = Bench()
        targets: list[Target] = []
        try:
            nodes = [node_target(bench, model, contract, kind) for kind in args.executors]
            targets = [echo_target(bench), *nodes]
            for rate in args.rates:
                bench.diagnostics = {}
                floor, *node_rows = bench.measure(targets, rate, args.seconds)
                bench.spin_until(lambda: len(bench.diagnostics) == len(nodes), 2.0)
                for target, row in zip(nodes, node_rows, strict=True):
                    d = bench.diagnostics.get(target.ns, {})
                    row.note += (f"; state {d.get('state', '?')}, in-node inference "
                                 f"p50/p99 {d.get('inference_ms_p50', '?')}/"
                                 f"{d.get('inference_ms_p99', '?')} ms (last 1 s)")
                rows += [floor, *node_rows]
        finally:
            for t in targets:
                stop_process(t.proc)
            bench.node.destroy_node()
            rclpy.try_shutdown()

    print(f"`python bench/policy_latency.py {' '.join(sys.argv[1:])}`".replace("  ", " "))
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at the end; model "
          f"{args.model or 'untrained, quadrotor preset network'}\n")
    header = ["measurement", "rate", "n", "p50 ms", "p99 ms", "max ms", "dropped",
              "CPU %", "RSS MB", "note"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    _verdict(rows, max(args.rates))
    return 0


def _verdict(rows: list[Row], rate: float) -> None:
    """The issue's targets at the highest rate."""
    label = f"{rate:g} Hz"
    floor = next((r for r in rows if r.rate == label and r.what.startswith("DDS")), None)
    print()
    for r in rows:
        if r.rate != label or not r.what.startswith("node") or floor is None:
            continue
        p99 = np.percentile(r.latencies_ms, 99) if r.latencies_ms.size else np.inf
        ratio = p99 / np.percentile(floor.latencies_ms, 99)
        checks = [("p99 <= 2 ms", p99 <= 2.0), (f"p99 <= 1.5x floor ({ratio:.2f}x)",
                                                 ratio <= 1.5),
                  ("no drops", r.dropped == 0), ("RSS <= 120 MB", r.rss_mb <= 120.0)]
        print(f"- {r.what} at {label}: " + ", ".join(
            f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks))


if __name__ == "__main__":
    sys.exit(main())
