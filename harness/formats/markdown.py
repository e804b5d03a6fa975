"""GitHub-flavoured Markdown: the compact PR comment (`--format markdown-full` has every detail).

1. A verdict line and, when known, the pull request and the commit the links are pinned to.
2. A headline table, one row per submission: verdict, eligibility, val_bpb claimed → measured, and the
   deciding finding as `RULE file:line` (the rule linked to where it is cited, the line to the code).
3. Per submission that is not plainly legal: its errors with their lines, deciding one first, same-cause
   findings merged; the numbers, warnings and the table of every rule inside a closed `<details>`.

The comment stays under GitHub's 65,536-character limit: sections lose detail in a fixed order, largest
and least severe first, and a note says what was cut and where the full report is (the CI run's
artifacts when known).
"""

from __future__ import annotations

from dataclasses import replace

from harness.formats import register
from harness.formats.headline import ELIGIBLE, FindingGroup, grouped, score_text, where
from harness.formats.markdown_full import (
    GITHUB_COMMENT_LIMIT,
    VERDICT_MARK,
    _code,
    _esc,
    _evidence,
    _numbers,
    _quote_path,
    _rules_table,
    status_summary,
)
from harness.formats.rulestatus import citation_url, rows_for, rules_in
from harness.report import VERDICT_ORDER, Finding, Report, SubmissionReport, deciding_finding

DEFAULT_LIMIT = 65000           # under GitHub's limit, with room for a bot's own header
SINGLE_LIMIT_BYTES = 8000       # a one-folder comment, UTF-8 bytes
SECTION_LIMIT_BYTES = 7500      # one submission's section in a batch
MAX_ERRORS = 10
MAX_WARNINGS = 10
# detail levels of a section, from most to least; a section steps down until it fits
LEVELS = ("full", "failing-rules", "no-warnings", "few-errors", "errors-only", "headline-only")
CUT_TEXT = {
    "failing-rules": "passing rows of the rules tables",
    "no-warnings": "warnings and evidence",
    "few-errors": "errors after the first 3",
    "errors-only": "the details blocks",
    "headline-only": "whole sections (the headline table lists every submission)",
}


def relabel(report: Report, labels: dict[str, str] | None) -> Report:
    """The report with each submission's path replaced by its display label."""
    if not labels:
        return report
    return replace(report, submissions=tuple(replace(s, path=labels.get(s.path, s.path))
                                            for s in report.submissions))


def _file_link(sub: SubmissionReport, f: Finding, repo_url: str | None, ref: str | None) -> str:
    label = where(sub.path, f)
    if f.line and f.end_line and f.end_line != f.line:
        label += f"-{f.end_line}"
    if not (f.file and repo_url and ref) or sub.path.startswith("/"):
        return _code(label, table=True)
    path = where(sub.path, replace(f, line=None))
    rel = path[2:] if path.startswith("./") else path
    url = f"{repo_url.rstrip('/')}/blob/{ref}/{_quote_path(rel)}"
    if f.line:
        url += f"#L{f.line}" + (f"-L{f.end_line}" if f.end_line and f.end_line != f.line else "")
    return f"[{_code(label, table=True)}]({url})"


def _rule_link(rules: list[str], urls: dict[str, str]) -> str:
    return " + ".join(f"[**{_esc(r)}**]({urls[r]})" if urls.get(r) else f"**{_esc(r)}**" for r in rules)


def _decider(sub: SubmissionReport, urls: dict[str, str], repo_url: str | None, ref: str | None) -> str:
    if sub.error:
        return "could not be read"
    f = deciding_finding(sub)
    if f is None:
        return "—"
    return f"{_rule_link([f.rule], urls)} {_file_link(sub, f, repo_url, ref)}"


