"""Run every rule over every submission and fold the findings into reports.

One submission = one load + one pass of all rules over its `AuditContext` (harness.context). A rule that crashes does not crash the audit: it
becomes a low-confidence legality finding (so the verdict is `needs-review`, never a silent `legal`).
Results are cached by content (harness.cache) and computed in parallel with `--jobs`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import harness
from harness import cache, registry
from harness.context import AuditContext
from harness.coverage import not_checked
from harness.discover import find_submissions
from harness.measure import claims_of, measured_of
from harness.options import AuditOptions
from harness.registry import all_rules
from harness.report import Finding, Report, SubmissionReport, judge
from harness.submission import LoadError, Submission, is_script_name, printable


def display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        rel = str(path)
    return printable(str(path) if rel.startswith("..") else rel)


def apply_rules_as_of(sub: Submission, rule, findings: list[Finding]) -> list[Finding]:
    """A rule not yet in force on the judged date reports, but cannot decide (error → warning)."""
    judged = sub.judged_date
    if rule.EFFECTIVE_FROM is None or judged is None or judged >= rule.EFFECTIVE_FROM:
        return findings
    source = f", per {rule.EFFECTIVE_SOURCE}" if getattr(rule, "EFFECTIVE_SOURCE", "") else ""
    out = []
    for f in findings:
        if f.severity == "error":
            f = replace(f, severity="warning", message=f"{f.message} (rule in force from {rule.EFFECTIVE_FROM}"
                                                       f"{source}; judged as of {judged}, so not decisive)")
        out.append(f)
    return out


def audit_submission(path: Path, options: AuditOptions | None = None,
                     rule_ids: Sequence[str] | None = None, display: str | None = None) -> SubmissionReport:
    """Load one submission and run the rules (all, or `rule_ids`) over it; `display` names it in reports
    (default: its path relative to the working directory)."""
    options = options or AuditOptions()
    shown = display if display is not None else display_path(path)
    try:
        sub = Submission(path, shown, options)
    except (OSError, LoadError) as exc:
        return judge(shown, "unknown", [], {}, {}, error=f"{shown}: cannot be read: {exc}")
    ctx = AuditContext(sub)
    findings: list[Finding] = []
    coverage: dict[str, dict[str, str]] = {}
    for rule_cls in all_rules():
        if not rule_cls.STATIC or (rule_ids is not None and rule_cls.ID not in rule_ids):
            continue
        rule = rule_cls()
        try:
            produced = list(rule.check(ctx))
            produced += rule.native_review(ctx, produced)
            coverage[rule_cls.ID] = rule.coverage(ctx).to_json()
        except RecursionError:
            produced = [internal_error(rule_cls.ID, "ran out of recursion depth on this code")]
        except Exception as exc:  # noqa: BLE001 - a broken detector must not stop the batch
            produced = [internal_error(rule_cls.ID, f"failed ({type(exc).__name__}: {exc})")]
        if rule_cls.ID not in coverage:
            coverage[rule_cls.ID] = not_checked("its detector failed (see INTERNAL-ERROR)").to_json()
        findings.extend(apply_rules_as_of(sub, rule_cls, produced))
    claims, measured = collect_claims_and_measured(ctx)
    reasons = unreadable_reasons(sub)
    error = "; ".join(reasons) if reasons else None
    return judge(shown, sub.track, findings, claims, measured, error=error, coverage=coverage)


def internal_error(rule_id: str, what: str) -> Finding:
    """INTERNAL-ERROR naming the detector that did not finish (so its rule was not checked)."""
    return registry.get("INTERNAL-ERROR").finding(f"internal error: the {rule_id} detector {what}; {rule_id} was not "
                                               "checked, so the submission needs review by hand")


def unreadable_reasons(sub: Submission) -> list[str]:
    """Why the submission cannot be audited at all: its folder, or a training script, cannot be read.

    Such a submission gets the verdict `error` (the gate fails); an unreadable log or README only draws a
    finding. An absent script is not "unreadable": RECORDS-FOLDER reports it.
    """
    reasons = [p.message for p in sub.problems if p.file == "." or is_script_name(p.file)]
    for name in sub.script_names:
        try:
            sub.read_source(name)
        except LoadError as exc:
            reasons.append(str(exc))
    return reasons


def collect_claims_and_measured(ctx: AuditContext) -> tuple[dict, dict]:
    """Claims (what the folder says) and measurements (what we found), built by harness.measure."""
    try:
        return claims_of(ctx.submission), measured_of(ctx.submission, ctx.code_bytes)
    except Exception as exc:  # noqa: BLE001
        return {}, {"error": f"could not collect measurements: {type(exc).__name__}: {exc}"}


def _audit_cached(args: tuple[Path, AuditOptions, bool]) -> dict:
    path, options, use_cache = args
    key = cache.submission_key(path, display_path(path), options.key()) if use_cache else None
    if key:
        hit = cache.load(key)
        if hit is not None and _well_formed(hit):
            return hit
    data = audit_submission(path, options).to_json()
    if key:
        cache.store(key, data)
    return data


def _well_formed(data: dict) -> bool:
    """A cache entry that rebuilds into a report (a damaged or foreign one is a miss, never a crash)."""
    try:
        SubmissionReport.from_json(data)
    except (TypeError, KeyError, ValueError, AttributeError):
        return False
    return True


GC_THRESHOLDS = (500_000, 100, 100)


def _tune_gc() -> None:
    """The audit builds large ASTs whose garbage is freed by reference counting; the cyclic collector's
    default thresholds (700, 10, 10) make CPython rescan that heap thousands of times per batch (measured:
    ~30% of a cold run over records/). Raised thresholds keep memory bounded (~400 MB for records/)."""
    gc.set_threshold(*GC_THRESHOLDS)


def _weight(path: Path) -> int:
    """Bytes of the Python files directly in a folder (or the file itself): a cheap proxy for audit time."""
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.glob("*.py") if p.is_file() and not p.is_symlink())
    except OSError:
        return 0


def discover(paths: Sequence[Path]) -> list[Path]:
    """The submissions at or under `paths`, each once, in report order; NotASubmission for a path that
    is not a submission and holds none."""
    targets: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        for found in find_submissions(p):
            resolved = found.resolve()
            if resolved not in seen:
                seen.add(resolved)
                targets.append(found)
    targets.sort(key=lambda p: display_path(p))
    return targets


def audit_paths(paths: Sequence[Path], options: AuditOptions | None = None, jobs: int = 1,
                use_cache: bool = True, search: bool = True,
                progress: Callable[[int, int, str], None] | None = None) -> Report:
    """Audit the submissions at or under `paths` (`search`), or `paths` themselves as submissions.
    `progress(done, total, path)` is called after each submission is audited."""
    options = options or AuditOptions()
    _tune_gc()
    if search:
        targets = discover(paths)
    else:
        targets = sorted(dict.fromkeys(paths), key=lambda p: display_path(p))
    return _audit_targets(targets, options, jobs, use_cache, progress)


def _audit_targets(targets: list[Path], options: AuditOptions, jobs: int, use_cache: bool,
                   progress: Callable[[int, int, str], None] | None) -> Report:
    total = len(targets)

    def tick(done: int, path: Path) -> None:
        if progress is not None:
            progress(done, total, display_path(path))

    work = [(t, options, use_cache) for t in targets]
    if jobs > 1 and len(work) > 1:
        # largest folders first (their scripts dominate the time), so no worker is left with a big one at the end
        order = sorted(range(len(work)), key=lambda i: -_weight(targets[i]))
        results: list[dict | None] = [None] * len(work)
        with ProcessPoolExecutor(max_workers=jobs, initializer=_tune_gc) as pool:
            for n, (i, result) in enumerate(zip(order, pool.map(_audit_cached, [work[i] for i in order],
                                                                 chunksize=1)), 1):
                results[i] = result
                tick(n, targets[i])
    else:
        results = []
        for n, w in enumerate(work, 1):
            results.append(_audit_cached(w))
            tick(n, w[0])
    subs = tuple(SubmissionReport.from_json(r) for r in results)
    return Report(tool="golfaudit", version=harness.__version__, ruleset=harness.RULESET, submissions=subs)
