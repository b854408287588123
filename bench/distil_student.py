"""Can a trained teacher be imitated from another camera? Distil a fresh student from a
run's fixed teacher under changed task settings, and test both.

    python bench/distil_student.py runs/arm/bc_s0 runs/arm/sitt_s0 \\
        --set 'task.kwargs.camera_eye=[-0.25,0.35,0.5]' --iterations 200 --out runs/distil

Why: SITT's claim is about the teacher's *behaviour*: among the teachers that solve a task,
it finds one whose path the camera can follow. Co-training mixes that with everything else
a run does (the teacher still learning, the student's start). Here the teacher is frozen
(its networks and observation normaliser as trained, validation-best unless
``--checkpoint``), and a new student learns from it by behaviour cloning (``bc``'s loss,
on the frozen teacher's roll-outs) with the same presets as training, except the
``--set`` overrides; so a camera moved after training asks which of the teachers' paths it
can still see, while the teacher's success is unchanged.

Each source run gives ``OUT/<source folder name>``, an ordinary run directory (``bc``,
the overrides in its ``config.yaml``; ``sitt-eval`` and ``sitt-export`` read it); an
interrupted one continues where it stopped, a finished one is only read back. Prints a
Markdown table of the held-out test success (``evaluate_run``, as ``sitt-eval``) of the
teacher and the new student; ``--json`` keeps it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from sitt_training.cli import evaluate_run
from sitt_training.config import Config, ConfigError, load_config
from sitt_training.methods import METHOD_CLASSES
from sitt_training.trainer import BEST_MODEL, Trainer, checkpoints

# Set by this script, not by --set: the loss is behaviour cloning, the networks come from
# the source run.
FIXED_KEYS = ("method.name", "train.iterations")


class FixedTeacherTrainer(Trainer):
    """``Trainer`` without the teacher's update: roll-outs of the frozen teacher, then the
    student's update; only the student's normaliser follows the data."""

    def iterate(self) -> dict[str, float]:
        start = time.perf_counter()
        self.rotate_student_block()
        stats = self.collect()
        rollout_time = time.perf_counter() - start
        stats.update(self.method.update_student(self.buffer, self.generator))
        if self._student_states:
            self.policy.update_student_normalizers(torch.cat(self._student_states))
        self._student_states = []
        steps = self.cfg.ppo.rollout_steps * self.cfg.task.num_envs
        return self.finish_iteration(stats, start, steps, rollout_time)


def distil_config(source: Path, overrides: list[str], iterations: int) -> Config:
    """The source run's config with the overrides, as a ``bc`` run of ``iterations``."""
    if not (source / "config.yaml").is_file():
        raise FileNotFoundError(f"{source}: no config.yaml; is it a run directory?")
    method = load_config(source / "config.yaml").method.name
    if method not in METHOD_CLASSES or \
            METHOD_CLASSES[method].network_options != METHOD_CLASSES["bc"].network_options:
        raise ValueError(f"{source}: a {method} run; its networks are not bc's (a PPO run "
                         "of sitt, noalign, bc or dagger is needed)")
    for text in overrides:
        if text.split("=", 1)[0].strip() in FIXED_KEYS:
            raise ConfigError(f"--set {text}: {', '.join(FIXED_KEYS)} are set by this script")
    return load_config(source / "config.yaml", [*overrides, "method.name=bc",
                                                f"train.iterations={iterations}"])


def source_checkpoint(source: Path, checkpoint: str) -> Path:
    """The source's checkpoint file: ``best``, ``last`` or a path."""
    if checkpoint == "last":
        found = checkpoints(source)
        if not found:
            raise FileNotFoundError(f"{source}: no model_<iter>.pt checkpoint")
        return found[-1]
    path = source / BEST_MODEL if checkpoint == "best" else Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{source}: no checkpoint {path.name}")
    return path


def start_from_teacher(trainer: Trainer, path: Path) -> None:
    """Load the source's networks from ``path``, then put the new student encoder back to
    its fresh initialisation: the teacher (encoder, decoder, normaliser, critic) is the
    source's."""
    fresh = {k: v.clone() for k, v in trainer.policy.student_encoder.state_dict().items()}
    trainer.policy.load_state_dict(torch.load(path, weights_only=False)["policy"])
    trainer.policy.student_encoder.load_state_dict(fresh)


def distil(source: Path, out: Path, overrides: list[str], iterations: int, checkpoint: str,
           episodes: int, show_progress: bool = True) -> dict[str, Any]:
    """Train (or finish) the distilled student of one source run; its test report."""
    cfg = distil_config(source, overrides, iterations)
    run_dir = out / source.name
    saved = run_dir / "config.yaml"
    if saved.is_file() and load_config(saved).to_dict() != cfg.to_dict():
        raise ValueError(f"{run_dir} holds a run with other settings; remove it or use --out")
    done = checkpoints(run_dir)
    if not done or int(done[-1].stem.split("_")[1]) < iterations:
        path = source_checkpoint(source, checkpoint)  # before building the environments
        trainer = FixedTeacherTrainer(cfg, run_dir, show_progress=show_progress)
        if trainer.resume() is None:
            start_from_teacher(trainer, path)
        if trainer.train()["status"] != "finished":
            raise RuntimeError(f"{run_dir}: interrupted; run the same command to continue")
    report = evaluate_run(run_dir, episodes,
                          checkpoint=Path("best") if (run_dir / BEST_MODEL).is_file() else None)
    return {"source": str(source), "source_method": load_config(source / "config.yaml")
            .method.name, **report}


def table(reports: list[dict[str, Any]], overrides: list[str]) -> str:
    lines = [f"Students distilled from frozen teachers with {' '.join(overrides) or 'no changes'}",
             "", "| source run | method | teacher success | distilled student | gap |",
             "|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {r['source']} | {r['source_method']} | {r['teacher_success']:.3f} | "
                     f"{r['student_success']:.3f} | {r['gap']:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="source run directories")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override for the new student's "
                        "training, e.g. task.kwargs.camera_eye=[...] (repeatable)")
    parser.add_argument("--iterations", type=int, default=200, help="distillation iterations")
    parser.add_argument("--out", type=Path, required=True, help="folder for the new runs")
    parser.add_argument("--checkpoint", default="best",
                        help="the source's networks: best (default), last, or a .pt path")
    parser.add_argument("--episodes", type=int, default=200, help="test episodes")
    parser.add_argument("--json", type=Path, help="also write the reports as JSON here")
    args = parser.parse_args(argv)
    if args.iterations <= 0 or args.episodes <= 0:
        parser.error("--iterations and --episodes must be > 0")
    try:
        reports = [distil(run, args.out, args.overrides, args.iterations, args.checkpoint,
                          args.episodes) for run in args.runs]
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"distil_student: {error}", file=sys.stderr)
        return 2
    print(table(reports, args.overrides))
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
