"""Figures a person would rather look at than read: maze trajectories, learning curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on robots' build machines or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from .config import Config  # noqa: E402
from .envs.color_maze import GOAL, START, generate_layouts  # noqa: E402
from .evaluation import EvalResult  # noqa: E402
from .metrics_log import read_metrics  # noqa: E402  (re-exported for the bench scripts)

MAZE_COLORS = ListedColormap(["#ececec", "#e4572e", "#4c78a8"])  # empty, lava, path


def plot_maze_trajectories(teacher: EvalResult, student: EvalResult, cfg: Config, seed: int,
                           path: Path, title: str = "", count: int = 10) -> Path:
    """Teacher and student trajectories over the first ``count`` evaluation mazes."""
    count = min(count, len(teacher.traces), len(student.traces))
    if count == 0:
        raise ValueError("no trajectories recorded: evaluate with record_traces=True")
    if cfg.task.kwargs.get("layouts") is not None:
        from .envs.color_maze import load_layouts

        user = load_layouts(cfg.task.kwargs["layouts"])
        layouts = user[np.arange(count) % len(user)]
    else:
        layouts = generate_layouts(seed, count)
    cols = min(count, 5)
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(layouts[i], cmap=MAZE_COLORS, vmin=0, vmax=2, interpolation="nearest")
        ax.plot(START[1], START[0], "o", color="#888888", ms=6)
        ax.plot(GOAL[1], GOAL[0], "s", color="#2ca02c", ms=7)
        for result, color, style, offset in ((teacher, "#f2a900", "-", -0.12),
                                             (student, "#111111", "--", 0.12)):
            trace = result.traces[i]
            ax.plot(trace[:, 1] + offset, trace[:, 0] + offset, style, color=color, lw=1.6)
        ax.set_title(f"maze {i}", fontsize=8, pad=2)
    handles = [plt.Line2D([], [], color="#f2a900", lw=2, label="teacher"),
               plt.Line2D([], [], color="#111111", lw=2, ls="--", label="student")]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False)
    fig.suptitle(f"{title}  teacher {teacher.success:.2f} / student {student.success:.2f} "
                 f"success on {teacher.episodes} eval mazes", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_learning_curves(runs: dict[str, Sequence[Path]], path: Path,
                         keys: Sequence[str] = ("eval/teacher_success", "eval/student_success"),
                         title: str = "") -> Path:
    """Mean +- std over seeds of validation success (or the ``keys`` given, e.g. returns)
    against environment steps."""
    curves = {method: [[r for r in read_metrics(run_dir) if keys[0] in r]
                       for run_dir in run_dirs]
              for method, run_dirs in runs.items()}
    return plot_curves(curves, path, keys, title)


def plot_curves(curves: dict[str, Sequence[Sequence[dict[str, float]]]], path: Path,
                keys: Sequence[str] = ("eval/teacher_success", "eval/student_success"),
                title: str = "") -> Path:
    """``plot_learning_curves`` from metrics rows already read (each seed's validation
    rows, holding ``env_steps`` and the ``keys``), e.g. kept in a benchmark record."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for method, seeds in curves.items():
        seeds = [[r for r in rows if keys[0] in r] for rows in seeds]
        length = min((len(c) for c in seeds), default=0)
        if length == 0:
            continue
        steps = np.array([r["env_steps"] for r in seeds[0][:length]]) / 1e6
        for ax, key in zip(axes[0], keys, strict=True):
            values = np.array([[r[key] for r in c[:length]] for c in seeds])
            mean, std = values.mean(axis=0), values.std(axis=0)
            (line,) = ax.plot(steps, mean, label=method)
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for ax, key in zip(axes[0], keys, strict=True):
        ax.set_xlabel("environment steps [M]")
        ax.set_ylabel(key.split("/")[-1].replace("_", " "))
        if key.endswith("success"):
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_quadrotor_trajectories(teacher: EvalResult, student: EvalResult, path: Path,
                                title: str = "", count: int = 6, pillar_radius: float = 1.5,
                                arrow_every: int = 50) -> Path:
    """Top view of the first ``count`` evaluation flights: pillars, teacher and student
    paths, and the camera heading (arrows) along each path, like the SITT paper's figure.

    Traces are ``[x, y, z, camera_axis_x, camera_axis_y]`` per step; ``scenes`` the pillar
    centres of each episode."""
    count = min(count, len(teacher.traces), len(student.traces))
    if count == 0 or teacher.scenes is None:
        raise ValueError("no trajectories recorded: evaluate with record_traces=True")
    cols = min(count, 3)
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 4.0 * rows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= count:
            ax.axis("off")
            continue
        for centre in teacher.scenes[i]:
            ax.add_patch(plt.Circle(centre, pillar_radius, color="#8c8c8c", alpha=0.6))
        for result, color, style in ((teacher, "#f2a900", "-"), (student, "#111111", "--")):
            # camera heading every ``arrow_every`` steps; a red cross where a flight crashed
            trace = result.traces[i]
            ax.plot(trace[:, 0], trace[:, 1], style, color=color, lw=1.5)
            ax.plot(trace[0, 0], trace[0, 1], "o", color=color, ms=4)
            if not result.per_episode["success"][i]:
                ax.plot(trace[-1, 0], trace[-1, 1], "x", color="#d62728", ms=8, mew=2)
            head = trace[::arrow_every]
            ax.quiver(head[:, 0], head[:, 1], head[:, 3], head[:, 4], color=color,
                      angles="xy", scale_units="xy", scale=1.0, width=0.006)
        everything = np.concatenate([teacher.traces[i][:, :2], student.traces[i][:, :2],
                                     teacher.scenes[i]])
        lo, hi = everything.min(axis=0) - 2.5, everything.max(axis=0) + 2.5
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_title(f"episode {i}", fontsize=8)
        ax.tick_params(labelsize=7)
    handles = [plt.Line2D([], [], color="#f2a900", lw=2, label="teacher"),
               plt.Line2D([], [], color="#111111", lw=2, ls="--", label="student"),
               plt.Line2D([], [], color="#d62728", marker="x", ls="", label="crash"),
               plt.Line2D([], [], color="#555555", marker=r"$\rightarrow$", ls="", ms=10,
                          label="camera heading")]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False)
    fig.suptitle(f"{title}  teacher {teacher.success:.2f} / student {student.success:.2f} "
                 f"success on {teacher.episodes} eval flights (top view, m)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
