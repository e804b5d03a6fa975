"""The script's own source as printed at the top of a training log, and where it differs from a shipped file.

Most records' scripts log their whole source before training (`log0(code)`), either as the log's first
lines or after a `Source code:` header between two `=====` rules; the dump ends at the next `=====` rule.
A dump is taken only when it holds a top-level `def`, `class` or `import`; whether it parses is decided
where it is analysed (harness.scan.patterns), so comparing a dump with the shipped script never parses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.codeload import CodeUnit
from harness.logs import read_log_text
from harness.parse import ParseFailure, parse_source
from harness.submission import MAX_LOG_BYTES

if TYPE_CHECKING:  # pragma: no cover - the context imports this module
    from harness.context import AuditContext

RULE = re.compile(r"^={20,}[ \t]*$")
CODE_START = re.compile(r"^(?:import |from \S+ import |\"\"\"|'''|#|[A-Za-z_][\w.]*\s*=|def |class |@)")
SOURCE_HEADER = re.compile(r"^(?:\d{10}\.\d+ )?Source code:?[ \t]*$")
CODE_LINE = re.compile(r"^(?:def |class |import |from \S+ import )", re.M)
HEAD_LINES = 400          # the dump starts within the log's first lines (after a hyperparameter block)
MAX_DUMP_LINES = 40_000


@dataclass(frozen=True)
class SourceDump:
    """Lines `start`..`end` (1-based, inclusive) of the log hold the script; `text` is that script."""

    log: str
    start: int
    end: int
    text: str


def find_dump(text: str, log: str) -> SourceDump | None:
    """The source dump at the top of a log, or None when the log does not begin with one."""
    head = text[:4_000_000]
    lines = head.split("\n", HEAD_LINES + MAX_DUMP_LINES)[:HEAD_LINES + MAX_DUMP_LINES]
    start = _start(lines)
    if start is None:
        return None
    end = start
    while end < len(lines) and not RULE.match(lines[end]):
        end += 1
    body = lines[start:end]
    while body and not body[-1].strip():
        body.pop()
    if len(body) < 5:
        return None
    source = "\n".join(body) + "\n"
    if not CODE_LINE.search(source):
        return None
    return SourceDump(log, start + 1, start + len(body), source)


def _start(lines: list[str]) -> int | None:
    """0-based index of the dump's first line: after a `Source code:` header, or the log's first line."""
    for i, line in enumerate(lines[:HEAD_LINES]):
        if SOURCE_HEADER.match(line):
            j = i + 1
            if j < len(lines) and RULE.match(lines[j]):
                j += 1
            return j
    if lines and CODE_START.match(lines[0]):
        return 0
    return None


def first_difference(dump: str, shipped: str) -> tuple[int, str, str] | None:
    """(1-based line, dumped line, shipped line) of the first line that differs, ignoring trailing spaces,
    line endings and trailing blank lines; None when the two are the same code."""
    a = _lines(dump)
    b = _lines(shipped)
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i + 1, x, y
    if len(a) != len(b):
        i = min(len(a), len(b))
        return i + 1, a[i] if i < len(a) else "", b[i] if i < len(b) else ""
    return None


def _lines(text: str) -> list[str]:
    out = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while out and not out[-1]:
        out.pop()
    return out


def log_texts(ctx: AuditContext) -> list[tuple[str, str]]:
    """(name, text) of each log of the submission, head and tail only for huge ones (once per audit)."""
    return ctx.derived(_log_texts)


def _log_texts(ctx: AuditContext) -> list[tuple[str, str]]:
    sub = ctx.submission
    out = []
    for name in getattr(sub, "log_names", []):
        try:
            text, _, _ = read_log_text(sub.files[name], MAX_LOG_BYTES)
        except (OSError, KeyError):
            continue
        out.append((name, text))
    return out


def source_dumps(ctx: AuditContext) -> list[SourceDump]:
    """The source dump of each log that has one, in log-name order (once per audit)."""
    return ctx.derived(_source_dumps)


def _source_dumps(ctx: AuditContext) -> list[SourceDump]:
    return [d for name, text in log_texts(ctx) for d in [find_dump(text, name)] if d is not None]


@dataclass(frozen=True)
class DumpCheck:
    """A dump compared with the shipped code: `state` is same | differs | no-script | empty-script."""

    dump: SourceDump
    state: str
    script: str | None = None
    line: int | None = None       # the first differing line (of the dump and of the compared text)
    dumped: str = ""
    shipped: str = ""


def compare_dumps(ctx: AuditContext) -> list[DumpCheck]:
    """Each log's source dump against the shipped script(s) and the code the scanner reads (packed scripts
    unpacked). A dump equal to any of them is the same code (once per audit)."""
    return ctx.derived(_compare_dumps)


def _compare_dumps(ctx: AuditContext) -> list[DumpCheck]:
    sub = ctx.submission
    scripts: dict[str, str] = {}
    for name in getattr(sub, "script_names", []):
        try:
            scripts[name] = sub.read_source(name)
        except Exception:  # noqa: BLE001 - an unreadable script is reported by the loader
            continue
    units = [u for u in ctx.units if not u.name.endswith(DUMP_SUFFIX)]
    unpacked = {u.name: u.text for u in units if u.name.endswith("(unpacked)")}
    others = [u.text for u in units]
    out: list[DumpCheck] = []
    for dump in source_dumps(ctx):
        if not scripts:
            out.append(DumpCheck(dump, "no-script"))
            continue
        if not any(t.strip() for t in scripts.values()):
            out.append(DumpCheck(dump, "empty-script", next(iter(scripts))))
            continue
        if any(first_difference(dump.text, t) is None for t in [*scripts.values(), *others]):
            out.append(DumpCheck(dump, "same"))
            continue
        name = next(iter(scripts))
        shown = f"{name} (unpacked)" if f"{name} (unpacked)" in unpacked else name
        against = unpacked.get(shown, scripts[name])
        line, dumped, shipped = first_difference(dump.text, against) or (1, "", "")
        out.append(DumpCheck(dump, "differs", shown, line, dumped, shipped))
    return out


DUMP_SUFFIX = " (source dump)"
MAX_DUMPS_ANALYSED = 1


def dump_unit(dump: SourceDump) -> CodeUnit | None:
    """A log's source dump as a code unit named `<log> (source dump)`, or None when it does not parse."""
    name = dump.log + DUMP_SUFFIX
    try:
        return CodeUnit(name, dump.text, parse_source(dump.text, name).tree)
    except (ParseFailure, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def stand_in_units(ctx: AuditContext) -> list[CodeUnit]:
    """When the shipped script is missing or empty, the code that ran is the source dump at the top of the
    logs: the first one that parses stands in for it (every rule analyses it)."""
    sub = ctx.submission
    if getattr(sub, "single_file", True) or not getattr(sub, "log_names", None):
        return []
    for dump in source_dumps(ctx):
        unit = dump_unit(dump)
        if unit is not None:
            return [unit]
    return []


def differing_dumps(ctx: AuditContext) -> list[CodeUnit]:
    """The source dump of a top-level log whose code differs from the shipped script, as a unit of its own
    (`<log> (source dump)`): the claimed score came from that code, so the TTT analysis reads it too. One
    per submission (the first log's), so a folder of ablation logs does not multiply the analysis."""
    if any(u.name.endswith(DUMP_SUFFIX) for u in ctx.units):
        return []                       # the dump already stands in for a missing or empty script
    out: list[CodeUnit] = []
    for check in compare_dumps(ctx):
        if check.state != "differs" or "/" in check.dump.log:
            continue
        unit = dump_unit(check.dump)
        if unit is not None:
            out.append(unit)
        if len(out) >= MAX_DUMPS_ANALYSED:
            break
    return out
