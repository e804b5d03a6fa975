#!/usr/bin/env python3
"""Time the log parser on pathological logs: line count and keyword density must not make it superlinear.

Usage: python benchmarks/bench_logs.py [--lines N] [--mib M]

Prints, for each shape, the best of three parse times of N and 4N lines and their ratio (linear parsing gives
~4x, quadratic ~16x), and a MiB of newlines against a MiB-long single line (a pattern is tried only on lines
holding its keyword, so the two cost about the same). No assertions: speed depends on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.logs import parse_log_text  # noqa: E402

LINES = {"empty": "\n", "step": "step:1/2 train_loss:2.5 train_time:100ms step_avg:1.0ms\n",
         "keywords": "abc val_bpb: seed: step: 3/4 train_loss: \n"}


def best_of_three(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        parse_log_text(text, "train.log")
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=40_000, help="N (the larger run parses 4N lines)")
    parser.add_argument("--mib", type=int, default=1, help="size of the newline / one-line logs in MiB")
    args = parser.parse_args(argv)
    print(f"{'shape':<10} {'N lines s':>10} {'4N lines s':>11} {'ratio':>6}")
    for name, line in LINES.items():
        small, large = best_of_three(line * args.lines), best_of_three(line * (4 * args.lines))
        print(f"{name:<10} {small:>10.4f} {large:>11.4f} {large / small if small else float('inf'):>6.2f}")
    size = args.mib * 1024 * 1024
    one_line = best_of_three("step:1/2 " * (size // 9))
    newlines = best_of_three("\n" * size)
    print(f"{args.mib} MiB: one line {one_line:.4f} s, newlines {newlines:.4f} s, "
          f"ratio {newlines / one_line if one_line else float('inf'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
