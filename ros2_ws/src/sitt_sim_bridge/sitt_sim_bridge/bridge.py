"""ROS 2 bridge that will step a sitt_training task from an action topic.

NOT IMPLEMENTED YET: this placeholder starts a node named ``sim_bridge``,
reports that it is not implemented and exits with code 2, so nothing mistakes
it for a working simulator.
"""

import sys

import rclpy
from rclpy.node import Node

NODE_NAME = 'sim_bridge'
EXIT_NOT_IMPLEMENTED = 2


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = Node(NODE_NAME)
    try:
        node.get_logger().error('sim_bridge is not implemented yet')
        return EXIT_NOT_IMPLEMENTED
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
