"""Two-process publish/subscribe over real DDS with the loopback-only profile."""

import os
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String

TALKER = Path(__file__).with_name('dds_talker.py')
COUNT = 20


def _own_udp_sockets() -> list[tuple[str, int]]:
    """(ip, port) of the IPv4 UDP sockets this process holds, from /proc."""
    inodes = set()
    for fd in os.listdir('/proc/self/fd'):
        try:
            target = os.readlink(f'/proc/self/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    socks = []
    with open('/proc/net/udp') as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[9] in inodes:
                ip_hex, port_hex = cols[1].split(':')
                ip = '.'.join(str(b) for b in reversed(bytes.fromhex(ip_hex)))
                socks.append((ip, int(port_hex, 16)))
    return socks


def test_pub_sub_between_two_processes(ros_env):
    topic = f'sitt_loopback_{os.getpid()}'
    received: list[str] = []

    rclpy.init()
    node = rclpy.create_node('dds_listener')
    node.create_subscription(String, topic, lambda msg: received.append(msg.data), 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    talker = subprocess.Popen(
        [sys.executable, str(TALKER), topic, str(COUNT)],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The profile must be in effect: every socket in this domain's RTPS port
        # range is bound to loopback (without it they bind to 0.0.0.0).
        domain = int(os.environ['ROS_DOMAIN_ID'])
        lo, hi = 7400 + 250 * domain, 7400 + 250 * (domain + 1)
        rtps = [(ip, port) for ip, port in _own_udp_sockets() if lo <= port < hi]
        assert rtps, 'no RTPS sockets found for this domain'
        assert all(ip == '127.0.0.1' for ip, _ in rtps), rtps

        deadline = time.monotonic() + 20.0
        while len(received) < COUNT and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if talker.poll() is not None:  # talker done: drain briefly, then stop
                deadline = min(deadline, time.monotonic() + 2.0)
        output = talker.communicate(timeout=20)[0]
    finally:
        if talker.poll() is None:
            talker.kill()
            talker.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()

    assert talker.returncode == 0, output
    # Reliable QoS and a matched subscriber before the first publish: nothing lost.
    assert received == [f'hello {i}' for i in range(COUNT)], (received, output)
