"""Arguments and output handling shared by the subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.ci_context import pull_request_context
from harness.display import labels_for
from harness.formats import formats, render
from harness.report import Report, exit_code

EXIT_CODES = """\
exit codes (the same for every subcommand):
  0      done: no verdict at or above --fail-on (unpack: the source was printed)
  1      a verdict at or above --fail-on, or a submission that could not be read or unpacked (verdict
         `error`); sweep: a verdict that contradicts a pull request's merge state
  2      usage error (bad arguments; a path that does not exist or is not a submission) or internal error
  128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM); run and trace kill the submission's processes first"""


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default="text", choices=sorted(formats()), help="report format (default text)")
    parser.add_argument("--output", "-o", type=Path, help="write the report to FILE instead of standard output")
    parser.add_argument("--fail-on", default="illegal", choices=["illegal", "needs-review"],
                        help="exit 1 when a verdict is at or above this (default illegal); `error` always fails")
    parser.add_argument("--repo-url", metavar="URL",
                        help="markdown: link file:line to URL/blob/REF/... (e.g. https://github.com/o/r)")
    parser.add_argument("--ref", metavar="COMMIT",
                        help="markdown: the commit the links are pinned to (the PR head sha)")


def emit(report: Report, args: argparse.Namespace, **render_kwargs) -> int:
    terminal = args.output is None and sys.stdout.isatty()
    color = terminal and args.format == "text" and "NO_COLOR" not in os.environ
    pr = pull_request_context(os.environ, head=getattr(args, "head_sha", None))
    links = {"repo_url": getattr(args, "repo_url", None) or pr.get("repo_url"),
             "ref": getattr(args, "ref", None) or pr.get("head_sha"), "pull_request": pr}
    roots = getattr(args, "paths", None) or [p for p in (getattr(args, "folder", None), getattr(args, "path", None))
                                             if p is not None]
    labels = labels_for((s.path for s in report.submissions), roots)
    text = render(report, args.format, color=color, width=terminal_width() if terminal else None, labels=labels,
                  **{**links, **render_kwargs})
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            return usage_error(f"cannot write the report to {args.output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
    return exit_code(report, args.fail_on)


def terminal_width() -> int:
    """COLUMNS when set (a positive number), else the terminal's own width."""
    import shutil

    return shutil.get_terminal_size(fallback=(120, 24)).columns


def usage_error(message: str) -> int:
    print(f"golfaudit: {message}", file=sys.stderr)
    return 2
