"""Arguments and output handling shared by the subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.report import Report, exit_code


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.formats import formats

    parser.add_argument("--format", default="text", choices=sorted(formats()), help="report format (default text)")
    parser.add_argument("--output", "-o", type=Path, help="write the report to FILE instead of standard output")
    parser.add_argument("--fail-on", default="illegal", choices=["illegal", "needs-review"],
                        help="exit 1 when a verdict is at or above this (default illegal); `error` always fails")
    parser.add_argument("--repo-url", metavar="URL",
                        help="markdown: link file:line to URL/blob/REF/... (e.g. https://github.com/o/r)")
    parser.add_argument("--ref", metavar="COMMIT",
                        help="markdown: the commit the links are pinned to (the PR head sha)")


def emit(report: Report, args: argparse.Namespace, **render_kwargs) -> int:
    from harness.formats import render

    color = args.output is None and args.format == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    links = {"repo_url": getattr(args, "repo_url", None), "ref": getattr(args, "ref", None)}
    text = render(report, args.format, color=color, **{**links, **render_kwargs})
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            return usage_error(f"cannot write the report to {args.output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
    return exit_code(report, args.fail_on)


def usage_error(message: str) -> int:
    print(f"golfaudit: {message}", file=sys.stderr)
    return 2
