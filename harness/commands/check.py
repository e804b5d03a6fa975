"""Static audit of records folders: folder hygiene, claims against logs, budgets, and the code scanner.

Never executes submission code and never imports torch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import harness
from harness.changed import ChangedError, add_change_findings, changes_since, head_commit
from harness.commands._common import add_output_arguments, emit, usage_error
from harness.discover import NotASubmission, is_records_folder
from harness.display import short_label
from harness.engine import audit_paths, discover, display_path
from harness.options import AuditOptions
from harness.progress import batch_progress
from harness.report import Report
from harness.sota import clone_track, contenders, load_sota, previous_record
from harness.suppress import (
    SuppressionError,
    annotate_inline,
    apply_suppressions,
    load_allow,
    load_baseline,
)

NAME = "check"
HELP = "audit records folders statically (no code is run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="a records folder, a tree of records folders, or a single .py file "
                             "(optional with --changed-since, where it narrows the changed folders)")
    add_output_arguments(parser)
    parser.add_argument("--sota", help="the record to beat: a records folder or a JSON file with per-seed scores "
                                       "(default: inside a parameter-golf clone, the best legal, eligible record "
                                       "of the same track dated before the folder; `--sota none` turns that off)")
    parser.add_argument("--rules-as-of", type=dt.date.fromisoformat, metavar="DATE",
                        help="judge by the rules in force at DATE (default: each submission's own date)")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="parallel workers")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress on standard error (default: a bar on a terminal, else a line every "
                             "10 folders, for batches)")
    parser.add_argument("--changed-since", metavar="REF",
                        help="audit only the records folders changed between the merge-base of REF and HEAD "
                             "(git diff REF...HEAD); anything else the change touches is a RECORDS-FOLDER finding")
    parser.add_argument("--baseline", type=Path, metavar="REPORT_JSON",
                        help="a previous --format json report: its findings are accepted (marked suppressed)")
    parser.add_argument("--allow", type=Path, metavar="FILE",
                        help="reviewer allow list (JSON or TOML) of {path, rule, file?, line?, reason} entries")


def run(args: argparse.Namespace) -> int:
    if not args.paths and not args.changed_since:
        return usage_error("give a PATH to audit, or --changed-since REF")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return usage_error(f"no such file or folder: {', '.join(missing)}")
    if args.jobs < 1:
        return usage_error("--jobs must be at least 1")
    sota = None
    if args.sota and args.sota != "none":
        try:
            sota = load_sota(Path(args.sota))
        except ValueError as exc:
            return usage_error(f"--sota: {exc}")
    try:
        allow = load_allow(args.allow) if args.allow else []
        baseline = load_baseline(args.baseline) if args.baseline else set()
    except SuppressionError as exc:
        return usage_error(str(exc))
    change = None
    if args.changed_since:
        try:
            change = changes_since(args.changed_since)
        except ChangedError as exc:
            return usage_error(f"--changed-since: {exc}")
        args.head_sha = head_commit(change.repo_root)
        # a folder the change touches is audited as a submission even when it is incomplete
        targets = [folder for folder in (change.repo_root / f for f in change.folders) if _under(folder, args.paths)]
    else:
        try:
            targets = discover(args.paths)
        except NotASubmission as exc:
            return usage_error(str(exc))
    if targets:
        progress = batch_progress("audited", len(targets), enabled=not args.no_progress)
        options = AuditOptions(rules_as_of=args.rules_as_of, sota=sota)
        try:
            report = _audit(targets, options, args, progress, auto_sota=args.sota is None)
        finally:
            if progress is not None:
                progress.close()
    else:
        report = Report(tool="golfaudit", version=harness.__version__, ruleset=harness.RULESET, submissions=())
    if change is not None:
        report = add_change_findings(report, change)
    report = annotate_inline(report)
    if allow or baseline:
        report = apply_suppressions(report, allow, baseline, baseline_name=str(args.baseline or "baseline"))
    return emit(report, args)


def _audit(targets: list[Path], options, args: argparse.Namespace, progress, auto_sota: bool):
    """Audit `targets`. Without --sota, a folder inside a parameter-golf clone is tested for significance
    against the record before it in its track (harness.sota.previous_record); stderr says which."""
    import sys
    from dataclasses import replace

    def audit(folders: list[Path], opts, tick=None):
        return audit_paths(folders, opts, jobs=args.jobs, use_cache=not args.no_cache, search=False, progress=tick)

    groups: dict[Path | None, list[Path]] = {}
    references = {}
    pools: dict[Path, list] = {}
    for folder in targets:
        track = clone_track(folder) if auto_sota else None
        record = None
        if track is not None:
            if track not in pools:
                records = sorted(p for p in track.iterdir() if p.is_dir() and is_records_folder(p))
                pools[track] = contenders(audit(records, replace(options, sota=None)).submissions, records)
            record = previous_record(folder, pools[track])
        key = record.folder if record else None
        references[key] = record
        groups.setdefault(key, []).append(folder)
    subs = []
    done = 0
    report = None
    for key, folders in groups.items():
        record = references[key]
        if record is not None:
            print(f"golfaudit: significance of {len(folders)} folder(s) tested against {short_label(str(key))}, the "
                  f"best legal record of the track dated before them (--sota chooses another)", file=sys.stderr)

        def tick(n: int, _total: int, name: str, base: int = done) -> None:
            if progress is not None:
                progress(base + n, len(targets), name)

        report = audit(folders, replace(options, sota=record.reference) if record else options, tick)
        subs.extend(report.submissions)
        done += len(folders)
    order = {display_path(p): i for i, p in enumerate(targets)}
    subs.sort(key=lambda s: order.get(s.path, len(order)))
    return replace(report, submissions=tuple(subs))


def _under(folder: Path, roots: list[Path]) -> bool:
    """True when no PATH narrows the change, or `folder` lies at or under one of them."""
    if not roots:
        return True
    resolved = folder.resolve()
    return any(resolved == r.resolve() or r.resolve() in resolved.parents for r in roots)
