"""HIL success of trained students next to their in-process success, episode by episode.

    python bench/hil_success.py runs/bench_quadrotor/sitt_s0 --episodes 32
    python bench/hil_success.py runs/bench_quadrotor/sitt_s0 runs/bench_quadrotor/bc_s0 \
        --checkpoint best --episodes 64 --write-docs

For each run directory: its student (the newest checkpoint, or the validation-best networks
with ``--checkpoint best``, as ``sitt-eval`` takes it) is exported as ``sitt-export`` does,
into a temporary directory, evaluated in process (``evaluate(..., "student")``, the numbers
``sitt-eval`` prints), then flown through ROS by ``sitt-hil`` in lockstep mode: the sim
bridge and the unchanged ``policy_node`` as two processes over DDS on loopback. Episode k of
both flies the same layout (the test seeds), so they are compared episode by episode:
success, return and length.

Prints a Markdown table; ``--write-docs`` also writes it into docs/results.md.
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
from results_doc import replace_section

from sitt_sim_bridge.hil import HilError, run_hil
from sitt_training.cli import load_run
from sitt_training.evaluation import evaluate
from sitt_training.export import export_run
from sitt_training.seeds import TEST_SEED


def compare(run_dir: Path, episodes: int, checkpoint: str | None) -> dict:
    cfg, policy, meta = load_run(run_dir, checkpoint)
    t0 = time.perf_counter()
    inproc = evaluate(policy, cfg.task.name, cfg.task.kwargs, "student", episodes, TEST_SEED)
    inproc_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        model = export_run(run_dir, checkpoint, Path(tmp) / "exported")
        hil = run_hil(model.resolve(), episodes, "lockstep", seed=TEST_SEED, timeout_s=3600,
                      log_dir=Path(tmp) / "logs")
    per = sorted(hil["per_episode"], key=lambda e: e["episode"])
    hil_success = np.array([e["success"] for e in per], dtype=bool)
    hil_return = np.array([e["return"] for e in per])
    hil_length = np.array([e["length"] for e in per])
    ref = inproc.per_episode
    return {
        "run": str(run_dir), "method": cfg.method.name, "seed": cfg.train.seed,
        "checkpoint": Path(meta["checkpoint"]).name, "episodes": episodes,
        "inproc_success": inproc.success, "hil_success": float(hil_success.mean()),
        "success_agree": int((hil_success == (ref["success"] > 0.5)).sum()),
        "length_agree": int((hil_length == ref["l"]).sum()),
        "max_return_diff": float(np.abs(hil_return - ref["r"]).max()),
        "hil_steps_per_s": hil["steps_per_s"], "inproc_s": inproc_s,
        "safe_actions": hil["safe_actions"], "action_timeouts": hil["action_timeouts"],
    }


def table(rows: list[dict]) -> str:
    lines = ["| run | checkpoint | episodes | student success in process | student success HIL | "
             "episodes with the same outcome | same length | max return difference | "
             "HIL steps/s | safe actions |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} seed {r['seed']} | {r['checkpoint']} | {r['episodes']} "
            f"| {r['inproc_success']:.3f} "
            f"| {r['hil_success']:.3f} | {r['success_agree']} / {r['episodes']} "
            f"| {r['length_agree']} / {r['episodes']} | {r['max_return_diff']:.2g} "
            f"| {r['hil_steps_per_s']:.0f} | {r['safe_actions']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="quadrotor run directories")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--checkpoint", help="'best': the validation-best networks "
                        "(best_model.pt); default: the newest model_<iter>.pt")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        try:
            rows.append(compare(run, args.episodes, args.checkpoint))
        except (HilError, FileNotFoundError) as err:
            print(f"error: {run}: {err}", file=sys.stderr)
            return 1
        print(f"  {run}: in process {rows[-1]['inproc_success']:.3f}, "
              f"HIL {rows[-1]['hil_success']:.3f}", flush=True)
    command = f"python bench/hil_success.py {' '.join(sys.argv[1:])}"
    text = table(rows)
    print(f"\n`{command}`\n\n{text}")
    if args.write_docs:
        replace_section("hil_success", [
            "## HIL success of trained students (quadrotor)", "",
            f"Command: `{command}` ({time.strftime('%Y-%m-%d')}; "
            f"{platform.machine()}, {os.cpu_count()} cores). Lockstep mode; episode k of "
            "both evaluations flies the same test layout, so outcomes are compared "
            "episode by episode.", "", text])
    return 0


if __name__ == "__main__":
    sys.exit(main())
