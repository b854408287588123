"""Deploy-side policy node (rclpy + onnxruntime + numpy; never torch or pybullet)."""
