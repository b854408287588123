"""Quadrotor benchmark: SITT and the baselines over seeds, with perception metrics.

    python bench/quadrotor.py                        # 4 methods x 5 seeds, 256 test flights
    python bench/quadrotor.py --methods sitt bc --seeds 0 --episodes 64
    python bench/quadrotor.py --write-docs           # also writes the docs/results.md section
    python bench/quadrotor.py --checkpoint best      # each run's validation-best networks

Every run trains with the shipped preset (ros2_ws/src/sitt_training/config/
quadrotor_<method>.yaml), so all methods get the same environment steps and the same
number of rendered student images. Then teacher and student fly ``--episodes`` held-out
test layouts with deterministic actions: the final networks, or with ``--checkpoint best``
the ones of each run's best validation evaluation (``best_model.pt``: model selection on
the validation seeds, the same rule for every method; the test seeds are never seen).
Finished runs are not retrained: an interrupted benchmark continues where it stopped.
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
from color_maze import mean_std, time_to_student, train_one
from results_doc import copy_figures, replace_section
from vision_ablation import ablated_success

from sitt_training.cli import evaluate_run
from sitt_training.config import SITT_COMPARISON
from sitt_training.plots import plot_learning_curves

TARGET = 0.8  # the student success target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(SITT_COMPARISON),
                        choices=SITT_COMPARISON)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=256, help="test flights per role")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_quadrotor"))
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for every run, e.g. train.iterations=10")
    parser.add_argument("--checkpoint", choices=("last", "best"), default="last",
                        help="evaluate the final networks or the validation-best ones")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the quadrotor section of docs/results.md and its figures")
    args = parser.parse_args()
    checkpoint = Path("best") if args.checkpoint == "best" else None
    suffix = "_best" if args.checkpoint == "best" else ""

    rows, runs = [], {}
    for method in args.methods:
        for seed in args.seeds:
            trained = train_one(method, seed, args.out, args.overrides, task="quadrotor")
            cached = trained["run_dir"] / f"test_{args.episodes}{suffix}.json"
            figure = args.out / f"flights_{method}.png" if method not in runs else None
            if cached.is_file() and (figure is None or figure.is_file()):
                report = json.loads(cached.read_text())
            else:
                report = evaluate_run(trained["run_dir"], args.episodes, checkpoint=checkpoint,
                                      plot=figure)
                cached.write_text(json.dumps(report, indent=2))
            blank = blank_frame_success(trained["run_dir"], args.episodes, args.checkpoint)
            rows.append({"method": method, "seed": seed, **report,
                         "student_blank_success": blank,
                         "train_wall_time": trained["wall_time"],
                         "time_to_target": time_to_student(trained["run_dir"], TARGET)})
            runs.setdefault(method, []).append(trained["run_dir"])
            print(f"  {method} seed {seed}: teacher {report['teacher_success']:.3f} "
                  f"student {report['student_success']:.3f} (blank frame {blank:.3f}) "
                  f"angle T/S {report['teacher']['velocity_angle_deg']:.0f}/"
                  f"{report['student']['velocity_angle_deg']:.0f} deg "
                  f"({report['env_steps'] / 1e6:.1f}M steps, {trained['wall_time']:.0f} s)",
                  flush=True)

    table = results_table(rows)
    print()
    print(table)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, default=str))
    curves = plot_learning_curves(runs, args.out / "learning_curves.png",
                                  title="Quadrotor: validation success (mean ± std over seeds)")
    figures = {m: str(args.out / f"flights_{m}.png") for m in args.methods}
    print(f"\nfigures: {curves}, {', '.join(figures.values())}")
    if args.write_docs:
        write_docs(table, args, curves, figures)
    return 0


def blank_frame_success(run_dir: Path, episodes: int, checkpoint: str) -> float:
    """The student's test success with every image a uniform frame (does it need its
    camera? bench/vision_ablation.py), cached as ``blank_<episodes>[_best].json``."""
    cached = run_dir / f"blank_{episodes}{'_best' if checkpoint == 'best' else ''}.json"
    if not cached.is_file():
        result = ablated_success(run_dir, episodes, "best" if checkpoint == "best" else None,
                                 variants=("blank",))["blank"]
        cached.write_text(json.dumps({"episodes": episodes, "checkpoint": checkpoint,
                                      "success": result.success}, indent=2))
    return float(json.loads(cached.read_text())["success"])


def results_table(rows: list[dict]) -> str:
    lines = ["| method | teacher success | student success | gap | student success per seed "
             "| student success, blank frame "
             "| velocity angle T / S [deg] | obstacles in view T / S | env steps "
             "| student images | train wall time [s] "
             f"| wall time to validation student ≥ {TARGET} [s] |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        per_seed = ", ".join(f"{r['student_success']:.2f}" for r in rs)
        reached = ", ".join("never" if r["time_to_target"] is None
                            else f"{r['time_to_target']:.0f}" for r in rs)

        def metric(role: str, key: str, rs: list[dict] = rs) -> list[float]:
            return [r[role][key] for r in rs]

        lines.append(
            f"| {method} | {mean_std([r['teacher_success'] for r in rs])} "
            f"| {mean_std([r['student_success'] for r in rs])} "
            f"| {mean_std([r['gap'] for r in rs])} | {per_seed} "
            f"| {mean_std([r['student_blank_success'] for r in rs])} "
            f"| {np.mean(metric('teacher', 'velocity_angle_deg')):.1f} / "
            f"{np.mean(metric('student', 'velocity_angle_deg')):.1f} "
            f"| {np.mean(metric('teacher', 'obstacles_in_view')):.2f} / "
            f"{np.mean(metric('student', 'obstacles_in_view')):.2f} "
            f"| {rs[0]['env_steps'] / 1e6:.1f}M | {rs[0]['student_samples'] / 1e6:.2f}M "
            f"| {mean_std([r['train_wall_time'] for r in rs])} | {reached} |")
    return "\n".join(lines)


def write_docs(table: str, args: argparse.Namespace, curves: Path,
               figures: dict[str, str]) -> None:
    """Replace the benchmark table of docs/results.md's quadrotor section (the notes above
    it are written by hand) and copy the figures next to it."""
    images = copy_figures("quadrotor", {"learning_curves": curves, **figures})
    command = "python bench/quadrotor.py " + " ".join(sys.argv[1:])
    replace_section("quadrotor", [
        "### Benchmark table (written by `bench/quadrotor.py --write-docs`)",
        "",
        f"Command: `{command}` (from the repository root, in `.venv`; "
        f"{time.strftime('%Y-%m-%d')}).",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. Evaluation: {args.episodes} held-out test flights per "
        "role and run, deterministic actions, "
        + ("each run's validation-best networks (`best_model.pt`). " if args.checkpoint == "best"
           else "each run's final networks. ") + "Perception metrics: mean angle between the "
        "camera axis and the horizontal velocity; distinct pillars that entered the camera's "
        "field of view during a flight (of 4).",
        "",
        table,
        "",
        f"![learning curves]({images['learning_curves']})",
        "",
        "Top views of the first test flights, seed 0 of each method (teacher orange, student "
        "black dashed, arrows: camera heading, red cross: crash):",
        "",
        *[f"![{m}]({images[m]})" for m in figures],
    ])

if __name__ == "__main__":
    raise SystemExit(main())
