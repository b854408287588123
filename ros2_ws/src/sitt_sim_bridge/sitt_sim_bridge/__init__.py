"""The sitt_training tasks over ROS topics (sensors, /clock, episode results)."""
