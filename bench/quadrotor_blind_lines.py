"""How many quadrotor layouts a blind drone passes by flying one fixed straight line.

    python bench/quadrotor_blind_lines.py                  # 1000 test layouts
    python bench/quadrotor_blind_lines.py --layouts 4000 --max-angle 60
    python bench/quadrotor_blind_lines.py --other-lateral 6 --other-along 3 12   # a candidate

Why: a student that passes a layout without seeing it makes the camera, and with it the
teacher-student asymmetry, irrelevant there (bench/vision_ablation.py measured trained
students passing half of the test flights with no image). This counts it without any
training: for each held-out layout (episode 0 of environments 0..N-1 of ``TEST_SEED``, as
``sitt-eval``) and each angle θ to the command (positive: to the left), the straight line
from the start at θ, flown until it has covered the commanded distance along the command
(speed x 20 s), passes when it keeps ``PILLAR_RADIUS + DRONE_RADIUS`` from every pillar
centre and stays in the box. A blind policy can fly one such line in every layout (it
knows the command and its own velocity), so the best single angle's pass rate is a floor
under what a blind student can reach; curved blind paths may do better.

``--other-lateral`` and ``--other-along`` draw the layouts' other three pillars from other
ranges than the task's (``quadrotor_world.OTHER_PILLAR_*``), to compare candidate layouts
before training on them. Prints a Markdown table: pass rate per angle, the best angle, and
the share of layouts that some angle passes (a seeing drone's straight-line options).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from sitt_training.envs.quadrotor import CONTROL_DT, EPISODE_STEPS
from sitt_training.envs.quadrotor_world import (
    BOX_HALF_XY,
    DRONE_RADIUS,
    OTHER_PILLAR_ALONG,
    OTHER_PILLAR_LATERAL,
    PILLAR_RADIUS,
    sample_layouts,
)
from sitt_training.evaluation import TEST_SEED


def line_passes(starts: np.ndarray, commands: np.ndarray, pillars: np.ndarray,
                angles_deg: np.ndarray, duration_s: float) -> np.ndarray:
    """``(layouts, angles)`` booleans: whether the straight line from each start ``(n, 2)``
    at each angle to its command velocity ``(n, 2)``, flown until it has covered the
    command's distance along the command in ``duration_s``, clears all pillars
    ``(n, p, 2)`` and ends inside the box."""
    speed = np.linalg.norm(commands, axis=1)
    d = commands / speed[:, None]
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    along = speed * duration_s  # (n,)
    tan = np.tan(np.radians(angles_deg))  # (m,)
    # Segment from the start to start + along * (d + tan * n): (n, m, 2).
    seg = along[:, None, None] * (d[:, None, :] + tan[None, :, None] * n[:, None, :])
    rel = pillars - starts[:, None, :]  # (n, p, 2)
    t = np.einsum("npk,nmk->nmp", rel, seg) / np.einsum("nmk,nmk->nm", seg, seg)[..., None]
    t = np.clip(t, 0.0, 1.0)
    closest = t[..., None] * seg[:, :, None, :]  # (n, m, p, 2)
    gap = np.linalg.norm(rel[:, None, :, :] - closest, axis=-1)
    clear = (gap >= PILLAR_RADIUS + DRONE_RADIUS).all(axis=2)
    end = starts[:, None, :] + seg
    inside = (np.abs(end) <= BOX_HALF_XY).all(axis=2)
    return clear & inside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", type=int, default=1000, help="test layouts")
    parser.add_argument("--max-angle", type=float, default=45.0,
                        help="largest |angle| to the command tried, degrees")
    parser.add_argument("--step", type=float, default=5.0, help="angle step, degrees")
    parser.add_argument("--other-lateral", type=float, default=OTHER_PILLAR_LATERAL,
                        help="the other pillars' lateral range (+-, m) from the command line")
    parser.add_argument("--other-along", type=float, nargs=2, default=OTHER_PILLAR_ALONG,
                        metavar=("MIN", "MAX"), help="their range ahead of the start (m)")
    args = parser.parse_args(argv)
    if args.layouts < 1 or not 0 < args.step <= args.max_angle < 90:
        parser.error("need --layouts >= 1 and 0 < --step <= --max-angle < 90")
    if not (args.other_lateral > 0 and 0 <= args.other_along[0] < args.other_along[1]):
        parser.error("need --other-lateral > 0 and 0 <= --other-along MIN < MAX")
    ids = np.arange(args.layouts)
    commands, starts, _, pillars = sample_layouts(
        TEST_SEED, ids, np.zeros_like(ids), tuple(args.other_along), args.other_lateral)
    angles = np.arange(-args.max_angle, args.max_angle + 1e-9, args.step)
    passes = line_passes(starts[:, :2], commands[:, :2], pillars, angles,
                         EPISODE_STEPS * CONTROL_DT)
    rate = passes.mean(axis=0)
    best = int(np.argmax(rate))
    print(f"{args.layouts} test layouts (other pillars {args.other_along[0]:g}-"
          f"{args.other_along[1]:g} m ahead, +-{args.other_lateral:g} m), straight lines at a "
          "fixed angle to the command\n")
    print("| angle [deg] | " + " | ".join(f"{a:+.0f}" for a in angles) + " |")
    print("|---|" + "---|" * len(angles))
    print("| layouts passed | " + " | ".join(f"{r:.2f}" for r in rate) + " |\n")
    print(f"best fixed angle: {angles[best]:+.0f}°, passes {rate[best]:.3f} of the layouts "
          "(a blind drone can fly it)")
    print(f"some angle passes: {passes.any(axis=1).mean():.3f} of the layouts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
