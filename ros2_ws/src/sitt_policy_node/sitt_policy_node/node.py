"""ROS 2 node that will run the exported student policy (ONNX) on robot topics.

NOT IMPLEMENTED YET: this is a placeholder. It starts a node named
``policy_node``, declares the ``model_path`` parameter and validates it, then
exits. Subscribing to sensors, building the observation, ONNX inference and
publishing actions come later.

Deploy-side rule: import only rclpy, numpy, onnxruntime and ROS messages here,
never torch, pybullet or sitt_training.
"""

import sys

import rclpy
from rclpy.node import Node

NODE_NAME = 'policy_node'


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.model_path: str = self.declare_parameter('model_path', '').value


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = PolicyNode()
    try:
        if not node.model_path:
            node.get_logger().error(
                'no model_path given (run with --ros-args -p model_path:=/path/to/student.onnx)')
            return 1
        node.get_logger().error(
            f'policy node is not implemented yet (model_path={node.model_path!r})')
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
