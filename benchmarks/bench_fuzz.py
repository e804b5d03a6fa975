#!/usr/bin/env python3
"""Fuzz the static path's parsers with many examples (default 10,000 each) and print what escaped.

The same properties as tests/robustness/test_properties.py (which runs 200 in CI): the log parser,
submission.json loading, bounded decompression and code loading must raise nothing but their own typed
errors. Failures are counted by exception type and message instead of stopping at the first one, and the
smallest input seen for each is printed. Run by hand:

    .venv/bin/python benchmarks/bench_fuzz.py [--examples N] [--only logs,json,decompress,codeload]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.robustness import fuzzing  # noqa: E402

TARGETS: dict[str, tuple[Callable, dict, str | None]] = {
    "logs": (fuzzing.check_log_parser, {"text": fuzzing.LOG_TEXT, "name": fuzzing.LOG_NAME}, None),
    "json": (fuzzing.check_submission_json, {"raw": fuzzing.submission_json_bytes()}, None),
    "decompress": (lambda blob: fuzzing.check_decompress(*blob), {"blob": fuzzing.compressed_blob()},
                   "harness.unpack"),
    "codeload": (fuzzing.check_load_code, {"source": fuzzing.packed_script()}, "harness.codeload"),
}


def fuzz(name: str, examples: int) -> int:
    check, strategies, needs = TARGETS[name]
    if needs and importlib.util.find_spec(needs) is None:
        print(f"{name:<11} skipped ({needs} not importable)")
        return 0
    escaped: collections.Counter = collections.Counter()
    smallest: dict[tuple[str, str], str] = {}
    count = 0

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(**strategies)
    def run(**kwargs):
        nonlocal count
        count += 1
        try:
            check(**kwargs)
        except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
            first = str(exc).splitlines()[0] if str(exc) else ""
            key = (type(exc).__name__, re.sub(r"\d+", "N", first)[:90])
            escaped[key] += 1
            shown = repr(kwargs)
            if key not in smallest or len(shown) < len(smallest[key]):
                smallest[key] = shown

    start = time.perf_counter()
    run()
    took = time.perf_counter() - start
    failed = sum(escaped.values())
    print(f"{name:<11} {count:>6} examples  {took:7.1f} s  {count / max(took, 1e-9):8.0f}/s  "
          f"{failed} escaped ({len(escaped)} kinds)")
    for (kind, message), n in escaped.most_common():
        example = smallest[(kind, message)]
        print(f"    {n:>6} x {kind}: {message}\n           smallest: {example[:240]}")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples per target (default 10000)")
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets: " + ", ".join(TARGETS))
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}")
    total = sum(fuzz(n, args.examples) for n in names)
    print(f"total escaped: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
