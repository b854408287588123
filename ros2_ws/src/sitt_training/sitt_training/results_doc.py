"""Writing a benchmark's section of a results page (docs/results.md): copy its figures into
the docs folder and replace the text between the section's markers (other sections stay as
they are)."""

from __future__ import annotations

from pathlib import Path


def copy_figures(prefix: str, figures: dict[str, Path | str], docs: Path) -> dict[str, str]:
    """Copy each figure to ``docs/<prefix>_<stem>.png``; returns name -> file name."""
    docs.mkdir(parents=True, exist_ok=True)
    names = {}
    for name, src in figures.items():
        dst = docs / f"{prefix}_{Path(src).stem}.png"
        dst.write_bytes(Path(src).read_bytes())
        names[name] = dst.name
    return names


def replace_section(key: str, lines: list[str], docs: Path) -> Path:
    """Put ``lines`` between ``<!-- key:begin -->`` and ``<!-- key:end -->`` in
    ``docs/results.md`` (appended when the markers are not there yet)."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    section = "\n".join([begin, *lines, end])
    results = docs / "results.md"
    text = results.read_text() if results.is_file() else "# Results\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    docs.mkdir(parents=True, exist_ok=True)
    results.write_text(text)
    print(f"wrote the {key} section of {results}")
    return results
