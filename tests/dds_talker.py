"""Publisher half of test_dds_loopback: run as a separate process.

Usage: python dds_talker.py TOPIC COUNT
Waits until a subscriber is matched (discovery is asynchronous; publishing
earlier loses messages), then publishes 'hello 0' .. 'hello COUNT-1' at 20 Hz.
"""

import sys
import time

import rclpy
from rclpy.duration import Duration
from std_msgs.msg import String

DISCOVERY_TIMEOUT_S = 15.0


def main() -> int:
    topic, count = sys.argv[1], int(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node('dds_talker')
    pub = node.create_publisher(String, topic, 10)
    try:
        t0 = time.monotonic()
        while pub.get_subscription_count() == 0:
            if time.monotonic() - t0 > DISCOVERY_TIMEOUT_S:
                print('talker: no subscriber matched', flush=True)
                return 1
            time.sleep(0.01)
        print(f'talker: matched after {time.monotonic() - t0:.3f} s', flush=True)
        for i in range(count):
            pub.publish(String(data=f'hello {i}'))
            time.sleep(0.05)
        # Reliable QoS: do not tear down before the subscriber has everything.
        if not pub.wait_for_all_acked(Duration(seconds=5)):
            print('talker: not all messages acknowledged', flush=True)
            return 1
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
