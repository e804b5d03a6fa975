"""Per-rule rows for the reviewer formats (markdown, junit): what the report says about each rule.

Nothing here re-runs a check. A row's status is read off the findings the report already holds, and the
legality part goes through the one verdict policy (`harness.report.decide_verdict`):

- `fail`: an unsuppressed error of the rule (a legality error of high/medium confidence, or an
  eligibility/hygiene error);
- `needs-review`: an unsuppressed legality error of low confidence (the rule could not decide);
- `warn`: unsuppressed warnings only;
- `n/a`: the report says the rule does not apply: an info finding whose message begins "not applicable",
  an eligibility rule on a non-record track (the report's `eligible` is then None by policy), or the rule's
  coverage says so (a 600 s budget outside the 10-minute track);
- `not-checked`: the rule had nothing to read (the report's coverage says why: no analysable code, no log),
  or the submission could not be read. Never shown as a pass;
- `pass`: checked and clean; the note says what the rule read (info findings, e.g. a proof, and suppressed
  findings are shown beside it).

The rows of a report are the rules its coverage lists (those the command ran) and the rules its findings
name; a report without coverage (`run`, `eval`, `trace`) shows the rules it has findings for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.registry import all_rules
from harness.report import Finding, SubmissionReport, decide_verdict

STATUS_ORDER = ("fail", "needs-review", "warn", "not-checked", "pass", "n/a")
PG_URL = "https://github.com/openai/parameter-golf"
THREAD_RE = re.compile(r"#(\d{2,5})\b")


def citation_url(url: str, source: str) -> str:
    """The rule's own link, else one derived from where it cites: the first `#N` thread, else the README."""
    if url:
        return url
    thread = THREAD_RE.search(source)
    if thread:
        return f"{PG_URL}/issues/{thread.group(1)}"   # GitHub redirects an issue number that is a PR
    if "README" in source:
        return f"{PG_URL}/blob/main/README.md"
    return ""


@dataclass(frozen=True)
class RuleMeta:
    id: str
    title: str
    category: str
    severity: str
    rationale: str
    citation: str
    source_weight: str
    url: str = ""


@dataclass(frozen=True)
class RuleRow:
    rule: RuleMeta
    status: str
    findings: tuple[Finding, ...]
    note: str = ""

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed)


def is_not_applicable(f: Finding) -> bool:
    return f.severity == "info" and not f.suppressed and f.message.lower().startswith(("not applicable", "n/a"))


def catalogue() -> list[RuleMeta]:
    """Every rule of rules/ as plain metadata (the formats read this, never the detectors)."""
    out = []
    for rule in all_rules():
        cite = rule.CITATION
        out.append(RuleMeta(rule.ID, rule.TITLE, rule.CATEGORY, rule.SEVERITY, rule.RATIONALE, str(cite),
                            cite.weight, citation_url(getattr(cite, "url", "") or "", cite.source)))
    return out


def meta_for_unknown(f: Finding) -> RuleMeta:
    """A finding whose id is not in the catalogue (e.g. a suppression-file problem) still gets a row."""
    return RuleMeta(f.rule, f.rule, f.category, f.severity, f.message, f.citation, f.source_weight)


def rules_in(report_subs: tuple[SubmissionReport, ...] | list[SubmissionReport]) -> list[RuleMeta]:
    """The rules the submissions' coverage or findings name, catalogue order first, then any id the
    catalogue lacks."""
    named = {rid for sub in report_subs for rid in sub.coverage} | \
        {f.rule for sub in report_subs for f in sub.findings}
    metas = [m for m in catalogue() if m.id in named]
    known = {m.id for m in metas}
    for sub in report_subs:
        for f in sub.findings:
            if f.rule not in known:
                known.add(f.rule)
                metas.append(meta_for_unknown(f))
    return metas


def row_for(sub: SubmissionReport, meta: RuleMeta) -> RuleRow:
    mine = tuple(f for f in sub.findings if f.rule == meta.id)
    active = [f for f in mine if not f.suppressed]
    if sub.error and not mine:
        return RuleRow(meta, "not-checked", mine, "the submission could not be read")
    legality = decide_verdict([f for f in active if f.category == "legality"])
    if legality == "illegal" or any(f.severity == "error" and f.category != "legality" for f in active):
        return RuleRow(meta, "fail", mine)
    if legality == "needs-review":
        return RuleRow(meta, "needs-review", mine)
    if any(f.severity == "warning" for f in active):
        return RuleRow(meta, "warn", mine)
    na = [f for f in active if is_not_applicable(f)]
    if na:
        return RuleRow(meta, "n/a", mine, na[0].message)
    if meta.category == "eligibility" and sub.track.startswith("non-record"):
        return RuleRow(meta, "n/a", mine, f"eligibility does not apply to the {sub.track} track")
    coverage = sub.coverage.get(meta.id) or {}
    status, detail = coverage.get("status"), coverage.get("detail", "")
    if status == "n/a":
        return RuleRow(meta, "n/a", mine, detail)
    if status == "not-checked":
        return RuleRow(meta, "not-checked", mine, detail)
    if status is None and sub.coverage and not mine:
        return RuleRow(meta, "not-checked", mine, "this command does not run this rule")
    return RuleRow(meta, "pass", mine, f"checked: {detail}" if detail else "")


def rows_for(sub: SubmissionReport, metas: list[RuleMeta]) -> list[RuleRow]:
    return [row_for(sub, m) for m in metas]
