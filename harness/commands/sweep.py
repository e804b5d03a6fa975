"""Audit a whole PR queue from a local git clone and publish the legal leaderboard it implies.

For each ref (default `refs/pull/*/head`), the records folders it adds or changes against its merge-base
with the base branch are read from git objects (no checkout) and audited by the same engine as `check`,
cached by content. The base branch's own records are audited too: the record each row must beat is the
best legal folder before its date, computed from the sweep, not from the README's leaderboard.

Exit codes: 0 done and no verdict contradicts a merge state; 1 some does (merged but illegal or needing
review, closed but legal); 2 usage or git error; 130 interrupted (finished folders stay cached: re-run
to resume).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
from harness.options import AuditOptions
from harness.sweep import gitsource
from harness.sweep.audit_queue import FolderJob, Progress, audit_jobs
from harness.sweep.render import RENDERERS, Sweep
from harness.sweep.rows import MERGED, UNMERGED, build_row, finish_rows

NAME = "sweep"
HELP = "audit every records folder a queue of PR heads adds, and the legal leaderboard it implies"
STATES = ("open", "closed", "merged")
PLAN_THREADS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", type=Path, metavar="REPO", help="a local git clone (a mirror with PR refs works)")
    parser.add_argument("--refs", action="append", metavar="PATTERN",
                        help="for-each-ref pattern of the heads to sweep (repeatable; default 'refs/pull/*/head')")
    parser.add_argument("--prs", metavar="RANGE", help="only PR numbers in RANGE, e.g. 1500-2149")
    parser.add_argument("--base", help="the base branch (default origin/main, else main)")
    parser.add_argument("--since", type=dt.date.fromisoformat, metavar="DATE",
                        help="only heads committed on or after DATE")
    parser.add_argument("--states", type=Path, metavar="FILE",
                        help="JSON {PR number: open|closed|merged} from the forge; without it a PR is "
                             "'merged' when its folder reached the base branch, else 'unmerged'")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="parallel workers (default: all cores)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    parser.add_argument("--format", default="text", choices=sorted(RENDERERS), help="output format (default text)")
    parser.add_argument("--output", "-o", type=Path, help="write the output to FILE instead of standard output")


def _usage(message: str) -> int:
    print(f"golfaudit: {message}", file=sys.stderr)
    return 2


def _states(path: Path | None) -> dict[int, str]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--states {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--states {path}: expected an object {{PR number: state}}")
    out = {}
    for key, value in data.items():
        if not str(key).lstrip("#").isdigit() or value not in STATES:
            raise ValueError(f"--states {path}: {key!r}: {value!r} is not one of {', '.join(STATES)}")
        out[int(str(key).lstrip("#"))] = value
    return out


def run(args: argparse.Namespace) -> int:
    if not args.repo.is_dir():
        return _usage(f"{args.repo}: not a folder (REPO is a local git clone)")
    if args.jobs < 1:
        return _usage("--jobs must be at least 1")
    try:
        prs = gitsource.parse_pr_range(args.prs) if args.prs else None
        states = _states(args.states)
        repo = args.repo.resolve()
        if gitsource.git(repo, "rev-parse", "--git-dir", check=False) == b"":
            return _usage(f"{args.repo}: not a git repository")
        base = args.base or gitsource.default_base(repo)
        base_sha = gitsource.resolve(repo, base)
        if base_sha is None:
            return _usage(f"--base {base}: no such commit in {args.repo}")
        patterns = args.refs or ["refs/pull/*/head"]
        heads = gitsource.list_heads(repo, patterns, prs, args.since)
        plan = _plan(repo, base_sha, heads)
        at_base = gitsource.records_folders_at(repo, base_sha)
        base_trees = gitsource.trees(repo, [f"{base_sha}:{f}" for f in at_base])
        base_jobs = [FolderJob(repo, base_sha, f, t) for f in at_base if (t := base_trees[f"{base_sha}:{f}"])]
    except (ValueError, gitsource.SweepError) as exc:
        return _usage(str(exc))
    options = AuditOptions()
    jobs = [job for _, job, _ in plan] + base_jobs
    progress = Progress(len(set(jobs)))
    results: dict[FolderJob, dict] = {}
    try:
        for job, result in audit_jobs(jobs, options, args.jobs, not args.no_cache, on_done=progress.advance):
            results[job] = result
    except KeyboardInterrupt:
        progress.close()
        print(f"golfaudit: sweep interrupted after {len(results)} of {len(set(jobs))} folders; they are cached, "
              "so running the same command again resumes", file=sys.stderr)
        return 130
    progress.close()
    rows = [build_row(head.number, head.ref, head.sha, job.folder, results[job],
                      states.get(head.number) or merge_state)
            for head, job, merge_state in plan]
    base_rows = [build_row(None, base, base_sha, job.folder, results[job], MERGED) for job in base_jobs]
    sweep = Sweep(str(args.repo), base, base_sha, tuple(patterns), tuple(finish_rows(rows, base_rows)),
                  tuple(base_rows), len(heads), harness.__version__)
    if args.format == "text":
        text = RENDERERS["text"](sweep, width=None if args.output or not sys.stdout.isatty() else None)
    else:
        text = RENDERERS[args.format](sweep)
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            return _usage(f"cannot write {args.output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
    return 1 if sweep.disagreements else 0


def _plan(repo: Path, base_sha: str, heads: list[gitsource.Head]) -> list[tuple[gitsource.Head, FolderJob, str]]:
    """(head, folder job, merge state) for every records folder each head adds or changes and still holds.

    A folder counts as merged when its head is in the base's history, or when the folder exists on the base
    but did not at the head's fork point (a squash or rebase merge)."""
    line = gitsource.first_parents(repo, base_sha)

    def changes(head: gitsource.Head) -> list[tuple[gitsource.Head, str, bool, str]]:
        fork, merged_commit = gitsource.fork_point(repo, base_sha, head.sha, line)
        if fork is None:
            return []
        return [(head, fork, merged_commit, folder) for folder in gitsource.changed_folders(repo, fork, head.sha)]

    with ThreadPoolExecutor(max_workers=PLAN_THREADS) as pool:    # git subprocesses: threads overlap them
        found = [item for items in pool.map(changes, heads) for item in items]
    specs = [f"{c}:{folder}" for head, fork, _, folder in found for c in (head.sha, fork, base_sha)]
    tree = gitsource.trees(repo, specs)
    plan = []
    for head, fork, merged_commit, folder in found:
        at_head = tree[f"{head.sha}:{folder}"]
        if at_head is None:
            continue
        landed = merged_commit or (tree[f"{base_sha}:{folder}"] is not None and tree[f"{fork}:{folder}"] is None)
        plan.append((head, FolderJob(repo, head.sha, folder, at_head), MERGED if landed else UNMERGED))
    return plan
