"""Offline replay throughput (``sitt-replay``) on a generated bag.

    python bench/replay_speed.py                 # 1000 frames = 4000 messages, MCAP + sqlite3
    python bench/replay_speed.py --frames 3000 --model runs/<run>/exported/student.onnx

The bag is a QuadrotorVecEnv rollout answered by the student (camera 64x64 rgb8 / bgr8 /
padded / mono8 in turn, odometry, command, action per frame; the tests' generator). The
replay reads the bag, builds every observation with the policy node's code, runs the
model in batches and computes the action error; throughput = messages read / (that time),
model loading excluded (the median of ``--repeats`` runs). The CLI's end-to-end wall
time (process start, imports, model load, report) is a separate column. Target: >= 2000
messages/s. Prints a Markdown table with the command line above it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' bag generator (bag_synth.py)
sys.path.insert(0, str(REPO / "bench"))

from bag_synth import write_rollout_bag  # noqa: E402
from policy_latency import default_model  # noqa: E402

from sitt_sim_bridge import replay  # noqa: E402

TARGET = 2000.0


def run(bag: Path, model: Path, repeats: int) -> dict:
    rates, reports = [], []
    for _ in range(repeats):
        args = replay.parse_args(["--bag", str(bag), "--model", str(model)])
        report, code = replay.replay(args)
        assert code == 0, report["warnings"]
        rates.append(report["throughput"]["messages_per_s"])
        reports.append(report)
    report = reports[rates.index(statistics.median(rates))] if repeats % 2 else reports[-1]
    cli = [str(Path(sys.executable).parent / "sitt-replay"), "--bag", str(bag),
           "--model", str(model), "--json"]
    t0 = time.perf_counter()
    subprocess.run(cli, check=True, capture_output=True)
    return {"report": report, "msgs_s": statistics.median(rates),
            "cli_s": time.perf_counter() - t0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1000, help="camera frames (x4 messages)")
    parser.add_argument("--model", type=Path, help="exported student.onnx (default: an "
                        "untrained student with the quadrotor preset's network)")
    parser.add_argument("--storages", nargs="+", default=["mcap", "sqlite3"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp) / "model")
        for storage in args.storages:
            bag = Path(tmp) / f"bag_{storage}"
            write_rollout_bag(bag, model, args.frames, storage=storage)
            size_mb = sum(f.stat().st_size for f in bag.iterdir()) / 1e6
            rows.append((storage, size_mb, run(bag, model, args.repeats)))

    print(f"`python bench/replay_speed.py {' '.join(sys.argv[1:])}`".replace(" `", "`"))
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"average {os.getloadavg()[0]:.2f} at the end; model "
          f"{args.model or 'untrained, quadrotor preset network'}\n")
    header = ["storage", "bag MB", "messages", "frames", "coverage", "max error",
              "msgs/s", "frames/s", "CLI wall s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for storage, size_mb, r in rows:
        rep = r["report"]
        t = rep["throughput"]
        print(f"| {storage} | {size_mb:.1f} | {t['messages']} | {rep['frames']['replayed']} | "
              f"{rep['coverage']:.0%} | {rep['action_error']['max_normalised']:.2g} | "
              f"{r['msgs_s']:.0f} | {r['msgs_s'] * t['frames'] / t['messages']:.0f} | "
              f"{r['cli_s']:.2f} |")
    worst = min(r["msgs_s"] for *_, r in rows)
    print(f"\n- offline replay >= {TARGET:.0f} msgs/s: "
          f"{'met' if worst >= TARGET else 'NOT met'} (slowest {worst:.0f} msgs/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
