"""A benchmark's record kept in git: one JSON line per finished cell, with everything its
table and learning curves need, so a benchmark that outlives a machine (``runs/`` is not
in git) goes on where it stopped instead of training its finished cells again. Used by
``bench/quadrotor.py`` and by ``sitt-bench --record``.

A row counts for a cell only while its identity matches: the method, the seed, the
evaluation settings and the whole resolved config of the run. Changing a preset therefore
retrains, as it must.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

CELLS = "cells.jsonl"
CURVE_KEYS = ("iteration", "env_steps", "wall_time")  # and every validation ("eval/") key


def identity(method: str, seed: int, episodes: int, checkpoint: str,
             config: dict[str, Any]) -> dict[str, Any]:
    """What must match for a recorded row to stand for a cell."""
    return {"method": method, "seed": seed, "episodes": episodes, "checkpoint": checkpoint,
            "config": config}


def load(record: Path) -> list[dict[str, Any]]:
    """The recorded rows (none when the record does not exist yet)."""
    path = record / CELLS
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON row ({error})") from None
    return rows


def find(rows: list[dict[str, Any]], wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The newest recorded row with this identity, else None."""
    for row in reversed(rows):
        if all(row.get(key) == value for key, value in wanted.items()):
            return row
    return None


def validation_curve(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validation rows of a run's metrics, cut to what learning curves plot (one row
    per iteration: a resumed run logs some iterations twice, the later row wins)."""
    rows = {r["iteration"]: r for r in metrics if any(key.startswith("eval/") for key in r)}
    return [{key: value for key, value in r.items()
             if key in CURVE_KEYS or key.startswith("eval/")} for r in rows.values()]


def append(record: Path, row: dict[str, Any], figures: dict[str, Path] | None = None) -> None:
    """Add a finished cell's row (flushed at once, so a crash loses nothing), and copy its
    figures (name -> file) into the record."""
    record.mkdir(parents=True, exist_ok=True)
    with (record / CELLS).open("a") as f:
        f.write(json.dumps(row, default=str) + "\n")
    for name, src in (figures or {}).items():
        if Path(src).is_file():
            shutil.copyfile(src, record / name)
