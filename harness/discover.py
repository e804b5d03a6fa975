"""Find submissions under the paths given on the command line."""

from __future__ import annotations

import os
from pathlib import Path

MARKER_FILES = ("submission.json",)


def is_records_folder(path: Path) -> bool:
    """A folder that directly holds a training script, a submission.json or a log."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    for name in names:
        low = name.lower()
        if low in MARKER_FILES or (low.startswith("submission") and low.endswith(".json")):
            return True
        if low.startswith("train") and low.endswith(".py"):
            return True
        if low.endswith(".log"):
            return True
    return False


def find_submissions(path: Path) -> list[Path]:
    """Records folders at or under `path` (a single .py file is its own submission)."""
    if path.is_file():
        return [path]
    if is_records_folder(path):
        return [path]
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in ("__pycache__", "node_modules"))
        here = Path(dirpath)
        if here != path and is_records_folder(here):
            found.append(here)
            dirnames[:] = []
    # A folder holding nothing recognisable is still audited (and reported as incomplete).
    return found or [path]
