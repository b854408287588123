"""Quadrotor benchmark: SITT and the baselines over seeds, with perception metrics.

    python bench/quadrotor.py                        # 4 methods x 5 seeds, 256 test flights
    python bench/quadrotor.py --methods sitt bc --seeds 0 --episodes 64
    python bench/quadrotor.py --write-docs           # also writes the docs/results.md section
    python bench/quadrotor.py --checkpoint best      # each run's validation-best networks
    python bench/quadrotor.py --recorded-only --write-docs   # docs from the record alone

Every run trains with the shipped preset (ros2_ws/src/sitt_training/config/
quadrotor_<method>.yaml), so all methods get the same environment steps and the same
number of rendered student images. Then teacher and student fly ``--episodes`` held-out
test layouts with deterministic actions: the final networks, or with ``--checkpoint best``
the ones of each run's best validation evaluation (``best_model.pt``: model selection on
the validation seeds, the same rule for every method; the test seeds are never seen).
Finished runs are not retrained: an interrupted benchmark continues where it stopped.
Each finished cell is also appended to ``--record`` (docs/records/quadrotor/, kept in git)
with its table row and validation curve, so the benchmark also goes on where it stopped
on a machine without the run directories; ``--write-docs`` builds the table and learning
curves from those rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from color_maze import mean_std, time_to_student, train_one
from results_doc import copy_figures, replace_section
from vision_ablation import ablated_success

from sitt_training import bench_record
from sitt_training.cli import evaluate_run
from sitt_training.config import SITT_COMPARISON, load_config, preset_path, resolved_config
from sitt_training.plots import plot_curves, read_metrics

TARGET = 0.8  # the student success target
RECORD = Path(__file__).resolve().parents[1] / "docs" / "records" / "quadrotor"
FIGURE_SEED = 0  # the record keeps this seed's flights figures (the docs show them)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(SITT_COMPARISON),
                        choices=SITT_COMPARISON)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=256, help="test flights per role")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_quadrotor"))
    parser.add_argument("--record", type=Path, default=RECORD,
                        help="the record of finished cells, kept in git: a cell found there "
                        "(same method, seed, evaluation and config) is neither trained nor "
                        "flown again, even when its run directory is gone")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for every run, e.g. train.iterations=10")
    parser.add_argument("--checkpoint", choices=("last", "best"), default="last",
                        help="evaluate the final networks or the validation-best ones")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the quadrotor section of docs/results.md and its figures")
    parser.add_argument("--recorded-only", action="store_true",
                        help="train and fly nothing: report the requested cells found in the "
                        "record and list the others as not run yet")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    # Recorded configs as today's code resolves them (options added since: their defaults).
    recorded = [{**row, "config": resolved_config(row.get("config"))}
                for row in bench_record.load(args.record)]
    rows, curves, missing = [], {}, []
    threads = set()  # train.torch_threads of the reported runs, for the docs

    for method in args.methods:
        for seed in args.seeds:
            config = load_config(preset_path("quadrotor", method),
                                 [f"train.seed={seed}", *args.overrides]).to_dict()
            wanted = bench_record.identity(method, seed, args.episodes, args.checkpoint, config)
            figure = flights_figure(method, seed)
            row = bench_record.find(recorded, wanted)
            if row is None and args.recorded_only:
                missing.append(f"{method} seed {seed}")
                continue
            if row is None:
                row = {**run_cell(method, seed, args, figure), **wanted}
                kept = {figure: args.out / figure} if seed == FIGURE_SEED else {}
                bench_record.append(args.record, row, kept)
            else:
                print(f"  {method} seed {seed}: from the record {args.record}")
                if (args.record / figure).is_file():
                    shutil.copyfile(args.record / figure, args.out / figure)
            row = {key: value for key, value in row.items() if key != "config"}
            rows.append(row)
            threads.add(str(config["train"]["torch_threads"]))
            curves.setdefault(method, []).append(row["curve"])
            print(f"  {method} seed {seed}: teacher {row['teacher_success']:.3f} "
                  f"student {row['student_success']:.3f} "
                  f"(blank frame {row['student_blank_success']:.3f}) "
                  f"angle T/S {row['teacher']['velocity_angle_deg']:.0f}/"
                  f"{row['student']['velocity_angle_deg']:.0f} deg "
                  f"(iteration {row['iteration']}, {row['train_wall_time']:.0f} s of training)",
                  flush=True)

    if not rows:
        print("no cells to report: none of the requested cells is in the record",
              file=sys.stderr)
        return 1
    table = results_table(rows)
    if missing:
        table += f"\n\nNot run yet (not in the record): {', '.join(missing)}."
    print()
    print(table)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, default=str))
    curves = plot_curves(curves, args.out / "learning_curves.png",
                         title="Quadrotor: validation success (mean ± std over seeds)")
    reported = dict.fromkeys(r["method"] for r in rows)
    first = {m: args.out / flights_figure(m, args.seeds[0]) for m in reported}
    figures = {m: str(path) for m, path in first.items() if path.is_file()}
    print(f"\nfigures: {curves}, {', '.join(figures.values())}")
    if args.write_docs:
        write_docs(table, " or ".join(sorted(threads)), args, curves, figures)
    return 0


def flights_figure(method: str, seed: int) -> str:
    """File name of a run's top view of its first test flights."""
    return f"flights_{method}_s{seed}.png"


