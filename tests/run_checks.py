"""Checks shared by the trainers' tests (PPO, L2T, COSIL): exact resume, and the run
directory that ``sitt-train`` writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sitt_training import cli
from sitt_training.trainer import checkpoints


def assert_resume_continues_exactly(make: Callable[..., Any], cfg: Any, tmp_path: Path,
                                    stop_at: int) -> tuple[Any, Any]:
    """Train ``cfg`` straight through; in a second directory stop after ``stop_at``
    iterations, save, and finish with a new trainer resumed from that checkpoint. Both
    runs must end with the same networks. Returns (straight, resumed) for further checks."""
    straight = make(cfg, tmp_path / "straight", show_progress=False)
    straight.train()
    (tmp_path / "split").mkdir()
    first = make(cfg, tmp_path / "split", show_progress=False)
    for _ in range(stop_at):
        first.iterate()
    first.save_checkpoint()
    resumed = make(cfg, tmp_path / "split", show_progress=False)
    assert resumed.resume().name == f"model_{stop_at}.pt"
    resumed.train()
    a, b = straight.policy.state_dict(), resumed.policy.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [p.name for p in checkpoints(tmp_path / "split")] == [
        f"model_{stop_at}.pt", f"model_{cfg.train.iterations}.pt"]
    return straight, resumed


def train_tiny_run(task: str, method: str, run: Path, overrides: list[str]
                   ) -> list[dict[str, Any]]:
    """``sitt-train`` for 4 iterations (checkpoints and validation every 2) into ``run``;
    checks the run directory's files and returns its metrics rows."""
    code = cli.train_main(["--task", task, "--method", method, "--out", str(run),
                           "--no-progress", *[f"--set={o}" for o in overrides],
                           "--set=train.iterations=4", "--set=train.checkpoint_every=2",
                           "--set=train.eval_every=2", "--set=train.eval_episodes=2"])
    assert code == 0
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "tb", "model_2.pt", "model_4.pt",
            "best_model.pt", "best.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [1, 2, 3, 4]
    return lines
