"""What the arm's camera sees while a policy opens the drawer: its most occluded moment.

    python bench/arm_occlusion.py runs/arm_trial2_bc_s0 runs/arm_trial2_sitt_s0 \
        --episodes 4 --out docs/arm_occlusion.png

For each run, the chosen role (``--role``, default the teacher: SITT's claim is that its
teacher keeps the handle in view) opens the drawer in the first ``--episodes`` test layouts
(``TEST_SEED``, as ``sitt-eval``), deterministically. Every step the camera image (what
the student sees, 64x64) is rendered and the fraction of the handle the camera sees is
measured (``handle_visibility``: rays to three points on the bar). The figure shows, per
episode, the frame where the least of the handle was visible (the earliest such frame),
titled with that fraction and the episode's mean; one row per run. The table printed
gives the same per episode. ``--eye=X,Y,Z`` moves the camera (task option ``camera_eye``)
to look at the same runs from there: a teacher's path does not depend on it, a student's
does (it sees the new images).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sitt_training.cli import load_run  # noqa: E402
from sitt_training.envs import make_task  # noqa: E402
from sitt_training.evaluation import ROLES, TEST_SEED, deterministic_actions  # noqa: E402


@dataclass
class Episode:
    layout: int
    success: bool
    length: int
    visible: np.ndarray  # (steps,) handle fraction in view, one per step after the reset
    worst_step: int  # index into visible: the first step with the least in view
    worst_image: np.ndarray  # (H, W, 3) uint8, the camera image at worst_step


def watch_episodes(run_dir: Path, role: str, episodes: int, checkpoint: str | None,
                   task_options: dict | None = None) -> tuple[str, list[Episode]]:
    """The run's policy in test layouts ``0 .. episodes-1``: every step's handle visibility
    and the most occluded frame of each episode. Returns ``(label, episodes)``.
    ``task_options`` override the run's task options (e.g. another ``camera_eye``: a
    teacher's path does not depend on the camera)."""
    cfg, policy, _ = load_run(run_dir, checkpoint)
    if cfg.task.name != "arm_drawer":
        raise ValueError(f"{run_dir} is a {cfg.task.name} run, not an arm_drawer run")
    env = make_task(cfg.task.name, num_envs=1, seed=TEST_SEED,
                    **{**cfg.task.kwargs, **(task_options or {})})
    env.set_student_mask(np.array([role == "student"]))
    out = []
    try:
        for layout in range(episodes):
            obs, _ = env.reset_to(layout)
            images, visible = [env.render_images([0])[0]], [env.handle_visibility([0])[0]]
            while True:
                obs, _, terminated, truncated, infos = env.step(
                    deterministic_actions(policy, role, obs))
                if terminated[0] or truncated[0]:  # the env reset: the last frame is gone
                    break
                images.append(env.render_images([0])[0])
                visible.append(env.handle_visibility([0])[0])
            vis = np.array(visible)
            worst = int(np.argmin(vis))
            out.append(Episode(layout, bool(infos["episode"]["success"][0] > 0.5),
                               int(infos["episode"]["l"][0]), vis, worst, images[worst]))
    finally:
        env.close()
    return f"{cfg.method.name} seed {cfg.train.seed} ({role})", out


def plot(rows: list[tuple[str, list[Episode]]], path: Path) -> Path:
    cols = max(len(eps) for _, eps in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.5 * len(rows)),
                             squeeze=False)
    for r, (label, eps) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(eps):
                ax.axis("off")
                continue
            ep = eps[c]
            ax.imshow(ep.worst_image, interpolation="nearest")
            ax.set_title(f"layout {ep.layout}, step {ep.worst_step}\nhandle in view "
                         f"{ep.visible[ep.worst_step]:.2f} (mean {ep.visible.mean():.2f})",
                         fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle("Camera image at the moment the least of the handle was in view", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_eye(text: str) -> tuple[float, float, float]:
    """``X,Y,Z`` in m (the robot's base frame)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"an eye is x,y,z in m, got {text!r}")
    return values  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="arm_drawer run directories")
    parser.add_argument("--role", choices=ROLES, default="teacher")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (default), or a model_<iter>.pt path")
    parser.add_argument("--eye", type=parse_eye, metavar="X,Y,Z",
                        help="move the camera here (m, base frame; write --eye=X,Y,Z for "
                             "negative numbers; default: the run's camera)")
    parser.add_argument("--out", type=Path, default=Path("arm_occlusion.png"))
    args = parser.parse_args(argv)
    overrides = {} if args.eye is None else {"camera_eye": list(args.eye)}
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    torch.set_num_threads(1)
    rows = []
    print("| run | layout | success | steps | handle in view: least (step) / mean |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        try:
            label, eps = watch_episodes(run, args.role, args.episodes, args.checkpoint,
                                        overrides)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {run}: {err}", file=sys.stderr)
            return 1
        rows.append((label, eps))
        for ep in eps:
            print(f"| {label} | {ep.layout} | {ep.success} | {ep.length} "
                  f"| {ep.visible[ep.worst_step]:.2f} ({ep.worst_step}) "
                  f"/ {ep.visible.mean():.2f} |", flush=True)
    print(f"\nfigure: {plot(rows, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
