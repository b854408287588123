"""Helpers shared by the ROS test modules: the environment for ROS subprocesses and
``sitt-replay`` runs (as a user runs it, and in-process). Not a test module."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import ROS_TEST_ENV

from sitt_sim_bridge import replay
from sitt_sim_bridge.hil import stop_process

SITT_REPLAY = Path(sys.executable).parent / "sitt-replay"
POLICY_NODE = Path(sys.executable).parent / "policy_node"


def process_env() -> dict[str, str]:
    """os.environ plus the loopback DDS settings and this run's domain (for fixtures
    wider than a test, which cannot take the ``ros_env`` fixture)."""
    return {**os.environ, **ROS_TEST_ENV, "PYTHONUNBUFFERED": "1"}


def run_replay(*args: object, timeout: float = 90) -> subprocess.CompletedProcess:
    """The installed ``sitt-replay`` script."""
    return subprocess.run([str(SITT_REPLAY), *map(str, args)], env=process_env(),
                          capture_output=True, text=True, timeout=timeout)


def replay_in_process(*args: object) -> tuple[int, str, str]:
    """``sitt-replay`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = replay.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@contextmanager
def policy_node(model: Path, ns: str, log: Path, env: dict[str, str], *params: str,
                args: tuple[str, ...] = ()) -> Iterator[subprocess.Popen]:
    """The node as a subprocess in namespace ``/ns``; stopped with SIGINT afterwards."""
    cmd = [str(POLICY_NODE), "--ros-args", "-r", f"__ns:=/{ns}", *args,
           "-p", f"model_path:={model}"]
    for p in params:
        cmd += ["-p", p]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)


def live_replay(model: Path, bag: Path, ns: str, log: Path, frames: int) -> dict[str, Any]:
    """``sitt-replay --live`` of ``bag`` into a fresh node in ``/ns`` (trigger camera, sim
    time); checks that every frame went out and was answered in sync, returns the report."""
    with policy_node(model, ns, log, process_env(), "trigger:=camera", "use_sim_time:=true"):
        proc = run_replay("--bag", bag, "--model", model, "--live", "--namespace", ns,
                          "--json")
    assert proc.returncode == 0, proc.stderr + log.read_text()
    report = json.loads(proc.stdout)
    assert report["mode"] == "live" and report["published_frames"] == frames
    assert report["drops"] == 0 and report["sync_timeouts"] == 0, report
    return report
