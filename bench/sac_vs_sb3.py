"""Does our SAC core learn HalfCheetah as fast as Stable-Baselines3's SAC at the same
settings? Trains SB3's ``SAC`` with the settings ``config/half_cheetah_l2t.yaml`` copies
(one environment, an update after every step, Adam 3e-4, batch 256, tau 0.005, gamma 0.99,
100 random steps first, learnt temperature, [256, 256] networks) and prints its
deterministic return every ``--eval-every`` steps next to the teacher's validation returns
of finished ``l2t`` runs of the preset (their ``metrics.jsonl``) at the same step counts:

    python bench/sac_vs_sb3.py --steps 60000 --seeds 0 1 \\
        --ours runs/cheetah_full/half_cheetah/l2t_s0 runs/cheetah_full/half_cheetah/l2t_s1

Evaluation episodes differ (SB3's: gymnasium seeds 10_000 + k; ours: the validation
seeds), both 5 per point, so the comparison is of learning speed, not of exact returns.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

EVAL_EPISODES = 5
EVAL_SEED = 10_000


def evaluate(model: object, env: gym.Env, episodes: int = EVAL_EPISODES) -> float:
    """Mean undiscounted return of the deterministic policy over ``episodes`` episodes."""
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + k)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def train_sb3(seed: int, steps: int, every: int) -> dict[int, float]:
    """SB3 SAC at the preset's settings; its evaluation return every ``every`` steps."""
    from stable_baselines3 import SAC

    torch.set_num_threads(1)
    model = SAC("MlpPolicy", gym.make("HalfCheetah-v5"), learning_rate=3e-4,
                buffer_size=1_000_000, learning_starts=100, batch_size=256, tau=0.005,
                gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto",
                policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu", verbose=0)
    eval_env = gym.make("HalfCheetah-v5")
    curve = {}
    for done in range(every, steps + 1, every):
        model.learn(total_timesteps=every, reset_num_timesteps=False)
        curve[done] = evaluate(model, eval_env)
        print(f"SB3 seed {seed}: {done} steps, return {curve[done]:.1f}", flush=True)
    return curve


def our_curve(run_dir: Path) -> dict[int, float]:
    """The teacher's validation return by environment steps, from a run's metrics."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    return {int(r["env_steps"]): float(r["eval/teacher_return"]) for r in rows
            if "eval/teacher_return" in r}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--eval-every", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--ours", type=Path, nargs="*", default=[],
                        help="finished l2t run directories of config/half_cheetah_l2t.yaml")
    args = parser.parse_args(argv)
    if args.steps < args.eval_every or args.eval_every < 1000:
        print("error: need --steps >= --eval-every >= 1000", file=sys.stderr)
        return 2
    missing = [str(d) for d in args.ours if not (d / "metrics.jsonl").is_file()]
    if missing:
        print(f"error: no metrics.jsonl in {', '.join(missing)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    sb3 = {seed: train_sb3(seed, args.steps, args.eval_every) for seed in args.seeds}
    ours = {run.name: our_curve(run) for run in args.ours}
    points = sorted(next(iter(sb3.values())))
    header = ["steps", *[f"SB3 SAC s{s}" for s in sb3], *[f"ours {n}" for n in ours]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for step in points:
        cells = [f"{sb3[s][step]:.0f}" for s in sb3]
        cells += [f"{curve[step]:.0f}" if step in curve else "" for curve in ours.values()]
        print(f"| {step:,} | " + " | ".join(cells) + " |")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
