"""The sweep's outputs: a rich table, JSON (schema `golfaudit-sweep/1`, documented in docs/sweep.md),
Markdown for an issue or a PR comment, and one self-contained HTML page (no network, no external assets)."""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from typing import Any

from harness.sweep.rows import SweepRow, counts, frontier

SCHEMA = "golfaudit-sweep/1"
MARKDOWN_LIMIT = 65_000   # GitHub's comment limit is 65,536 characters


@dataclass(frozen=True)
class Sweep:
    """Everything one sweep found: the PR rows, the base branch's records, and how it was run."""

    repo: str
    base: str
    base_sha: str
    refs: tuple[str, ...]
    rows: tuple[SweepRow, ...]
    base_rows: tuple[SweepRow, ...]
    heads: int
    tool_version: str

    @property
    def disagreements(self) -> list[SweepRow]:
        return [r for r in self.rows if r.disagreement]


def _bpb(value: float | None) -> str:
    return f"{value:.5f}" if value is not None else "—"


def _elig(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "—"}[value]


def to_json(sweep: Sweep) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": "golfaudit", "version": sweep.tool_version,
        "repo": sweep.repo, "base": sweep.base, "base_sha": sweep.base_sha, "refs": list(sweep.refs),
        "heads": sweep.heads,
        "counts": counts(list(sweep.rows)),
        "rows": [r.to_json() for r in sweep.rows],
        "disagreements": [{"pr": r.pr, "folder": r.folder, "disagreement": r.disagreement} for r in sweep.disagreements],
        "frontier": [{"date": r.date, "val_bpb": r.claimed_bpb, "pr": r.pr, "folder": r.folder}
                     for r in frontier([*sweep.base_rows, *sweep.rows])],
    }