def _group(sub: SubmissionReport, g: FindingGroup, urls: dict[str, str], repo_url: str | None,
           ref: str | None, evidence: bool) -> list[str]:
    f = g.first
    mark = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}[f.severity]
    out = [f"- {mark} {_rule_link(g.rules, urls)} {_file_link(sub, f, repo_url, ref)}: "
           f"{_esc(f.message, table=False)} <sub>({f.category}, confidence {f.confidence})</sub>"]
    out += [f"  - also {_esc(o.rule)}: {_esc(o.message, table=False)}" for o in g.others]
    if evidence:
        out += _evidence(f)
    return out


def _section(sub: SubmissionReport, metas, urls: dict[str, str], level: str, repo_url: str | None,
             ref: str | None) -> str:
    idx = LEVELS.index(level)
    if level == "headline-only":
        return ""
    out = [f"### {VERDICT_MARK[sub.verdict]} {_code(sub.path)} — {sub.verdict}, eligible: {ELIGIBLE[sub.eligible]}",
           ""]
    if sub.error:
        out += [f"> could not be audited: {_esc(sub.error, False)}", ""]
    groups = [g for g in grouped(sub, include_info=False) if not g.first.suppressed]
    errors = [g for g in groups if g.first.severity == "error"]
    warnings = [g for g in groups if g.first.severity == "warning"]
    cap = MAX_ERRORS if idx < LEVELS.index("few-errors") else 3
    decider = deciding_finding(sub)
    for g in errors[:cap]:
        out += _group(sub, g, urls, repo_url, ref,
                      evidence=idx < LEVELS.index("no-warnings") and decider in g.findings)
    if len(errors) > cap:
        out.append(f"- … {len(errors) - cap} more error(s) in the full report")
    if idx >= LEVELS.index("errors-only") and not errors and not sub.error:
        return ""
    if idx < LEVELS.index("errors-only"):
        rows = rows_for(sub, metas)
        summary = status_summary(rows)
        shown_warnings = warnings[:MAX_WARNINGS] if idx < LEVELS.index("no-warnings") else []
        out += ["", f"<details><summary>numbers, {len(warnings)} warning(s), rules: {summary}</summary>", ""]
        out += _numbers(sub, per_seed=False)
        if shown_warnings:
            out += ["", "**Warnings**", ""]
            for g in shown_warnings:
                out += _group(sub, g, urls, repo_url, ref, evidence=False)
            if len(warnings) > len(shown_warnings):
                out.append(f"- … {len(warnings) - len(shown_warnings)} more warning(s) in the full report")
        out += [""] + _rules_table(rows, only_failing=idx >= LEVELS.index("failing-rules"))[2:-2]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def _headline(report: Report, urls: dict[str, str], repo_url: str | None, ref: str | None,
              pr: dict[str, str] | None) -> str:
    subs = report.submissions
    counts: dict[str, int] = {}
    for s in subs:
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
    worst = max(counts, key=lambda v: VERDICT_ORDER[v]) if counts else "legal"
    elig = {k: sum(1 for s in subs if s.eligible is v) for k, v in (("yes", True), ("no", False), ("n/a", None))}
    if len(subs) == 1:
        line = (f"{VERDICT_MARK[worst]} **golfaudit: {subs[0].verdict}** — eligible: **{ELIGIBLE[subs[0].eligible]}**"
                f" — {_code(subs[0].path)}")
    else:
        line = (f"{VERDICT_MARK[worst]} **golfaudit: {len(subs)} submissions** — "
                + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) + " — eligible: "
                + ", ".join(f"{n} {k}" for k, n in elig.items() if n))
    context = []
    if pr and pr.get("number"):
        context.append(f"PR #{_esc(pr['number'], False)}")
    if ref:
        context.append(f"head {_code(ref[:12])}")
    context.append(f"{_esc(report.tool, False)} {_esc(report.version, False)}, ruleset {_esc(report.ruleset, False)}")
    out = [line, "", "<sub>" + " · ".join(context) + ". Static audit: no submission code was run unless a number "
           "says `reproduced`.</sub>", ""]
    if subs:
        out += ["| | submission | verdict | eligible | val_bpb claimed → measured | deciding finding |",
                "|---|---|---|---|---|---|"]
        for s in subs:
            out.append(f"| {VERDICT_MARK[s.verdict]} | {_code(s.path, table=True)} | {s.verdict} | "
                       f"{ELIGIBLE[s.eligible]} | {_esc(score_text(s))} | {_decider(s, urls, repo_url, ref)} |")
        out.append("")
    return "\n".join(out) + "\n"


