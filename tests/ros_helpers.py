"""Helpers shared by the ROS test modules: the environment for ROS subprocesses and
``sitt-replay`` runs (as a user runs it, and in-process). Not a test module."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROS_TEST_ENV

from sitt_sim_bridge import replay

SITT_REPLAY = Path(sys.executable).parent / "sitt-replay"


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
