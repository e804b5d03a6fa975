"""Terminal output with rich: a summary table, then findings as `file:line  RULE-ID  message`."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.formats import register
from harness.report import Report

VERDICT_STYLE = {"legal": "green", "needs-review": "yellow", "illegal": "bold red", "error": "bold magenta"}


def _value(entry: Any) -> Any:
    if isinstance(entry, dict) and "value" in entry:
        return entry["value"]
    return entry


def claimed_vs_measured(sub) -> tuple[str, str]:
    claimed_bpb = sub.claims.get("val_bpb", sub.claims.get("mean_val_bpb"))
    measured_bpb = _value(sub.measured.get("val_bpb_mean"))
    bpb = f"{claimed_bpb if claimed_bpb is not None else '—'} / {measured_bpb if measured_bpb is not None else '—'}"
    claimed_bytes = sub.claims.get("bytes_total", sub.claims.get("artifact_bytes_max"))
    measured_bytes = _value(sub.measured.get("total_bytes_max"))
    size = f"{claimed_bytes if claimed_bytes is not None else '—'} / " \
           f"{measured_bytes if measured_bytes is not None else '—'}"
    return bpb, size


@register("text")
def render(report: Report, width: int = 160, color: bool = False, **_: object) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None)
    table = Table(title=f"golfaudit {report.version} — {len(report.submissions)} submission(s)", show_lines=False)
    for column in ("submission", "verdict", "eligible", "val_bpb claimed / log", "bytes claimed / log", "findings"):
        table.add_column(column, overflow="fold")
    for sub in report.submissions:
        bpb, size = claimed_vs_measured(sub)
        counts = {s: sum(1 for f in sub.findings if f.severity == s and not f.suppressed)
                  for s in ("error", "warning", "info")}
        table.add_row(sub.path, f"[{VERDICT_STYLE[sub.verdict]}]{sub.verdict}[/]",
                      {True: "yes", False: "no", None: "n/a"}[sub.eligible], bpb, size,
                      f"{counts['error']}E {counts['warning']}W {counts['info']}I")
    console.print(table)
    for sub in report.submissions:
        shown = [f for f in sub.findings if f.severity != "info"]
        if not shown and not sub.error:
            continue
        console.print(f"\n[bold]{sub.path}[/]  ({sub.verdict})", highlight=False)
        if sub.error:
            console.print(f"  error: {sub.error}", highlight=False, markup=False)
        for f in shown:
            where = f"{sub.path}/{f.file}" if f.file else sub.path
            if f.line:
                where += f":{f.line}"
            mark = " [suppressed]" if f.suppressed else ""
            console.print(f"  {where}  {f.rule}  {f.severity}/{f.confidence}{mark}  {f.message}",
                          highlight=False, markup=False)
    totals: dict[str, int] = {}
    for sub in report.submissions:
        totals[sub.verdict] = totals.get(sub.verdict, 0) + 1
    console.print("\nsummary: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())), highlight=False)
    return buffer.getvalue()
