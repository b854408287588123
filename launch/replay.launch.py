"""Replay a recorded bag into the onboard policy node, on the bag's clock.

    ros2 launch launch/replay.launch.py bag:=/abs/path/bag model_path:=/abs/path/student.onnx
    ros2 launch launch/replay.launch.py bag:=... model_path:=... rate:=2.0 namespace:=drone1

Starts ``policy_node`` (``use_sim_time``, ``trigger:=camera``: one action per frame) and
``sitt-replay --live``, which republishes the bag's camera, odometry and command topics
(the arm: joint states) and ``/clock`` (recorded, or made from the frames' stamps with
``--clock``) at the recorded timing scaled by ``rate``, records the node's actions and
prints the report (action error against the recorded actions, latency, drops); the launch
ends with it.
``ros2 bag play <bag> --clock --rate <rate>`` feeds the node the same way, without the
report.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sitt_training.executables import find_executable

PACKAGE = "sitt_policy_node"
EXECUTABLE = "policy_node"
REPLAY = "sitt-replay"  # console script of sitt_sim_bridge


def generate_launch_description() -> LaunchDescription:
    namespace = LaunchConfiguration("namespace")
    replay = ExecuteProcess(
        # PATH (pip) or lib/<package>/ (colcon install)
        cmd=[find_executable(REPLAY, "sitt_sim_bridge"), "--live", "--clock",
             "--bag", LaunchConfiguration("bag"),
             "--model", LaunchConfiguration("model_path"),
             "--rate", LaunchConfiguration("rate"), "--namespace", namespace],
        output="screen",
        name="sitt_replay",
    )
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 directory to replay"),
        DeclareLaunchArgument(
            "model_path",
            description="exported student.onnx (student.contract.json beside it)"),
        DeclareLaunchArgument("rate", default_value="1.0",
                              description="playback speed factor"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its topics"),
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name="policy_node",
            namespace=namespace,
            output="screen",
            emulate_tty=True,
            parameters=[{
                "model_path": LaunchConfiguration("model_path"),
                "trigger": "camera",
                "use_sim_time": True,
            }],
        ),
        replay,
        # The report is the point: stop everything when the replay is done.
        RegisterEventHandler(OnProcessExit(target_action=replay,
                                           on_exit=[EmitEvent(event=Shutdown())])),
    ])
