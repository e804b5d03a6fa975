"""Run a submission in the sandbox (no network, unprivileged, decoy val shards, budgets) and report.

    python audit.py run FOLDER --data DIR --tokenizer FILE [--gpus N] [--train-budget S] [--eval-budget S]
                     [--grace S] [--env K=V ...] [--format F] [--output FILE]

Exit status: as every subcommand, and 1 as well when the run did not reach its final score line (budget,
crash, a limit); 130 / 143 / 129 when SIGINT / SIGTERM / SIGHUP stopped the auditor (the run is killed at
once and a partial report, `killed_for: interrupted`, is still written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import __version__
from harness.cli_args import parse_env, parse_size
from harness.commands._common import add_output_arguments, emit, usage_error
from harness.limits import EVAL_BUDGET_S, TRAIN_BUDGET_S
from harness.report import Report
from harness.sandbox import stop

NAME = "run"
HELP = "run a submission in a sandbox on local data with decoy val shards, then measure its artifact and times"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="FOLDER", help="a records folder (its train_gpt.py is run)")
    parser.add_argument("--data", type=Path, required=True,
                        help="the folder `python -m harness.data.build --out` wrote, or the shard folder in it "
                             "(fineweb_{train,val}_*.bin)")
    parser.add_argument("--tokenizer", type=Path, required=True, help="SentencePiece .model the shards use")
    parser.add_argument("--gpus", type=int, default=0, help="torchrun --nproc_per_node=N; 0 runs plain python on CPU")
    parser.add_argument("--train-budget", type=float, default=TRAIN_BUDGET_S, metavar="S",
                        help=f"seconds (default {TRAIN_BUDGET_S:g})")
    parser.add_argument("--eval-budget", type=float, default=EVAL_BUDGET_S, metavar="S",
                        help=f"seconds (default {EVAL_BUDGET_S:g})")
    parser.add_argument("--grace", type=float, metavar="S",
                        help="at a budget: SIGTERM, then SIGKILL of everything this much later (default 5 on the "
                             "CPU, 30 with GPUs)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra setting (repeatable)")
    parser.add_argument("--workdir", type=Path, help="where the run's copy, data and log go (default out/run/...)")
    parser.add_argument("--python", default=sys.executable, help="interpreter inside the sandbox")
    parser.add_argument("--max-memory", type=parse_size, metavar="SIZE",
                        help="memory limit, e.g. 8g (default: 3/4 of RAM up to 8g on CPU, 4/5 of RAM with GPUs)")
    parser.add_argument("--max-tasks", type=int, help="process+thread limit (default 4096 CPU, 16384 GPU)")
    parser.add_argument("--disk-limit", type=parse_size, metavar="SIZE",
                        help="bytes the run may write to its folder, e.g. 20g (per file and in all; default 8g; "
                        "0: no cap)")
    parser.add_argument("--decoy-val-tokens", type=int, metavar="N",
                        help="shrink the decoy val set to about N tokens (default: same counts as the real shards)")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from harness.sandbox.prepare import (
        RunOptions,  # on use: every subcommand is loaded to build the parser; `check` stays free of the runtime pipeline
    )
    from harness.sandbox.session import run_submission

    if not args.path.exists():
        return usage_error(f"no such file or folder: {args.path}")
    if not args.path.is_dir():
        return usage_error(f"{args.path}: not a folder: run takes a records folder holding train_gpt.py")
    for label, path in (("--data", args.data), ("--tokenizer", args.tokenizer)):
        if not path.exists():
            return usage_error(f"{label}: no such file or folder: {path}")
    try:
        env = parse_env(args.env)
    except ValueError as exc:
        return usage_error(str(exc))
    if args.disk_limit is not None and args.disk_limit < 0:
        return usage_error("--disk-limit must be >= 0")
    if args.gpus < 0 or args.train_budget <= 0 or args.eval_budget <= 0:
        return usage_error("--gpus must be >= 0 and the budgets > 0")
    if args.grace is not None and args.grace < 0:
        return usage_error("--grace must be >= 0")
    opts = RunOptions(data=args.data, tokenizer=args.tokenizer, gpus=args.gpus, train_budget=args.train_budget,
                      eval_budget=args.eval_budget, grace=args.grace, env=env, workdir=args.workdir,
                      python=args.python, max_memory=args.max_memory, max_tasks=args.max_tasks,
                      decoy_val_tokens=args.decoy_val_tokens, disk_limit=args.disk_limit)
    with stop.stop_on_signals():            # Ctrl-C, a CI timeout, a hang-up: kill the run, report, exit
        sub = run_submission(args.path, opts)
        _summary(sub)
        report = Report(tool="golfaudit", version=__version__, ruleset="run", submissions=(sub,))
        code = emit(report, args)
        signum = stop.requested()
    if signum:
        return stop.exit_status(signum)
    if sub.measured.get("run", {}).get("finished") is False:
        return max(code, 1)                 # a run that did not reach its final score line fails the gate
    return code


def _summary(sub) -> None:
    """A few measured lines on stderr, so a text report still shows bytes and times."""
    run = sub.measured.get("run", {})

    def val(entry):
        return entry.get("value") if isinstance(entry, dict) else entry

    def seconds(entry) -> str:
        value = val(entry)
        return "—" if value is None else f"{value}s"

    lines = [f"run: exit={run.get('exit_code')} wall={seconds(run.get('wall_s'))} "
             f"train_wall={seconds(run.get('train_wall_s'))} eval_wall={seconds(run.get('eval_wall_s'))} "
             f"over_budget={run.get('over_budget')} log={run.get('log')}"]
    if run.get("finished") is False:
        lines.append(f"run: did not finish: {run.get('ending_detail') or run.get('ending')}")
    score = val(run.get("decoy_val_bpb"))
    if score is not None:
        lines.append(f"score: val_bpb {score} on DECOY val data (the run's own number, not the submission's score)")
    art = sub.measured.get("artifact")
    if art:
        lines.append(f"artifact: {art['path']} {val(art['bytes'])} bytes ({art['codec']}, decompresses="
                     f"{art['decompresses']}), code {val(sub.measured.get('code_bytes'))}, total "
                     f"{val(sub.measured.get('total_bytes_max'))}")
    est = run.get("estimate_8xh100")
    if est:
        lines.append(f"8xH100 ESTIMATE (not measured): {est['estimated_8xh100_step_ms']} ms/step, "
                     f"~{est['estimated_steps_in_600s']} steps in 600 s")
    print("\n".join(lines), file=sys.stderr)
