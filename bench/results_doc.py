"""The benchmark scripts' docs/results.md writer: sitt_training.results_doc bound to this
repository's docs/ folder."""

from __future__ import annotations

from pathlib import Path

from sitt_training import results_doc

DOCS = Path(__file__).resolve().parents[1] / "docs"


def copy_figures(prefix: str, figures: dict[str, Path | str]) -> dict[str, str]:
    """Copy each figure to ``docs/<prefix>_<stem>.png``; returns name -> file name."""
    return results_doc.copy_figures(prefix, figures, DOCS)


def replace_section(key: str, lines: list[str]) -> Path:
    """Replace the ``key`` section of docs/results.md (appended when it is not there yet)."""
    return results_doc.replace_section(key, lines, DOCS)
