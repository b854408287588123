"""L2T's claim, measured: how much of its teacher's performance the L2T student keeps
without ever stepping the environment, next to the L2T paper's HalfCheetah result.

    python bench/l2t_gap.py --task pendulum                  # rows of runs/matrix/cells.jsonl
    python bench/l2t_gap.py --task pendulum --write-docs

The rows are the ``sitt-bench`` cells of the task (``--matrix``, default runs/matrix): each
run's test returns of the teacher (true state) and of the student (state with the task's
full L2T noise), on the test seeds. Returns of different tasks are put on one scale by the
fraction of the teacher's improvement over a uniform-random policy that the student keeps,
``(S - R) / (T - R)``, where R is the random policy's mean return over the same test
episodes, measured here. For the paper (HalfCheetah, alpha 0.4: teacher 8840, student 5896)
R is the random policy's mean return on our ``half_cheetah`` task (gymnasium's
HalfCheetah-v5, the paper used v4: same observation, action and reward), measured here too.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_doc import replace_section

from sitt_training.config import load_config
from sitt_training.envs import make_task
from sitt_training.matrix import CellLog, mean_std
from sitt_training.seeds import TEST_SEED

PAPER = {"task": "half_cheetah", "alpha": 0.4, "teacher": 8840.0, "student": 5896.0}
PAPER_RANDOM_EPISODES = 20


def random_return(task: str, task_kwargs: dict[str, Any], episodes: int,
                  seed: int = TEST_SEED) -> float:
    """Mean return of uniform-random actions over the task's first ``episodes`` test
    episodes (episode k in environment k's layout, as ``evaluate`` runs them)."""
    env = make_task(task, episodes, seed, **task_kwargs)
    try:
        env.set_student_mask(np.zeros(episodes, dtype=bool))
        env.reset(seed=seed)
        space = env.single_action_space
        rng = np.random.default_rng(seed)
        returns = np.zeros(episodes)
        finished = np.zeros(episodes, dtype=bool)
        while not finished.all():
            actions = rng.uniform(space.low, space.high, (episodes, *space.shape))
            _, _, _, _, infos = env.step(actions.astype(space.dtype))
            if "_episode" in infos:
                ended = infos["_episode"] & ~finished
                returns[ended] = infos["episode"]["r"][ended]
                finished |= ended
        return float(returns.mean())
    finally:
        env.close()


def kept_fraction(teacher: float, student: float, random: float) -> float:
    """The share of the teacher's improvement over random that the student keeps."""
    return (student - random) / (teacher - random)


def latest_rows(matrix: Path, task: str, checkpoint: str) -> list[dict[str, Any]]:
    """The newest finished row per (method, seed) of the task evaluated at ``checkpoint``."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for row in CellLog(matrix / "cells.jsonl").rows():
        if (row.get("task"), row.get("status"), row.get("checkpoint")) == (task, "ok",
                                                                           checkpoint):
            rows[(row["method"], row["seed"])] = row
    return [rows[key] for key in sorted(rows)]


def report(rows: list[dict[str, Any]], random: float, paper_random: float) -> list[str]:
    lines = ["| method | seed | teacher return | student return | student env steps | "
             "kept (S - R) / (T - R) |",
             "|---|---|---|---|---|---|"]
    kept: dict[str, list[float]] = {}
    for r in rows:
        k = kept_fraction(r["teacher_return"], r["student_return"], random)
        kept.setdefault(r["method"], []).append(k)
        # L2T's student never acts; COSIL's acts in its own environments.
        student_steps = "0" if r["method"] == "l2t" else "its own envs"
        lines.append(f"| {r['method']} | {r['seed']} | {r['teacher_return']:.1f} "
                     f"| {r['student_return']:.1f} | {student_steps} | {k:.3f} |")
    for method, values in kept.items():
        lines.append(f"| **{method}, mean ± std** | {len(values)} seeds | | | "
                     f"| **{mean_std(values)}** |")
    paper = kept_fraction(PAPER["teacher"], PAPER["student"], paper_random)
    lines.append(f"| L2T paper, HalfCheetah α = {PAPER['alpha']} | | {PAPER['teacher']:.0f} "
                 f"| {PAPER['student']:.0f} | 0 | {paper:.3f} (R = {paper_random:.1f}, "
                 f"measured here) |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="pendulum")
    parser.add_argument("--matrix", type=Path, default=Path("runs/matrix"))
    parser.add_argument("--checkpoint", choices=("last", "best"), default="best",
                        help="the cells' evaluated networks (sitt-bench --checkpoint)")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = latest_rows(args.matrix, args.task, args.checkpoint)
    if not rows:
        print(f"error: no finished {args.task} cells in {args.matrix / 'cells.jsonl'} "
              f"(run sitt-bench --tasks {args.task} first)", file=sys.stderr)
        return 1
    episodes = int(rows[0]["episodes"])
    cfg = load_config(Path(rows[0]["run_dir"]) / "config.yaml")
    t0 = time.perf_counter()
    random = random_return(args.task, cfg.task.kwargs, episodes)
    paper_random = random_return(PAPER["task"], {"noise_alpha": PAPER["alpha"]},
                                 PAPER_RANDOM_EPISODES)
    print(f"random policy: {args.task} {random:.1f} over {episodes} test episodes, "
          f"{PAPER['task']} {paper_random:.1f} over {PAPER_RANDOM_EPISODES} "
          f"({time.perf_counter() - t0:.0f} s)")
    command = f"python bench/l2t_gap.py {' '.join(sys.argv[1:])}"
    lines = report(rows, random, paper_random)
    print("\n".join(lines))
    if args.write_docs:
        replace_section(f"l2t_gap_{args.task}", [
            f"## L2T's student against its teacher: {args.task}", "",
            f"Command: `{command}` ({time.strftime('%Y-%m-%d')}; {platform.machine()}, "
            f"{os.cpu_count()} cores), on the `sitt-bench` cells of `{args.matrix}` "
            f"({episodes} test episodes per role and run, the random policy over the same "
            f"episodes: R = {random:.1f}).", "", *lines])
    return 0


if __name__ == "__main__":
    sys.exit(main())
