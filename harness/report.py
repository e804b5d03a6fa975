"""Findings, per-submission reports and the verdict policy.

Everything here is a frozen value: rules produce `Finding`s, the engine folds them into a
`SubmissionReport` with `judge()`, and formatters only read. The verdict policy lives in one place:

- `illegal`: an unsuppressed **legality** finding of severity `error` whose confidence is high or medium;
- `needs-review`: an unsuppressed legality finding of severity `error` with confidence `low` — the
  analysis saw something it could not decide (dynamic code, a shape it does not recognise);
- `legal`: otherwise (warnings and info findings never change the verdict);
- `error`: the input could not be read (set by the loader, with a hygiene finding naming the file).

Eligibility (record leaderboard) is separate: `False` on any unsuppressed eligibility or hygiene error or
when the verdict is illegal/error, `None` when it does not apply (non-record track) or is unknown, else `True`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Verdict = Literal["legal", "needs-review", "illegal", "error"]
Category = Literal["legality", "eligibility", "hygiene"]
Severity = Literal["error", "warning", "info"]
Confidence = Literal["high", "medium", "low"]
SourceWeight = Literal["README", "MAINT", "#1017", "COMM", "GUESS"]

VERDICT_ORDER: dict[str, int] = {"legal": 0, "needs-review": 1, "illegal": 2, "error": 3}
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Finding:
    rule: str
    category: Category
    severity: Severity
    confidence: Confidence
    file: str | None
    line: int | None
    message: str
    citation: str
    source_weight: SourceWeight
    end_line: int | None = None
    evidence: str = ""
    suppressed: bool = False
    suppression_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["end_line"] is None and data["line"] is not None:
            data["end_line"] = data["line"]
        if data["suppression_reason"] is None:
            del data["suppression_reason"]
        return data

    def sort_key(self) -> tuple:
        return (
            -SEVERITY_ORDER[self.severity],
            self.file or "",
            self.line or 0,
            self.rule,
            self.message,
        )

    def suppress(self, reason: str) -> Finding:
        return replace(self, suppressed=True, suppression_reason=reason)


@dataclass(frozen=True)
class Measured:
    """A value golfaudit found itself, and where it came from: `log`, `file` or `reproduced`."""

    value: Any
    source: Literal["log", "file", "reproduced", "computed"]
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "source": self.source}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class SubmissionReport:
    path: str
    track: str
    verdict: Verdict
    eligible: bool | None
    findings: tuple[Finding, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # rule id -> {"status": "checked" | "not-checked" | "n/a", "detail": what it read, or why nothing}
    coverage: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "path": self.path,
            "track": self.track,
            "verdict": self.verdict,
            "eligible": self.eligible,
            "findings": [f.to_json() for f in self.findings],
            "claims": self.claims,
            "measured": _measured_json(self.measured),
        }
        if self.coverage:
            out["coverage"] = self.coverage
        if self.error:
            out["error"] = self.error
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubmissionReport:
        findings = tuple(Finding(**{k: v for k, v in f.items()}) for f in data["findings"])
        return cls(
            path=data["path"],
            track=data["track"],
            verdict=data["verdict"],
            eligible=data["eligible"],
            findings=findings,
            claims=data["claims"],
            measured=data["measured"],
            error=data.get("error"),
            coverage=data.get("coverage") or {},
        )


def _measured_json(value: Any) -> Any:
    if isinstance(value, Measured):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): _measured_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_measured_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Report:
    tool: str
    version: str
    ruleset: str
    submissions: tuple[SubmissionReport, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "version": self.version,
            "ruleset": self.ruleset,
            "submissions": [s.to_json() for s in self.submissions],
        }


def decide_verdict(findings: tuple[Finding, ...] | list[Finding]) -> Verdict:
    """The verdict policy (see module docstring)."""
    active = [f for f in findings if not f.suppressed and f.category == "legality" and f.severity == "error"]
    if any(f.confidence in ("high", "medium") for f in active):
        return "illegal"
    if active:
        return "needs-review"
    return "legal"


def deciding_finding(sub: SubmissionReport) -> Finding | None:
    """The finding that decides the verdict (or, for a legal submission that is not eligible, the
    eligibility): the first, in report order, of the findings the policy above turns on. None when the
    submission is legal and not ineligible, or could not be read."""
    if sub.error:
        return None
    active = [f for f in sub.findings if not f.suppressed and f.severity == "error"]
    legality = [f for f in active if f.category == "legality"]
    if sub.verdict == "illegal":
        for level in ("high", "medium"):
            for f in legality:
                if f.confidence == level:
                    return f
    if sub.verdict == "needs-review":
        return legality[0] if legality else None
    if sub.eligible is False:
        for category in ("eligibility", "hygiene"):
            for f in active:
                if f.category == category:
                    return f
    return None


def reading_order(sub: SubmissionReport) -> list[Finding]:
    """The findings as a reviewer reads them: the deciding one first, then the other errors that decide
    (legality, then eligibility and hygiene), warnings, info; suppressed ones last. Stable within a rank."""
    decider = deciding_finding(sub)

    def rank(f: Finding) -> int:
        if f.suppressed:
            return 9
        if f is decider:
            return 0
        if f.severity == "error":
            if f.category == "legality":
                return 1 if f.confidence in ("high", "medium") else 2
            return 3
        return 4 if f.severity == "warning" else 5

    return sorted(sub.findings, key=rank)


def decide_eligibility(verdict: Verdict, findings: tuple[Finding, ...] | list[Finding], track: str) -> bool | None:
    if verdict in ("illegal", "error"):
        return False
    if track.startswith("non-record"):
        return None
    active = [f for f in findings if not f.suppressed and f.category == "eligibility"]
    if any(f.severity == "error" for f in active):
        return False
    # A folder that breaks the submission process (no script, unparsable code, broken JSON) is not accepted
    # as a record either: "Broken scripts will not be accepted" (README).
    if any(f.severity == "error" and f.category == "hygiene" and not f.suppressed for f in findings):
        return False
    if any(f.severity == "warning" for f in active):
        return None
    return True


def judge(
    path: str,
    track: str,
    findings: list[Finding],
    claims: dict[str, Any],
    measured: dict[str, Any],
    error: str | None = None,
    coverage: dict[str, dict[str, str]] | None = None,
) -> SubmissionReport:
    ordered = tuple(sorted(findings, key=Finding.sort_key))
    verdict: Verdict = "error" if error else decide_verdict(ordered)
    return SubmissionReport(
        path=path,
        track=track,
        verdict=verdict,
        eligible=decide_eligibility(verdict, ordered, track),
        findings=ordered,
        claims=_measured_json(claims),
        measured=_measured_json(measured),
        error=error,
        coverage=dict(coverage or {}),
    )


def exit_code(report: Report, fail_on: str) -> int:
    """0 when no verdict reaches `fail_on`; 1 when some does, or some submission is `error`."""
    bar = VERDICT_ORDER[fail_on]
    for sub in report.submissions:
        if sub.verdict == "error" or VERDICT_ORDER[sub.verdict] >= bar:
            return 1
    return 0
