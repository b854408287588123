"""Ship a run's student as the project's pretrained model: one small directory in git.

    python bench/ship_model.py runs/bench_quadrotor/sitt_s0 --out models/quadrotor_sitt
    python bench/ship_model.py RUN_DIR --checkpoint RUN_DIR/model_600.pt --out models/NAME
    python bench/ship_model.py RUN_DIR --checkpoint best --trained-commit 3521392 --out ...

The directory holds the run's resolved ``config.yaml``, ONE checkpoint named
``model_<iter>.pt`` (also for the validation-best networks, ``--checkpoint best``), so
``load_run`` / ``sitt-eval`` / ``sitt-export`` take the directory like a run directory, and
``PROVENANCE.md`` + ``provenance.json``: the source run and checkpoint, its iteration and
env steps, the git commit, the source run's test evaluations of that checkpoint
(``test_*.json``, when there are any) and the command that retrains it from scratch and
ships it again.

The checkpoint keeps the networks and the run's counters only: the optimisers, the
environment state, the paired buffer and the random streams are left out (about a third
of the size), so the shipped model evaluates and exports but cannot be resumed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from sitt_training.cli import load_run
from sitt_training.config import ConfigError, save_config
from sitt_training.trainer import BEST_MODEL, EVAL_STATE_KEYS, checkpoints

REPO = Path(__file__).resolve().parents[1]
# What load_run reads from a checkpoint, then two small entries that say what it is.
REQUIRED = ("policy", "iteration", "env_steps", "student_samples", "wall_time")
KEEP = EVAL_STATE_KEYS
MAX_BYTES = 5 * 1024 * 1024


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


def _display(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _evaluations(run_dir: Path, checkpoint: Path) -> list[dict[str, Any]]:
    """The run's own test evaluations (``sitt-eval --json`` output) of this checkpoint."""
    found = []
    for path in sorted(run_dir.glob("test_*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(report, dict) or "student_success" not in report:
            continue
        if Path(str(report.get("checkpoint", ""))).name != checkpoint.name:
            continue
        found.append({"file": path.name, "episodes": report.get("student", {}).get("episodes"),
                      "eval_seed": report.get("eval_seed"),
                      "teacher_success": report.get("teacher_success"),
                      "student_success": report.get("student_success")})
    return found


def ship(run_dir: Path, out: Path, checkpoint: Path | str | None = None,
         command: str = "", trained_commit: str = "") -> dict[str, Any]:
    """Write the model directory ``out`` from ``run_dir``; returns the provenance.
    ``checkpoint``: a path, "best" (the validation-best networks) or None (the newest);
    ``command``: the command line that shipped it (recorded as such); ``trained_commit``:
    the commit the run was trained at, when known (runs do not record it)."""
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir}: no config.yaml; is it a run directory?")
    if checkpoint is not None and str(checkpoint) == "best":
        checkpoint = run_dir / BEST_MODEL
    source = checkpoint or (checkpoints(run_dir) or [None])[-1]
    if source is None:
        raise FileNotFoundError(f"{run_dir}: no model_<iter>.pt checkpoint")
    source = Path(source)
    if not source.is_file() and (run_dir / source).is_file():
        source = run_dir / source  # --checkpoint model_800.pt
    cfg, _, meta = load_run(run_dir, source)  # fails here when the run does not load
    state = torch.load(source, weights_only=False)
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"{source}: checkpoint has no {', '.join(missing)}")
    written = dt.datetime.fromtimestamp(source.stat().st_mtime, dt.UTC)

    if out.resolve() == run_dir.resolve():
        raise ValueError("--out must differ from the run directory")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_config(cfg, tmp / "config.yaml")
    shipped_name = f"model_{meta['iteration']}.pt"
    model = tmp / shipped_name
    torch.save({k: state[k] for k in KEEP if k in state}, model)
    if model.stat().st_size > MAX_BYTES:
        raise ValueError(f"{model.name} is {model.stat().st_size / 1e6:.1f} MB, over the "
                         f"{MAX_BYTES / 2**20:.0f} MiB meant for git")

    out_arg = _display(out)
    repro_run = f"runs/{out.name}_repro"
    repro_checkpoint = "best" if source.name == BEST_MODEL else f"{repro_run}/{source.name}"
    reproduce = (f"sitt-train --config {shlex.quote(out_arg)}/config.yaml --out {repro_run} "
                 f"&& python bench/ship_model.py {repro_run} --checkpoint "
                 f"{repro_checkpoint} --out {shlex.quote(out_arg)}")
    commit = _git("rev-parse", "HEAD")
    provenance = {
        "task": cfg.task.name, "method": cfg.method.name, "seed": cfg.train.seed,
        "source_run": _display(run_dir), "source_checkpoint": source.name,
        "checkpoint": shipped_name,
        "checkpoint_sha256": _sha256(model),
        "iteration": meta["iteration"], "iterations_in_config": cfg.train.iterations,
        "env_steps": meta["env_steps"], "student_samples": meta["student_samples"],
        "train_wall_time_s": meta["wall_time"],
        "checkpoint_written_utc": written.strftime("%Y-%m-%dT%H:%M:%SZ"),
        # The run does not record the commit it was trained at; this is the newest commit
        # before its checkpoint was written.
        "git_commit_before_checkpoint": _git("log", "-1", "--format=%H",
                                             f"--before={written.isoformat()}"),
        "git_commit_trained": _git("rev-parse", trained_commit) if trained_commit else "",
        "git_commit_shipped": commit,
        "git_worktree_dirty_when_shipped": bool(_git("status", "--porcelain",
                                                     "--untracked-files=no")),
        "shipped_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "shipped_with": command or (f"ship({_display(run_dir)!r}, {out_arg!r}, "
                                    f"{source.name!r})"),
        "reproduce": reproduce,
        "source_evaluations": _evaluations(run_dir, source),
    }
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    (tmp / "PROVENANCE.md").write_text(provenance_md(provenance))
    load_run(tmp)  # the shipped directory loads as a run directory
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return provenance


