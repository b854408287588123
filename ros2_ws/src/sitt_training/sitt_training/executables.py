"""Where a console script of ours lives, for launch files that start it as a process.

A pip install (the project's ``.venv``) puts console scripts on ``PATH``; a colcon install
puts them in ``<prefix>/lib/<package>/`` (where ``ros2 run`` looks), which is not on
``PATH``. Launch files start ``sitt-train`` and ``sitt-replay`` as plain processes, so they
ask here instead of relying on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def find_executable(name: str, package: str) -> str:
    """Absolute path of console script ``name`` of ``package``: on ``PATH`` first, else in
    the package's ``lib/<package>/`` found through the ament index. Returns ``name``
    unchanged when neither has it (the launch then reports the missing executable)."""
    found = shutil.which(name)
    if found:
        return found
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return name
    try:
        candidate = Path(get_package_prefix(package)) / "lib" / package / name
    except PackageNotFoundError:
        return name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else name
