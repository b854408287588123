"""``sitt-hil``: hardware-in-the-loop evaluation of an exported student.

Starts the policy node (``sitt_policy_node``) and the sim bridge as two processes, the
graph of ``launch/hil.launch.py`` (both with ``use_sim_time``, the node triggered by the
camera), waits for the bridge's summary and prints the success rate and mean metrics::

    sitt-hil --task quadrotor --model runs/<run>/exported/student.onnx --episodes 50 --json
    sitt-hil --model runs/<arm run>/exported/student.onnx --episodes 20  # task from the contract

DDS stays on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a loopback-only
Fast DDS profile unless ``FASTDDS_DEFAULT_PROFILES_FILE`` is set); ``ROS_DOMAIN_ID`` is used
when set, else one is picked. Exit codes: 0 done, 1 a process failed or timed out, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sitt_policy_node.contract import sidecar_path
from sitt_training.seeds import TEST_SEED

MODES = ("lockstep", "realtime")
TASKS = ("quadrotor", "arm_drawer")  # the bridge's SUPPORTED_TASKS (a test checks)
BRIDGE_MODULE = "sitt_sim_bridge.bridge"
NODE_MODULE = "sitt_policy_node.node"
LOG_TAIL = 30  # lines of a failed process's log shown
STOP_TIMEOUT_S = 10.0
# One UDPv4 transport on 127.0.0.1, no builtin transports (PLATFORM.md: keep DDS local).
LOOPBACK_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>udp_localhost</transport_id>
        <type>UDPv4</type>
        <interfaces><allowlist><interface name="127.0.0.1"/></allowlist></interfaces>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="localhost_only" is_default_profile="true">
      <rtps>
        <userTransports><transport_id>udp_localhost</transport_id></userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


class HilError(RuntimeError):
    """A failed HIL run; the message says what and shows the log."""


def graph_parameters(model: Path, episodes: int, mode: str = "lockstep",
                     seed: int = TEST_SEED, record: str = "", episode_steps: int = 0,
                     realtime_priority: int = 0, task: str = "quadrotor",
                     task_options: str = "") -> dict[str, dict[str, Any]]:
    """The ROS parameters of the two nodes, as ``launch/hil.launch.py`` sets them.
    ``task_options``: a JSON object overriding the world the contract records, or ""."""
    bridge = {"task": task, "seed": seed, "episodes": episodes, "mode": mode,
              "model_contract": str(model), "record": record, "episode_steps": episode_steps,
              "realtime_priority": realtime_priority, "task_options": task_options,
              "use_sim_time": True}
    node = {"model_path": str(model), "trigger": "camera", "use_sim_time": True}
    return {"sim_bridge": bridge, "policy_node": node}


def _ros_value(value: Any) -> str:
    """``value`` as ``-p name:=VALUE`` needs it: ROS reads VALUE as YAML, so a string is
    single-quoted (a JSON object or a number-like path would otherwise change type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def ros_args(params: dict[str, Any], namespace: str = "") -> list[str]:
    """``--ros-args [-r __ns:=/ns] -p name:=value ...`` (empty strings are left out: they
    are the defaults, and ``name:=`` would not parse as a string)."""
    out = ["--ros-args"]
    if namespace:
        out += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for name, value in params.items():
        if value != "":
            out += ["-p", f"{name}:={_ros_value(value)}"]
    return out


def ros_environment(base: dict[str, str] | None = None,
                    workdir: Path | None = None) -> dict[str, str]:
    """``base`` (os.environ) with DDS kept on loopback and a domain id chosen if unset."""
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if not env.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        profile = Path(workdir or tempfile.mkdtemp(prefix="sitt_hil_")) / "fastdds_localhost.xml"
        profile.write_text(LOOPBACK_PROFILE)
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    if not env.get("ROS_DOMAIN_ID"):
        # 1..101: 0 is everyone's default; ids above 101 reach the ephemeral port range.
        env["ROS_DOMAIN_ID"] = str(random.randint(1, 101))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _start(cmd: list[str], env: dict[str, str], stdout: Path,
           stderr: Path | None = None) -> subprocess.Popen:
    """A process with its output in files (stderr with stdout when ``stderr`` is None)."""
    with open(stdout, "w") as out:
        if stderr is None:
            return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with open(stderr, "w") as err:
            return subprocess.Popen(cmd, env=env, stdout=out, stderr=err)


def stop_process(proc: subprocess.Popen) -> None:
    """Stop a ROS process as Ctrl-C would (SIGINT: it shuts down cleanly), killing it if it
    has not exited within STOP_TIMEOUT_S."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _summary_line(stdout: Path) -> dict[str, Any] | None:
    for line in reversed(stdout.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if data.get("summary") == "sim_bridge":
                return data
    return None


def contract_task(model: Path) -> str:
    """The task named by the model's policy contract (the sidecar). Raises HilError."""
    side = sidecar_path(model)
    try:
        return str(json.loads(side.read_text())["task"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise HilError(f"cannot read the task from the policy contract {side}: {err}") from err


def run_hil(model: Path, episodes: int, mode: str = "lockstep", seed: int = TEST_SEED,
            record: str = "", episode_steps: int = 0, timeout_s: float = 0.0,
            namespace: str = "", log_dir: Path | None = None, realtime_priority: int = 0,
            env: dict[str, str] | None = None, task: str | None = None,
            task_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the HIL graph to the end; returns the bridge's summary. ``task``: default the
    contract's; ``task_options``: override the world the contract records (the bridge's
    ``task_options`` parameter). Raises HilError."""
    task = task or contract_task(model)
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="sitt_hil_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = ros_environment(env, log_dir)
    params = graph_parameters(model, episodes, mode, seed, record, episode_steps,
                              realtime_priority, task,
                              json.dumps(task_options) if task_options else "")
    logs = {name: log_dir / f"{name}.log" for name in params}
    bridge_out = log_dir / "sim_bridge.out"
    procs: dict[str, subprocess.Popen] = {}
    try:
        # The node first: the bridge waits for it. The bridge's stdout is its summary.
        procs["policy_node"] = _start(
            [sys.executable, "-m", NODE_MODULE, *ros_args(params["policy_node"], namespace)],
            env, logs["policy_node"])
        procs["sim_bridge"] = _start(
            [sys.executable, "-m", BRIDGE_MODULE, *ros_args(params["sim_bridge"], namespace)],
            env, bridge_out, logs["sim_bridge"])
        start = time.monotonic()
        bridge, node = procs["sim_bridge"], procs["policy_node"]
        while bridge.poll() is None:
            if node.poll() is not None:
                raise HilError(f"the policy node died (exit code {node.returncode}) before the "
                               f"bridge finished; its log ({logs['policy_node']}):\n"
                               f"{_tail(logs['policy_node'])}")
            if timeout_s and time.monotonic() - start > timeout_s:
                raise HilError(f"timeout: the HIL run took longer than {timeout_s:g} s; bridge "
                               f"log ({logs['sim_bridge']}):\n{_tail(logs['sim_bridge'])}")
            time.sleep(0.1)
        summary = _summary_line(bridge_out)
        if bridge.returncode != 0 or summary is None or not summary.get("complete"):
            raise HilError(f"the sim bridge failed (exit code {bridge.returncode}); its log "
                           f"({logs['sim_bridge']}):\n{_tail(logs['sim_bridge'])}\n"
                           f"policy node log:\n{_tail(logs['policy_node'], 10)}")
    finally:
        for proc in procs.values():
            stop_process(proc)
    summary["domain_id"] = int(env["ROS_DOMAIN_ID"])
    summary["logs"] = str(log_dir)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable: success rate and the mean metrics."""
    skip = {"summary", "per_episode", "logs", "jitter_ms", "tick_ms"}
    lines = [f"HIL {summary['task']} ({summary['mode']}, seed {summary['seed']}): success "
             f"{summary['success']:.3f} over {summary['episodes']} episodes"]
    for key, value in summary.items():
        if key in skip or key in ("task", "mode", "seed", "success", "episodes"):
            continue
        lines.append(f"  {key:<20} {value:.4g}" if isinstance(value, float)
                     else f"  {key:<20} {value}")
    for key in ("jitter_ms", "tick_ms"):
        if key in summary:
            lines.append(f"  {key:<20} " + ", ".join(f"{k} {v:.3f}"
                                                     for k, v in summary[key].items()))
    lines.append(f"  logs                 {summary['logs']}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="sitt-hil", description="Evaluate an exported student in the loop: the sim "
        "bridge and the policy node as separate ROS processes.")
    ap.add_argument("--task", choices=TASKS,
                    help="the simulated task (default: the model contract's task)")
    ap.add_argument("--model", type=Path, required=True,
                    help="exported student.onnx (student.contract.json beside it)")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=TEST_SEED,
                    help="layout seed (default: the test seed, as sitt-eval)")
    ap.add_argument("--mode", choices=MODES, default="lockstep")
    ap.add_argument("--record", default="", metavar="DIR",
                    help="record every topic into this rosbag2 (MCAP) directory")
    ap.add_argument("--episode-steps", type=int, default=0,
                    help="shorter episodes (control steps); 0: the task's own")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="give up after this many seconds (0: no limit)")
    ap.add_argument("--namespace", default="", help="ROS namespace of both nodes")
    ap.add_argument("--realtime-priority", type=int, default=0,
                    help="realtime mode: SCHED_FIFO priority of the bridge's loop (0: off)")
    ap.add_argument("--task-options", default="", metavar="JSON",
                    help="task options as a JSON object, e.g. '{\"other_pillar_lateral\": 6}'; "
                         "default: the world the contract records (provenance.task_options)")
    ap.add_argument("--log-dir", type=Path, help="where the processes' logs go")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.episodes < 1:
        print("error: --episodes must be >= 1", file=sys.stderr)
        return 2
    if not args.model.is_file():
        print(f"error: model not found: {args.model}", file=sys.stderr)
        return 2
    try:
        task_options = json.loads(args.task_options) if args.task_options else None
    except json.JSONDecodeError as err:
        print(f"error: --task-options is not JSON: {err}", file=sys.stderr)
        return 2
    if task_options is not None and not isinstance(task_options, dict):
        print(f"error: --task-options must be a JSON object, got {args.task_options}",
              file=sys.stderr)
        return 2
    try:
        summary = run_hil(args.model.resolve(), args.episodes, args.mode, args.seed,
                          args.record, args.episode_steps, args.timeout, args.namespace,
                          args.log_dir, args.realtime_priority, task=args.task,
                          task_options=task_options)
    except HilError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
