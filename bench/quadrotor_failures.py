"""Where quadrotor policies fail: the failed test flights of each run, by cause.

    python bench/quadrotor_failures.py runs/bench_quadrotor/sitt_s0 runs/bench_quadrotor/bc_s0
    python bench/quadrotor_failures.py runs/bench_quadrotor/*_s0 --role student --episodes 64

Each run's policy (the validation-best networks unless ``--checkpoint`` says otherwise)
flies the held-out test flights (``evaluate(..., TEST_SEED)``, as ``sitt-eval``). A failed
flight is counted once, by its cause:

* pillar crash, split into the pillar standing on the commanded path (pillar 0 of the
  layout) and the others (the one nearest the crash point);
* ground (touched below 1 m), ceiling (above 5 m) or wall (left the box elsewhere);
* low progress: no crash, but less than the task's share of the commanded distance.

The steps columns give the quartiles of the step at which those flights ended (50 steps
per second). The last column counts the ground, ceiling and wall exits that happened with
every pillar behind the drone (none ahead along its motion over its last 0.4 s), i.e.
after the obstacle course. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from sitt_training.cli import load_run
from sitt_training.evaluation import ROLES, TEST_SEED, evaluate

CAUSES = ("pillar on the path", "other pillar", "ground", "ceiling", "wall", "low progress")


EXIT_MOTION_STEPS = 20  # the last 0.4 s of a flight give its direction of motion


def failure_causes(run_dir: Path, role: str, episodes: int, checkpoint: str
                   ) -> tuple[float, dict[str, np.ndarray], int]:
    """Success rate, per cause the lengths (steps) of the flights that failed by it, and
    how many of the ground / ceiling / wall exits had every pillar behind the drone."""
    cfg, policy, _ = load_run(run_dir, checkpoint)
    if cfg.task.name != "quadrotor":
        raise ValueError(f"{run_dir} is a {cfg.task.name} run, not a quadrotor run")
    result = evaluate(policy, cfg.task.name, cfg.task.kwargs, role, episodes, TEST_SEED,
                      record_traces=True)
    ep = result.per_episode
    failed = ep["success"] < 0.5
    pillar = failed & (ep["crash_pillar"] > 0.5)
    bounds = failed & (ep["crash_bounds"] > 0.5)
    end = np.array([trace[-1][:3] for trace in result.traces])  # x, y, z where it ended
    nearest = np.argmin(np.linalg.norm(result.scenes - end[:, None, :2], axis=2), axis=1)
    masks = {
        "pillar on the path": pillar & (nearest == 0),
        "other pillar": pillar & (nearest != 0),
        "ground": bounds & (end[:, 2] < 1.0),
        "ceiling": bounds & (end[:, 2] > 5.0),
        "wall": bounds & (end[:, 2] >= 1.0) & (end[:, 2] <= 5.0),
        "low progress": failed & ~pillar & ~bounds,
    }
    past_course = np.array([_every_pillar_behind(trace, pillars)
                            for trace, pillars in zip(result.traces, result.scenes, strict=True)])
    return (result.success, {cause: ep["l"][mask] for cause, mask in masks.items()},
            int((bounds & past_course).sum()))


def _every_pillar_behind(trace: np.ndarray, pillars: np.ndarray) -> bool:
    """Whether no pillar centre lies ahead of where the flight ended, along its motion."""
    end = trace[-1, :2]
    motion = end - trace[max(len(trace) - 1 - EXIT_MOTION_STEPS, 0), :2]
    return bool(((pillars - end) @ motion <= 0.0).all())


def _cell(lengths: np.ndarray) -> str:
    if len(lengths) == 0:
        return "0"
    q1, q2, q3 = np.percentile(lengths, [25, 50, 75]).astype(int)
    return f"{len(lengths)} ({q1} / {q2} / {q3})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="quadrotor run directories")
    parser.add_argument("--role", choices=ROLES, default="teacher")
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (default), or a model_<iter>.pt path")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shown = sys.argv[1:] if argv is None else argv
    print(f"`python bench/quadrotor_failures.py {' '.join(shown)}`\n")
    print(f"Failed {args.role} flights of {args.episodes} by cause: count (quartiles of the "
          "step the flight ended at)\n")
    print("| run | success | " + " | ".join(CAUSES) + " | exits past every pillar |")
    print("|---|---|" + "---|" * (len(CAUSES) + 1))
    for run in args.runs:
        try:
            success, causes, past_course = failure_causes(run, args.role, args.episodes,
                                                          args.checkpoint)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {run}: {err}", file=sys.stderr)
            return 1
        print(f"| {run.name} | {success:.3f} | "
              + " | ".join(_cell(causes[c]) for c in CAUSES) + f" | {past_course} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
