"""Arm drawer task speed on one core: teacher-only stepping and camera rendering.

    python bench/arm_speed.py
    python bench/arm_speed.py --envs 16 --steps 300 --repeats 3

Rows: env-steps/s with the student mask all off (no images; random actions, resets
included) with and without the handle-visibility rays; env-steps/s while the scripted
opener grasps and pulls (more contacts; the controller's own time is not counted); camera
images/s (``render_images`` alone) while the scripted opener moves the arms through the
view. Each row is measured ``--repeats`` times. ``per core`` divides by the process's CPU
time (what one core delivers even when other jobs share the machine), ``wall`` by elapsed
time; both are the best of the repeats. Prints a Markdown table with the command line.
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
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from sitt_training.envs.arm_drawer import ArmDrawerVecEnv  # noqa: E402
from sitt_training.envs.arm_scripted import ScriptedDrawerOpener  # noqa: E402


class Timer:
    """Accumulates CPU and wall time of the timed sections."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0

    def time(self, fn: Callable[[], object]) -> object:
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall
        return out


def random_steps(num_envs: int, steps: int, warmup: int, track_visibility: bool) -> Timer:
    env = ArmDrawerVecEnv(num_envs, seed=0, track_visibility=track_visibility)
    env.set_student_mask(np.zeros(num_envs, dtype=bool))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, (warmup + steps, num_envs, 8))
    for t in range(warmup):
        env.step(actions[t])
    timer = Timer()
    for t in range(warmup, warmup + steps):
        timer.time(lambda a=actions[t]: env.step(a))
    env.close()
    return timer


def scripted_steps(num_envs: int, steps: int, image_size: int
                   ) -> tuple[Timer, Timer, int, float]:
    """(step timer, render timer, images rendered, success rate of ended episodes)."""
    env = ArmDrawerVecEnv(num_envs, seed=0, image_size=image_size)
    env.set_student_mask(np.zeros(num_envs, dtype=bool))
    env.reset(seed=0)
    opener = ScriptedDrawerOpener(env)
    ids = np.arange(num_envs)
    stepping, rendering = Timer(), Timer()
    rendered, successes, episodes = 0, 0.0, 0
    for t in range(steps):
        actions = opener.act()
        _, _, _, _, infos = stepping.time(lambda a=actions: env.step(a))
        if "_episode" in infos:
            ended = infos["_episode"]
            successes += float(infos["episode"]["success"][ended].sum())
            episodes += int(ended.sum())
            opener.reset(np.flatnonzero(ended))
        if t % 5 == 0:  # every 5th step: images of the whole trajectory, arm poses vary
            rendering.time(lambda: env.render_images(ids))
            rendered += num_envs
    env.close()
    return stepping, rendering, rendered, successes / max(episodes, 1)


def best(rates: list[tuple[float, float]]) -> str:
    cpu, wall = max(r[0] for r in rates), max(r[1] for r in rates)
    return f"{cpu:,.0f} | {wall:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()

    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}, 1 thread, load "
          f"average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| measurement | per core (CPU time) | wall |")
    print("|---|---|---|")
    n = args.envs
    for track in (False, True):
        rates = []
        for _ in range(args.repeats):
            timer = random_steps(n, args.steps, args.warmup, track)
            rates.append((n * args.steps / timer.cpu, n * args.steps / timer.wall))
        rays = "with" if track else "without"
        print(f"| teacher-only env-steps/s, random actions, {n} envs, {rays} visibility "
              f"rays | {best(rates)} |", flush=True)
    step_rates, image_rates, success = [], [], []
    for _ in range(args.repeats):
        stepping, rendering, images, rate = scripted_steps(n, args.steps, args.image_size)
        step_rates.append((n * args.steps / stepping.cpu, n * args.steps / stepping.wall))
        image_rates.append((images / rendering.cpu, images / rendering.wall))
        success.append(rate)
    print(f"| teacher-only env-steps/s, scripted opener (grasp and pull), {n} envs | "
          f"{best(step_rates)} |")
    print(f"| rendered images/s, {args.image_size}x{args.image_size}, batches of {n} | "
          f"{best(image_rates)} |")
    print(f"| scripted opener: success rate of the episodes that ended | "
          f"{min(success):.2f} | |")
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
