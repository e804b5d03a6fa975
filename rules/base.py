"""What a rule is: data (id, title, citation, rationale, examples) plus a small detector.

Modelled on Fixit's lint rules (examples embedded in the rule become tests) and mlperf-logging's
compliance checks (rules as data, cited to the rule book). A rule never prints: `check()` yields
`Finding`s and the engine decides what they mean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.context import AuditContext
from harness.coverage import Coverage, coverage_of
from harness.nativecode import native_sources
from harness.report import Category, Confidence, Finding, Severity, SourceWeight

NATIVE_WHAT = {"cache": "an n-gram / hash-count cache", "scorer": "token scoring (log-probabilities)"}


@dataclass(frozen=True)
class Citation:
    """Where a rule comes from and how firm it is (`weight`: README, MAINT, #1017, COMM, GUESS)."""

    source: str
    quote: str
    weight: SourceWeight
    url: str = ""

    def __str__(self) -> str:
        text = f'{self.source}: "{self.quote}"'
        return f"{text} <{self.url}>" if self.url else text


@dataclass(frozen=True)
class Example:
    """A folder in miniature: file name → text. `line` is where an ILLEGAL example must be flagged."""

    files: Mapping[str, str]
    why: str
    line: int | None = None
    file: str | None = None
    severity: Severity = "error"
    options: Mapping[str, Any] = field(default_factory=dict)


def code(source: str, why: str, line: int | None = None, *, extra: Mapping[str, str] | None = None,
         severity: Severity = "error", options: Mapping[str, Any] | None = None) -> Example:
    """An example whose subject is `train_gpt.py`."""
    files = {"train_gpt.py": source, **(extra or {})}
    return Example(files, why, line, "train_gpt.py" if line is not None else None, severity, options or {})


def log(text: str, why: str, line: int | None = None, *, name: str = "train_seed1337.log",
        extra: Mapping[str, str] | None = None, severity: Severity = "error",
        options: Mapping[str, Any] | None = None) -> Example:
    """An example whose subject is one training log."""
    files = {name: text, **(extra or {})}
    return Example(files, why, line, name if line is not None else None, severity, options or {})


def folder(files: Mapping[str, str], why: str, line: int | None = None, *, file: str | None = None,
           severity: Severity = "error", options: Mapping[str, Any] | None = None) -> Example:
    """An example made of several files."""
    return Example(dict(files), why, line, file, severity, options or {})


class Rule:
    """Base class. Subclasses set the class attributes and implement `check`."""

    ID: ClassVar[str]
    TITLE: ClassVar[str]
    CATEGORY: ClassVar[Category]
    SEVERITY: ClassVar[Severity] = "error"
    CONFIDENCE: ClassVar[Confidence] = "high"
    CITATION: ClassVar[Citation]
    RATIONALE: ClassVar[str]
    # The date from which the rule was in force (README commit or ruling); None = from the start.
    EFFECTIVE_FROM: ClassVar[dt.date | None] = None
    # Where that date comes from, with its source weight (shown when a finding is downgraded for it).
    EFFECTIVE_SOURCE: ClassVar[str] = ""
    LEGAL: ClassVar[list[Example]] = []
    ILLEGAL: ClassVar[list[Example]] = []
    # The commands whose reports can carry this rule's findings (the rules table lists them).
    COMMANDS: ClassVar[tuple[str, ...]] = ("check",)
    # False for a rule whose findings come from a run (`run`, `eval`, `trace`) or from the report's
    # post-processing (suppressions): `check` does not call its `check()`, and it has no static examples.
    STATIC: ClassVar[bool] = True
    # What the detector reads (harness.coverage.INPUTS): with none of it present the rule is "not checked".
    READS: ClassVar[tuple[str, ...]] = ("code",)
    # What this rule judges that native code can implement ("cache", "scorer": harness.nativecode). A C/C++
    # source of the submission implementing it is code the detector cannot read: needs-review, never a pass.
    NATIVE_SUBJECTS: ClassVar[frozenset[str]] = frozenset()

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        """Findings for the submission `ctx.submission`, read through the shared context (harness.context).
        A rule whose findings come from elsewhere (STATIC False) has no static detector."""
        return ()

    def coverage(self, ctx: AuditContext) -> Coverage:
        """What this rule read on `ctx.submission`, or why it read nothing (shown beside a pass or instead of
        one)."""
        return coverage_of(self.READS, ctx)

    def finding(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        *,
        end_line: int | None = None,
        severity: Severity | None = None,
        confidence: Confidence | None = None,
        evidence: str = "",
    ) -> Finding:
        return Finding(
            rule=self.ID,
            category=self.CATEGORY,
            severity=severity or self.SEVERITY,
            confidence=confidence or self.CONFIDENCE,
            file=file,
            line=line,
            end_line=end_line if end_line is not None else line,
            message=message,
            evidence=evidence[:2000],
            citation=str(self.CITATION),
            source_weight=self.CITATION.weight,
        )

    def native_review(self, ctx: AuditContext, produced: list[Finding]) -> list[Finding]:
        """Low-confidence errors for native sources implementing this rule's subject, unless the detector
        already decided (an error of high or medium confidence)."""
        if not self.NATIVE_SUBJECTS or any(f.severity == "error" and f.confidence != "low" for f in produced):
            return []
        out = []
        for source in native_sources(ctx):
            subjects = source.subjects & self.NATIVE_SUBJECTS
            if subjects:
                what = " and ".join(NATIVE_WHAT.get(s, s) for s in sorted(subjects))
                out.append(self.finding(f"{source.describe()} implements {what} in native code, which this rule "
                                        f"cannot read: review it by hand", source.file, source.line,
                                        severity="error", confidence="low"))
        return out

    @classmethod
    def doc_row(cls) -> dict[str, str]:
        return {
            "id": cls.ID,
            "title": cls.TITLE,
            "category": cls.CATEGORY,
            "severity": cls.SEVERITY,
            "source_weight": cls.CITATION.weight,
            "source": cls.CITATION.source,
            "commands": ", ".join(cls.COMMANDS),
        }