def render_json(sweep: Sweep) -> str:
    return json.dumps(to_json(sweep), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _cells(row: SweepRow) -> list[str]:
    return [row.label, row.head[:10], row.folder.rsplit("/", 1)[-1], row.date or "—", _bpb(row.claimed_bpb),
            row.verdict, _elig(row.eligible), row.deciding.short() if row.deciding else "—",
            row.versus.short() if row.versus else "—", row.merge_state, row.disagreement or "—"]


HEADERS = ["PR", "head", "folder", "date", "val_bpb", "verdict", "eligible", "deciding finding",
           "vs legal SOTA (nats/byte)", "merge state", "disagreement"]


def render_text(sweep: Sweep, width: int | None = None, color: bool = False) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 400, color_system="standard" if color else None,
                      force_terminal=color, soft_wrap=True)
    summary = ", ".join(f"{n} {v}" for v, n in counts(list(sweep.rows)).items()) or "no folders"
    console.print(f"golfaudit sweep of {sweep.repo} against {sweep.base} ({sweep.base_sha[:12]}): "
                  f"{sweep.heads} heads, {len(sweep.rows)} folders: {summary}", soft_wrap=True)
    table = Table(*HEADERS, show_lines=False)
    for row in sorted(sweep.rows, key=lambda r: (not r.disagreement, r.pr or 0, r.folder)):
        table.add_row(*_cells(row))
    console.print(table)
    steps = frontier([*sweep.base_rows, *sweep.rows])
    if steps:
        console.print("legal frontier (10min-16mb): " + "; ".join(
            f"{r.date} {_bpb(r.claimed_bpb)} {r.label if r.pr is not None else 'base'} {r.folder.rsplit('/', 1)[-1]}"
            for r in steps), soft_wrap=True)
    for row in sweep.rows:
        for problem in row.problems:
            console.print(f"note: {row.label} {row.folder}: {problem}", soft_wrap=True)
    return buffer.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(sweep: Sweep) -> str:
    lines = [f"## golfaudit sweep: {len(sweep.rows)} folders from {sweep.heads} heads",
             "", f"Base `{sweep.base}` at `{sweep.base_sha[:12]}`. Verdicts: "
             + (", ".join(f"**{n}** {v}" for v, n in counts(list(sweep.rows)).items()) or "none") + ".", ""]
    if sweep.disagreements:
        lines += ["### Verdict and merge state disagree", ""]
        lines += [f"- {r.label} `{r.folder}`: **{r.disagreement}**"
                  + (f" — {r.deciding.short()}: {_md(r.deciding.message[:160])}" if r.deciding else "")
                  for r in sweep.disagreements]
        lines.append("")
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    body = [("| " + " | ".join(_md(c) for c in _cells(r)) + " |")
            for r in sorted(sweep.rows, key=lambda r: (not r.disagreement, r.pr or 0, r.folder))]
    steps = frontier([*sweep.base_rows, *sweep.rows])
    tail = ["", "### Legal frontier (10min-16mb)", ""] + [
        f"- {r.date}: {_bpb(r.claimed_bpb)} — {r.label if r.pr is not None else 'base'} `{r.folder}`" for r in steps]
    text = "\n".join(lines)
    kept = 0
    for line in body:
        if len(text) + len(line) + sum(len(t) + 1 for t in tail) + 200 > MARKDOWN_LIMIT:
            break
        text += "\n" + line
        kept += 1
    if kept < len(body):
        text += f"\n\n_{len(body) - kept} more rows left out to stay under GitHub's comment limit; " \
                "the JSON or HTML output has them all._"
    return text + "\n" + "\n".join(tail) + "\n"


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{cursor:pointer;background:#f3f3f3}
tr.illegal td.v{color:#b00}tr.legal td.v{color:#060}tr.needs-review td.v{color:#a60}.dis{font-weight:bold;color:#b00}
details{margin:.4em 0}code{font-size:12px}#q{width:30em;padding:4px;margin:.5em 0}"""

_SCRIPT = """const q=document.getElementById('q'),rows=[...document.querySelectorAll('#t tbody tr')];
q.addEventListener('input',()=>{const s=q.value.toLowerCase();rows.forEach(r=>{r.style.display=
r.textContent.toLowerCase().includes(s)?'':'none'})});
document.querySelectorAll('#t th').forEach((th,i)=>th.addEventListener('click',()=>{const b=document.querySelector('#t tbody');
const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';const key=r=>{const t=r.children[i].dataset.k??r.children[i].textContent;
const n=parseFloat(t);return isNaN(n)?t:n};[...b.rows].sort((a,c)=>{const x=key(a),y=key(c);return (x>y?1:x<y?-1:0)*(asc?1:-1)})
.forEach(r=>b.appendChild(r))}));"""


def render_html(sweep: Sweep) -> str:
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>golfaudit sweep: {esc(sweep.repo)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>golfaudit sweep: {len(sweep.rows)} folders from {sweep.heads} heads</h1>",
           f"<p>Base <code>{esc(sweep.base)}</code> at <code>{esc(sweep.base_sha[:12])}</code>. Verdicts: "
           + esc(", ".join(f"{n} {v}" for v, n in counts(list(sweep.rows)).items()) or "none") + ".</p>",
           "<input id=\"q\" placeholder=\"filter rows (any text)\" aria-label=\"filter\">",
           "<table id=\"t\"><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADERS) + "</tr></thead><tbody>"]
    for i, row in enumerate(sorted(sweep.rows, key=lambda r: (not r.disagreement, r.pr or 0, r.folder))):
        cells = _cells(row)
        cells[0] = f"<a href=\"#d{i}\">{esc(cells[0])}</a>"
        rendered = []
        for j, cell in enumerate(cells):
            cls = " class=\"v\"" if j == 5 else (" class=\"dis\"" if j == 10 and row.disagreement else "")
            rendered.append(f"<td{cls}>{cell if j == 0 else esc(cell)}</td>")
        out.append(f"<tr class=\"{esc(row.verdict)}\">" + "".join(rendered) + "</tr>")
    out.append("</tbody></table><h2>Details</h2>")
    for i, row in enumerate(sorted(sweep.rows, key=lambda r: (not r.disagreement, r.pr or 0, r.folder))):
        out.append(f"<details id=\"d{i}\"><summary>{esc(row.label)} <code>{esc(row.folder)}</code> — "
                   f"{esc(row.verdict)}</summary><ul>")
        for problem in row.problems:
            out.append(f"<li>note: {esc(problem)}</li>")
        for f in row.findings:
            where = f"{f.get('file')}:{f.get('line')}" if f.get("line") else (f.get("file") or "")
            out.append(f"<li><b>{esc(str(f['rule']))}</b> {esc(str(f['severity']))}/{esc(str(f['confidence']))} "
                       f"<code>{esc(str(where))}</code> {esc(str(f['message']))}</li>")
        out.append("</ul></details>")
    steps = frontier([*sweep.base_rows, *sweep.rows])
    out.append("<h2>Legal frontier (10min-16mb)</h2><ol>")
    out += [f"<li>{esc(r.date or '')}: {_bpb(r.claimed_bpb)} — {esc(r.label if r.pr is not None else 'base')} "
            f"<code>{esc(r.folder)}</code></li>" for r in steps]
    out.append(f"</ol><script>{_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown, "html": render_html}
