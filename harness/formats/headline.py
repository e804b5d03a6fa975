"""What the human formats (text, markdown) say first about a submission, read off the report.

- `score(sub)`: the claimed val_bpb and the measured one with where it was measured (log, reproduced by
  `eval`, or a decoy-data `run`, which is never the submission's score);
- `grouped(sub)`: the findings in reading order (harness.report.reading_order) with findings of the same
  cause merged: same file, line, category, severity and confidence, so SLOT, TTT and ETLB errors on one
  line read as one item naming its rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.report import Finding, SubmissionReport, deciding_finding, reading_order

ELIGIBLE = {True: "yes", False: "no", None: "n/a"}


@dataclass(frozen=True)
class FindingGroup:
    """Findings of one cause at one place; `first` is the one shown in full."""

    findings: tuple[Finding, ...]

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def rules(self) -> list[str]:
        return list(dict.fromkeys(f.rule for f in self.findings))

    @property
    def rule_text(self) -> str:
        return "+".join(self.rules)

    @property
    def others(self) -> list[Finding]:
        """The merged findings after the first whose message differs from every one before it."""
        seen = {self.first.message}
        out = []
        for f in self.findings[1:]:
            if f.message not in seen:
                seen.add(f.message)
                out.append(f)
        return out


def _cause(f: Finding) -> tuple:
    return (f.file, f.line, f.category, f.severity, f.confidence, f.suppressed)


def grouped(sub: SubmissionReport, include_info: bool = True) -> list[FindingGroup]:
    """Findings in reading order, same-cause findings merged into one group (file-less ones never merge)."""
    groups: dict[tuple, list[Finding]] = {}
    order: list[tuple] = []
    for i, f in enumerate(reading_order(sub)):
        if f.severity == "info" and not include_info:
            continue
        key = _cause(f) if f.file and f.line else (i,)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    return [FindingGroup(tuple(groups[k])) for k in order]


def where(label: str, f: Finding) -> str:
    """`label/file:line` (a single-script submission is its own file)."""
    if not f.file:
        return label
    single = label.endswith(".py") and label.rsplit("/", 1)[-1] == f.file
    text = label if single else f"{label}/{f.file}"
    return text + (f":{f.line}" if f.line else "")


def value(entry: Any) -> Any:
    return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


def _num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def measured_score(sub: SubmissionReport) -> tuple[Any, str]:
    """(measured val_bpb, where it came from): the logs' mean, a reproduction by `eval`, or a sandboxed run's
    score on decoy val data; (None, "") when nothing was measured."""
    m = sub.measured
    entry = m.get("val_bpb_mean")
    if isinstance(entry, dict) and entry.get("value") is not None:
        return entry["value"], "reproduced" if entry.get("source") == "reproduced" else "log"
    if entry is not None and not isinstance(entry, dict):
        return entry, "log"
    run = m.get("run") if isinstance(m.get("run"), dict) else {}
    decoy = run.get("decoy_val_bpb")
    if value(decoy) is not None:
        return value(decoy), "decoy run"
    return None, ""


def claimed_score(sub: SubmissionReport) -> Any:
    c = sub.claims
    return c.get("val_bpb", c.get("mean_val_bpb"))


def score_text(sub: SubmissionReport) -> str:
    """`1.1922 → 1.1923 (log)`: claimed, then measured and its source."""
    measured, source = measured_score(sub)
    tail = f" ({source})" if source else ""
    return f"{_num(claimed_score(sub))} → {_num(measured)}{tail}"


def bytes_text(sub: SubmissionReport) -> str:
    c = sub.claims
    claimed = c.get("bytes_total", c.get("artifact_bytes_max"))
    return f"{_num(claimed)} → {_num(value(sub.measured.get('total_bytes_max')))}"


def decider_text(sub: SubmissionReport, label: str) -> str:
    """`RULE file:line` of the deciding finding, `—` when nothing decides against the submission."""
    if sub.error:
        return "could not be read"
    f = deciding_finding(sub)
    if f is None:
        return "—"
    return f"{f.rule} {where(label, f)}"
