"""Runtime proof of score-before-update: run a submission's own evaluation (main with training cut to a
minimum) on a slice of validation data with position provenance, and judge the scoring/training order.

The traced process runs inside the sandbox (no network, private /tmp, scrubbed env, unprivileged uid, a
wall-clock budget); `--no-sandbox` runs it as a plain subprocess, for debugging only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import __version__ as version
from harness.cli_args import parse_env, parse_size
from harness.commands._common import add_output_arguments, emit, usage_error
from harness.report import Report
from harness.sandbox import stop
from harness.sandbox.deadline import default_grace

NAME = "trace"
HELP = "run a submission's own eval/TTT with position provenance and prove (or refute) score-first order"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="a records folder (its train_gpt.py, else its first train*.py)")
    parser.add_argument("--artifact", type=Path,
                        help="a compressed model file copied into the run's working folder (a script that "
                             "trains first writes its own there)")
    parser.add_argument("--data", type=Path, required=True,
                        help="the folder `python -m harness.data.build --out` wrote, or the shard folder in it "
                             "(fineweb_val_*.bin)")
    parser.add_argument("--tokenizer", type=Path, help="SentencePiece .model (passed as TOKENIZER_PATH)")
    parser.add_argument("--tokens", type=int, help="keep only the first N+1 validation tokens")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="extra environment for the run (repeatable), e.g. TTT_EPOCHS=1")
    parser.add_argument("--plot", type=Path, help="write the timeline PNG here")
    parser.add_argument("--budget", "--timeout", dest="budget", type=float, default=600.0, metavar="S",
                        help="wall-clock seconds for the traced run (default 600); SIGTERM, then SIGKILL --grace "
                             "later")
    parser.add_argument("--grace", type=float, metavar="S",
                        help="seconds from SIGTERM to SIGKILL at the budget (default 5 on the CPU, 30 with GPUs)")
    parser.add_argument("--gpus", type=int, default=0,
                        help="pass the GPUs through to the sandbox (N >= 1: /dev/nvidia*, CUDA_VISIBLE_DEVICES); "
                             "the traced run is one process either way")
    parser.add_argument("--workdir", type=Path,
                        help="host folder of the sandboxed run: its copy, events.json and console.log are kept "
                             "there (default out/trace-runs/<name>-<pid>-<time>)")
    parser.add_argument("--max-memory", type=parse_size, metavar="SIZE",
                        help="memory limit, e.g. 8g (default: 3/4 of RAM up to 8g on CPU, 4/5 of RAM with GPUs)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="debugging only: run the traced process as a plain subprocess with the host's "
                             "environment, network and files (no isolation, no limits but --budget)")
    parser.add_argument("--no-static", action="store_true", help="skip the static TTT check")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from harness.sandbox.supervisor import (
        sandbox_available,  # on use: every subcommand is loaded to build the parser; `check` stays free of the runtime pipeline
    )
    from harness.trace.sandboxed import SandboxOptions
    from harness.trace.traced_run import trace_submission

    if not args.folder.exists():
        return usage_error(f"no such file or folder: {args.folder}")
    if not args.folder.is_dir():
        return usage_error(f"{args.folder}: not a folder: trace takes a records folder holding train_gpt.py")
    try:
        env = parse_env(args.env)
    except ValueError as exc:
        return usage_error(str(exc))
    for label, path in (("--data", args.data), ("--tokenizer", args.tokenizer), ("--artifact", args.artifact)):
        if path is not None and not path.exists():
            return usage_error(f"{label}: no such file or folder: {path}")
    from harness.data.locate import DataFolderError, shard_folder

    try:
        args.data = shard_folder(args.data, "val")
    except DataFolderError as exc:
        return usage_error(f"--data: {exc}")
    if args.tokens is not None and args.tokens < 1:
        return usage_error("--tokens must be at least 1")
    if args.budget <= 0 or args.gpus < 0 or (args.grace is not None and args.grace < 0):
        return usage_error("--budget must be > 0, --grace >= 0 and --gpus >= 0")
    used = args.workdir is not None and args.workdir.exists()
    if used and (not args.workdir.is_dir() or any(args.workdir.iterdir())):
        return usage_error(f"--workdir: {args.workdir} exists and is not an empty folder")
    sandbox = None
    if not args.no_sandbox:
        reason = sandbox_available()
        if reason:
            return usage_error(f"the trace runs in the sandbox, which is unavailable here: {reason} "
                               f"(--no-sandbox runs it as a plain subprocess, for debugging only)")
        sandbox = SandboxOptions(budget=args.budget, gpus=args.gpus, workdir=args.workdir,
                                 max_memory=args.max_memory,
                                 grace=default_grace(args.gpus) if args.grace is None else args.grace)
    folder = args.folder
    script = folder / "train_gpt.py"
    if not script.is_file():
        cands = sorted(folder.glob("train*.py"))
        if not cands:
            return usage_error(f"{folder}: no train_gpt.py (or train*.py) to trace")
        script = cands[0]
    with stop.stop_on_signals():            # Ctrl-C, a CI timeout, a hang-up: kill the run, report, exit
        sub, _ = trace_submission(folder, script, args.data, args.tokenizer, args.tokens, env, args.plot,
                                  static=not args.no_static, timeout=args.budget, artifact=args.artifact,
                                  sandbox=sandbox)
        _summary(sub.measured)
        _proof(sub)
        code = emit(Report(tool="golfaudit", version=version, ruleset="trace", submissions=(sub,)), args)
        signum = stop.requested()
    return stop.exit_status(signum) if signum else code


def _proof(sub) -> None:
    """A legal trace says so in one line: what the run proved (the report keeps it as an info finding)."""
    if sub.verdict != "legal":
        return
    proofs = [f for f in sub.findings if f.severity == "info" and f.message.startswith("runtime proof")]
    if proofs:
        print(f"trace: legal: {proofs[0].message}", file=sys.stderr)


def _summary(measured: dict) -> None:
    """One stderr line on where and under which limits the trace ran, so a text report still shows it."""
    box = measured.get("sandbox")
    if not isinstance(box, dict):
        print(f"trace: {box}", file=sys.stderr)
        return
    if "isolation" not in box:               # stopped before the sandbox started
        print(f"trace: no sandboxed run (killed_for={box.get('killed_for')})", file=sys.stderr)
        return
    limits = ", ".join(box["isolation"]["limits"])
    print(f"trace: sandbox exit={box['exit_code']} wall={box['wall_s']}s budget={box['budget_s']:.0f}s "
          f"killed_for={box['killed_for']} limits: {limits}; log={box['log']}", file=sys.stderr)
