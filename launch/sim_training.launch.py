"""A training run (``sitt-train``) as a launch file, e.g. beside a sim bridge or on a
training machine's launch setup.

    ros2 launch launch/sim_training.launch.py task:=quadrotor method:=sitt seed:=0
    ros2 launch launch/sim_training.launch.py method:=bc \
        overrides:="ppo.lr=0.001 train.iterations=80" out:=runs/bc_s0

``overrides`` are ``sitt-train --set`` values, separated by spaces.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from sitt_training.executables import find_executable

EXECUTABLE = "sitt-train"  # console script of sitt_training


def train_command(task: str, method: str, seed: str, overrides: str = "",
                  out: str = "") -> list[str]:
    """The sitt-train command line (pure: tests run it without ``ros2 launch``)."""
    cmd = [EXECUTABLE, "--task", task, "--method", method, "--seed", seed, "--no-progress"]
    for item in overrides.split():
        cmd += ["--set", item]
    if out:
        cmd += ["--out", out]
    return cmd


def _train(context, *args, **kwargs):  # OpaqueFunction's signature
    values = {name: LaunchConfiguration(name).perform(context)
              for name in ("task", "method", "seed", "overrides", "out")}
    cmd = train_command(**values)
    cmd[0] = find_executable(cmd[0], "sitt_training")  # PATH (pip) or lib/<pkg>/ (colcon)
    return [ExecuteProcess(cmd=cmd, name="sitt_train", output="screen", sigterm_timeout="30")]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("task", default_value="quadrotor",
                              description="task: color_maze or quadrotor"),
        DeclareLaunchArgument("method", default_value="sitt",
                              description="sitt, noalign, bc or dagger"),
        DeclareLaunchArgument("seed", default_value="0", description="training seed"),
        DeclareLaunchArgument("overrides", default_value="",
                              description="config overrides 'section.key=value ...'"),
        DeclareLaunchArgument("out", default_value="",
                              description="run directory; empty: runs/<task>_<method>_..."),
        OpaqueFunction(function=_train),
    ])
