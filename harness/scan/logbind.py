"""Bind training-log lines to the calls in the code that printed them.

Every `print`/`log0`/`logger.info`-like call whose message is an f-string, a `%` format, a `.format` template
or plain literals becomes a *template*: literal parts fixed, each `{expr}` a typed hole (an int or float
format spec makes the hole numeric; other holes take any text). A log line that a template matches in full
is *bound* to that call: (log file:line, code file:line, each hole's expression → the value printed), e.g.
`f"ttt:rank{r} epochs={args.ttt_epochs}"` binds `ttt:rank0 epochs=1` and yields `args.ttt_epochs → 1`.

Speed: templates are indexed by one word of their literal text that no hole can run into (bounded by
punctuation or the template's ends), so a log line looks up its own words in one dict and tries only the
templates that share one; a template with no such word is tried where its longest literal occurs in the
line. The source dump at the top of a log (harness.logdump) is never bound. Nothing here imports torch.
"""

from __future__ import annotations

import ast
import os
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from harness.astwalk import walk
from harness.logdump import SourceDump, find_dump, log_texts

if TYPE_CHECKING:  # pragma: no cover
    from harness.context import AuditContext

DISABLE_ENV = "GOLFAUDIT_LOG_BINDING"   # "0": bind nothing (benchmarks/bench_check.py measures the cost)
PRINT_NAME = re.compile(r"^(?:print\w*|\w*log\w*|info|warning|warn|debug|write|echo|emit|report|say)$", re.I)
WORD = re.compile(r"[A-Za-z0-9_]+")
INT = r"[-+]?\d+"
FLOAT = r"[-+]?(?:\d[\d,_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)%?"
ANY = r".*?"
PERCENT = re.compile(r"%(?:\((?P<key>[^)]*)\))?[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(?P<conv>[diouxXeEfFgGcrsa%])")
LINE_PREFIX = r"^(?:\d{10}\.\d+ )?"   # a whole line, after the epoch timestamp some logs put first
MAX_LINE = 4000           # longer log lines (tensor dumps) are not bound
KEEP_PER_TEMPLATE = 5     # bindings kept per template and log, from the start and from the end


@dataclass(frozen=True)
class Hole:
    expr: ast.expr | None     # None: a `.format` field that names an attribute or item
    kind: str                 # int | float | any

    @property
    def text(self) -> str:
        if self.expr is None:
            return "?"
        try:
            return ast.unparse(self.expr)
        except Exception:  # noqa: BLE001
            return "?"


@dataclass(frozen=True)
class Template:
    unit: str
    line: int
    call: ast.Call = field(compare=False, hash=False, repr=False)
    parts: tuple = field(compare=False, hash=False)   # str | Hole, the first printed line only
    literal: int = 0                                   # literal characters: the more, the more specific
    key: str = ""                                      # the longest literal part
    anchor: str = ""                                   # a word of the literal no hole can extend
    pattern: re.Pattern | None = field(default=None, compare=False, hash=False, repr=False)
    hole_texts: tuple[str, ...] = field(default=(), compare=False, hash=False)


@dataclass(frozen=True)
class Binding:
    """One log line and the call that printed it."""

    log: str
    log_line: int
    unit: str
    code_line: int
    text: str
    values: tuple[tuple[str, object], ...]
    template: Template = field(compare=False, hash=False, repr=False)
    ties: int = 1       # how many calls could have printed this line equally well (1: the binding is certain)

    @property
    def where(self) -> str:
        return f"{self.log}:{self.log_line}"

    @property
    def holes(self) -> tuple[tuple[Hole, object], ...]:
        holes = [p for p in self.template.parts if isinstance(p, Hole)]
        return tuple(zip(holes, (v for _, v in self.values)))


@dataclass
class LogBindings:
    """Everything bound in a submission's logs, and the source dumps found there."""

    bindings: list[Binding] = field(default_factory=list)
    dumps: list[SourceDump] = field(default_factory=list)
    index: TemplateIndex | None = None
    texts: dict[str, str] = field(default_factory=dict, repr=False)

    def at(self, log: str, line: int) -> list[Binding]:
        """The bindings of one log line (bound on demand when it was not kept)."""
        kept = [b for b in self.bindings if b.log == log and b.log_line == line]
        if kept or self.index is None or log not in self.texts:
            return kept
        lines = self.texts[log].split("\n", line)
        return bind_line(self.index, log, line, lines[line - 1]) if 0 < line <= len(lines) else []


# -- templates ---------------------------------------------------------------------------------------
def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _spec_kind(spec: str) -> str:
    spec = spec.strip()
    if not spec:
        return "any"
    if spec[-1] in "dnbox":
        return "int" if spec[-1] in "dn" else "any"
    if spec[-1] in "eEfFgG%":
        return "float"
    return "any"


