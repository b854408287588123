"""Is the student easier to imitate where the camera faces the flight? The teacher-student
KL (and the teacher-proxy KL that SITT's penalty uses) binned by the camera-velocity angle.

    python bench/quadrotor_kl_by_angle.py RUN --checkpoint RUN/model_300.pt --episodes 64

Why: SITT's roll-out penalty ``lambda_r * KL(pi_T || pi_P)`` pushes the teacher toward
states where the proxy student pi_P agrees with it. It can only teach the teacher to
point its camera where it flies (the paper's result) if the KL is lower when the camera
looks along the velocity; if the KL does not depend on the angle, the penalty is a flat
tax and gives no push toward looking. The proxy sees the teacher's observation and is
trained to copy the camera student, so both KLs are shown: teacher-student (the real
imitation gap, on rendered images) and teacher-proxy (what the penalty sees; SITT runs
only, as no other method trains the proxy).

The teacher flies the held-out test layouts (``TEST_SEED``, as ``sitt-eval``) with its
actions sampled as in the training roll-outs (``--actions deterministic``: its mean
actions, as in evaluation) while every drone renders its camera, and at every step of every
live episode the script records the horizontal angle between the camera axis and the
velocity (steps slower than ``MIN_SPEED_FOR_ANGLE`` are left out, as in the episode
metric), whether a pillar is within ``--near`` metres, and both KLs (the decoder's KL with
its shared std, as in training). Prints one Markdown row per angle bin, split by near and
far from a pillar (near a pillar the teacher dodges and the KL is larger whatever the
camera does, so the split keeps that from passing for an angle effect).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sitt_training.cli import load_run
from sitt_training.envs import make_task
from sitt_training.envs.quadrotor import MIN_SPEED_FOR_ANGLE
from sitt_training.envs.quadrotor_dynamics import quaternion_to_matrix
from sitt_training.evaluation import TEST_SEED
from sitt_training.networks import TeacherStudentPolicy
from sitt_training.obs import to_torch

ANGLE_EDGES = (0.0, 15.0, 30.0, 60.0, 90.0, 180.0)
# How the teacher flies: "sampled" as in training roll-outs (what SITT's penalty sees; the
# previous action in the observation then carries the exploration noise), "deterministic"
# as in evaluation (the previous action is the teacher's own mean, easy to copy).
ACTIONS = ("sampled", "deterministic")


def teacher_actions(policy: TeacherStudentPolicy, out: torch.Tensor, actions: str
                    ) -> np.ndarray:
    """The teacher's actions for its decoder output ``out``, per ``actions`` (ACTIONS)."""
    if actions not in ACTIONS:
        raise ValueError(f"actions must be one of {ACTIONS}, got {actions!r}")
    chosen = policy.decoder.sample(out) if actions == "sampled" else out
    return policy.decoder.deterministic(chosen).numpy()


