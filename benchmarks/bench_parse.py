#!/usr/bin/env python3
"""Time the parsers over a folder tree: bare `ast.parse`, our `parse_source`, libcst `parse_module`.

Usage: python benchmarks/bench_parse.py [FOLDER]   (default: $PG_REPO/records)

Sources are every .py file under FOLDER (symlinks skipped) plus, for each folder whose main script is packed,
its unpacked code (these are the files that need Python >= 3.12 syntax). One run each, no assertions.
"""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.parse import ParseFailure, parse_source  # noqa: E402


def collect(root: Path) -> list[tuple[str, str]]:
    """(label, text) for every .py file, then the unpacked main script of each packed folder."""
    from harness.codeload import load_code
    from harness.submission import Submission

    sources = []
    folders = set()
    for path in sorted(root.rglob("*.py")):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            sources.append((str(path.relative_to(root)), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
        folders.add(path.parent)
    for folder in sorted(folders):
        main = load_code(Submission(folder, folder.name)).main
        if main is not None and main.packed_from:
            sources.append((f"{folder.relative_to(root)}/{main.name}", main.text))
    return sources


def timed(fn, sources: list[tuple[str, str]]) -> tuple[float, int]:
    """Seconds for one pass, and how many sources raised."""
    failed = 0
    start = time.perf_counter()
    for label, text in sources:
        try:
            fn(text, label)
        except (SyntaxError, ParseFailure, Exception):  # noqa: BLE001 - a failure is counted, not fatal
            failed += 1
    return time.perf_counter() - start, failed


def main(argv: list[str]) -> int:
    default = Path(os.environ["PG_REPO"]) / "records" if os.environ.get("PG_REPO") else None
    root = Path(argv[0]) if argv else default
    if root is None or not root.is_dir():
        print("usage: bench_parse.py FOLDER (or set PG_REPO to a clone of openai/parameter-golf)", file=sys.stderr)
        return 2
    sources = collect(root)
    total_bytes = sum(len(t.encode()) for _, t in sources)
    print(f"{len(sources)} sources, {total_bytes / 1e6:.1f} MB, under {root}")
    import libcst

    runs = {
        "ast.parse": timed(lambda text, label: ast.parse(text, filename=label), sources),
        "parse_source": timed(lambda text, label: parse_source(text, label), sources),
        "libcst.parse_module": timed(lambda text, label: libcst.parse_module(text), sources),
    }
    base = runs["ast.parse"][0]
    for name, (seconds, failed) in runs.items():
        print(f"{name:22s} {seconds:8.2f} s   x{seconds / base:6.1f} of ast.parse   failures: {failed}")
    libcst_only = [(label, text) for label, text in sources if _needs_libcst(text)]
    print(f"{len(libcst_only)} sources need the libcst path (ast.parse of Python "
          f"{sys.version_info.major}.{sys.version_info.minor} rejects them)")
    return 0


def _needs_libcst(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return True
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