def _joined(node: ast.JoinedStr) -> list | None:
    parts: list = []
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append(v.value)
        elif isinstance(v, ast.FormattedValue):
            spec = ""
            if v.format_spec is not None:
                if not all(isinstance(x, ast.Constant) for x in v.format_spec.values):
                    spec = ""
                else:
                    spec = "".join(str(x.value) for x in v.format_spec.values)
            kind = "any" if v.conversion not in (-1, None) else _spec_kind(spec)
            parts.append(Hole(v.value, kind))
        else:
            return None
    return parts


def _percent(fmt: str, right: ast.expr) -> list | None:
    if isinstance(right, ast.Tuple):
        args = list(right.elts)
    elif isinstance(right, ast.Dict):
        args = None
    else:
        args = [right]
    keyed = {k.value: v for k, v in zip(right.keys, right.values) if isinstance(k, ast.Constant)} \
        if isinstance(right, ast.Dict) else {}
    parts: list = []
    pos = 0
    i = 0
    for m in PERCENT.finditer(fmt):
        parts.append(fmt[pos:m.start()])
        pos = m.end()
        conv = m.group("conv")
        if conv == "%":
            parts.append("%")
            continue
        kind = "int" if conv in "diu" else "float" if conv in "eEfFgG" else "any"
        if m.group("key") is not None:
            parts.append(Hole(keyed.get(m.group("key")), kind))
        elif args is not None and i < len(args):
            parts.append(Hole(args[i], kind))
            i += 1
        else:
            parts.append(Hole(None, kind))
    parts.append(fmt[pos:])
    return parts


def _format(fmt: str, call: ast.Call) -> list | None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    parts: list = []
    auto = 0
    for literal, name, spec, conv in fields:
        parts.append(literal)
        if name is None:
            continue
        kind = "any" if conv else _spec_kind(spec or "")
        expr: ast.expr | None = None
        if name == "":
            expr = call.args[auto] if auto < len(call.args) else None
            auto += 1
        elif name.isdigit():
            expr = call.args[int(name)] if int(name) < len(call.args) else None
        elif name.isidentifier():
            expr = keywords.get(name)
        parts.append(Hole(expr, kind))
    return parts


def message_parts(node: ast.expr) -> list | None:
    """Literal strings and holes of one message expression, or None when it is not a template."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return _joined(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
            and isinstance(node.left.value, str):
        return _percent(node.left.value, node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = message_parts(node.left), message_parts(node.right)
        if left is not None and right is not None:
            return left + right
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
        return _format(node.func.value.value, node)
    return None


def call_parts(node: ast.Call) -> list | None:
    """The printed text of a print-like call as parts: `print(a, b)` joins its arguments with `sep`."""
    if not node.args or any(isinstance(a, ast.Starred) for a in node.args):
        return None
    name = _call_name(node)
    if not PRINT_NAME.match(name):
        return None
    if name.startswith("print"):
        sep = " "
        for k in node.keywords:
            if k.arg == "sep":
                if not (isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)):
                    return None
                sep = k.value.value
            elif k.arg == "file" and not _is_stdout(k.value):
                return None
        pieces = [message_parts(a) for a in node.args]
        if all(p is None for p in pieces):
            return None
        parts: list = []
        for i, (a, p) in enumerate(zip(node.args, pieces)):
            if i:
                parts.append(sep)
            parts.extend(p if p is not None else [Hole(a, "any")])
        return parts
    return message_parts(node.args[0])


def _is_stdout(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")


def _first_line(parts: list) -> list:
    out: list = []
    for p in parts:
        if isinstance(p, str) and "\n" in p:
            head = p.split("\n", 1)[0]
            if head or out:
                out.append(head)
                return out
            continue                      # a message that starts with a newline: its first printed line
        out.append(p)
    return out


def _merge(parts: list) -> list:
    out: list = []
    for p in parts:
        if isinstance(p, str):
            if not p:
                continue
            if out and isinstance(out[-1], str):
                out[-1] += p
                continue
        out.append(p)
    return out


def _anchor(parts: list) -> str:
    """The longest word of a literal part bounded by non-word text inside it, or by the template's ends."""
    best = ""
    last = len(parts) - 1
    for i, p in enumerate(parts):
        if not isinstance(p, str):
            continue
        for m in WORD.finditer(p):
            left_ok = m.start() > 0 or i == 0
            right_ok = m.end() < len(p) or i == last
            if left_ok and right_ok and len(m.group()) > len(best):
                best = m.group()
    return best if len(best) >= 2 else ""


def _compile(parts: list) -> re.Pattern:
    body = []
    for p in parts:
        if isinstance(p, str):
            body.append(re.escape(p))
        else:
            body.append("(" + {"int": INT, "float": FLOAT}.get(p.kind, ANY) + ")")
    return re.compile(LINE_PREFIX + "".join(body) + r"\s*$")


def make_template(unit: str, node: ast.Call) -> Template | None:
    parts = call_parts(node)
    if parts is None:
        return None
    parts = _merge(_first_line(parts))
    literals = [p for p in parts if isinstance(p, str)]
    if not literals or not any(isinstance(p, Hole) for p in parts) and not "".join(literals).strip():
        return None
    key = max(literals, key=len)
    if len(key.strip()) < 2:
        return None
    return Template(unit, node.lineno, node, tuple(parts), sum(len(x) for x in literals), key, _anchor(parts),
                    _compile(parts), tuple(p.text for p in parts if isinstance(p, Hole)))


