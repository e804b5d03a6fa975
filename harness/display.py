"""Short names for submissions in the text and Markdown reports.

A report's `path` is the folder as it was audited (relative to the working directory, else absolute). The
human formats show it relative to the git checkout that holds it (so a Markdown link is a path inside the
repository), else relative to the folder above the path given on the command line, so temporary folders
and home directories do not repeat on every line. The JSON report keeps `path` unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def git_root(path: Path) -> Path | None:
    """The nearest folder at or above `path` holding `.git` (a checkout or a worktree), else None."""
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return None


def short_label(path: str, roots: Iterable[Path] = ()) -> str:
    """`path` relative to its git checkout, else to the parent of the command-line root holding it."""
    if not os.path.isabs(path):
        return path
    target = Path(path)
    root = git_root(target)
    if root is not None and root != target:
        return target.relative_to(root).as_posix()
    for given in roots:
        base = Path(os.path.abspath(given))
        if target == base or base in target.parents:
            anchor = base.parent if base.parent != base else base
            return target.relative_to(anchor).as_posix() or target.name
    return path


def labels_for(paths: Iterable[str], roots: Iterable[Path] = ()) -> dict[str, str]:
    """{report path: label} for every path whose label differs from it."""
    roots = list(roots)
    out = {}
    for path in paths:
        label = short_label(path, roots)
        if label != path:
            out[path] = label
    return out
