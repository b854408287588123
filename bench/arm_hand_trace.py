"""Where does a policy's hand go in ``arm_drawer``? A grip needs the grasp point on the
handle bar, the fingers vertical and closed on it; a hook or a flick opens the drawer
without any of that. This rolls out trained runs (or the scripted opener) on the test
layouts and prints, every few steps, the medians over the arms still in their episode:

    python bench/arm_hand_trace.py runs/arm_grasp/arm_drawer/bc_s0 --arms 8
    python bench/arm_hand_trace.py --scripted

Columns: the grasp point's distance to the bar's axis (cm; a grasp needs < 2), how far
the grasp point sits out from the bar (along the drawer's pull direction) and above it
(cm), the finger gap (cm; 8 open, 2 closed on the bar), how vertical the fingers are
(1 = vertical, a grasp needs > 0.8), the drawer's opening (m) and the fraction of arms
holding the handle.
Runs act as ``sitt-eval`` does (deterministic, ``TEST_SEED``, ``--checkpoint``), each
under its own task options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sitt_training.cli import load_run
from sitt_training.envs import make_task
from sitt_training.envs.arm_drawer import EPISODE_STEPS, ArmDrawerVecEnv
from sitt_training.envs.arm_scripted import ScriptedDrawerOpener
from sitt_training.envs.arm_world import drawer_normal
from sitt_training.evaluation import ROLES, TEST_SEED, deterministic_actions

COLUMNS = ("off_bar", "outward", "up", "gap", "vertical", "opening", "grasped")
HEADER = ("| step | arms | off bar [cm] | outward [cm] | up [cm] | finger gap [cm] "
          "| fingers vertical | opening [m] | holding |")


def trace_hands(env: ArmDrawerVecEnv, act: Callable[[dict[str, Any]], np.ndarray],
                obs: dict[str, Any], steps: int = EPISODE_STEPS) -> dict[str, np.ndarray]:
    """Step ``env`` from ``obs`` with ``act(obs)`` for ``steps`` steps and record each
    arm's hand after every step: ``COLUMNS`` -> ``(steps, num_envs)``, lengths in m, NaN
    once an arm's first episode has ended (the env then resets it)."""
    out = {name: np.full((steps, env.num_envs), np.nan) for name in COLUMNS}
    live = np.ones(env.num_envs, dtype=bool)
    outward = drawer_normal()
    for t in range(steps):
        obs, _, terminated, truncated, _ = env.step(act(obs))
        # After an arm's last step the env has already reset it: record what came before.
        keep = live & ~(terminated | truncated)
        offset = env.bar_offset()
        values = {"off_bar": np.linalg.norm(offset, axis=1), "outward": -(offset @ outward),
                  "up": -offset[:, 2], "gap": env.finger_gap(),
                  "vertical": env.finger_vertical(), "opening": env.drawer[:, 0],
                  "grasped": env.grip()[1]}
        for name, value in values.items():
            out[name][t, keep] = value[keep]
        live &= keep
        if not live.any():
            break
    return out


def summary_rows(trace: dict[str, np.ndarray], every: int) -> list[str]:
    """Markdown rows: every ``every`` steps and the last step any arm was recorded, the
    medians over the arms still going."""
    rows = []
    recorded = np.flatnonzero(~np.isnan(trace["off_bar"]).all(axis=1))
    last = int(recorded[-1]) if recorded.size else -1
    for t in sorted(set(range(0, last + 1, every)) | {last} - {-1}):
        alive = ~np.isnan(trace["off_bar"][t])
        med = {name: float(np.median(trace[name][t, alive])) for name in COLUMNS}
        rows.append(f"| {t + 1} | {alive.sum()} | {100 * med['off_bar']:.1f} "
                    f"| {100 * med['outward']:+.1f} | {100 * med['up']:+.1f} "
                    f"| {100 * med['gap']:.1f} | {med['vertical']:.2f} "
                    f"| {med['opening']:.3f} | {trace['grasped'][t, alive].mean():.2f} |")
    return rows


def run_trace(run_dir: Path, role: str, arms: int, checkpoint: str | None
              ) -> tuple[str, dict[str, np.ndarray]]:
    """A trained run's ``role`` on the first ``arms`` test layouts: label and trace."""
    cfg, policy, meta = load_run(run_dir, None if checkpoint is None else Path(checkpoint))
    if cfg.task.name != "arm_drawer":
        raise ValueError(f"{run_dir} is a {cfg.task.name} run, not an arm_drawer run")
    env = make_task(cfg.task.name, arms, TEST_SEED,
                    **{**cfg.task.kwargs, "track_visibility": False})
    try:
        env.set_student_mask(np.full(arms, role == "student"))
        obs, _ = env.reset(seed=TEST_SEED)
        trace = trace_hands(env, lambda o: deterministic_actions(policy, role, o), obs)
    finally:
        env.close()
    return f"{cfg.method.name} s{cfg.train.seed} {role}, iteration {meta['iteration']}", trace


def scripted_trace(arms: int) -> tuple[str, dict[str, np.ndarray]]:
    """The privileged scripted grasp-and-pull on the first ``arms`` test layouts."""
    env = ArmDrawerVecEnv(arms, seed=TEST_SEED, track_visibility=False)
    try:
        env.set_student_mask(np.zeros(arms, dtype=bool))
        obs, _ = env.reset(seed=TEST_SEED)
        opener = ScriptedDrawerOpener(env)
        trace = trace_hands(env, lambda _: opener.act(), obs)
    finally:
        env.close()
    return "scripted opener", trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="arm_drawer run directories")
    parser.add_argument("--scripted", action="store_true",
                        help="also trace the scripted grasp-and-pull opener")
    parser.add_argument("--arms", type=int, default=8, help="test layouts (one arm each)")
    parser.add_argument("--every", type=int, default=10, help="print every N steps")
    parser.add_argument("--roles", nargs="+", choices=ROLES, default=["teacher"])
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (default), or a model_<iter>.pt path")
    args = parser.parse_args(argv)
    if args.arms < 1 or args.every < 1:
        parser.error("--arms and --every must be >= 1")
    if not args.runs and not args.scripted:
        parser.error("give run directories, --scripted, or both")
    torch.set_num_threads(1)
    traces = [scripted_trace(args.arms)] if args.scripted else []
    for run in args.runs:
        for role in args.roles:
            try:
                traces.append(run_trace(run, role, args.arms, args.checkpoint))
            except (FileNotFoundError, ValueError) as err:
                print(f"error: {run}: {err}", file=sys.stderr)
                return 1
    for label, trace in traces:
        print(f"\n{label}\n\n{HEADER}\n|---|---|---|---|---|---|---|---|---|")
        print("\n".join(summary_rows(trace, args.every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
