"""The deployment path end to end on the shipped quadrotor student (the first half of
``make demo``).

    python bench/mission_demo.py                          # models/quadrotor_sitt, 8 episodes
    python bench/mission_demo.py --episodes 32 --model-dir runs/<run> --out runs/mine

Four stages, each timed:

1. export the student of the shipped checkpoint (``bench/ship_model.py`` wrote it) to ONNX
   with its policy contract (``sitt-export``'s code), into OUT/exported;
2. evaluate that student in process (torch, deterministic actions, ``sitt-eval``'s code)
   on the first N test layouts (``TEST_SEED``);
3. fly the same N layouts through ROS: the sim bridge and the unchanged policy node as two
   processes over DDS on loopback, lockstep (``sitt-hil``'s code), the bridge recording
   every topic into the rosbag2 bag OUT/bag;
4. replay that bag offline through the exported student (``sitt-replay``'s code) and
   compare its actions with the ones the node published.

Then one summary: student success in process and over ROS, the episodes with the same
outcome in both, the replay's max action error and the time of each stage. Everything is
also written to OUT/summary.json. Exit codes: 0 done, 1 a stage failed (or the replay's
max action error is above ``--max-action-error``), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sitt_policy_node.contract import ContractError
from sitt_sim_bridge.bags import BagError
from sitt_sim_bridge.hil import HilError, run_hil
from sitt_sim_bridge.replay import ReplayError
from sitt_sim_bridge.replay import parse_args as replay_args
from sitt_sim_bridge.replay import replay as run_replay
from sitt_training.cli import load_run
from sitt_training.config import ConfigError
from sitt_training.envs import make_task
from sitt_training.evaluation import evaluate
from sitt_training.export import export_student
from sitt_training.seeds import TEST_SEED

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = REPO / "models" / "quadrotor_sitt"
EPISODE_LINE = re.compile(r"episode (\d+): success (True|False)")
STAGES = ("export", "in process", "HIL", "replay")


class StageError(RuntimeError):
    """A stage failed; the message says which and why."""


class Progress:
    """Numbered stage lines with their wall times."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.start = time.perf_counter()

    def begin(self, stage: str, what: str) -> float:
        print(f"[{STAGES.index(stage) + 1}/{len(STAGES)}] {stage}: {what}", flush=True)
        return time.perf_counter()

    def end(self, stage: str, t0: float, result: str) -> None:
        self.times[stage] = time.perf_counter() - t0
        print(f"      done in {self.times[stage]:.1f} s: {result}", flush=True)

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


