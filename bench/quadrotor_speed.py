"""Quadrotor task speed on one core: teacher-only stepping and camera rendering.

    python bench/quadrotor_speed.py
    python bench/quadrotor_speed.py --steps 500 --render-steps 20

Rows: env-steps/s with the student mask all off (no images; random actions, so episodes
crash and reset often, resets included) for 1024 and 4096 drones, and camera images/s
(``render_images`` alone, 64x64) for a batch of 64 drones flying near their starts.
Prints a Markdown table with the command line above it.
"""

from __future__ import annotations

import os

# One core: set before NumPy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from sitt_training.envs.quadrotor import QuadrotorVecEnv  # noqa: E402


def teacher_steps_per_second(num_envs: int, steps: int, warmup: int) -> float:
    env = QuadrotorVecEnv(num_envs, seed=0)
    env.set_student_mask(np.zeros(num_envs, dtype=bool))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, (warmup + steps, num_envs, 4)).astype(np.float32)
    for t in range(warmup):
        env.step(actions[t])
    start = time.perf_counter()
    for t in range(warmup, warmup + steps):
        env.step(actions[t])
    return num_envs * steps / (time.perf_counter() - start)


def images_per_second(num_envs: int, steps: int, image_size: int) -> float:
    env = QuadrotorVecEnv(num_envs, seed=0, image_size=image_size)
    env.reset(seed=0)  # student mask all on: every step renders every env
    ids = np.arange(num_envs)
    env.render_images(ids)  # warm-up: creates the renderer
    rng = np.random.default_rng(0)
    elapsed = 0.0
    for _ in range(steps):
        env.step(rng.uniform(-0.3, 0.3, (num_envs, 4)))  # the step's own render is not timed
        start = time.perf_counter()
        env.render_images(ids)
        elapsed += time.perf_counter() - start
    env.close()
    return num_envs * steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed teacher steps")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--render-envs", type=int, default=64)
    parser.add_argument("--render-steps", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()

    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {platform.processor() or platform.machine()}, python "
          f"{platform.python_version()}, numpy {np.__version__}, 1 thread\n")
    print("| measurement | value |")
    print("|---|---|")
    for n in (1024, 4096):
        rate = teacher_steps_per_second(n, args.steps, args.warmup)
        print(f"| teacher-only env-steps/s, {n} drones | {rate:,.0f} |", flush=True)
    rate = images_per_second(args.render_envs, args.render_steps, args.image_size)
    print(f"| rendered images/s, {args.image_size}x{args.image_size}, batch of "
          f"{args.render_envs} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
