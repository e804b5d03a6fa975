"""Static audit of records folders: folder hygiene, claims against logs, budgets, and the code scanner.

Never executes submission code and never imports torch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from harness.commands._common import add_output_arguments, emit, usage_error

NAME = "check"
HELP = "audit records folders statically (no code is run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="a records folder, a tree of records folders, or a single .py file")
    add_output_arguments(parser)
    parser.add_argument("--sota", help="the record to beat: a records folder or a JSON file with per-seed scores")
    parser.add_argument("--rules-as-of", type=dt.date.fromisoformat, metavar="DATE",
                        help="judge by the rules in force at DATE (default: each submission's own date)")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="parallel workers")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")


def run(args: argparse.Namespace) -> int:
    from harness.engine import audit_paths
    from harness.options import AuditOptions
    from harness.sota import load_sota

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return usage_error(f"no such file or folder: {', '.join(missing)}")
    if args.jobs < 1:
        return usage_error("--jobs must be at least 1")
    sota = None
    if args.sota:
        try:
            sota = load_sota(Path(args.sota))
        except ValueError as exc:
            return usage_error(f"--sota: {exc}")
    options = AuditOptions(rules_as_of=args.rules_as_of, sota=sota)
    report = audit_paths(args.paths, options, jobs=args.jobs, use_cache=not args.no_cache)
    return emit(report, args)
