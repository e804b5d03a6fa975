"""A result cache keyed by the content of a submission, the auditor's own code and the options.

Warm runs over `records/` must take well under a second, so a hit costs one hash of the folder's bytes
and one small JSON read; nothing heavy (libcst, scipy, torch) is imported on that path.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import harness

CACHE_ENV = "GOLFAUDIT_CACHE_DIR"


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "golfaudit"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of golfaudit's own source, so a changed rule never serves a stale verdict."""
    digest = hashlib.sha256(harness.__version__.encode())
    top = Path(__file__).resolve().parent.parent
    for pkg in ("harness", "rules"):
        for path in sorted((top / pkg).rglob("*.py")):
            digest.update(path.relative_to(top).as_posix().encode())
            digest.update(path.read_bytes())
    audit = top / "audit.py"
    if audit.exists():
        digest.update(audit.read_bytes())
    return digest.hexdigest()


def submission_key(root: Path, display_path: str, options_key: str) -> str | None:
    digest = hashlib.sha256()
    digest.update(code_fingerprint().encode())
    digest.update(options_key.encode())
    digest.update(display_path.encode())
    digest.update(os.fsencode(root.resolve()))
    try:
        if root.is_file():
            entries = [(root.name, root)]
        else:
            entries = []
            for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                dirnames.sort()
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    entries.append((full.relative_to(root).as_posix(), full))
        for rel, full in entries:
            digest.update(os.fsencode(rel) + b"\0")
            if full.is_symlink():
                digest.update(b"L" + os.fsencode(os.readlink(full)))
                continue
            st = full.stat()
            if not stat.S_ISREG(st.st_mode):  # a FIFO or device: never opened (it could block forever)
                digest.update(f"K{st.st_mode}".encode())
                continue
            if st.st_size > 256 * 1024 * 1024:
                digest.update(f"S{st.st_size}:{st.st_mtime_ns}".encode())
                continue
            with open(full, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def load(key: str) -> dict[str, Any] | None:
    path = cache_dir() / key[:2] / f"{key}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def store(key: str, data: dict[str, Any]) -> None:
    folder = cache_dir() / key[:2]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True)
        os.replace(tmp, folder / f"{key}.json")
    except OSError:
        pass
