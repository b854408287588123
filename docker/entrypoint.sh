#!/usr/bin/env bash
# Entrypoint of the SITT images (docker/Dockerfile.train, docker/Dockerfile.onboard).
#
# Sources ROS 2 and the colcon workspace, then
#   - with no arguments, or only launch arguments (name:=value) and options (-x, --x):
#       ros2 launch "$SITT_LAUNCH_FILE" ARGS...      (the image's default launch file)
#   - otherwise runs the arguments as a command, e.g.
#       docker run IMAGE ros2 run sitt_sim_bridge sim_bridge --ros-args -p episodes:=5
#
# SITT_ROS_SETUP and SITT_WS locate the setup scripts (defaults: the images' paths).
set -eo pipefail

ros_setup="${SITT_ROS_SETUP:-/opt/ros/${ROS_DISTRO:?ROS_DISTRO is not set}/setup.bash}"
ws_setup="${SITT_WS:-/opt/sitt_ws}/install/setup.bash"
# The ROS setup scripts read unset variables: source them before `set -u`.
# shellcheck source=/dev/null
source "$ros_setup"
# shellcheck source=/dev/null
source "$ws_setup"
set -u

default_launch=true
for arg in "$@"; do
  case "$arg" in
    *:=* | -*) ;;
    *) default_launch=false; break ;;
  esac
done

if [ "$default_launch" = true ]; then
  exec ros2 launch "${SITT_LAUNCH_FILE:?SITT_LAUNCH_FILE is not set}" "$@"
fi
exec "$@"
