"""Lockstep HIL speed: environment steps per second through the sim bridge and the policy
node (two processes, real DDS on loopback, a 64x64 camera image rendered every step).

    python bench/hil_speed.py                              # untrained student, preset network
    python bench/hil_speed.py --model runs/<run>/exported/student.onnx --episodes 5

Rows:

* simulation alone: one drone's ``env.step`` plus its camera render in this process (what
  the bridge computes per step, without ROS);
* HIL lockstep: ``sitt-hil`` (bridge + ``policy_node`` with trigger camera, use_sim_time),
  shortened episodes; steps/s over the bridge's stepping loop (start-up excluded): per step
  clock, odometry, command, the ordering round trip to the node, camera info and image out,
  the node's inference, the action back, one env step. Target: >= 200 steps/s.

Prints a Markdown table with the command line above it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from untrained_student import default_model

from sitt_sim_bridge.hil import HilError, run_hil
from sitt_training.envs.quadrotor import QuadrotorVecEnv
from sitt_training.seeds import TEST_SEED

REPO = Path(__file__).resolve().parents[1]
TARGET_STEPS_PER_S = 200.0




def simulation_alone(steps: int) -> float:
    """Steps/s of one drone's step + render, as the bridge does them."""
    env = QuadrotorVecEnv(num_envs=1, seed=TEST_SEED, episode_steps=steps + 1)
    env.set_student_mask(np.zeros(1, dtype=bool))
    ids = np.zeros(1, dtype=np.int64)
    env.reset_to(0)
    env.render_images(ids)
    action = np.zeros((1, 4))
    t0 = time.perf_counter()
    for _ in range(steps):
        env.render_images(ids)
        env.odometry(ids)
        env.step(action)
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="exported student.onnx (default: an "
                        "untrained student with the quadrotor preset's network)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--episode-steps", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                          str(REPO / "config" / "fastdds_localhost.xml"))
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp) / "exported")
        alone = simulation_alone(args.episodes * args.episode_steps)
        try:
            hil = run_hil(model.resolve(), args.episodes, "lockstep",
                          episode_steps=args.episode_steps, timeout_s=600,
                          log_dir=Path(tmp) / "logs")
        except HilError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print(f"`python bench/hil_speed.py {' '.join(sys.argv[1:])}`".replace("  ", " "))
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at the end; model "
          f"{args.model or 'untrained, quadrotor preset network'}\n")
    print("| measurement | episodes x steps | steps | wall s | steps/s | note |")
    print("|---|---|---|---|---|---|")
    print(f"| simulation alone (step + render, 1 drone) | - | "
          f"{args.episodes * args.episode_steps} | - | {alone:.0f} | no ROS |")
    met = "met" if hil["steps_per_s"] >= TARGET_STEPS_PER_S else "NOT met"
    print(f"| HIL lockstep (bridge + policy node) | {args.episodes} x {args.episode_steps} | "
          f"{hil['steps']} | {hil['wall_s']:.2f} | {hil['steps_per_s']:.0f} | target "
          f">= {TARGET_STEPS_PER_S:.0f}: {met}; timeouts {hil['action_timeouts']}, "
          f"sync timeouts {hil['sync_timeouts']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
