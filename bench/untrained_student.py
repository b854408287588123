"""An untrained quadrotor student exported to ONNX, for benches that time the deploy path
(the network has the preset's, i.e. the deployed, size; its weights do not matter)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_model(out: Path) -> Path:
    """Export the untrained student into ``out``; returns the .onnx path."""
    import torch  # dev side only: the node never imports it

    from sitt_training.config import load_config
    from sitt_training.envs import make_task
    from sitt_training.export import export_student
    from sitt_training.trainer import build_policy

    torch.manual_seed(0)
    cfg = load_config(REPO / "ros2_ws" / "src" / "sitt_training" / "config" /
                      "quadrotor_sitt.yaml")
    env = make_task("quadrotor", 1, 0)
    path = export_student(build_policy(cfg, env), env, out, {"bench": "untrained"})
    env.close()
    return path
