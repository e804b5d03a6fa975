"""Reviewer-side suppressions: a baseline report and an allow file. Submitters cannot suppress anything.

- `--baseline report.json`: findings already accepted (a previous `--format json` report); a finding
  matches on submission path + rule + file + line + message.
- `--allow FILE`: a JSON list (or {"allow": [...]}) or a TOML file of `[[allow]]` tables, each
  {path, rule, file?, line?, reason}. `path` and `rule` may use shell wildcards. An entry without a reason
  suppresses nothing and is itself a finding (SUPPRESSION); an entry that matches nothing in an audited
  submission is reported as stale (info).
- `# golfaudit: ignore[RULE]` comments in the submission's own source only annotate: each one next to a
  finding adds an info finding (INLINE-IGNORE) and the finding stands.

Suppressed findings stay in the report (`suppressed=True` with the reason); the verdict and eligibility
are then recomputed with the one policy in harness.report (decide_verdict / decide_eligibility).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import tomllib

from harness import registry
from harness.report import Finding, Report, SubmissionReport, decide_eligibility, decide_verdict

INLINE_RE = re.compile(r"#\s*golfaudit\s*:\s*ignore\b(?:\[([^\]]*)\])?", re.IGNORECASE)
MAX_SOURCE_BYTES = 32 * 1024 * 1024
NO_FOLDER_TRACK = "no-records-folder"   # the pseudo-submission of a change that holds no records folder


class SuppressionError(Exception):
    """An allow or baseline file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class AllowEntry:
    path: str
    rule: str
    reason: str
    file: str | None = None
    line: int | None = None
    origin: str = ""   # "allow.toml entry 3", for messages

    def matches(self, sub_path: str, f: Finding) -> bool:
        if not (_path_match(self.path, sub_path) and fnmatch.fnmatchcase(f.rule, self.rule)):
            return False
        if self.file is not None and _norm(self.file) != _norm(f.file or ""):
            return False
        return self.line is None or self.line == f.line


def _norm(path: str) -> str:
    text = str(PurePosixPath(path.replace("\\", "/")))
    return text[2:] if text.startswith("./") else text


def _path_match(pattern: str, sub_path: str) -> bool:
    pattern, sub_path = _norm(pattern).rstrip("/"), _norm(sub_path).rstrip("/")
    return pattern == sub_path or fnmatch.fnmatchcase(sub_path, pattern)


# -- loading --------------------------------------------------------------------------------------------
def load_allow(path: Path) -> list[AllowEntry]:
    """Read an allow file (JSON or TOML, chosen by suffix; other suffixes: JSON, then TOML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuppressionError(f"{path}: cannot be read: {exc}") from None
    data: Any = None
    errors = []
    parsers = (_toml, _json) if path.suffix.lower() == ".toml" else (_json, _toml)
    for parse in parsers:
        try:
            data = parse(text)
            break
        except ValueError as exc:
            errors.append(str(exc))
    else:
        raise SuppressionError(f"{path}: not valid JSON or TOML ({'; '.join(errors)})")
    if isinstance(data, dict):
        data = data.get("allow", data.get("suppress"))
    if not isinstance(data, list):
        raise SuppressionError(f"{path}: expected a list of entries (JSON list, or [[allow]] tables in TOML)")
    return [_entry(item, f"{path.name} entry {i}", path) for i, item in enumerate(data, 1)]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"JSON line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _toml(text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"TOML: {exc}") from None


def _entry(item: Any, origin: str, path: Path) -> AllowEntry:
    if not isinstance(item, dict):
        raise SuppressionError(f"{path}: {origin} is {type(item).__name__}, not a table/object")
    unknown = set(item) - {"path", "rule", "file", "line", "reason"}
    if unknown:
        raise SuppressionError(f"{path}: {origin} has unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("path", "rule"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise SuppressionError(f"{path}: {origin} needs a non-empty string `{key}`")
    if item.get("file") is not None and not isinstance(item["file"], str):
        raise SuppressionError(f"{path}: {origin}: `file` must be a string")
    line = item.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, int) or line < 1):
        raise SuppressionError(f"{path}: {origin}: `line` must be a positive integer")
    reason = item.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    return AllowEntry(item["path"].strip(), item["rule"].strip(), reason, item.get("file"), line, origin)


BaselineKey = tuple[str, str, str, int, str]


def _key(sub_path: str, f: Finding) -> BaselineKey:
    return (_norm(sub_path).rstrip("/"), f.rule, _norm(f.file) if f.file else "", f.line or 0, f.message)


def load_baseline(path: Path) -> set[BaselineKey]:
    """Keys of every finding in a previous `--format json` report."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SuppressionError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SuppressionError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise SuppressionError(f"{path}: nested too deeply") from None
    subs = data.get("submissions") if isinstance(data, dict) else None
    if not isinstance(subs, list):
        raise SuppressionError(f"{path}: not a golfaudit JSON report (no `submissions` list)")
    keys: set[BaselineKey] = set()
    for i, sub in enumerate(subs):
        try:
            for f in sub["findings"]:
                line = f.get("line")
                keys.add((_norm(sub["path"]).rstrip("/"), f["rule"], _norm(f["file"]) if f.get("file") else "",
                          line if isinstance(line, int) else 0, f["message"]))
        except (KeyError, TypeError, AttributeError):
            raise SuppressionError(f"{path}: submission {i} is not in the golfaudit report shape") from None
    return keys