def camera_velocity_angle(quaternion: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Horizontal angle (deg) between the camera axis (body x) and the velocity; NaN where
    the drone moves slower than ``MIN_SPEED_FOR_ANGLE`` or the axis points straight up."""
    axis = quaternion_to_matrix(quaternion)[:, :2, 0]
    vel = velocity[:, :2]
    axis_norm = np.linalg.norm(axis, axis=1)
    speed = np.linalg.norm(vel, axis=1)
    cos = np.einsum("ij,ij->i", axis, vel) / np.maximum(axis_norm * speed, 1e-9)
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return np.where((speed > MIN_SPEED_FOR_ANGLE) & (axis_norm > 1e-6), angle, np.nan)


def step_geometry(quad: Any, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Per drone of the quadrotor task ``quad`` now: the camera-velocity angle (deg, NaN
    when undefined) and whether a pillar centre is within ``near`` m."""
    rel = quad.pillar_xy - quad.position[:, None, :2]
    return (camera_velocity_angle(quad.quaternion, quad.velocity),
            np.linalg.norm(rel, axis=2).min(axis=1) < near)


@torch.no_grad()
def kl_samples(run_dir: Path, checkpoint: str | None, episodes: int, near: float,
               actions: str = "sampled", seed: int = TEST_SEED) -> dict[str, np.ndarray]:
    """Per step of every live test episode flown by the teacher: ``angle`` (deg, NaN when
    undefined), ``near`` (a pillar centre within ``near`` m), ``kl_student`` and
    ``kl_proxy`` (SITT runs only)."""
    cfg, policy, _ = load_run(run_dir, None if checkpoint is None else Path(checkpoint))
    if cfg.task.name not in ("quadrotor", "quadrotor_noisy"):
        raise ValueError(f"{run_dir}: task {cfg.task.name!r} is not the quadrotor")
    env = make_task(cfg.task.name, num_envs=episodes, seed=seed, **cfg.task.kwargs)
    quad = getattr(env, "inner", env)  # the noisy wrapper keeps the quadrotor inside
    env.set_student_mask(np.ones(episodes, dtype=bool))
    obs, _ = env.reset(seed=seed)
    torch.manual_seed(seed)  # the sampled actions
    finished = np.zeros(episodes, dtype=bool)
    keys = ("angle", "near", "kl_student") + (("kl_proxy",) if cfg.method.name == "sitt" else ())
    columns: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    decoder = policy.decoder
    while not finished.all():
        live = np.flatnonzero(~finished)
        obs_t = torch.from_numpy(obs["teacher"])
        teacher = policy.teacher_out(obs_t)
        student = policy.student_out(to_torch(obs["student"]))
        angle, close = step_geometry(quad, near)
        columns["angle"].append(angle[live])
        columns["near"].append(close[live])
        columns["kl_student"].append(decoder.kl(teacher, student).numpy()[live])
        if "kl_proxy" in columns:
            proxy = policy.proxy_out(obs_t)
            columns["kl_proxy"].append(decoder.kl(teacher, proxy).numpy()[live])
        obs, _, _, _, infos = env.step(teacher_actions(policy, teacher, actions))
        finished |= infos.get("_episode", np.zeros(episodes, dtype=bool))
        env.set_student_mask(~finished)  # render only the episodes still running
    env.close()
    return {k: np.concatenate(v) for k, v in columns.items()}


def binned_table(samples: dict[str, np.ndarray], columns: tuple[str, ...]
                 ) -> list[dict[str, float | str]]:
    """Rows per (near/far, angle bin): steps, share of the steps with an angle, and the
    mean of each of ``columns``. ``samples`` holds ``angle`` and ``near`` per step."""
    angle = samples["angle"]
    total = int(np.isfinite(angle).sum())
    rows: list[dict[str, float | str]] = []
    for where, mask in (("near", samples["near"]), ("far", ~samples["near"])):
        for lo, hi in zip(ANGLE_EDGES[:-1], ANGLE_EDGES[1:], strict=True):
            top = angle <= hi if hi == ANGLE_EDGES[-1] else angle < hi
            sel = mask & (angle >= lo) & top
            n = int(sel.sum())
            row: dict[str, float | str] = {"pillar": where, "angle_deg": f"{lo:.0f}-{hi:.0f}",
                                           "steps": n, "share": n / max(total, 1)}
            for column in columns:
                row[column] = float(samples[column][sel].mean()) if n else float("nan")
            rows.append(row)
    return rows


def print_table(rows: list[dict[str, float | str]], headers: dict[str, str]) -> None:
    """The rows of ``binned_table`` as Markdown, ``headers`` naming its value columns."""
    print("| pillar | camera-velocity angle (deg) | steps | share | "
          + " | ".join(headers.values()) + " |")
    print("|---|---|---|---|" + "---|" * len(headers))
    for r in rows:
        values = " | ".join(f"{r[c]:.3f}" for c in headers)
        print(f"| {r['pillar']} | {r['angle_deg']} | {r['steps']} | {r['share']:.3f} "
              f"| {values} |")


def add_flight_arguments(parser: argparse.ArgumentParser) -> None:
    """``--near``, ``--actions`` and ``--json``, shared with quadrotor_camera_information.py."""
    parser.add_argument("--near", type=float, default=5.0,
                        help="a step is 'near' when a pillar centre is within this (m)")
    parser.add_argument("--actions", choices=ACTIONS, default="sampled",
                        help="the teacher's actions: sampled as in training (default) or "
                             "deterministic as in evaluation")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")


def check_flight_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.near <= 0:
        parser.error(f"--near must be > 0, got {args.near}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="run directory")
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (validation-best, default) or a model_<iter>.pt path")
    parser.add_argument("--episodes", type=int, default=64, help="test episodes")
    add_flight_arguments(parser)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    check_flight_arguments(parser, args)
    torch.set_num_threads(1)
    try:
        samples = kl_samples(args.run, args.checkpoint, args.episodes, args.near, args.actions)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    headers = {"kl_student": "KL teacher-student", "kl_proxy": "KL teacher-proxy"}
    headers = {k: v for k, v in headers.items() if k in samples}
    rows = binned_table(samples, tuple(headers))
    print(f"{args.run} ({args.checkpoint}), {args.episodes} test flights by the teacher "
          f"({args.actions} actions), 'near': a pillar within {args.near:g} m")
    print_table(rows, headers)
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "checkpoint": args.checkpoint,
                                         "episodes": args.episodes, "near_m": args.near,
                                         "actions": args.actions,
                                         "seed": TEST_SEED, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
