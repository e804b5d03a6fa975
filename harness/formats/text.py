"""Plain text for a terminal or a pipe: one headline per submission, then its findings, deciding one first.

Headline: verdict, eligibility, val_bpb claimed → measured (and where it was measured), the deciding
finding as `RULE file:line`, and the submission. Then per submission with findings, one line per finding
(`path/file:line  RULE  severity/confidence  message`), same-cause findings merged (their rules joined with
`+`, the other messages on `also` lines), and the rules that had nothing to read as `not checked: RULES: why`
(never shown as passing). A message is never broken across lines: on a terminal the table
fits the width (COLUMNS when set), in a pipe nothing is wrapped, so `grep` sees each message whole.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table

from harness.formats import register
from harness.formats.headline import ELIGIBLE, bytes_text, decider_text, grouped, score_text, where
from harness.formats.rulestatus import rows_for, rules_in
from harness.report import Report, SubmissionReport

VERDICT_STYLE = {"legal": "green", "needs-review": "yellow", "illegal": "bold red", "error": "bold magenta"}
PIPE_WIDTH = 100_000    # wide enough that rich never wraps a line of a report written to a pipe or file


def _headline_table(report: Report, labels: dict[str, str], terminal: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD if terminal else None, show_edge=False, pad_edge=False,
                  title=f"golfaudit {report.version} — {len(report.submissions)} submission(s)", title_justify="left")
    overflow = "fold" if terminal else "ignore"
    for column in ("verdict", "eligible", "val_bpb claimed → measured", "bytes claimed → measured",
                   "deciding finding", "submission"):
        table.add_column(column, overflow=overflow, no_wrap=not terminal)
    for sub in report.submissions:
        table.add_row(f"[{VERDICT_STYLE[sub.verdict]}]{sub.verdict}[/]", ELIGIBLE[sub.eligible], score_text(sub),
                      bytes_text(sub), decider_text(sub, "").replace(" /", " ").lstrip("/"),
                      labels.get(sub.path, sub.path))
    return table


def finding_lines(sub: SubmissionReport, label: str) -> list[str]:
    """The findings of one submission (info findings left out), one line per merged group."""
    out = []
    for group in grouped(sub, include_info=False):
        f = group.first
        mark = " [suppressed]" if f.suppressed else ""
        out.append(f"  {where(label, f)}  {group.rule_text}  {f.severity}/{f.confidence}{mark}  {_one_line(f.message)}")
        out += [f"      also {o.rule}: {_one_line(o.message)}" for o in group.others]
    return out


def not_checked_lines(sub: SubmissionReport) -> list[str]:
    """`  not checked: RULE-A, RULE-B: why`, one line per reason (rules that had nothing to read)."""
    by_reason: dict[str, list[str]] = {}
    for row in rows_for(sub, rules_in([sub])):
        if row.status == "not-checked":
            by_reason.setdefault(row.note, []).append(row.rule.id)
    return [f"  not checked: {', '.join(ids)}: {_one_line(why)}" for why, ids in by_reason.items()]


def _one_line(text: str) -> str:
    return " ".join(text.split("\n"))


@register("text")
def render(report: Report, width: int | None = None, color: bool = False, labels: dict[str, str] | None = None,
           **_: object) -> str:
    """`width`: the terminal's columns (None: not a terminal, nothing is wrapped)."""
    labels = labels or {}
    terminal = width is not None
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or PIPE_WIDTH, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, highlight=False)
    console.print(_headline_table(report, labels, terminal))
    for sub in report.submissions:
        label = labels.get(sub.path, sub.path)
        lines = finding_lines(sub, label) + not_checked_lines(sub)
        if not lines and not sub.error:
            continue
        console.print(f"\n[bold]{label}[/]  ({sub.verdict}, eligible: {ELIGIBLE[sub.eligible]})", soft_wrap=True)
        if sub.error:
            console.print(f"  error: {_one_line(sub.error)}", markup=False, soft_wrap=True)
        for line in lines:
            console.print(line, markup=False, soft_wrap=True)
    totals: dict[str, int] = {}
    for sub in report.submissions:
        totals[sub.verdict] = totals.get(sub.verdict, 0) + 1
    console.print("\nsummary: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())), soft_wrap=True)
    return "\n".join(line.rstrip() for line in buffer.getvalue().split("\n"))