# -- applying ---------------------------------------------------------------------------------------------
def _policy_finding(message: str, severity: str, rule: str = "SUPPRESSION", file: str | None = None,
                    line: int | None = None, evidence: str = "") -> Finding:
    return registry.get(rule).finding(message, file, line, severity=severity, evidence=evidence)


def rejudge(sub: SubmissionReport, findings: Iterable[Finding]) -> SubmissionReport:
    """The same submission with new findings, verdict and eligibility by harness.report's policy."""
    ordered = tuple(sorted(findings, key=Finding.sort_key))
    verdict = "error" if sub.error else decide_verdict(ordered)
    if sub.track == NO_FOLDER_TRACK:   # a change that holds no records folder: eligibility does not apply
        return replace(sub, findings=ordered, verdict=verdict, eligible=None)
    return replace(sub, findings=ordered, verdict=verdict, eligible=decide_eligibility(verdict, ordered, sub.track))


def apply_suppressions(report: Report, allow: list[AllowEntry] | None = None,
                       baseline: set[BaselineKey] | None = None, baseline_name: str = "baseline") -> Report:
    allow = allow or []
    baseline = baseline or set()
    subs = []
    for sub in report.submissions:
        findings: list[Finding] = []
        used: set[int] = set()
        for f in sub.findings:
            if not f.suppressed:
                if _key(sub.path, f) in baseline:
                    f = f.suppress(f"accepted in {baseline_name}")
                else:
                    for i, entry in enumerate(allow):
                        if entry.reason and entry.matches(sub.path, f):
                            f = f.suppress(f"{entry.reason} ({entry.origin})")
                            used.add(i)
                            break
            findings.append(f)
        for i, entry in enumerate(allow):
            if not _path_match(entry.path, sub.path):
                continue
            if not entry.reason:
                findings.append(_policy_finding(
                    f"{entry.origin} (rule {entry.rule}) has no reason, so it suppresses nothing: every "
                    f"suppression must say why the reviewer accepts the finding", "error"))
            elif i not in used and not any(entry.matches(sub.path, f) for f in findings):
                findings.append(_policy_finding(
                    f"{entry.origin} (rule {entry.rule}) matched no finding of this submission (stale?)", "info"))
        subs.append(rejudge(sub, findings))
    return replace(report, submissions=tuple(subs))


# -- in-source comments -------------------------------------------------------------------------------------
def _source_lines(sub: SubmissionReport, name: str, cache: dict[str, list[str] | None]) -> list[str] | None:
    if name in cache:
        return cache[name]
    root = Path(sub.path)
    lines = None
    if ".." not in PurePosixPath(name).parts:
        target = root if root.is_file() and root.name == name else root / name
        try:
            if target.is_file() and not target.is_symlink() and target.stat().st_size <= MAX_SOURCE_BYTES:
                lines = target.read_bytes().decode("utf-8", errors="replace").splitlines()
        except OSError:
            lines = None
    cache[name] = lines
    return lines


def annotate_inline(report: Report) -> Report:
    """Add an INLINE-IGNORE info finding beside every finding that a `# golfaudit: ignore` comment targets."""
    subs = []
    for sub in report.submissions:
        cache: dict[str, list[str] | None] = {}
        notes: list[Finding] = []
        for f in sub.findings:
            if f.severity == "info" or not f.file or not f.line:
                continue
            lines = _source_lines(sub, f.file, cache)
            if not lines:
                continue
            last = max(f.end_line or f.line, f.line)
            for number in range(max(1, f.line - 1), min(last, len(lines)) + 1):
                match = INLINE_RE.search(lines[number - 1])
                if not match:
                    continue
                wanted = [r.strip() for r in (match.group(1) or "").split(",") if r.strip()]
                if wanted and f.rule not in wanted:
                    continue
                notes.append(_policy_finding(
                    f"the submission's source asks golfaudit to ignore {f.rule} here (line {number}); in-source "
                    f"comments only annotate, so the {f.rule} finding at line {f.line} stands",
                    "info", rule="INLINE-IGNORE", file=f.file, line=number, evidence=lines[number - 1].strip()))
                break
        subs.append(rejudge(sub, [*sub.findings, *notes]) if notes else sub)
    return replace(report, submissions=tuple(subs))
