"""Find submissions under the paths given on the command line.

A folder is a submission when it directly holds a training script (`train*.py`), a `submission*.json` or
a training log (`train*.log`: a records folder whose code was left out still shows its runs). A `.py`
file given on its own is a submission (its own script). A folder that is none of these is searched for
such folders; a path that is none of these and holds none is not something golfaudit audits
(`NotASubmission`, a usage error naming what was expected).
"""

from __future__ import annotations

import os
from pathlib import Path

EXPECTED = ("a records folder (holding train_gpt.py, train*.py or submission.json), a tree of them, "
            "or a single .py training script")


class NotASubmission(ValueError):
    """A command-line path that is not a submission and holds none; the message says what was expected."""


def is_records_folder(path: Path) -> bool:
    """A folder that directly holds a training script, a submission.json or a training log."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    for name in names:
        low = name.lower()
        if low.startswith("submission") and low.endswith(".json"):
            return True
        if low.startswith("train") and (low.endswith(".py") or low.endswith(".log")):
            return True
    return False


def is_script_path(path: Path) -> bool:
    """A path given as a single training script: a name ending in .py that is not a folder."""
    return path.suffix.lower() == ".py" and not path.is_dir()


def find_submissions(path: Path) -> list[Path]:
    """Records folders at or under `path` (a single .py file is its own submission).

    Raises NotASubmission when `path` is a file that is not a Python script, or a folder holding no
    records folder at any depth."""
    if not path.is_dir():
        if is_script_path(path):
            return [path]
        raise NotASubmission(f"{path}: not a submission: expected {EXPECTED}")
    try:
        os.listdir(path)
    except OSError:
        return [path]       # a folder that cannot be listed is audited, and reported as unreadable
    if is_records_folder(path):
        return [path]
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in ("__pycache__", "node_modules"))
        here = Path(dirpath)
        if here != path and is_records_folder(here):
            found.append(here)
            dirnames[:] = []
    if not found:
        raise NotASubmission(f"{path}: holds no submission: expected {EXPECTED}")
    return found
