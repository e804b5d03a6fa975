"""The sweep's table: one row per (ref, records folder), the legal frontier, and the disagreement column.

The record to beat for a row is computed from the sweep itself: the best (lowest mean val_bpb) folder of
the same track, dated before the row's folder, whose verdict is `legal` and whose eligibility is not ruled
out — among the base branch's records and every swept PR. The README's leaderboard is not consulted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.report import SubmissionReport
from harness.stats import bpb_to_nats_per_byte, significance

MERGED = "merged"
UNMERGED = "unmerged"


@dataclass(frozen=True)
class Deciding:
    rule: str
    file: str | None
    line: int | None
    message: str

    def short(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else (self.file or "")
        return f"{self.rule} {where}".strip()


@dataclass(frozen=True)
class Versus:
    """The row against the record to beat: improvement in nats/byte and the one-sided Welch p-values."""

    record: str                 # label of the record (`#N folder` or `base folder`)
    record_bpb: float
    improvement: float          # record - row, nats per byte (positive: the row is better)
    p_readme: float | None      # H1: better by ≥ 0.005 nats (README bar, p < 0.01)
    p_practice: float | None    # H1: better at all (maintainers' practice, p < 0.25)

    def short(self) -> str:
        if self.p_readme is None:
            return f"{self.improvement:+.4f} vs {self.record} (too few seeds for a test)"
        return f"{self.improvement:+.4f} vs {self.record} (p={self.p_readme:.3g})"


@dataclass(frozen=True)
class SweepRow:
    pr: int | None
    ref: str
    head: str
    folder: str
    track: str
    date: str | None
    seeds_bpb: tuple[float, ...]
    verdict: str
    eligible: bool | None
    deciding: Deciding | None
    merge_state: str
    problems: tuple[str, ...] = ()
    scores_from: str = "log"     # "log": the logs' final scores; "claim": only submission.json's
    versus: Versus | None = None
    disagreement: str = ""
    findings: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def claimed_bpb(self) -> float | None:
        return sum(self.seeds_bpb) / len(self.seeds_bpb) if self.seeds_bpb else None

    @property
    def label(self) -> str:
        return f"#{self.pr}" if self.pr is not None else self.ref

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["claimed_bpb"] = self.claimed_bpb
        data["seeds_bpb"] = list(self.seeds_bpb)
        data["problems"] = list(self.problems)
        data["findings"] = list(self.findings)
        return data


def seed_scores(report: SubmissionReport) -> tuple[float, ...]:
    """Per-seed val_bpb: the logs' final scores, else submission.json's claim (a number or a list)."""
    return scores_with_source(report)[0]


def scores_with_source(report: SubmissionReport) -> tuple[tuple[float, ...], str]:
    """Per-seed val_bpb and where they come from: "log" (final score lines) or "claim" (submission.json)."""
    seeds = report.measured.get("seeds") if isinstance(report.measured, dict) else None
    out = []
    if isinstance(seeds, dict):
        for value in seeds.values():
            bpb = value.get("val_bpb") if isinstance(value, dict) else None
            number = bpb.get("value") if isinstance(bpb, dict) else bpb
            if _finite(number):
                out.append(float(number))
    if out:
        return tuple(out), "log"
    claim = report.claims.get("val_bpb") if isinstance(report.claims, dict) else None
    if isinstance(claim, list):
        return tuple(float(x) for x in claim if _finite(x)), "claim"
    return ((float(claim),) if _finite(claim) else ()), "claim"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def deciding_finding(report: SubmissionReport) -> Deciding | None:
    """The finding that decides the verdict: the first active legality error of the deciding confidence,
    else the first active error of any category (what keeps a legal folder off the leaderboard)."""
    active = [f for f in report.findings if not f.suppressed and f.severity == "error"]
    legality = [f for f in active if f.category == "legality"]
    if report.verdict == "illegal":
        legality = [f for f in legality if f.confidence in ("high", "medium")]
    for f in (legality or active):
        return Deciding(f.rule, f.file, f.line, " ".join(f.message.split())[:240])
    return None


def build_row(pr: int | None, ref: str, head: str, folder: str, result: dict[str, Any], merge_state: str) -> SweepRow:
    report = SubmissionReport.from_json(result["report"])
    scores, source = scores_with_source(report)
    return SweepRow(pr=pr, ref=ref, head=head, folder=folder, track=report.track, date=result.get("date"),
                    seeds_bpb=scores, scores_from=source, verdict=report.verdict, eligible=report.eligible,
                    deciding=deciding_finding(report), merge_state=merge_state,
                    problems=tuple(result.get("problems") or ()),
                    findings=tuple(f.to_json() for f in report.findings if not f.suppressed
                                   and f.severity in ("error", "warning")))


def disagreement(row: SweepRow) -> str:
    """Where the verdict and the PR's fate disagree: the column a maintainer reads first."""
    if row.merge_state == MERGED and row.verdict == "illegal":
        return "merged but illegal"
    if row.merge_state == MERGED and row.verdict == "needs-review":
        return "merged, needs review"
    if row.merge_state == "closed" and row.verdict == "legal" and row.eligible is not False:
        return "closed but legal"
    return ""


def is_contender(row: SweepRow) -> bool:
    """Can stand as the record to beat: legal, eligibility not ruled out, dated, with scores its logs print
    (a number only submission.json states, such as a claimed 0.0, sets no record)."""
    return (row.verdict == "legal" and row.eligible is not False and bool(row.date) and bool(row.seeds_bpb)
            and row.scores_from == "log")


def record_to_beat(row: SweepRow, contenders: list[SweepRow]) -> SweepRow | None:
    if not row.date:
        return None
    earlier = [c for c in contenders if c.track == row.track and c.date < row.date
               and (c.folder, c.pr) != (row.folder, row.pr)]
    return min(earlier, key=lambda c: (c.claimed_bpb, c.date), default=None)


def versus(row: SweepRow, record: SweepRow) -> Versus | None:
    if not row.seeds_bpb:
        return None
    new = [bpb_to_nats_per_byte(x) for x in row.seeds_bpb]
    ref = [bpb_to_nats_per_byte(x) for x in record.seeds_bpb]
    sig = significance(new, ref, "nats/byte")
    label = f"{record.label} {record.folder.rsplit('/', 1)[-1]}" if record.pr is not None else \
        f"base {record.folder.rsplit('/', 1)[-1]}"
    p_readme = None if math.isnan(sig.p_margin) else sig.p_margin
    p_any = None if math.isnan(sig.p_any) else sig.p_any
    return Versus(label, record.claimed_bpb, sig.improvement, p_readme, p_any)


def finish_rows(rows: list[SweepRow], base_rows: list[SweepRow]) -> list[SweepRow]:
    """Fill each row's record to beat, significance and disagreement."""
    contenders = [r for r in [*base_rows, *rows] if is_contender(r)]
    out = []
    for row in rows:
        record = record_to_beat(row, contenders)
        out.append(replace(row, versus=versus(row, record) if record else None, disagreement=disagreement(row)))
    return out


def frontier(rows: list[SweepRow], track: str = "10min-16mb") -> list[SweepRow]:
    """The legal frontier: each contender that was the best legal score of its track on its date."""
    steps: list[SweepRow] = []
    for row in sorted((r for r in rows if is_contender(r) and r.track == track),
                      key=lambda r: (r.date, r.claimed_bpb)):
        if not steps or row.claimed_bpb < steps[-1].claimed_bpb:
            steps.append(row)
    return steps


def counts(rows: list[SweepRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[row.verdict] = out.get(row.verdict, 0) + 1
    return dict(sorted(out.items()))