def _full_report_hint(pr: dict[str, str] | None) -> str:
    if pr and pr.get("run_url"):
        return f"the full report is in [this run's artifacts]({pr['run_url']})"
    return "run `audit.py check --format json` (or `--format markdown-full`) for the full report"


@register("markdown")
def render(report: Report, repo_url: str | None = None, ref: str | None = None, max_chars: int = DEFAULT_LIMIT,
           labels: dict[str, str] | None = None, pull_request: dict[str, str] | None = None, **_: object) -> str:
    """The comment, at most `max_chars` characters (never more than GitHub's 65,536)."""
    limit = min(max_chars, GITHUB_COMMENT_LIMIT - 1)
    report = relabel(report, labels)
    metas = rules_in(report.submissions)
    urls = {m.id: citation_url(m.url, m.citation) for m in metas}
    head = _headline(report, urls, repo_url, ref, pull_request)
    if not report.submissions:
        return head + "No submission was audited.\n"
    subs = report.submissions
    # a plainly legal, eligible submission with no error has nothing to say beyond its headline row
    levels = [len(LEVELS) - 1 if _quiet(s) else 0 for s in subs]
    cache: dict[tuple[int, int], str] = {}

    def section(i: int) -> str:
        key = (i, levels[i])
        if key not in cache:
            cache[key] = _section(subs[i], metas, urls, LEVELS[levels[i]], repo_url, ref)
        return cache[key]

    budget = SINGLE_LIMIT_BYTES - len(head.encode("utf-8")) - 400 if len(subs) == 1 else SECTION_LIMIT_BYTES
    for i in range(len(subs)):
        while len(section(i).encode("utf-8")) > budget and levels[i] < len(LEVELS) - 2:
            levels[i] += 1
    reserve = 700
    cut_from = list(levels)

    def total() -> int:
        return len(head) + sum(len(section(i)) + 1 for i in range(len(subs)))

    while total() > limit - reserve and any(lv < len(LEVELS) - 1 for lv in levels):
        i = max((j for j in range(len(subs)) if levels[j] < len(LEVELS) - 1),
                key=lambda j: (-VERDICT_ORDER[subs[j].verdict], len(section(j))))
        levels[i] += 1
    body = head + "\n".join(s for s in (section(i) for i in range(len(subs))) if s)
    cuts = sorted({LEVELS[lv] for lv, was in zip(levels, cut_from) if lv > was} |
                  {LEVELS[lv] for lv in levels if 0 < lv < len(LEVELS) - 1}, key=LEVELS.index)
    if cuts:
        body += (f"\n> ✂️ **Truncated** to stay under GitHub's {GITHUB_COMMENT_LIMIT:,}-character comment limit "
                 f"(cut: {'; '.join(CUT_TEXT[c] for c in cuts)}); {_full_report_hint(pull_request)}.\n")
    body = body.encode("utf-8", "replace").decode("utf-8")
    if len(body) > limit:   # only a huge headline table gets here
        tail = f"\n\n> ✂️ **Truncated** at {limit - 400:,} characters; {_full_report_hint(pull_request)}.\n"
        body = body[:limit - 400] + tail
    return body


def _quiet(sub: SubmissionReport) -> bool:
    return (sub.verdict == "legal" and sub.eligible is not False and not sub.error
            and not any(f.severity in ("error", "warning") and not f.suppressed for f in sub.findings))
