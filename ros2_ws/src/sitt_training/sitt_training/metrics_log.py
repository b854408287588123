"""A run's ``metrics.jsonl``: one JSON row per training iteration, appended as it ends.

A run killed between checkpoints has logged iterations that its resume trains again, and
one killed mid-write leaves a torn last line: ``trim_metrics`` (called on resume) cuts the
file back to the checkpoint, and ``read_metrics`` reads any such file as one row per
iteration."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

METRICS = "metrics.jsonl"


def _parse(lines: list[str]) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # torn by a kill mid-write: that row is lost anyway
                break
            raise ValueError(f"{METRICS}:{number} is not JSON: {line[:80]!r}") from None
    return rows


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The run's rows in iteration order, one per iteration (where an old run logged an
    iteration twice across a resume, the later row wins)."""
    rows = _parse((Path(run_dir) / METRICS).read_text().splitlines())
    return list({row["iteration"]: row for row in rows}.values())


def trim_metrics(run_dir: Path, iteration: int) -> int:
    """Drop the rows after ``iteration`` (and a torn last line), atomically; returns how
    many rows were dropped."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    rows = _parse(lines)
    kept = [row for row in rows if row["iteration"] <= iteration]
    dropped = sum(1 for line in lines if line.strip()) - len(kept)
    if dropped:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
        os.replace(tmp, path)
    return dropped
