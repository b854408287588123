"""Does the student use its camera? Its test success with its own images, and with the
images taken away.

    python bench/vision_ablation.py runs/bench_quadrotor/sitt_s0 runs/bench_quadrotor/bc_s0
    python bench/vision_ablation.py runs/arm/*_s0 --episodes 100 --checkpoint best

Why: the teacher-student asymmetry (METHODS.md) is only real if the student needs the
image to succeed. A student that still flies a blind manoeuvre well, e.g. a fixed dodge
around the pillar on its commanded path, shows the task leaves it little to see, and then
neither BC's shortfall nor SITT's gain can show. Each run's student (the validation-best
networks unless ``--checkpoint`` says otherwise) flies the held-out test episodes
(``evaluate(..., TEST_SEED)``, as ``sitt-eval``) three times, with deterministic actions:

* ``camera``: its own images, as deployed;
* ``shuffled``: at every step each live episode gets the image of another live episode
  (the batch rolled by one among the episodes still running), so the images keep their
  look and statistics but carry nothing about this episode's scene; a step with a single
  live episode gets the blank image below;
* ``blank``: every image replaced by the batch's mean colour, a uniform frame.

The proprioceptive part of the observation is never changed. ``--steps A:B`` changes the
images only at the episodes' steps A to B-1 (``0:12``: the first 12; ``12:``: from step 12
on), to ask *when* in an episode the student needs its camera, e.g. whether an arm that
hides the handle while it reaches costs its student anything. Prints a Markdown table
(success per variant and the drop from ``camera`` to ``shuffled``); ``--json`` keeps it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sitt_training.cli import load_run
from sitt_training.evaluation import TEST_SEED, EvalResult, deterministic_actions, evaluate

VARIANTS = ("camera", "shuffled", "blank")


def live_rows(images: np.ndarray) -> np.ndarray:
    """Rows with a rendered image: the env leaves the rows of finished or non-rendering
    episodes all zero, and a rendered camera frame never is."""
    return np.flatnonzero(images.reshape(len(images), -1).any(axis=1))


def blank_images(images: np.ndarray) -> np.ndarray:
    """Every live row replaced by the live rows' mean colour (per channel)."""
    out = images.copy()
    rows = live_rows(images)
    if rows.size:
        colour = images[rows].reshape(-1, images.shape[-1]).mean(axis=0)
        out[rows] = np.round(colour).astype(images.dtype)
    return out


def shuffled_images(images: np.ndarray) -> np.ndarray:
    """Each live row gets the next live row's image (the last gets the first's); with a
    single live row, the blank image."""
    rows = live_rows(images)
    if rows.size < 2:
        return blank_images(images)
    out = images.copy()
    out[rows] = images[np.roll(rows, -1)]
    return out


IMAGE_CHANGES: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "camera": None, "shuffled": shuffled_images, "blank": blank_images}


class AblatedStudent:
    """The student's deterministic actions with its images changed by ``change`` at the
    episodes' steps ``window`` = (first, stop) (stop None: to the end; window None: every
    step). ``evaluate`` starts all episodes of a batch together and calls ``reset()`` then,
    so the call count is the step index."""

    def __init__(self, policy: torch.nn.Module,
                 change: Callable[[np.ndarray], np.ndarray] | None,
                 window: tuple[int, int | None] | None = None) -> None:
        self.policy, self.change, self.window = policy, change, window
        self.step = 0

    def reset(self) -> None:
        self.step = 0

    def __call__(self, student: dict[str, np.ndarray]) -> np.ndarray:
        if self.change is not None and in_window(self.step, self.window):
            student = {**student, "image": self.change(student["image"])}
        self.step += 1
        return deterministic_actions(self.policy, "student", {"student": student})


def in_window(step: int, window: tuple[int, int | None] | None) -> bool:
    if window is None:
        return True
    first, stop = window
    return step >= first and (stop is None or step < stop)


def parse_window(text: str) -> tuple[int, int | None]:
    """``A:B`` (steps A to B-1), ``A:`` (from A on) or ``:B`` (the first B)."""
    bad = argparse.ArgumentTypeError(
        f"--steps wants A:B with 0 <= A < B (either may be left out), got {text!r}")
    first_text, sep, stop_text = text.partition(":")
    try:
        first, stop = int(first_text or 0), int(stop_text) if stop_text else None
    except ValueError:
        raise bad from None
    if not sep or first < 0 or (stop is not None and stop <= first):
        raise bad
    return first, stop


def ablated_success(run_dir: Path, episodes: int, checkpoint: str | None = "best",
                    seed: int = TEST_SEED, variants: tuple[str, ...] = VARIANTS,
                    window: tuple[int, int | None] | None = None) -> dict[str, EvalResult]:
    """The run's student test results per variant of its images (``variants``: which),
    changed at the steps ``window`` only (None: at every step)."""
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown image variants {sorted(unknown)}; known: {VARIANTS}")
    cfg, policy, _ = load_run(run_dir, None if checkpoint is None else Path(checkpoint))
    space = _student_keys(cfg.task.name, cfg.task.kwargs)
    if "image" not in space:
        raise ValueError(f"{run_dir}: the {cfg.task.name} student sees no image")
    return {variant: evaluate(policy, cfg.task.name, cfg.task.kwargs, "student", episodes,
                              seed, student_actions=AblatedStudent(
                                  policy, IMAGE_CHANGES[variant], window))
            for variant in variants}


def _student_keys(task: str, kwargs: dict[str, Any]) -> tuple[str, ...]:
    from sitt_training.envs import make_task

    env = make_task(task, 1, 0, **kwargs)
    space = env.single_observation_space["student"]
    env.close()
    return tuple(getattr(space, "spaces", {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories")
    parser.add_argument("--episodes", type=int, default=256, help="test episodes per variant")
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (validation-best, default), or a model_<iter>.pt path "
                             "for a single run")
    parser.add_argument("--steps", type=parse_window, metavar="A:B",
                        help="change the images only at the episodes' steps A to B-1 "
                             "(default: every step)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.checkpoint != "best" and len(args.runs) > 1:
        parser.error("--checkpoint PATH names one run's checkpoint; give one run")
    torch.set_num_threads(1)
    rows = {}
    if args.steps is not None:
        first, stop = args.steps
        print(f"Images changed at steps {first} to {'the end' if stop is None else stop - 1}"
              " of each episode.\n")
    print(f"| run | student success: {' / '.join(VARIANTS)} | drop camera -> shuffled |")
    print("|---|---|---|")
    for run in args.runs:
        try:
            results = ablated_success(run, args.episodes, args.checkpoint,
                                      window=args.steps)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        rows[str(run)] = success = {v: results[v].success for v in VARIANTS}
        cells = " / ".join(f"{success[v]:.3f}" for v in VARIANTS)
        print(f"| {run} | {cells} | {success['camera'] - success['shuffled']:+.3f} |",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"episodes": args.episodes, "seed": TEST_SEED,
                                         "steps": args.steps,
                                         "checkpoint": args.checkpoint, "runs": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