def provenance_md(p: dict[str, Any]) -> str:
    lines = [
        f"# Shipped student: {p['task']} / {p['method']}, training seed {p['seed']}",
        "",
        "Written by `bench/ship_model.py` (do not edit by hand; `provenance.json` holds the "
        "same facts).",
        "",
        f"- source run: `{p['source_run']}`, checkpoint `{p['source_checkpoint']}` "
        f"(iteration {p['iteration']} of the config's {p['iterations_in_config']}, "
        f"{p['env_steps']:,} env steps, {p['student_samples']:,} student samples, "
        f"{p['train_wall_time_s']:.0f} s of training)",
        f"- checkpoint written {p['checkpoint_written_utc']}; "
        + (f"trained at commit `{p['git_commit_trained']}`" if p["git_commit_trained"] else
           f"the run does not record its git commit, the newest commit before it was "
           f"`{p['git_commit_before_checkpoint']}`"),
        f"- shipped {p['shipped_utc']} at commit `{p['git_commit_shipped']}`"
        f"{' (work tree had uncommitted changes)' if p['git_worktree_dirty_when_shipped'] else ''}"
        f" with `{p['shipped_with']}`",
        f"- `{p['checkpoint']}` sha256 `{p['checkpoint_sha256']}`: networks and counters "
        "only (no optimiser, environment, buffer or random state), so it evaluates "
        "(`sitt-eval`) and exports (`sitt-export`) but cannot be resumed",
    ]
    for e in p["source_evaluations"]:
        lines.append(f"- the source run's test evaluation `{e['file']}`: {e['episodes']} "
                     f"episodes on eval seed {e['eval_seed']}, teacher success "
                     f"{e['teacher_success']:.3f}, student success {e['student_success']:.3f}")
    lines += [
        "",
        "Reproduce (trains the same config and seed from scratch, then ships the same "
        "checkpoint choice here; bitwise equality with this checkpoint is not checked):",
        "",
        "```bash",
        p["reproduce"],
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", help="a checkpoint file, or 'best' (the "
                        "validation-best networks); default: the newest model_<iter>.pt")
    parser.add_argument("--trained-commit", default="",
                        help="the git commit the run was trained at, to record")
    parser.add_argument("--out", type=Path, required=True, help="e.g. models/quadrotor_sitt")
    args = parser.parse_args()
    try:
        checkpoint = None if args.checkpoint is None else (
            "best" if args.checkpoint == "best" else Path(args.checkpoint))
        p = ship(args.run_dir, args.out, checkpoint, "python bench/ship_model.py "
                 + " ".join(map(shlex.quote, sys.argv[1:])), args.trained_commit)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"shipped {p['source_run']}/{p['source_checkpoint']} as {p['checkpoint']} "
          f"(iteration {p['iteration']}, {p['env_steps']:,} env steps) to {args.out} "
          f"({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
