"""How much does seeing the handle matter in ``arm_drawer``? Success by the handle's
height: the scripted opener, once aiming at the handle and once at the middle of the drawer
front's height (as a grasp that cannot see where the handle sits), and the teachers and
students of trained runs, all in the same test layouts.

    python bench/arm_handle_height.py --episodes 100 runs/arm_trial4_sitt_s0 runs/arm_trial4_bc_s0

Both openers are privileged otherwise (they know the cabinet's place exactly), so the gap
between them is what not knowing the handle's height alone costs a grasp of this kind. The
table splits the layouts by handle height (thirds of ``HANDLE_SHIFT_RANGE``); runs are
evaluated as ``sitt-eval`` does (``TEST_SEED``, deterministic, ``--checkpoint``).
``--success-needs-grasp`` adds both openers under the task option of that name (an opened
drawer counts only while the fingers hold the handle), where a hook no longer does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sitt_training.cli import load_run
from sitt_training.envs.arm_drawer import EPISODE_STEPS, ArmDrawerVecEnv
from sitt_training.envs.arm_scripted import ScriptedDrawerOpener
from sitt_training.envs.arm_world import HANDLE_SHIFT_RANGE
from sitt_training.evaluation import ROLES, TEST_SEED, evaluate

MOVED = 0.1  # m: a failed episode that opened the drawer this far had hold of the handle


def opener_successes(episodes: int, middle_height: bool, seed: int = TEST_SEED,
                     batch: int = 16, success_needs_grasp: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Handle heights (m) and successes of the scripted opener in the first ``episodes``
    layouts of ``seed`` (environment ``i`` of a batch plays layout ``i``), with the task
    option ``success_needs_grasp`` as given."""
    heights, successes = [], []
    with tqdm(total=episodes, desc="middle height" if middle_height else "sees handle",
              leave=False) as bar:
        for start in range(0, episodes, batch):
            n = min(batch, episodes - start)
            env = ArmDrawerVecEnv(n, seed=seed, track_visibility=False,
                                  success_needs_grasp=success_needs_grasp)
            try:
                env.reset_to(np.arange(start, start + n))
                heights.append(env.handle_shift.copy())
                opener = ScriptedDrawerOpener(env, middle_height=middle_height)
                done = np.zeros(n, dtype=bool)
                success = np.zeros(n, dtype=bool)
                for _ in range(EPISODE_STEPS):
                    _, _, terminated, truncated, _ = env.step(opener.act())
                    success |= terminated & ~done
                    done |= terminated | truncated
                    if done.all():
                        break
                successes.append(success)
            finally:
                env.close()
            bar.update(n)
    return np.concatenate(heights), np.concatenate(successes)


def run_successes(run_dir: Path, role: str, episodes: int, checkpoint: str | None
                  ) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """A trained run's ``role`` in the first ``episodes`` test layouts: its label, the
    handle heights (m) and the per-episode summaries (``success``, ``l``,
    ``max_opening``, ...)."""
    cfg, policy, _ = load_run(run_dir, None if checkpoint is None else Path(checkpoint))
    if cfg.task.name != "arm_drawer":
        raise ValueError(f"{run_dir} is a {cfg.task.name} run, not an arm_drawer run")
    result = evaluate(policy, cfg.task.name, cfg.task.kwargs, role, episodes,
                      record_traces=True)
    assert result.scenes is not None
    label = f"{cfg.method.name} s{cfg.train.seed} {role[0].upper()}"
    return label, result.scenes[:, 2], result.per_episode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="arm_drawer run directories")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--roles", nargs="+", choices=ROLES, default=list(ROLES))
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (default), or a model_<iter>.pt path")
    parser.add_argument("--success-needs-grasp", action="store_true",
                        help="also run the scripted openers with the task option "
                             "success_needs_grasp (an opening counts only while held)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    torch.set_num_threads(1)
    heights, seeing = opener_successes(args.episodes, middle_height=False)
    _, blind = opener_successes(args.episodes, middle_height=True)
    columns = [("scripted, aims at the handle", seeing), ("scripted, aims at the middle", blind)]
    if args.success_needs_grasp:
        for middle, aim in ((False, "the handle"), (True, "the middle")):
            _, gripped = opener_successes(args.episodes, middle_height=middle,
                                          success_needs_grasp=True)
            columns.append((f"scripted, grip needed, aims at {aim}", gripped))
    episodes_of: list[tuple[str, dict[str, np.ndarray]]] = []
    for run in args.runs:
        for role in args.roles:
            try:
                label, run_heights, per_episode = run_successes(run, role, args.episodes,
                                                                args.checkpoint)
            except (FileNotFoundError, ValueError) as err:
                print(f"error: {run}: {err}", file=sys.stderr)
                return 1
            if not np.array_equal(run_heights, heights):  # a run with other task kwargs
                print(f"error: {run}: its test layouts differ from the default task's",
                      file=sys.stderr)
                return 1
            columns.append((label, per_episode["success"] > 0.5))
            episodes_of.append((label, per_episode))
    edges = np.linspace(-HANDLE_SHIFT_RANGE, HANDLE_SHIFT_RANGE, 4)
    band = np.clip(np.digitize(heights, edges[1:-1]), 0, 2)
    print("| handle height [m] | layouts | " + " | ".join(c[0] for c in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for k in range(3):
        rows = band == k
        if rows.any():
            print(f"| {edges[k]:+.3f} .. {edges[k + 1]:+.3f} | {rows.sum()} | "
                  + " | ".join(f"{c[1][rows].mean():.2f}" for c in columns) + " |")
    print(f"| all | {len(heights)} | " + " | ".join(f"{c[1].mean():.2f}" for c in columns)
          + " |")
    if episodes_of:  # how the runs' episodes went: retries show as long episodes
        print(f"\n| run | success | episode length p50 / p90 | failures: drawer moved "
              f">= {MOVED:.2f} m / less |")
        print("|---|---|---|---|")
        for label, per_episode in episodes_of:
            failed = per_episode["success"] < 0.5
            moved = per_episode["max_opening"] >= MOVED
            p50, p90 = np.percentile(per_episode["l"], [50, 90])
            print(f"| {label} | {1.0 - failed.mean():.2f} | {p50:.0f} / {p90:.0f} "
                  f"| {(failed & moved).sum()} / {(failed & ~moved).sum()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
