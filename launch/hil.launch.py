"""Hardware-in-the-loop: the sim bridge serves a task over ROS (the quadrotor, or the arm
with task:=arm_drawer) and the onboard policy node (unchanged) runs it; both run on the
bridge's /clock (use_sim_time).

    ros2 launch launch/hil.launch.py model_path:=/abs/path/student.onnx episodes:=50
    ros2 launch launch/hil.launch.py model_path:=... mode:=realtime record:=/tmp/hil_bag
    ros2 launch launch/hil.launch.py model_path:=/abs/arm/student.onnx task:=arm_drawer

The node is triggered by the camera (one action per frame), which lockstep needs. The
bridge prints a JSON summary when the episodes are done; the launch then shuts down.
``sitt-hil`` starts the same two processes with the same parameters without ``ros2 launch``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

BRIDGE_PACKAGE = "sitt_sim_bridge"
BRIDGE_EXECUTABLE = "sim_bridge"
NODE_PACKAGE = "sitt_policy_node"
NODE_EXECUTABLE = "policy_node"
TEST_SEED = "1000033"  # sitt_training.seeds.TEST_SEED: the layouts sitt-eval reports on


def generate_launch_description() -> LaunchDescription:
    model_path = LaunchConfiguration("model_path")
    namespace = LaunchConfiguration("namespace")
    bridge = Node(
        package=BRIDGE_PACKAGE,
        executable=BRIDGE_EXECUTABLE,
        name="sim_bridge",
        namespace=namespace,
        output="screen",
        emulate_tty=True,
        parameters=[{
            "task": ParameterValue(LaunchConfiguration("task"), value_type=str),
            "seed": ParameterValue(LaunchConfiguration("seed"), value_type=int),
            "episodes": ParameterValue(LaunchConfiguration("episodes"), value_type=int),
            "mode": ParameterValue(LaunchConfiguration("mode"), value_type=str),
            # Topic names, camera and action map from the model's contract.
            "model_contract": ParameterValue(model_path, value_type=str),
            "record": ParameterValue(LaunchConfiguration("record"), value_type=str),
            "episode_steps": ParameterValue(LaunchConfiguration("episode_steps"),
                                            value_type=int),
            "realtime_priority": ParameterValue(LaunchConfiguration("realtime_priority"),
                                                value_type=int),
            "task_options": ParameterValue(LaunchConfiguration("task_options"),
                                           value_type=str),
            "use_sim_time": True,
        }],
    )
    policy = Node(
        package=NODE_PACKAGE,
        executable=NODE_EXECUTABLE,
        name="policy_node",
        namespace=namespace,
        output="screen",
        emulate_tty=True,
        parameters=[{
            "model_path": ParameterValue(model_path, value_type=str),
            "trigger": "camera",
            "use_sim_time": True,
        }],
    )
    return LaunchDescription([
        DeclareLaunchArgument(
            "model_path",
            description="exported student.onnx (student.contract.json beside it)"),
        DeclareLaunchArgument("task", default_value="quadrotor",
                              description="the model's task: quadrotor or arm_drawer"),
        DeclareLaunchArgument("episodes", default_value="10",
                              description="episodes to fly, then shut down"),
        DeclareLaunchArgument("mode", default_value="lockstep",
                              description="lockstep (deterministic) or realtime"),
        DeclareLaunchArgument("seed", default_value=TEST_SEED,
                              description="layout seed (default: the test seed)"),
        DeclareLaunchArgument("record", default_value="",
                              description="rosbag2 (MCAP) directory; empty: no recording"),
        DeclareLaunchArgument("episode_steps", default_value="0",
                              description="episode length in control steps; 0: the task's"),
        DeclareLaunchArgument("realtime_priority", default_value="0",
                              description="realtime mode: SCHED_FIFO priority of the bridge "
                                          "loop; 0: normal scheduling"),
        DeclareLaunchArgument("task_options", default_value="",
                              description="task options as a JSON object; empty: the world "
                                          "the model's contract records"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of both nodes and their topics"),
        policy,
        bridge,
        RegisterEventHandler(OnProcessExit(
            target_action=bridge,
            on_exit=[EmitEvent(event=Shutdown(reason="sim bridge finished"))])),
    ])
