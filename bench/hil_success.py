"""HIL success of trained students next to their in-process success, episode by episode.

    python bench/hil_success.py runs/bench_quadrotor/sitt_s0 --episodes 32
    python bench/hil_success.py runs/bench_quadrotor/sitt_s0 runs/bench_quadrotor/bc_s0 \
        --checkpoint best --episodes 64 --write-docs
    python bench/hil_success.py runs/arm_trial_sitt_s0 --checkpoint best --episodes 100

For each run directory: its student (the newest checkpoint, or the validation-best networks
with ``--checkpoint best``, as ``sitt-eval`` takes it) is exported as ``sitt-export`` does,
into a temporary directory, evaluated in process twice (``evaluate(..., "student")``: with
the torch networks, the numbers ``sitt-eval`` prints, and with the exported ONNX graph in
their place), then flown through ROS by ``sitt-hil`` in lockstep mode: the sim bridge and
the unchanged ``policy_node`` as two processes over DDS on loopback. Episode k of all three
flies the same layout (the test seeds), so they are compared episode by episode: success,
return and length. HIL must equal the in-process ONNX run (the same graph on the same
observations); against torch, actions differ by up to ~1e-5, which long closed-loop or
contact-rich episodes can amplify into a different trajectory.

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
from sitt_training.export import export_run, onnx_student_actions
from sitt_training.seeds import TEST_SEED


def compare(run_dir: Path, episodes: int, checkpoint: str | None) -> dict:
    cfg, policy, meta = load_run(run_dir, checkpoint)
    task = (cfg.task.name, cfg.task.kwargs, "student", episodes, TEST_SEED)
    t0 = time.perf_counter()
    torch_run = evaluate(policy, *task)
    inproc_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        model = export_run(run_dir, checkpoint, Path(tmp) / "exported")
        onnx_run = evaluate(policy, *task, student_actions=onnx_student_actions(model))
        hil = run_hil(model.resolve(), episodes, "lockstep", seed=TEST_SEED, timeout_s=3600,
                      log_dir=Path(tmp) / "logs")
    per = sorted(hil["per_episode"], key=lambda e: e["episode"])
    hil_run = {"success": np.array([e["success"] for e in per], dtype=float),
               "r": np.array([e["return"] for e in per]),
               "l": np.array([e["length"] for e in per])}
    return {
        "run": str(run_dir), "task": cfg.task.name, "method": cfg.method.name,
        "seed": cfg.train.seed,
        "checkpoint": Path(meta["checkpoint"]).name, "episodes": episodes,
        "inproc_success": torch_run.success, "onnx_success": onnx_run.success,
        "hil_success": float(hil_run["success"].mean()),
        "vs_onnx": agreement(hil_run, onnx_run.per_episode),
        "vs_torch": agreement(hil_run, torch_run.per_episode),
        "hil_steps_per_s": hil["steps_per_s"], "inproc_s": inproc_s,
        "safe_actions": hil["safe_actions"], "action_timeouts": hil["action_timeouts"],
    }


def agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Episode-by-episode agreement of two evaluations of the same layouts."""
    return {"outcome": int(((a["success"] > 0.5) == (b["success"] > 0.5)).sum()),
            "length": int((a["l"] == b["l"]).sum()),
            "return": float(np.abs(a["r"] - b["r"]).max())}


def table(rows: list[dict]) -> str:
    lines = ["| task | run | checkpoint | episodes | student success: torch / ONNX in process "
             "/ HIL | HIL = ONNX in process: same outcome / same length / max return "
             "difference | HIL = torch in process: same outcome / same length / max return "
             "difference | HIL steps/s | safe actions |",
             "|---|---|---|---|---|---|---|---|---|"]

    def agree(a: dict[str, float], n: int) -> str:
        return f"{a['outcome']} / {a['length']} of {n} / {a['return']:.2g}"
    for r in rows:
        n = r["episodes"]
        lines.append(
            f"| {r['task']} | {r['method']} seed {r['seed']} | {r['checkpoint']} | {n} "
            f"| {r['inproc_success']:.3f} / {r['onnx_success']:.3f} / {r['hil_success']:.3f} "
            f"| {agree(r['vs_onnx'], n)} | {agree(r['vs_torch'], n)} "
            f"| {r['hil_steps_per_s']:.0f} | {r['safe_actions']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path,
                        help="run directories (quadrotor or arm_drawer)")
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
        print(f"  {run}: in process {rows[-1]['inproc_success']:.3f} (torch), "
              f"{rows[-1]['onnx_success']:.3f} (ONNX), HIL {rows[-1]['hil_success']:.3f}",
              flush=True)
    command = f"python bench/hil_success.py {' '.join(sys.argv[1:])}"
    text = table(rows)
    print(f"\n`{command}`\n\n{text}")
    if args.write_docs:
        replace_section("hil_success", [
            "## HIL success of trained students", "",
            f"Command: `{command}` ({time.strftime('%Y-%m-%d')}; "
            f"{platform.machine()}, {os.cpu_count()} cores). Lockstep mode; episode k of "
            "both evaluations flies the same test layout, so outcomes are compared "
            "episode by episode.", "", text])
    return 0


if __name__ == "__main__":
    sys.exit(main())
