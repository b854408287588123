"""Start the onboard policy node (sitt_policy_node) with its parameter file.

    ros2 launch launch/policy.launch.py model_path:=/path/to/student.onnx
    ros2 launch launch/policy.launch.py model_path:=... params_file:=my.yaml \
        namespace:=drone1 use_sim_time:=true

The parameter file defaults to the package's config/policy_node.yaml; topics and the
control rate default to the model's policy contract.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "sitt_policy_node"
EXECUTABLE = "policy_node"


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "model_path",
            description="exported student.onnx (student.contract.json beside it)"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution(
                [FindPackageShare(PACKAGE), "config", "policy_node.yaml"]),
            description="policy_node parameter file"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its topics"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock from a simulator or a bag"),
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name="policy_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[
                LaunchConfiguration("params_file"),
                {"model_path": LaunchConfiguration("model_path"),
                 "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"),
                                                value_type=bool)},
            ],
        ),
    ])
