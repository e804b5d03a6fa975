"""GitHub-flavoured Markdown with every detail (`--format markdown-full`); `markdown` is the compact comment.

A one-line verdict, then per submission: claimed vs measured numbers with each number's source, a table
of every rule (pass / fail / needs-review / warn / not checked / n/a), and each finding with a `file:line` link pinned to
a commit (`--repo-url` and `--ref`), its evidence (long evidence folded in <details>), citation and source
weight. Suppressed findings stay listed, marked suppressed. The text is kept under GitHub's 65,536-character
comment limit by dropping detail in a fixed order, and the comment says what was cut.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from harness.formats import register
from harness.formats.rulestatus import RuleRow, rows_for, rules_in
from harness.report import VERDICT_ORDER, Finding, Report, SubmissionReport

GITHUB_COMMENT_LIMIT = 65536
DEFAULT_LIMIT = 65000   # leave room for a bot's own header
SHORT_EVIDENCE_CHARS = 300
SHORT_EVIDENCE_LINES = 6
MAX_EVIDENCE_CHARS = 1500

VERDICT_MARK = {"legal": "✅", "needs-review": "🟡", "illegal": "❌", "error": "💥"}
STATUS_MARK = {"fail": "❌ fail", "needs-review": "🟡 needs-review", "warn": "⚠️ warn",
               "not-checked": "⬜ not checked", "pass": "✅ pass", "n/a": "➖ n/a"}
ELIGIBLE = {True: "yes", False: "no", None: "n/a"}

# Detail levels, from everything to the bare summary; truncation steps down one level at a time.
LEVELS = ("full", "no-info-evidence", "no-info", "no-evidence", "failing-rules-only", "summary")
CUT_TEXT = {
    "no-info-evidence": "evidence of info findings",
    "no-info": "info findings",
    "no-evidence": "all evidence snippets",
    "failing-rules-only": "passing rows of the rules table and per-seed tables",
    "summary": "findings and rule tables",
}


def _esc(text: Any, table: bool = True) -> str:
    """Plain text safe on one line of Markdown (and inside a table cell when `table`)."""
    s = str(text).replace("\r", "").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|") if table else s


def _code(text: Any, table: bool = False) -> str:
    """An inline code span (entities are not decoded inside one, so only `|` in tables is escaped)."""
    s = str(text).replace("\r", "").replace("\n", " ")
    if table:
        s = s.replace("|", "\\|")
    ticks = "``" if "`" in s else "`"
    pad = " " if ticks == "``" else ""
    return f"{ticks}{pad}{s}{pad}{ticks}"


def _value(entry: Any) -> Any:
    return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


def _fmt_num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.8g}"
    return _esc(value)


def _source(entry: Any) -> str:
    """`log (train.log:12 …)`, `file (…)`, `reproduced on …`; plain values are claims or computed."""
    if not isinstance(entry, dict) or "source" not in entry:
        return ""
    src, detail = entry.get("source"), entry.get("detail", "")
    if src == "reproduced":
        return f"reproduced on {_esc(detail)}" if detail else "reproduced (data not stated)"
    return f"{_esc(src)} ({_esc(detail)})" if detail else _esc(src)


def _link(sub: SubmissionReport, f: Finding, repo_url: str | None, ref: str | None) -> str:
    if not f.file:
        return _code(sub.path)
    single = sub.path.rsplit("/", 1)[-1] == f.file and sub.path.endswith(".py")
    path = sub.path if single else f"{sub.path}/{f.file}"
    label = path + (f":{f.line}" if f.line else "")
    if f.line and f.end_line and f.end_line != f.line:
        label += f"-{f.end_line}"
    if not (repo_url and ref) or path.startswith("/"):
        return _code(label)
    rel = path[2:] if path.startswith("./") else path
    url = f"{repo_url.rstrip('/')}/blob/{quote(ref, safe='', errors='replace')}/{_quote_path(rel)}"
    if f.line:
        url += f"#L{f.line}" + (f"-L{f.end_line}" if f.end_line and f.end_line != f.line else "")
    return f"[{_code(label)}]({url})"


def _quote_path(path: str) -> str:
    """Percent-encode; an undecodable file name (surrogate-escaped) gets its original bytes back."""
    try:
        return quote(path, safe="/", errors="surrogateescape")
    except UnicodeEncodeError:
        return quote(path, safe="/", errors="replace")


def _evidence(f: Finding) -> list[str]:
    text = f.evidence.strip("\n")
    if not text:
        return []
    fence = "````" if "```" in text else "```"
    cut = ""
    if len(text) > MAX_EVIDENCE_CHARS:
        text, cut = text[:MAX_EVIDENCE_CHARS], f"\n… ({len(f.evidence) - MAX_EVIDENCE_CHARS} more characters)"
    if len(text) <= SHORT_EVIDENCE_CHARS and text.count("\n") < SHORT_EVIDENCE_LINES:
        return ["", f"  {fence}", *[f"  {line}" for line in text.splitlines()], f"  {fence}"]
    lines = len(f.evidence.strip("\n").splitlines())
    return ["", f"  <details><summary>evidence ({lines} lines)</summary>", "", f"  {fence}",
            *[f"  {line}" for line in (text + cut).splitlines()], f"  {fence}", "  </details>"]


def _finding(sub: SubmissionReport, f: Finding, repo_url: str | None, ref: str | None,
             with_evidence: bool, cite_url: str = "") -> list[str]:
    mark = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}[f.severity]
    head = f"- {mark} **{_esc(f.rule)}** ({f.category}, {f.severity}, confidence {f.confidence}) " \
           f"{_link(sub, f, repo_url, ref)}: {_esc(f.message, table=False)}"
    if f.suppressed:
        head = f"- 🔕 ~~{head[2:]}~~ — **suppressed**: {_esc(f.suppression_reason or 'no reason given', table=False)}"
    out = [head]
    if with_evidence:
        out += _evidence(f)
    link = f" · [source]({cite_url})" if cite_url else ""
    out.append(f"  <sub>{_esc(f.source_weight, False)} · {_esc(f.citation, False)}{link}</sub>")
    return out


def _numbers(sub: SubmissionReport, per_seed: bool) -> list[str]:
    c, m = sub.claims, sub.measured
    seeds = m.get("seeds") if isinstance(m.get("seeds"), dict) else {}

    def seed_max(key: str) -> dict | None:
        best = None
        for row in seeds.values():
            entry = row.get(key) if isinstance(row, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float)):
                if best is None or entry["value"] > best["value"]:
                    best = entry
        if best is None:
            return None
        return {**best, "detail": f"max over seeds; {best.get('detail', '')}".rstrip("; ")}

    def claim(*keys: str) -> Any:
        for k in keys:
            if c.get(k) is not None:
                return c[k]
        return None

    rows = [
        ("val_bpb", claim("val_bpb", "mean_val_bpb"), m.get("val_bpb_mean")),
        ("total bytes (code + model)", claim("bytes_total", "artifact_bytes_max"), m.get("total_bytes_max")),
        ("train time (s)", claim("train_time_s_mean", "wallclock_seconds"), seed_max("train_time_s")),
        ("eval time (s)", claim("eval_time_s_mean"), seed_max("eval_time_s")),
    ]
    known = {"seeds", "val_bpb_mean", "total_bytes_max", "code", "error"}
    for key, entry in sorted(m.items()):
        if key not in known and isinstance(entry, dict) and "source" in entry:
            rows.append((key, c.get(key), entry))
    out = ["| quantity | claimed (submission.json) | measured | source of the measurement |",
           "|---|---|---|---|"]
    rows = [r for r in rows if r[0] == "val_bpb" or r[1] is not None or _value(r[2]) is not None]
    for name, claimed, measured in rows:
        out.append(f"| {name} | {_fmt_num(claimed)} | {_fmt_num(_value(measured))} | {_source(measured) or '—'} |")
    code = m.get("code")
    if isinstance(code, dict) and code:
        parts = [f"{_esc(k)}={_fmt_num(_value(v))}" for k, v in sorted(code.items())
                 if not isinstance(_value(v), (dict, list))]
        if parts:
            out += ["", "Code bytes: " + ", ".join(parts)]
    if m.get("error"):
        out += ["", f"Measurement problem: {_esc(m['error'], False)}"]
    if per_seed and seeds:
        claimed_seeds = c.get("seeds") if isinstance(c.get("seeds"), dict) else {}
        out += ["", "<details><summary>per seed</summary>", "",
                "| seed | val_bpb claimed | val_bpb measured | total bytes | train s | eval s | source |",
                "|---|---|---|---|---|---|---|"]
        for seed, row in seeds.items():
            row = row if isinstance(row, dict) else {}
            cs = claimed_seeds.get(str(seed).split(" ")[0], {})
            bpb = row.get("val_bpb")
            out.append(f"| {_esc(seed)} | {_fmt_num(cs.get('val_bpb'))} | {_fmt_num(_value(bpb))} | "
                       f"{_fmt_num(_value(row.get('total_bytes')))} | {_fmt_num(_value(row.get('train_time_s')))} | "
                       f"{_fmt_num(_value(row.get('eval_time_s')))} | {_source(bpb) or '—'} |")
        out += ["", "</details>"]
    return out


def _note(row: RuleRow) -> str:
    """`2 errors, 1 warning`, or the first info message (e.g. a proof) when that is all there is."""
    active = [f for f in row.findings if not f.suppressed]
    counts = [(sum(f.severity == s for f in active), s) for s in ("error", "warning")]
    text = ", ".join(f"{n} {s}{'s' if n > 1 else ''}" for n, s in counts if n)
    if not text and active:
        first = active[0].message
        text = "info: " + (first if len(first) <= 90 else first[:89] + "…")
        if len(active) > 1:
            text += f" (+{len(active) - 1} more)"
    return text


def status_summary(rows: list[RuleRow]) -> str:
    """`1 fail, 2 not checked, 20 pass`: how many rows have each status, in STATUS_MARK order."""
    counts = {s: sum(1 for r in rows if r.status == s) for s in STATUS_MARK}
    return ", ".join(f"{n} {s.replace('-', ' ') if s == 'not-checked' else s}" for s, n in counts.items() if n)


def _rules_table(rows: list[RuleRow], only_failing: bool) -> list[str]:
    shown = [r for r in rows if not only_failing or r.status in ("fail", "needs-review", "warn")]
    summary = status_summary(rows)
    out = [f"<details{' open' if any(r.status != 'pass' for r in shown) else ''}><summary>rules: {summary}"
           f"</summary>", "", "| rule | title | category | status | note |", "|---|---|---|---|---|"]
    for r in shown:
        note = r.note or _note(r)
        if r.suppressed:
            note = (note + "; " if note else "") + f"{len(r.suppressed)} suppressed"
        out.append(f"| {_code(r.rule.id, table=True)} | {_esc(r.rule.title)} | {r.rule.category} | {STATUS_MARK[r.status]} | "
                   f"{_esc(note)} |")
    if len(shown) < len(rows):
        out.append(f"| … | {len(rows) - len(shown)} passing / not checked / n/a rows not shown | | | |")
    out += ["", "</details>"]
    return out


def _submission(sub: SubmissionReport, metas, level: str, repo_url: str | None, ref: str | None) -> str:
    idx = LEVELS.index(level)
    out = [f"### {VERDICT_MARK[sub.verdict]} {_code(sub.path)} — **{sub.verdict}**, eligible: "
           f"**{ELIGIBLE[sub.eligible]}** ({_esc(sub.track)} track)", ""]
    if sub.error:
        out += [f"> could not be audited: {_esc(sub.error, False)}", ""]
    out += _numbers(sub, per_seed=idx < LEVELS.index("failing-rules-only"))
    out.append("")
    if level == "summary":
        active = [f for f in sub.findings if not f.suppressed and f.severity != "info"]
        out.append(f"_{len(active)} error/warning finding(s) and the rules table cut for length._")
        return "\n".join(out) + "\n"
    out += _rules_table(rows_for(sub, metas), only_failing=idx >= LEVELS.index("failing-rules-only"))
    urls = {m.id: m.url for m in metas}
    findings = [f for f in sub.findings if idx < LEVELS.index("no-info") or f.severity != "info"]
    if findings:
        out += ["", "**Findings**", ""]
        for f in findings:
            with_evidence = idx < LEVELS.index("no-evidence") and (idx == 0 or f.severity != "info")
            out += _finding(sub, f, repo_url, ref, with_evidence, urls.get(f.rule, ""))
        dropped = len(sub.findings) - len(findings)
        if dropped:
            out.append(f"- … {dropped} info finding(s) cut for length")
    return "\n".join(out) + "\n"


def _header(report: Report) -> str:
    subs = report.submissions
    if len(subs) == 1:
        s = subs[0]
        line = (f"{VERDICT_MARK[s.verdict]} **golfaudit: {s.verdict}** — eligible: **{ELIGIBLE[s.eligible]}** — "
                f"{_code(s.path)}")
    else:
        counts: dict[str, int] = {}
        for s in subs:
            counts[s.verdict] = counts.get(s.verdict, 0) + 1
        worst = max(counts, key=lambda v: ("legal", "needs-review", "illegal", "error").index(v)) if counts else "legal"
        elig = {k: sum(1 for s in subs if s.eligible is v) for k, v in (("yes", True), ("no", False), ("n/a", None))}
        line = (f"{VERDICT_MARK[worst]} **golfaudit: {len(subs)} submissions** — "
                + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) + " — eligible: "
                + ", ".join(f"{n} {k}" for k, n in elig.items() if n))
    out = [line, "", f"<sub>{_esc(report.tool, False)} {_esc(report.version, False)}, ruleset "
           f"{_esc(report.ruleset, False)}. Static "
           f"audit: no submission code was run unless a number says `reproduced`.</sub>", ""]
    if len(subs) > 1:
        out += ["| submission | verdict | eligible | errors | warnings |", "|---|---|---|---|---|"]
        for s in subs:
            act = [f for f in s.findings if not f.suppressed]
            out.append(f"| {_code(s.path, table=True)} | {VERDICT_MARK[s.verdict]} {s.verdict} | {ELIGIBLE[s.eligible]} | "
                       f"{sum(f.severity == 'error' for f in act)} | {sum(f.severity == 'warning' for f in act)} |")
        out.append("")
    return "\n".join(out) + "\n"


@register("markdown-full")
def render(report: Report, repo_url: str | None = None, ref: str | None = None,
           max_chars: int = DEFAULT_LIMIT, labels: dict[str, str] | None = None, **_: object) -> str:
    """The comment; at most `max_chars` characters (never more than GitHub's 65,536)."""
    from dataclasses import replace

    if labels:
        report = replace(report, submissions=tuple(replace(s, path=labels.get(s.path, s.path))
                                                  for s in report.submissions))
    limit = min(max_chars, GITHUB_COMMENT_LIMIT)
    metas = rules_in(report.submissions)
    head = _header(report)
    if not report.submissions:
        return head + "No submission was audited.\n"
    levels = [0] * len(report.submissions)
    cache: dict[tuple[int, int], str] = {}

    def section(i: int) -> str:
        key = (i, levels[i])
        if key not in cache:
            cache[key] = _submission(report.submissions[i], metas, LEVELS[levels[i]], repo_url, ref)
        return cache[key]

    def total() -> int:
        return len(head) + sum(len(section(i)) + 1 for i in range(len(levels)))

    reserve = 600   # room for the truncation note
    while total() > limit - reserve and any(lv < len(LEVELS) - 1 for lv in levels):
        # step down the largest section that can still shrink, legal submissions before the others
        i = max((j for j in range(len(levels)) if levels[j] < len(LEVELS) - 1),
                key=lambda j: (-VERDICT_ORDER[report.submissions[j].verdict], len(section(j))))
        levels[i] += 1
    kept = list(range(len(levels)))
    while kept and len(head) + sum(len(section(i)) + 1 for i in kept) > limit - reserve:
        kept.pop()
    body = head + "\n".join(section(i) for i in kept)
    deepest = max(levels)
    cuts = [CUT_TEXT[LEVELS[lv]] for lv in range(1, deepest + 1)]
    notes = []
    if cuts:
        shrunk = sum(1 for lv in levels if lv > 0)
        notes.append(f"{shrunk} submission section(s) shortened (cut, in order: {'; '.join(cuts)})")
    if len(kept) < len(levels):
        notes.append(f"{len(levels) - len(kept)} submission section(s) omitted entirely (the summary table above "
                     f"lists them)" if len(levels) > 1 else "the submission section was omitted")
    if notes:
        body += (f"\n> ✂️ **Truncated** to stay under GitHub's {GITHUB_COMMENT_LIMIT:,}-character comment limit: "
                 + "; ".join(notes) + ". Run `audit.py check --format json` for the full report.\n")
    body = body.encode("utf-8", "replace").decode("utf-8")   # lone surrogates (undecodable file names) -> ?
    if len(body) > limit:   # only a huge summary table gets here
        tail = f"\n\n> ✂️ **Truncated** at {limit - 300:,} characters (GitHub's comment limit).\n"
        body = body[:limit - 300] + tail
    return body
