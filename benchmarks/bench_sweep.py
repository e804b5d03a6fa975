"""Cold and warm `audit.py sweep` over a PR range of a real clone, in one run (same machine, same load).

    python benchmarks/bench_sweep.py /path/to/parameter-golf --prs 1500-2149 [--jobs N]

Cold: an empty result cache. Warm: the same command again, served from the cache; only the git planning
(merge-bases, diffs, tree ids) runs again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"sweep failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--prs", default="1500-2149")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GOLFAUDIT_CACHE_DIR": cache}
        cmd = [sys.executable, "audit.py", "sweep", args.repo, "--prs", args.prs, "--jobs", str(args.jobs),
               "--format", "json"]
        cold, data = timed(cmd, env)
        warm, again = timed(cmd, env)
    same = data["rows"] == again["rows"]
    print(f"cores={os.cpu_count()} jobs={args.jobs} heads={data['heads']} folders={len(data['rows'])} "
          f"counts={data['counts']}")
    print(f"cold {cold:.1f} s, warm {warm:.1f} s, cold/warm {cold / warm:.1f}x, same rows: {same}")


if __name__ == "__main__":
    main()