def run_cell(method: str, seed: int, args: argparse.Namespace, figure: str) -> dict:
    """Train (or finish, or read back) one preset run, fly its test flights and draw the
    first ones into ``args.out / figure``; the evaluations are cached in the run directory."""
    trained = train_one(method, seed, args.out, args.overrides, task="quadrotor")
    run_dir = trained["run_dir"]
    cached = run_dir / f"test_{args.episodes}{'_best' if args.checkpoint == 'best' else ''}.json"
    if cached.is_file() and (args.out / figure).is_file():
        report = json.loads(cached.read_text())
    else:
        report = evaluate_run(run_dir, args.episodes,
                              checkpoint=Path("best") if args.checkpoint == "best" else None,
                              plot=args.out / figure)
        cached.write_text(json.dumps(report, indent=2))
    metrics = read_metrics(run_dir)
    return {**report,
            "student_blank_success": blank_frame_success(run_dir, args.episodes,
                                                         args.checkpoint),
            "train_wall_time": trained["wall_time"],
            "time_to_target": time_to_student(run_dir, TARGET),
            "train_env_steps": metrics[-1]["env_steps"],
            "train_student_samples": metrics[-1]["student_samples"],
            "curve": bench_record.validation_curve(metrics)}


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
             "| velocity angle T / S [deg] | obstacles in view T / S | env steps per run "
             "| student images per run | evaluated iteration per seed | train wall time [s] "
             f"| wall time to validation student ≥ {TARGET} [s] |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
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
            f"| {rs[0]['train_env_steps'] / 1e6:.1f}M "
            f"| {rs[0]['train_student_samples'] / 1e6:.2f}M "
            f"| {', '.join(str(r['iteration']) for r in rs)} "
            f"| {mean_std([r['train_wall_time'] for r in rs])} | {reached} |")
    return "\n".join(lines)


def write_docs(table: str, threads: str, args: argparse.Namespace, curves: Path,
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
        f"Training: {threads} torch thread(s) per run (`train.torch_threads`); "
        f"table written on {platform.machine()} with torch {torch.__version__}. "
        f"Evaluation: {args.episodes} held-out test flights per role and run, "
        "deterministic actions, "
        + ("each run's validation-best networks (`best_model.pt`). " if args.checkpoint == "best"
           else "each run's final networks. ") + "Perception metrics: mean angle between the "
        "camera axis and the horizontal velocity; distinct pillars that entered the camera's "
        "field of view during a flight (of 4).",
        "",
        table,
        "",
        f"![learning curves]({images['learning_curves']})",
        "",
        f"Top views of the first test flights, seed {args.seeds[0]} of each method "
        "(teacher orange, student "
        "black dashed, arrows: camera heading, red cross: crash):",
        "",
        *[f"![{m}]({images[m]})" for m in figures],
    ])

if __name__ == "__main__":
    raise SystemExit(main())
