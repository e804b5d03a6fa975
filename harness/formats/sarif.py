"""SARIF 2.1.0 for code scanning (e.g. github/codeql-action/upload-sarif).

One run; the driver lists every rule (id, title, rationale, citation as help, its citation link as
helpUri when the rule has one); one result per finding with its physical location (path relative to the
repository root, `%SRCROOT%`), `info` as level `note`, and suppressed findings carrying a SARIF
`suppressions` entry (kind external, status accepted, the reviewer's reason) — listed, never dropped.
Verdicts are run properties; a formatter never decides them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from harness.formats import register
from harness.formats.rulestatus import RuleMeta, rules_in
from harness.report import Finding, Report, SubmissionReport

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFO_URI = "https://github.com/openai/parameter-golf"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _quote(path: str) -> str:
    """Percent-encode; an undecodable file name (surrogate-escaped) gets its original bytes back."""
    try:
        return quote(path, safe="/", errors="surrogateescape")
    except UnicodeEncodeError:
        return quote(path, safe="/", errors="replace")


def _uri(path: str) -> tuple[str, str | None]:
    """A URI reference and its base id: relative paths against %SRCROOT%, absolute ones as file URIs."""
    if path.startswith("/"):
        return "file://" + _quote(path), None
    rel = str(PurePosixPath(path))
    return _quote(rel), "%SRCROOT%"


def _rule(meta: RuleMeta) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": meta.id,
        "name": "".join(part.capitalize() for part in meta.id.replace(".", "-").split("-") if part),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.rationale or meta.title},
        "help": {"text": f"Citation ({meta.source_weight}): {meta.citation}",
                 "markdown": f"**Citation** ({meta.source_weight}): {meta.citation}"},
        "defaultConfiguration": {"level": LEVEL.get(meta.severity, "warning")},
        "properties": {"category": meta.category, "source_weight": meta.source_weight,
                       "tags": ["parameter-golf", meta.category]},
    }
    if meta.url:
        out["helpUri"] = meta.url
    return out


def _location(sub: SubmissionReport, f: Finding) -> dict[str, Any]:
    single = sub.path.endswith(".py") and sub.path.rsplit("/", 1)[-1] == f.file
    path = sub.path if (f.file is None or single) else f"{sub.path}/{f.file}"
    uri, base = _uri(path)
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if f.file and f.line:
        region: dict[str, Any] = {"startLine": f.line}
        if f.end_line and f.end_line >= f.line:
            region["endLine"] = f.end_line
        if f.evidence:
            region["snippet"] = {"text": f.evidence}
        physical["region"] = region
    return {"physicalLocation": physical}


def _fingerprint(sub: SubmissionReport, f: Finding) -> str:
    key = "\x00".join([sub.path, f.rule, f.file or "", f.message])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _result(sub: SubmissionReport, f: Finding, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index[f.rule],
        "level": LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [_location(sub, f)],
        "partialFingerprints": {"golfauditFinding/v1": _fingerprint(sub, f)},
        "properties": {"category": f.category, "confidence": f.confidence, "source_weight": f.source_weight,
                       "citation": f.citation, "submission": sub.path, "verdict": sub.verdict},
    }
    if f.suppressed:
        out["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": f.suppression_reason or "no reason given"}]
    return out


def _invocation(report: Report) -> dict[str, Any]:
    """The audit ran; a submission that could not be read is a notification, not a failed run."""
    out: dict[str, Any] = {"executionSuccessful": True}
    notes = []
    for sub in report.submissions:
        if sub.error:
            uri, base = _uri(sub.path)
            artifact: dict[str, Any] = {"uri": uri, **({"uriBaseId": base} if base else {})}
            notes.append({"level": "error", "message": {"text": sub.error},
                          "locations": [{"physicalLocation": {"artifactLocation": artifact}}]})
    if notes:
        out["toolExecutionNotifications"] = notes
    return out


@register("sarif")
def render(report: Report, **_: object) -> str:
    metas = rules_in(report.submissions)
    index = {m.id: i for i, m in enumerate(metas)}
    results = [_result(sub, f, index) for sub in report.submissions for f in sub.findings]
    run = {
        "tool": {"driver": {"name": report.tool, "version": report.version, "semanticVersion": report.version,
                            "informationUri": INFO_URI, "rules": [_rule(m) for m in metas],
                            "properties": {"ruleset": report.ruleset}}},
        "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the repository root (the working "
                                                                     "directory of the audit)"}}},
        "results": results,
        "invocations": [_invocation(report)],
        "properties": {"submissions": [{"path": s.path, "track": s.track, "verdict": s.verdict,
                                        "eligible": s.eligible} for s in report.submissions]},
    }
    doc = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    text = json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return text.encode("utf-8", "replace").decode("utf-8")   # lone surrogates (undecodable file names) -> ?
