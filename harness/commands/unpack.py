"""Print the source a packed script runs, decoded statically (nothing is executed).

FILE may be a script (its top-level sibling .py files are available to `exec(open(...))` and imports) or a
records folder (its main script is used). The source goes to standard output; a script whose decoding is
over the caps (a bomb) or whose decoded code cannot be parsed exits 1. Problems that do not stop the output
(dynamic exec, a sibling outside the folder) go to standard error.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from harness.codeload import load_code
from harness.commands._common import usage_error
from harness.submission import Submission

NAME = "unpack"
HELP = "print the unpacked source of a packed script (nothing is run)"
FATAL = ("bomb", "unreadable", "syntax")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="a script, or a records folder")
    parser.add_argument("--output", "-o", type=Path, metavar="OUT", help="write the source to OUT")
    parser.add_argument("--all", action="store_true",
                        help="print every unit the script runs (followed siblings too), each under a header line")


def _submission(path: Path):
    if path.is_dir():
        return Submission(path, str(path)), None
    sub = Submission(path, str(path))
    try:  # the script's own folder, one level, so that exec(open("sibling.py")) and imports resolve
        with os.scandir(path.parent) as entries:
            for entry in entries:
                if entry.name == path.name or not entry.name.endswith(".py"):
                    continue
                if entry.is_symlink():
                    sub.symlinks.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    sub.files[entry.name] = Path(entry.path)
    except OSError:
        pass
    return sub, path.name


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return usage_error(f"{path}: cannot be read: {exc.strerror or exc}")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return usage_error(f"{path}: not a regular file or folder")
    if stat.S_ISREG(mode) and path.suffix.lower() != ".py":
        return usage_error(f"{path}: not a Python script (expected a .py file or a records folder)")
    sub, script = _submission(path)
    if script is None and not sub.script_names:
        print(f"golfaudit: {path}: no training script in this folder", file=sys.stderr)
        return 1
    bundle = load_code(sub, script)
    fatal = [p for p in bundle.problems if p.kind in FATAL]
    for p in bundle.problems:
        where = f"{p.file}:{p.line}" if p.line else p.file
        level = "error" if p.kind in FATAL else "warning"
        print(f"golfaudit: {level}: {where}: {p.kind}: {p.message}", file=sys.stderr)
    main = bundle.main
    if main is None or fatal:
        if main is None and not bundle.problems:
            print(f"golfaudit: {path}: nothing to unpack", file=sys.stderr)
        return 1
    units = bundle.units if args.all else (main,)
    parts = []
    for unit in units:
        if args.all:
            how = f" via {' -> '.join(unit.layers)}" if unit.layers else ""
            parts.append(f"# ===== {unit.name}{how} =====\n")
        parts.append(unit.text if unit.text.endswith("\n") or not unit.text else unit.text + "\n")
    text = "".join(parts)
    if main.layers:
        print(f"golfaudit: {main.packed_from}:{main.packed_line}: unpacked {' -> '.join(main.layers)} "
              f"({len(main.text.encode())} bytes, parsed via {main.via})", file=sys.stderr)
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            return usage_error(f"{args.output}: cannot be written: {exc.strerror or exc}")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
    return 0
