"""Training throughput on the color maze, side by side in one run on one machine.

    python bench/throughput.py                # 3 iterations of 250k steps each
    python bench/throughput.py --iterations 5

Rows:
* ``sb3 ppo``: Stable-Baselines3 PPO, the library the SITT authors' color-maze code builds
  on, with their settings (1000 envs, 250 steps, one 250k batch, 10 epochs, entropy 0.3,
  MlpPolicy) on our vectorised maze, teacher observations only. It does less work than the
  authors' SITT (no proxy, no student, no alignment), so the ratio is conservative.
* ``sitt, paper settings``: our SITT with the same PPO settings plus its student and proxy
  alignment (20 iterations on the whole roll-out, as in the paper).
* ``sitt, preset``: our SITT with the shipped color-maze preset.

* ``authors' code`` (only with ``--authors-code DIR --authors-python PY``): the SITT
  authors' color-maze code (a local checkout of uzh-rpg/sitt; nothing of it is in this
  repository) run by a Python that has its dependencies (SB3 2.3.2, gymnasium 0.29.1,
  numpy 1.26, opencv, pygame, ruamel.yaml, tensorboard). Two ``learn()`` calls of 1 and
  1 + N roll-outs; their difference leaves N training iterations without set-up and the
  final evaluation their ``learn()`` always runs.

Throughput counts environment steps per second of wall time, roll-out and all updates
included, after one warm-up iteration.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sitt_training.config import load_config, preset_path
from sitt_training.envs.color_maze import ColorMazeVecEnv
from sitt_training.trainer import Trainer

NUM_ENVS, STEPS = 1000, 250


def sb3_throughput(iterations: int, threads: int) -> float:
    from gymnasium import spaces
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv

    class TeacherView(VecEnv):
        """Our batched maze as an SB3 VecEnv (teacher observations)."""

        def __init__(self) -> None:
            self.env = ColorMazeVecEnv(NUM_ENVS, seed=0)
            space = self.env.single_observation_space["teacher"]
            super().__init__(NUM_ENVS, spaces.Box(-1, 1, space.shape, np.float32),
                             spaces.Discrete(4))
            self.env.set_student_mask(np.zeros(NUM_ENVS, dtype=bool))

        def reset(self) -> np.ndarray:
            return self.env.reset(seed=0)[0]["teacher"]

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> Any:
            obs, reward, term, trunc, info = self.env.step(self._actions)
            done = term | trunc
            infos = [{} for _ in range(NUM_ENVS)]
            for i in np.flatnonzero(done):
                infos[i]["terminal_observation"] = info["final_obs"]["teacher"][i]
                infos[i]["TimeLimit.truncated"] = bool(trunc[i])
            return obs["teacher"], reward, done, infos

        def close(self) -> None: ...
        def get_attr(self, name: str, indices: Any = None) -> list[Any]:
            return [None] * NUM_ENVS
        def set_attr(self, name: str, value: Any, indices: Any = None) -> None: ...
        def env_method(self, name: str, *args: Any, indices: Any = None, **kw: Any) -> list:
            return [None] * NUM_ENVS
        def env_is_wrapped(self, wrapper: Any, indices: Any = None) -> list[bool]:
            return [False] * NUM_ENVS

    torch.set_num_threads(threads)
    model = PPO("MlpPolicy", TeacherView(), n_steps=STEPS, batch_size=NUM_ENVS * STEPS,
                ent_coef=0.3, device="cpu", verbose=0, seed=0)
    model.learn(NUM_ENVS * STEPS)  # warm-up iteration
    start = time.perf_counter()
    model.learn(iterations * NUM_ENVS * STEPS, reset_num_timesteps=False)
    return iterations * NUM_ENVS * STEPS / (time.perf_counter() - start)


AUTHORS_DRIVER = """
import sys, time, torch
sys.path.insert(0, "color_maze")
from env.color_maze_world import ColorMazeEnv
from rl_scripts.ppo_toy import PPO_Toy
torch.set_num_threads({threads})
def run(rollouts):
    model = PPO_Toy("MlpPolicy", env=ColorMazeEnv(21, 3, 1000), eval_env=ColorMazeEnv(21, 3, 15),
                    n_steps=250, batch_size=250000, tensorboard_log="{logs}", verbose=0,
                    ent_coef=0.3, use_student=True, device="cpu", seed=0)
    start = time.perf_counter()
    model.learn(total_timesteps=rollouts * 250000, log_interval=10**6, eval_interval=10**6)
    return time.perf_counter() - start
print({iterations} * 250000 / (run(1 + {iterations}) - run(1)))
"""


def authors_throughput(code: Path, python: Path, iterations: int, threads: int) -> float:
    if not (code / "color_maze" / "rl_scripts" / "ppo_toy.py").is_file():
        raise SystemExit(f"--authors-code {code}: not a checkout of uzh-rpg/sitt "
                         "(no color_maze/rl_scripts/ppo_toy.py)")
    driver = AUTHORS_DRIVER.format(threads=threads, iterations=iterations,
                                   logs="/tmp/sitt_authors_logs")
    out = subprocess.run([str(python), "-c", driver], cwd=code, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the authors' code failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def ours_throughput(iterations: int, overrides: list[str]) -> float:
    cfg = load_config(preset_path("color_maze", "sitt"),
                      ["train.eval_every=0", "train.checkpoint_every=1000", *overrides])
    trainer = Trainer(cfg, "/tmp/sitt_throughput", show_progress=False)
    trainer.iterate()  # warm-up iteration
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.iterate()
    steps = iterations * cfg.task.num_envs * cfg.ppo.rollout_steps
    return steps / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--authors-code", type=Path, help="checkout of uzh-rpg/sitt")
    parser.add_argument("--authors-python", type=Path, help="python with its dependencies")
    args = parser.parse_args()
    if bool(args.authors_code) != bool(args.authors_python):
        parser.error("--authors-code and --authors-python go together")
    paper = [f"task.num_envs={NUM_ENVS}", f"task.student_envs={NUM_ENVS}",
             f"ppo.rollout_steps={STEPS}", "ppo.minibatches=1", "ppo.epochs=10",
             "ppo.entropy_coef=0.3", "method.align_iterations=20", "method.align_batch_size=0",
             f"method.buffer_size={NUM_ENVS * STEPS}", f"train.torch_threads={args.threads}"]
    rows = [("sb3 ppo (teacher only), paper settings", sb3_throughput(args.iterations,
                                                                      args.threads)),
            ("sitt, paper settings", ours_throughput(args.iterations, paper)),
            ("sitt, preset", ours_throughput(args.iterations,
                                             [f"train.torch_threads={args.threads}"]))]
    if args.authors_code:
        rows.insert(0, ("authors' code (SB3 PPO + their SITT), paper settings",
                        authors_throughput(args.authors_code, args.authors_python,
                                           args.iterations, args.threads)))
    base = rows[0][1]
    reference = "authors' code" if args.authors_code else "sb3"
    print(f"| run ({args.iterations} iterations x {NUM_ENVS * STEPS} steps, "
          f"{args.threads} threads) | env steps/s | vs {reference} |")
    print("|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {rate / base:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
