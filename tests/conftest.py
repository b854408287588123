"""Test session setup: keep every ROS/DDS process on this machine.

Set at configure time, i.e. before any test module imports rclpy, so both this
process and every subprocess (which inherits os.environ) use the loopback-only
Fast DDS profile. See PLATFORM.md, "Keep DDS traffic on this machine".
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FASTDDS_PROFILE = REPO_ROOT / 'config' / 'fastdds_localhost.xml'


def _domain_id_for_run() -> int:
    # One domain per pytest process so runs side by side do not hear each other.
    # 1..101: 0 is everyone's default, and 101 is the highest id whose ports
    # stay below the Linux ephemeral range.
    return 1 + os.getpid() % 101


ROS_TEST_ENV = {
    'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
    'FASTDDS_DEFAULT_PROFILES_FILE': str(FASTDDS_PROFILE),
    'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
    'ROS_DOMAIN_ID': str(_domain_id_for_run()),
}


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(ROS_TEST_ENV)


def pytest_report_header(config: pytest.Config) -> str:
    return f"ROS_DOMAIN_ID={ROS_TEST_ENV['ROS_DOMAIN_ID']} (loopback-only Fast DDS profile)"


@pytest.fixture
def ros_env() -> dict[str, str]:
    """Environment for ROS subprocesses: os.environ plus the loopback settings."""
    env = dict(os.environ)
    env.update(ROS_TEST_ENV)
    env['PYTHONUNBUFFERED'] = '1'
    return env
