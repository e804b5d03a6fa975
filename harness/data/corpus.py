"""A named local text source: the running Python's standard library sources and its pydoc topic texts.

Documents come in a fixed order and are split into disjoint parts by a hash of their name, so the train
set, the stand-in "real" val set and the decoy val set never share a document.
"""

from __future__ import annotations

import hashlib
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SOURCE_NAME = "python-stdlib"
SPLITS = ("train", "val", "decoy")
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "idlelib", "lib2to3", "test", "tests"}


@dataclass(frozen=True)
class Document:
    name: str
    text: str


def split_of(name: str) -> str:
    """Which split a document belongs to: 80% train, 10% val, 10% decoy, fixed by its name."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 10
    return "val" if bucket == 0 else "decoy" if bucket == 1 else "train"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _topic_documents() -> Iterator[Document]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return
    for key in sorted(topics):
        yield Document(f"pydoc:{key}", topics[key])


@lru_cache(maxsize=4)
def _source_files(base: Path) -> tuple[Path, ...]:
    """The .py files of the standard library, sorted, outside tests and third-party folders."""
    found = []
    for path in sorted(base.rglob("*.py")):
        if not any(part in SKIP_DIRS for part in path.relative_to(base).parts[:-1]):
            found.append(path)
    return tuple(found)


def documents(split: str | None = None, root: Path | None = None) -> Iterator[Document]:
    """Every document of the source (or of one split), in a fixed order."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    base = root or stdlib_root()
    docs: Iterator[Document] = _topic_documents()
    for doc in docs:
        if split is None or split_of(doc.name) == split:
            yield doc
    for path in _source_files(base):
        rel = path.relative_to(base)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        name = f"stdlib:{rel.as_posix()}"
        if text.strip() and (split is None or split_of(name) == split):
            yield Document(name, text)