def _show(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _episodes(n: int) -> str:
    return f"{n} episode{'s' if n != 1 else ''}"


def _provenance(model_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    shipped = model_dir / "provenance.json"
    base = json.loads(shipped.read_text()) if shipped.is_file() else {}
    return {"model_dir": str(model_dir.resolve()), "checkpoint": Path(meta["checkpoint"]).name,
            "iteration": meta["iteration"], "env_steps": meta["env_steps"],
            "source_run": base.get("source_run", str(model_dir)),
            "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def hil_with_progress(model: Path, episodes: int, episode_steps: int, bag: Path,
                      log_dir: Path, timeout_s: float) -> dict[str, Any]:
    """``run_hil`` in a thread; a bar follows the episodes the bridge logs as they end."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["summary"] = run_hil(model, episodes, "lockstep", seed=TEST_SEED,
                                        record=str(bag), episode_steps=episode_steps,
                                        timeout_s=timeout_s, log_dir=log_dir)
        except BaseException as err:  # noqa: BLE001 (re-raised in the main thread)
            result["error"] = err

    log = log_dir / "sim_bridge.log"
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    with tqdm(total=episodes, desc="      HIL episodes", unit="ep", file=sys.stdout,
              dynamic_ncols=True, mininterval=0.5) as bar:
        done = successes = 0
        while worker.is_alive():
            worker.join(0.5)
            try:
                ended = EPISODE_LINE.findall(log.read_text(errors="replace"))
            except OSError:
                continue
            if len(ended) > done:
                successes = sum(s == "True" for _, s in ended)
                bar.update(len(ended) - done)
                done = len(ended)
                bar.set_postfix(successes=successes)
    if "error" in result:
        raise result["error"]
    return result["summary"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    exported, bag, logs = out / "exported", out / "bag", out / "hil_logs"
    for old in (exported, bag, logs):  # this script's own outputs from a previous run
        shutil.rmtree(old, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    n = args.episodes
    # One torch thread: the batch is small, and with 2 threads on 2 busy cores (a training
    # running) the in-process evaluation took about 4x as long as with 1.
    torch.set_num_threads(1)

    # 1. export
    t0 = progress.begin("export", f"student of {_show(args.model_dir)} to ONNX")
    try:
        cfg, policy, meta = load_run(args.model_dir)
        env = make_task(cfg.task.name, 1, 0, **cfg.task.kwargs)
        model = export_student(policy, env, exported, _provenance(args.model_dir, meta))
        env.close()
    except (ConfigError, ContractError, FileNotFoundError, ValueError) as err:
        raise StageError(f"export: {err}") from err
    progress.end("export", t0, f"{_show(model)} ({cfg.task.name} / {cfg.method.name}, "
                               f"{Path(meta['checkpoint']).name}, iteration {meta['iteration']})")

    # 2. in process
    length = f"{args.episode_steps} steps" if args.episode_steps else "the task's length"
    t0 = progress.begin("in process", f"{_episodes(n)} on test seed {TEST_SEED} ({length}), "
                                      "torch, deterministic actions")
    task_kwargs = dict(cfg.task.kwargs)
    if args.episode_steps:  # as the bridge shortens them
        task_kwargs["episode_steps"] = args.episode_steps
    try:
        inproc = evaluate(policy, cfg.task.name, task_kwargs, "student", n, TEST_SEED)
    except ValueError as err:
        raise StageError(f"in process: {err}") from err
    ref_success = inproc.per_episode["success"] > 0.5
    progress.end("in process", t0, f"student success {inproc.success:.3f} "
                                   f"({int(ref_success.sum())} of {n})")

    # 3. HIL
    t0 = progress.begin("HIL", f"the same {_episodes(n)}: sim bridge + policy node over DDS "
                               f"(loopback), lockstep, recording {_show(bag)}")
    try:
        hil = hil_with_progress(model.resolve(), n, args.episode_steps, bag.resolve(),
                                logs, args.timeout)
    except HilError as err:
        raise StageError(f"HIL: {err}") from err
    per = sorted(hil["per_episode"], key=lambda e: e["episode"])
    hil_success = np.array([e["success"] for e in per], dtype=bool)
    if len(per) != n:
        raise StageError(f"HIL: {len(per)} episode results for {n} episodes")
    progress.end("HIL", t0, f"student success {hil_success.mean():.3f} "
                            f"({int(hil_success.sum())} of {n}), {hil['steps']} steps at "
                            f"{hil['steps_per_s']:.0f} steps/s, ROS_DOMAIN_ID "
                            f"{hil['domain_id']}, {hil['safe_actions']} safe actions")

    # 4. replay
    t0 = progress.begin("replay", f"{_show(bag)} offline through {model.name}")
    plot = out / "replay_actions.png"
    try:
        report, code = run_replay(replay_args(
            ["--bag", str(bag), "--model", str(model), "--plot", str(plot),
             "--fail-above", repr(args.max_action_error)]))
    except (ReplayError, BagError) as err:
        raise StageError(f"replay: {err}") from err
    if code == 2 or "action_error" not in report:
        raise StageError(f"replay: nothing compared ({'; '.join(report['warnings'])})")
    err = report["action_error"]["max_normalised"]
    frames = report["frames"]
    progress.end("replay", t0, f"max action error {err:.3g} (normalised) over "
                               f"{frames['compared']} of {frames['total']} frames, "
                               f"{report['throughput']['messages_per_s']:.0f} messages/s; "
                               f"plot {_show(plot)}")

    summary = {
        "model_dir": _show(args.model_dir), "task": cfg.task.name, "method": cfg.method.name,
        "checkpoint": Path(meta["checkpoint"]).name, "iteration": meta["iteration"],
        "episodes": n, "episode_steps": args.episode_steps or None, "seed": TEST_SEED,
        "inproc_success": inproc.success, "inproc_successes": int(ref_success.sum()),
        "hil_success": float(hil_success.mean()), "hil_successes": int(hil_success.sum()),
        "same_outcome": int((hil_success == ref_success).sum()),
        "same_length": int((np.array([e["length"] for e in per]) == inproc.per_episode["l"])
                           .sum()),
        "hil_steps": hil["steps"], "hil_steps_per_s": hil["steps_per_s"],
        "hil_safe_actions": hil["safe_actions"],
        "replay_max_action_error": err, "replay_frames_compared": frames["compared"],
        "replay_frames": frames["total"], "replay_ok": code == 0,
        "max_action_error_allowed": args.max_action_error,
        "bag": _show(bag), "onnx": _show(model), "replay_plot": report.get("plot"),
        "stage_s": dict(progress.times), "total_s": progress.total,
        "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summary_text(s: dict[str, Any]) -> str:
    n = s["episodes"]
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in s["stage_s"].items())
    return "\n".join([
        f"mission demo: {s['task']} / {s['method']} student ({s['model_dir']}, "
        f"{s['checkpoint']}), {_episodes(n)} on test seed {s['seed']}",
        "| student success in process | student success over ROS (HIL) | episodes with the "
        "same outcome | replay max action error | four stages |",
        "|---|---|---|---|---|",
        f"| {s['inproc_success']:.3f} ({s['inproc_successes']}/{n}) "
        f"| {s['hil_success']:.3f} ({s['hil_successes']}/{n}) | {s['same_outcome']}/{n} "
        f"| {s['replay_max_action_error']:.3g} ({s['replay_frames_compared']}/"
        f"{s['replay_frames']} frames) | {s['total_s']:.0f} s |",
        f"stages: {stages} ({s['cpus']} cores, load average {s['load_average_1min']:.2f})",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR,
                        help="a shipped model (bench/ship_model.py) or run directory")
    parser.add_argument("--episodes", type=int, default=8, help="test episodes (both ways)")
    parser.add_argument("--episode-steps", type=int, default=0,
                        help="shorter episodes (control steps); 0: the task's own")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "demo_mission")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="give up on the HIL stage after this many seconds")
    parser.add_argument("--max-action-error", type=float, default=1e-5,
                        help="exit 1 when the replay's max normalised action error is above")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.episode_steps < 0:
        parser.error("--episodes must be >= 1 and --episode-steps >= 0")
    try:
        summary = run(args)
    except StageError as err:
        print(f"mission demo: error: {err}", file=sys.stderr)
        return 1
    print()
    print(summary_text(summary), flush=True)
    if not summary["replay_ok"]:
        print(f"mission demo: error: replay max action error "
              f"{summary['replay_max_action_error']:.3g} > {args.max_action_error:g}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
