"""How much does seeing the handle matter in ``arm_drawer``? The scripted opener, once
aiming at the handle and once at the middle of the drawer front's height (as a grasp that
cannot see where the handle sits), in the same test layouts.

    python bench/arm_handle_height.py --episodes 64

Both openers are privileged otherwise (they know the cabinet's place exactly), so the gap
between them is what not knowing the handle's height alone costs a grasp of this kind. The
table splits the layouts by handle height (thirds of ``HANDLE_SHIFT_RANGE``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from tqdm import tqdm

from sitt_training.envs.arm_drawer import EPISODE_STEPS, ArmDrawerVecEnv
from sitt_training.envs.arm_scripted import ScriptedDrawerOpener
from sitt_training.envs.arm_world import HANDLE_SHIFT_RANGE
from sitt_training.evaluation import TEST_SEED


def opener_successes(episodes: int, middle_height: bool, seed: int = TEST_SEED,
                     batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Handle heights (m) and successes of the scripted opener in the first ``episodes``
    layouts of ``seed`` (environment ``i`` of a batch plays layout ``i``)."""
    heights, successes = [], []
    with tqdm(total=episodes, desc="middle height" if middle_height else "sees handle",
              leave=False) as bar:
        for start in range(0, episodes, batch):
            n = min(batch, episodes - start)
            env = ArmDrawerVecEnv(n, seed=seed, track_visibility=False)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=64)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    heights, seeing = opener_successes(args.episodes, middle_height=False)
    _, blind = opener_successes(args.episodes, middle_height=True)
    edges = np.linspace(-HANDLE_SHIFT_RANGE, HANDLE_SHIFT_RANGE, 4)
    band = np.clip(np.digitize(heights, edges[1:-1]), 0, 2)
    print("| handle height [m] | layouts | aims at the handle | aims at the middle |")
    print("|---|---|---|---|")
    for k in range(3):
        rows = band == k
        if rows.any():
            print(f"| {edges[k]:+.3f} .. {edges[k + 1]:+.3f} | {rows.sum()} "
                  f"| {seeing[rows].mean():.2f} | {blind[rows].mean():.2f} |")
    print(f"| all | {len(heights)} | {seeing.mean():.2f} | {blind.mean():.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
