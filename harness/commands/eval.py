"""Reference evaluation of a submission's artifact: runtime legality checks (causality flip test,
normalisation) and a sliding-window BPB, optionally with score-first TTT, computed by golfaudit's own
loops around the submission's model. Runs the submission's model code (import without main)."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from harness.cli_args import SCORING_KINDS
from harness.commands._common import add_output_arguments, emit, usage_error
from harness.evaluate.distributed import torchrun_env
from harness.limits import EVAL_BUDGET_S
from harness.report import exit_code
from harness.sandbox.lifeline import die_with_parent

NAME = "eval"
HELP = "re-evaluate a submission's artifact with golfaudit's own eval loops (runs its model code)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="records folder (or its train_gpt.py)")
    parser.add_argument("--artifact", type=Path, required=True, help="the compressed model file")
    parser.add_argument("--data", type=Path, required=True,
                        help="the folder `python -m harness.data.build --out` wrote, or the shard folder in it "
                             "(fineweb_val_*.bin; CaseOps byte sidecars are used when present)")
    parser.add_argument("--tokenizer", type=Path, help="SentencePiece .model for the byte tables")
    parser.add_argument("--ttt", action="store_true", help="score-first TTT (chunked SGD) instead of plain sliding")
    parser.add_argument("--seq-len", type=int, help="window length (default: the submission's, else 2048)")
    parser.add_argument("--stride", type=int, help="window stride (default: the submission's, else 64)")
    parser.add_argument("--batch-seqs", type=int, default=32, help="windows per forward (default 32)")
    parser.add_argument("--exact", action="store_true",
                        help="the submission's own batching and full-window logits (default: fast mode)")
    parser.add_argument("--max-tokens", type=int, help="evaluate only the first N targets (reduced runs)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                        help="torch.compile the model's logits (auto: on CUDA for long runs)")
    parser.add_argument("--scoring", "--ttt-scoring", dest="scoring", default="auto",
                        choices=("auto", *SCORING_KINDS),
                        help="when compiling, how windows are scored. Eager and compiled forwards round bf16 "
                             "differently (~1e-3 BPB after four TTT chunks on the sp1024 03-23 record). auto: "
                             "as the submission's own loop (eval_val_sliding, or its chunked TTT loop with "
                             "--ttt): compiled if it compiles, else eager-rounding (compiled graphs that round "
                             "as eager does). Training steps compile either way")
    parser.add_argument("--adapter", type=Path,
                        help="adapter hook file (build_model, load_artifact, optional logits/train_loss/serialize); "
                             "see docs/adapter_hooks/README.md. Without one, a model golfaudit "
                             "cannot build or load is needs-review (EVAL-ADAPTER)")
    parser.add_argument("--no-checks", action="store_true", help="skip the flip and normalisation checks")
    parser.add_argument("--progress", action="store_true",
                        help="progress on stderr: a bar on a terminal, else a line every 10%% of the windows")
    parser.add_argument("--gpus", type=int, default=1,
                        help="processes, one GPU each (torchrun, NCCL; gloo with --device cpu): the windows and TTT "
                             "training are split across them (default 1)")
    parser.add_argument("--eval-budget", type=float, default=EVAL_BUDGET_S, metavar="SECONDS",
                        help="eval budget checked against our own eval's wall time on the hardware used "
                             "(default 600, the 8xH100 budget; a warning names the hardware and an 8xH100 "
                             "estimate when fewer or other GPUs ran)")
    ttt = parser.add_argument_group("TTT (defaults: the submission's hyperparameters)")
    ttt.add_argument("--ttt-epochs", type=int)
    ttt.add_argument("--ttt-lr", type=float)
    ttt.add_argument("--ttt-chunk-tokens", type=int)
    ttt.add_argument("--ttt-freeze-blocks", type=int)
    ttt.add_argument("--ttt-momentum", type=float)
    ttt.add_argument("--ttt-grad-clip", type=float)
    ttt.add_argument("--plot", type=Path, help="write a PNG of per-chunk BPB (TTT)")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    folder = args.folder
    if not folder.exists():
        return usage_error(f"no such file or folder: {folder}")
    for label, path in (("--artifact", args.artifact), ("--data", args.data), ("--tokenizer", args.tokenizer),
                        ("--adapter", args.adapter)):
        if path is not None and not path.exists():
            return usage_error(f"{label}: no such file or folder: {path}")
    for label, value in (("--seq-len", args.seq_len), ("--stride", args.stride), ("--batch-seqs", args.batch_seqs),
                         ("--max-tokens", args.max_tokens), ("--ttt-chunk-tokens", args.ttt_chunk_tokens),
                         ("--gpus", args.gpus)):
        if value is not None and value < 1:
            return usage_error(f"{label} must be at least 1")
    if args.eval_budget <= 0:
        return usage_error("--eval-budget must be positive")
    from harness.data.locate import DataFolderError, shard_folder

    try:
        args.data = shard_folder(args.data, "val")
    except DataFolderError as exc:
        return usage_error(f"--data: {exc}")
    script = folder if folder.is_file() else _script_in(folder)
    if script is None:
        return usage_error(f"{folder}: no train_gpt.py (or train*.py) to evaluate")
    try:
        rank = torchrun_env()
    except ValueError as exc:
        return usage_error(f"torchrun environment: {exc}")
    if args.gpus > 1 and rank is None:
        return _relaunch(args.gpus, getattr(args, "argv", sys.argv[1:]))
    from harness.evaluate.reference_eval import (
        evaluate,  # on use: every subcommand is loaded to build the parser; `check` stays free of the runtime pipeline
    )

    report = evaluate(script, args)
    if rank is not None and rank[0] != 0:       # under torchrun only rank 0 reports
        return exit_code(report, args.fail_on)
    return emit(report, args)


def _relaunch(gpus: int, argv: list[str]) -> int:
    """This same command under torchrun with `gpus` processes; rank 0's report is the output."""
    audit = Path(__file__).resolve().parents[2] / "audit.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           str(audit), *argv]
    try:
        # torchrun gets SIGTERM if this process dies (even of SIGKILL) and takes its ranks down with it
        return subprocess.run(cmd, check=False, preexec_fn=die_with_parent(signal.SIGTERM)).returncode
    except OSError as exc:
        return usage_error(f"--gpus {gpus}: cannot start torchrun: {exc}")


def _script_in(folder: Path) -> Path | None:
    main = folder / "train_gpt.py"
    if main.is_file() and main.stat().st_size > 0:
        return main
    cands = sorted(p for p in folder.glob("train*.py") if p.stat().st_size > 0)
    return cands[0] if cands else None
