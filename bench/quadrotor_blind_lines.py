"""How many quadrotor layouts a blind drone passes by flying one fixed straight line, or one
fixed two-segment path.

    python bench/quadrotor_blind_lines.py                  # 1000 test layouts
    python bench/quadrotor_blind_lines.py --layouts 4000 --max-angle 60
    python bench/quadrotor_blind_lines.py --other-lateral 6 --other-along 3 12   # a candidate
    python bench/quadrotor_blind_lines.py --two-segment    # sidestep, then fly on

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

``--two-segment`` also tries every fixed path of two straight segments (θ1 until a1 m along
the command, then θ2; θ1 up to ±80°, so a sidestep out of the pillars' way is one), and
prints the best one overall and the best among those that keep, on average, within 1, 2,
3 and 5 m of the commanded line (the mean distance over the distance flown along the
command): what a blind drone can pass when the task charges for leaving the line
(``deviation_weight``).

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
    ``(n, p, 2)`` and ends inside the box: the two-segment paths whose segments share
    their angle."""
    angles = np.asarray(angles_deg, dtype=float)
    paths = np.stack([angles, np.zeros_like(angles), angles], axis=1)
    return path_passes(starts, commands, pillars, paths, duration_s)[0]


# Two-segment paths tried by --two-segment: (θ1 deg, a1 m along the command, θ2 deg).
TWO_SEGMENT_PATHS = np.array([(t1, a1, t2) for t1 in range(-80, 81, 10)
                              for a1 in (1, 2, 3, 4, 6, 8, 10, 12, 14)
                              for t2 in range(-40, 41, 10)], dtype=float)


def path_passes(starts: np.ndarray, commands: np.ndarray, pillars: np.ndarray,
                paths: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """For fixed two-segment paths ``(m, 3)`` rows ``(θ1 deg, a1 m, θ2 deg)``: from the
    start at θ1 to the command until ``a1`` m along it, then at θ2 until the command's
    distance in ``duration_s``. Returns ``(layouts, paths)`` booleans (clears every pillar,
    both corners inside the box) and ``(layouts, paths)`` mean distances (m) from the
    commanded line over the distance flown along it."""
    speed = np.linalg.norm(commands, axis=1)
    d = commands / speed[:, None]
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    total = speed * duration_s  # (n,)
    tan1, tan2 = np.tan(np.radians(paths[:, 0])), np.tan(np.radians(paths[:, 2]))
    a1 = np.minimum(paths[None, :, 1], total[:, None])  # (n, m)
    lat1 = a1 * tan1
    lat2 = lat1 + (total[:, None] - a1) * tan2

    def point(along: np.ndarray, lateral: np.ndarray) -> np.ndarray:  # (n, m, 2)
        return starts[:, None] + along[..., None] * d[:, None] + lateral[..., None] * n[:, None]
    corner, end = point(a1, lat1), point(np.broadcast_to(total[:, None], a1.shape), lat2)
    start = np.broadcast_to(starts[:, None], corner.shape)
    ok = (_segment_clear(start, corner, pillars) & _segment_clear(corner, end, pillars)
          & (np.abs(corner) <= BOX_HALF_XY).all(axis=2) & (np.abs(end) <= BOX_HALF_XY).all(axis=2))
    # Mean |lateral| over the distance along: lateral is linear on each segment.
    length2 = total[:, None] - a1
    integral = a1 * _mean_abs_linear(0.0, lat1) + length2 * _mean_abs_linear(lat1, lat2)
    return ok, integral / total[:, None]


def _mean_abs_linear(a: np.ndarray | float, b: np.ndarray) -> np.ndarray:
    """Mean of ``|x|`` for ``x`` linear from ``a`` to ``b``."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), b)
    same_sign = a * b >= 0
    cross = (a * a + b * b) / (2.0 * np.maximum(np.abs(a) + np.abs(b), 1e-12))
    return np.where(same_sign, (np.abs(a) + np.abs(b)) / 2.0, cross)


def _segment_clear(p0: np.ndarray, p1: np.ndarray, pillars: np.ndarray) -> np.ndarray:
    """``(n, m)``: segments ``p0 -> p1`` ``(n, m, 2)`` keep clear of pillars ``(n, p, 2)``."""
    seg = p1 - p0
    rel = pillars[:, None] - p0[:, :, None]  # (n, m, p, 2)
    length2 = np.maximum(np.einsum("nmk,nmk->nm", seg, seg), 1e-12)
    t = np.clip(np.einsum("nmpk,nmk->nmp", rel, seg) / length2[..., None], 0.0, 1.0)
    gap = np.linalg.norm(rel - t[..., None] * seg[:, :, None], axis=-1)
    return (gap >= PILLAR_RADIUS + DRONE_RADIUS).all(axis=2)


def two_segment_table(starts: np.ndarray, commands: np.ndarray, pillars: np.ndarray,
                      duration_s: float) -> str:
    """Markdown: the best fixed two-segment path, overall and within offset limits."""
    ok, offset = path_passes(starts, commands, pillars, TWO_SEGMENT_PATHS, duration_s)
    rate, mean_offset = ok.mean(axis=0), offset.mean(axis=0)
    lines = ["| paths kept within (mean distance from the commanded line) | best path "
             "(θ1, a1 m, θ2) | layouts passed | its mean distance [m] |", "|---|---|---|---|"]
    for limit in (1.0, 2.0, 3.0, 5.0, np.inf):
        allowed = np.flatnonzero(mean_offset <= limit)
        if allowed.size == 0:
            continue
        best = allowed[np.argmax(rate[allowed])]
        t1, a1, t2 = TWO_SEGMENT_PATHS[best]
        label = "any" if np.isinf(limit) else f"{limit:g} m"
        lines.append(f"| {label} | {t1:+.0f}°, {a1:g}, {t2:+.0f}° | {rate[best]:.3f} | "
                     f"{mean_offset[best]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", type=int, default=1000, help="test layouts")
    parser.add_argument("--max-angle", type=float, default=45.0,
                        help="largest |angle| to the command tried, degrees")
    parser.add_argument("--step", type=float, default=5.0, help="angle step, degrees")
    parser.add_argument("--two-segment", action="store_true",
                        help="also try fixed two-segment paths (sidestep, then fly on)")
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
    if args.two_segment:
        print(f"\nfixed two-segment paths ({len(TWO_SEGMENT_PATHS)} tried):\n")
        print(two_segment_table(starts[:, :2], commands[:, :2], pillars,
                                EPISODE_STEPS * CONTROL_DT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
