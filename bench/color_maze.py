"""Color maze benchmark: SITT and the baselines over seeds, a result table and figures.

    python bench/color_maze.py                 # 4 methods x 5 seeds, writes docs/
    python bench/color_maze.py --quick         # 1 seed each (the README's demo)
    python bench/color_maze.py --methods sitt --seeds 0 1 --episodes 500

Every number printed comes from the runs this script starts: training with the shipped
presets (ros2_ws/src/sitt_training/config/color_maze_<method>.yaml), then a deterministic
evaluation of teacher and student on held-out evaluation mazes (never trained on).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from results_doc import copy_figures, replace_section

from sitt_training.cli import evaluate_run
from sitt_training.config import SITT_COMPARISON
from sitt_training.matrix import train_one
from sitt_training.plots import plot_learning_curves, read_metrics


def time_to_student(run_dir: Path, threshold: float = 0.95, lasting: bool = False
                    ) -> float | None:
    """Training wall time [s] at the first validation with student success >= threshold;
    with ``lasting``, at the first one from which every later validation stays there."""
    found = None
    for row in read_metrics(run_dir):
        if "eval/student_success" not in row:
            continue
        if row["eval/student_success"] < threshold:
            if lasting:
                found = None
        elif found is None:
            found = row["wall_time"]
            if not lasting:
                return found
    return found


def _seconds(t: float | None) -> str:
    return "never" if t is None else f"{t:.0f}"


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(SITT_COMPARISON),
                        choices=SITT_COMPARISON)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="one seed per method")
    parser.add_argument("--episodes", type=int, default=1000, help="evaluation mazes")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_color_maze"))
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for every run, e.g. train.iterations=10")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the color maze section of docs/results.md and its figures")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds

    rows, runs = [], {}
    for method in args.methods:
        for seed in seeds:
            trained = train_one(method, seed, args.out, args.overrides)
            figure = args.out / f"maze_{method}.png" if method not in runs else None
            report = evaluate_run(trained["run_dir"], args.episodes, plot=figure)
            rows.append({"method": method, "seed": seed, **report,
                         "train_wall_time": trained["wall_time"],
                         "time_to_student_095": time_to_student(trained["run_dir"]),
                         "time_to_lasting_student_095": time_to_student(trained["run_dir"],
                                                                        lasting=True)})
            runs.setdefault(method, []).append(trained["run_dir"])
            print(f"  {method} seed {seed}: teacher {report['teacher_success']:.3f} "
                  f"student {report['student_success']:.3f} "
                  f"({report['env_steps'] / 1e6:.1f}M steps, {trained['wall_time']:.0f} s)",
                  flush=True)

    table = results_table(rows)
    print()
    print(table)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, default=str))
    curves = plot_learning_curves(runs, args.out / "learning_curves.png",
                                  title="Color maze: validation success (mean ± std over seeds)")
    figures = {m: str(args.out / f"maze_{m}.png") for m in args.methods}
    print(f"\nfigures: {curves}, {', '.join(figures.values())}")
    if args.write_docs:
        write_docs(table, rows, args, curves, figures)
    return 0


def results_table(rows: list[dict]) -> str:
    lines = ["| method | teacher success | student success | gap | student success per seed "
             "| env steps | student samples | train wall time [s] "
             "| wall time to validation student ≥ 0.95: first / from then on [s] |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        per_seed = ", ".join(f"{r['student_success']:.2f}" for r in rs)
        to_095 = ", ".join(f"{_seconds(r['time_to_student_095'])} / "
                           f"{_seconds(r['time_to_lasting_student_095'])}" for r in rs)
        lines.append(
            f"| {method} | {mean_std([r['teacher_success'] for r in rs])} "
            f"| {mean_std([r['student_success'] for r in rs])} "
            f"| {mean_std([r['gap'] for r in rs])} "
            f"| {per_seed} "
            f"| {rs[0]['env_steps'] / 1e6:.1f}M | {rs[0]['student_samples'] / 1e6:.1f}M "
            f"| {mean_std([r['train_wall_time'] for r in rs])} | {to_095} |")
    return "\n".join(lines)


def write_docs(table: str, rows: list[dict], args: argparse.Namespace, curves: Path,
               figures: dict[str, str]) -> None:
    """Replace the color-maze section of docs/results.md and copy the figures next to it."""
    images = copy_figures("color_maze", {"learning_curves": curves, **figures})
    command = "python bench/color_maze.py " + " ".join(sys.argv[1:])
    replace_section("color_maze", [
        "## Color maze",
        "",
        f"Command: `{command}` (from the repository root, in `.venv`; "
        f"{time.strftime('%Y-%m-%d')}).",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. Evaluation: {args.episodes} held-out mazes per run, "
        "deterministic actions.",
        "",
        table,
        "",
        f"![learning curves]({images['learning_curves']})",
        "",
        "Teacher (orange) and student (black, dashed) on the first 10 evaluation mazes, "
        "seed 0 of each method:",
        "",
        *[f"![{m}]({images[m]})" for m in figures],
    ])

if __name__ == "__main__":
    raise SystemExit(main())
