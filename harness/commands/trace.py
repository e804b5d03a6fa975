"""Runtime proof of score-before-update: run a submission's own evaluation (main with training cut to a
minimum) on a slice of validation data with position provenance, and judge the scoring/training order."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands._common import add_output_arguments, emit, usage_error

NAME = "trace"
HELP = "run a submission's own eval/TTT with position provenance and prove (or refute) score-first order"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="records folder (or its train_gpt.py)")
    parser.add_argument("--artifact", type=Path,
                        help="a compressed model file copied into the run's working folder (a script that "
                             "trains first writes its own there)")
    parser.add_argument("--data", type=Path, required=True, help="folder of fineweb_val_*.bin shards")
    parser.add_argument("--tokenizer", type=Path, help="SentencePiece .model (passed as TOKENIZER_PATH)")
    parser.add_argument("--tokens", type=int, help="keep only the first N+1 validation tokens")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="extra environment for the run (repeatable), e.g. TTT_EPOCHS=1")
    parser.add_argument("--plot", type=Path, help="write the timeline PNG here")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the traced run (default 600)")
    parser.add_argument("--no-static", action="store_true", help="skip the static TTT check")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from harness.report import Report

    if not args.folder.exists():
        return usage_error(f"no such file or folder: {args.folder}")
    for label, path in (("--data", args.data), ("--tokenizer", args.tokenizer), ("--artifact", args.artifact)):
        if path is not None and not path.exists():
            return usage_error(f"{label}: no such file or folder: {path}")
    if not any(args.data.glob("fineweb_val_*.bin")):
        return usage_error(f"--data: {args.data} holds no fineweb_val_*.bin shard")
    if args.tokens is not None and args.tokens < 1:
        return usage_error("--tokens must be at least 1")
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return usage_error(f"--env {item!r}: expected KEY=VALUE")
        env[key] = value
    folder = args.folder.parent if args.folder.is_file() else args.folder
    script = args.folder if args.folder.is_file() else folder / "train_gpt.py"
    if not script.is_file():
        cands = sorted(folder.glob("train*.py"))
        if not cands:
            return usage_error(f"{folder}: no train_gpt.py (or train*.py) to trace")
        script = cands[0]
    from harness.trace.runner import trace_submission

    sub, _ = trace_submission(folder, script, args.data, args.tokenizer, args.tokens, env, args.plot,
                              static=not args.no_static, timeout=args.timeout, artifact=args.artifact)
    from harness import __version__ as version

    return emit(Report(tool="golfaudit", version=version, ruleset="trace", submissions=(sub,)), args)
