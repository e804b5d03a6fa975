#!/usr/bin/env python3
"""golfaudit command line: parse arguments → harness API → render → exit code.

Exit codes, the same for every subcommand: 0 no submission's verdict at or above --fail-on;
1 some is, or some submission could not be read (verdict `error`); 2 usage or internal error;
128 + N when signal N stopped it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
Subcommands live in harness/commands/<name>.py, each with `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import pkgutil
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    import harness
    import harness.commands as commands
    from harness.commands._common import EXIT_CODES

    parser = argparse.ArgumentParser(prog="golfaudit", description="Audit parameter-golf submissions.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"golfaudit {harness.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"harness.commands.{info.name}")
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__, epilog=EXIT_CODES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)     # for commands that relaunch themselves
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except KeyboardInterrupt as exc:        # Ctrl-C, or harness.sandbox.stop.Interrupted (SIGTERM, SIGHUP too)
        print(f"golfaudit: interrupted{f' by {exc}' if str(exc) else ''}", file=sys.stderr)
        return getattr(exc, "exit_status", EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - never a traceback at a user
        print(f"golfaudit: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def exit_worker(code: int) -> None:
    """Leave a torchrun rank without interpreter teardown: flush the output, then os._exit. In CI a gloo
    rank died now and then with SIGABRT ("terminate called without an active exception", a C++ thread
    destroyed while running), and torchrun then killed the rank that was about to report. Where it died
    was not seen; at teardown, this avoids it, and elsewhere faulthandler prints the rank's stack."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    from harness.evaluate.distributed import is_torchrun_rank  # stdlib only: no torch on the static path

    if is_torchrun_rank():      # `eval --gpus N` relaunched this command under torchrun
        faulthandler.enable()       # a rank killed by a signal prints its Python stack
        exit_worker(main())
    sys.exit(main())
