"""Time `audit.py check <records>` cold (--no-cache) and warm (cache filled), against a bare `ast.parse`
of the same Python files, and print the ratios and the verdict counts.

    .venv/bin/python benchmarks/bench_check.py /path/to/parameter-golf/records [--jobs 2]

Each check runs as a subprocess (a fresh interpreter, as a user would run it), with its own empty cache
directory so "cold" really is cold. A second cold check runs with log binding off
(`GOLFAUDIT_LOG_BINDING=0`), and the ratio of the two is what binding log lines to their prints costs. The TTT scanner's own share is timed in-process over the same folders.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _check(records: Path, jobs: int, cache: Path, cold: bool, env: dict | None = None) -> tuple[float, dict]:
    cmd = [sys.executable, str(ROOT / "audit.py"), "check", str(records), "--format", "json", "--jobs", str(jobs)]
    if cold:
        cmd.append("--no-cache")
    env = {**os.environ, "GOLFAUDIT_CACHE_DIR": str(cache), **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"audit.py check failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)


def _bare_parse(records: Path) -> tuple[float, int]:
    files = [p for p in records.rglob("*.py") if p.is_file()]
    t0 = time.perf_counter()
    for p in files:
        try:
            ast.parse(p.read_bytes())
        except SyntaxError:
            pass
    return time.perf_counter() - t0, len(files)


def _scanner_share(records: Path) -> tuple[float, float]:
    """CPU seconds of loading code (parse/unpack) and of the TTT order analysis, summed over folders."""
    sys.path.insert(0, str(ROOT))
    from harness.context import AuditContext
    from harness.discover import find_submissions
    from harness.scan.ttt import analyse_units
    from harness.submission import Submission

    load = analyse = 0.0
    for folder in find_submissions(records):
        sub = Submission(folder, str(folder))
        t0 = time.process_time()
        units = AuditContext(sub).units
        t1 = time.process_time()
        analyse_units(units)
        t2 = time.process_time()
        load += t1 - t0
        analyse += t2 - t1
    return load, analyse


def _binding_share(records: Path) -> tuple[float, float]:
    """CPU seconds of auditing every folder in-process with log binding on and off (harness.scan.logbind),
    alternating which goes first per folder so neither profits more from warm caches."""
    sys.path.insert(0, str(ROOT))
    from harness.discover import find_submissions
    from harness.engine import _tune_gc, audit_submission
    from harness.scan.logbind import DISABLE_ENV

    _tune_gc()
    saved = os.environ.get(DISABLE_ENV)
    total = {"1": 0.0, "0": 0.0}
    try:
        for i, folder in enumerate(sorted(find_submissions(records))):
            for flag in (("1", "0") if i % 2 else ("0", "1")):
                os.environ[DISABLE_ENV] = flag
                t0 = time.process_time()
                audit_submission(folder)
                total[flag] += time.process_time() - t0
    finally:
        if saved is None:
            os.environ.pop(DISABLE_ENV, None)
        else:
            os.environ[DISABLE_ENV] = saved
    return total["1"], total["0"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    bare, nfiles = _bare_parse(args.records)
    with tempfile.TemporaryDirectory(prefix="golfaudit-bench-") as tmp:
        cache = Path(tmp)
        cold, report = _check(args.records, args.jobs, cache, cold=True)
        _check(args.records, args.jobs, cache, cold=False)  # fill the cache
        warm, _ = _check(args.records, args.jobs, cache, cold=False)
        unbound, _ = _check(args.records, args.jobs, cache, cold=True, env={"GOLFAUDIT_LOG_BINDING": "0"})
    load, analyse = _scanner_share(args.records)
    binding = _binding_share(args.records)
    verdicts = Counter(s["verdict"] for s in report["submissions"])
    print(f"submissions: {len(report['submissions'])}   python files: {nfiles}   jobs: {args.jobs}")
    print(f"bare ast.parse of all .py files: {bare:7.2f} s")
    print(f"check cold (--no-cache):         {cold:7.2f} s   ({cold / bare:6.1f}x bare parse)")
    print(f"check warm (cache hit):          {warm:7.2f} s   ({warm / bare:6.1f}x bare parse, "
          f"{cold / max(warm, 1e-9):.1f}x faster than cold)")
    print(f"TTT scanner CPU: code loading {load:.2f} s, order analysis {analyse:.2f} s "
          f"({analyse / bare:.1f}x bare parse)")
    print(f"check cold without log binding:  {unbound:7.2f} s   (with binding {cold / max(unbound, 1e-9):.3f}x)")
    print(f"audit CPU in-process: with log binding {binding[0]:.2f} s, without {binding[1]:.2f} s "
          f"({binding[0] / max(binding[1], 1e-9):.3f}x)")
    print("verdicts: " + ", ".join(f"{k}={v}" for k, v in sorted(verdicts.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