@dataclass
class TemplateIndex:
    by_anchor: dict[str, list[Template]] = field(default_factory=dict)
    floating: list[Template] = field(default_factory=list)
    count: int = 0

    def candidates(self, line: str) -> Iterable[Template]:
        seen: set[int] = set()
        get = self.by_anchor.get
        for word in WORD.findall(line):
            found = get(word)
            if found:
                for t in found:
                    if id(t) not in seen:
                        seen.add(id(t))
                        yield t
        for t in self.floating:
            if t.key in line:
                yield t


def build_index(units: Sequence) -> TemplateIndex:
    """Templates of every print-like call in the units (`units`: objects with name, tree, text)."""
    index = TemplateIndex()
    for unit in units:
        text = getattr(unit, "text", "")
        if "print" not in text and "log" not in text and "info" not in text and "write" not in text:
            continue
        nodes = getattr(unit, "nodes", None) or walk(unit.tree)
        for node in nodes:
            if not isinstance(node, ast.Call) or not node.args:
                continue
            try:
                t = make_template(str(unit.name), node)
            except (ValueError, TypeError, RecursionError, re.error):
                continue
            if t is None:
                continue
            index.count += 1
            if t.anchor:
                index.by_anchor.setdefault(t.anchor, []).append(t)
            else:
                index.floating.append(t)
    return index


# -- binding -----------------------------------------------------------------------------------------
def log_value(text: str, *, percent: bool = True) -> object:
    """A printed value as Python reads it back: True/False/None, int, float (a trailing `%` dropped when
    `percent`), else the text."""
    t = text.strip()
    if t in ("True", "False"):
        return t == "True"
    if t == "None":
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t.rstrip("%") if percent else t)
    except ValueError:
        return t


def _match(t: Template, line: str) -> tuple[tuple[str, object], ...] | None:
    m = t.pattern.search(line) if t.pattern is not None else None
    if m is None:
        return None
    return tuple(zip(t.hole_texts, map(log_value, m.groups())))


def bind_line(index: TemplateIndex, log: str, number: int, line: str) -> list[Binding]:
    """The calls that can have printed one log line: the most specific templates that match it in full."""
    line = line.rstrip()
    if not line.strip() or len(line) > MAX_LINE:
        return []
    best: list[Binding] = []
    score = -1
    for t in index.candidates(line):
        if t.literal < score:
            continue
        values = _match(t, line)
        if values is None:
            continue
        b = Binding(log, number, t.unit, t.line, line[:300], values, t)
        if t.literal > score:
            best, score = [b], t.literal
        else:
            best.append(b)
    if len(best) > 1:
        best = [replace(b, ties=len(best)) for b in best]
    return best


def bind_text(index: TemplateIndex, log: str, text: str, skip: tuple[int, int] | None = None) -> list[Binding]:
    """Bindings of one log's lines (lines `skip` = (first, last) are the source dump and are not bound).
    Of many lines printed by one template, the first and the last few are kept."""
    if not index.count:
        return []
    kept: dict[tuple, list[Binding]] = {}
    tails: dict[tuple, list[Binding]] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if skip is not None and skip[0] <= number <= skip[1]:
            continue
        for b in bind_line(index, log, number, line):
            key = (b.unit, b.code_line)
            head = kept.setdefault(key, [])
            if len(head) < KEEP_PER_TEMPLATE:
                head.append(b)
            else:
                tail = tails.setdefault(key, [])
                tail.append(b)
                if len(tail) > KEEP_PER_TEMPLATE:
                    tail.pop(0)
    out = [b for key in kept for b in kept[key] + tails.get(key, [])]
    out.sort(key=lambda b: (b.log_line, b.code_line))
    return out


def bind_logs(units: Sequence, logs: Sequence[tuple[str, str]]) -> LogBindings:
    """Pure: the units' templates bound against each (log name, log text); source dumps are skipped."""
    index = build_index(units)
    result = LogBindings(index=index)
    for name, text in logs:
        dump = find_dump(text, name)
        if dump is not None:
            result.dumps.append(dump)
        result.texts[name] = text
        result.bindings.extend(bind_text(index, name, text, (dump.start, dump.end) if dump else None))
    return result


def log_bindings(ctx: AuditContext) -> LogBindings:
    """The submission's log bindings over the code that runs, computed on first use and kept in the
    context's `log_bindings` slot."""
    if ctx.log_bindings is None:
        if os.environ.get(DISABLE_ENV) == "0":
            ctx.log_bindings = LogBindings()
        else:
            try:
                ctx.log_bindings = bind_logs(ctx.units, log_texts(ctx))
            except (RecursionError, MemoryError):
                ctx.log_bindings = LogBindings()
    return ctx.log_bindings
