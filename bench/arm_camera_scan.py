"""Where could the arm's camera stand so that how a teacher moves decides whether the
handle stays in view? Handle visibility along trained teachers' paths, per camera position.

    python bench/arm_camera_scan.py runs/bench_arm/arm_drawer/bc_s0 \
        runs/bench_arm/arm_drawer/sitt_s0 --episodes 6

A teacher never sees the camera, so its path in a test layout is the same wherever the
camera stands: each run's teacher opens the drawer in the first ``--episodes`` test layouts
(deterministic actions, as ``bench/arm_occlusion.py``) with the camera moved to each
``--eye=X,Y,Z`` (the task option ``camera_eye``; aim: the task's ``camera_target``),
and the fraction of the handle the camera sees (rays to three points on the bar) is
averaged at the first step, over the first 12 steps (the approach), over the steps after
them (grasp and pull, where a student needs to see the handle: ``bench/vision_ablation.py
--steps``; episodes of at most 12 steps count nothing there) and over the episode.
A camera where two teachers' paths give different visibility is one where a teacher could
keep the handle in view by how it moves, which SITT's penalty rewards. Rays ignore the
field of view: check a candidate's images (``bench/arm_occlusion.py``) before using it.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from arm_occlusion import parse_eye, watch_episodes

APPROACH_STEPS = 12
GRID = list(itertools.product((-0.4, -0.25, -0.1), (-0.2, 0.0, 0.2, 0.35), (0.5, 0.7, 0.9)))


def phase_cell(visible: list[np.ndarray]) -> str:
    """``start / approach / after it / episode``: the handle in view per episode phase,
    each averaged over the episodes (per step fractions ``visible``); "–" after the
    approach when no episode lasted longer than it."""
    start = np.mean([v[0] for v in visible])
    approach = np.mean([v[:APPROACH_STEPS].mean() for v in visible])
    late = [v[APPROACH_STEPS:].mean() for v in visible if len(v) > APPROACH_STEPS]
    whole = np.mean([v.mean() for v in visible])
    late_cell = f"{np.mean(late):.2f}" if late else "–"
    return f"{start:.2f} / {approach:.2f} / {late_cell} / {whole:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="arm_drawer run directories")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--eye", dest="eyes", action="append", type=parse_eye,
                        metavar="X,Y,Z", help="a camera position, m in the robot's base "
                        "frame, written --eye=X,Y,Z (negative numbers); repeat for more "
                        f"(default: a {len(GRID)}-point grid behind and beside the arm)")
    args = parser.parse_args(argv)
    args.eyes = args.eyes or GRID
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    torch.set_num_threads(1)
    labels = []
    rows = []
    for eye in args.eyes:
        cells = []
        for run in args.runs:
            try:
                label, eps = watch_episodes(run, "teacher", args.episodes, args.checkpoint,
                                            {"camera_eye": list(eye)})
            except (FileNotFoundError, ValueError) as err:
                print(f"error: {run}: {err}", file=sys.stderr)
                return 1
            if len(labels) < len(args.runs):
                labels.append(label)
            cells.append(phase_cell([e.visible for e in eps]))
        rows.append(f"| {', '.join(f'{v:g}' for v in eye)} | " + " | ".join(cells) + " |")
        if len(rows) == 1:
            print(f"Handle in view, start / first {APPROACH_STEPS} steps / after them / "
                  "episode (mean over layouts):\n")
            print("| camera eye [m] | " + " | ".join(labels) + " |")
            print("|---|" + "---|" * len(labels))
        print(rows[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
