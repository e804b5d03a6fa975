"""Words and severities for the TTT judgements: where an event is, and whether its branch runs.

`path_state` decides, through harness.scan.config (the folder's defaults, README run command, run
scripts and logs), whether the `if` branches around a judged path run; a branch whose body printed a
line of the logged run (harness.scan.logbind) ran, whatever the configuration says: an illegal path that is off by
default and not enabled by the folder's own configuration becomes a warning; one that the folder's run
command enables is judged, and the message says so.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from harness.context import AuditContext
from harness.scan import config
from harness.scan.assigns import flag_values, single_assigns
from harness.scan.config import copy_expr
from harness.scan.logbind import log_bindings
from harness.scan.reported import claim_logs
from harness.scan.trace import CondRef, Event


@dataclass(frozen=True)
class PathState:
    runs: bool          # False: some branch on the path is off under the folder's own configuration
    note: str = ""      # a sentence for the message ("" when nothing config-related was decided)


def where(ev: Event) -> str:
    """`line 123 in ttt_adapt() (called from main() at line 1628)`."""
    names = [c for c in ev.chain[1:]]
    text = f"line {ev.line}"
    if names:
        text += f" in {names[-1][2]}()"
        if len(names) > 1:
            text += f" (called from {names[-2][2]}() at line {names[-1][1]})"
        elif names[-1][1]:
            text += f" (called at line {names[-1][1]})"
    return text


def source_line(texts: dict[str, str], ev: Event | None) -> str:
    if ev is None:
        return ""
    lines = texts.get(ev.unit, "").splitlines()
    if 1 <= ev.line <= len(lines):
        return f"{ev.unit}:{ev.line}: {lines[ev.line - 1].strip()[:160]}"
    return ""


def packed_note(ev: Event | None, packed: dict[str, str]) -> str:
    if ev is not None and ev.unit in packed:
        return f" (the file {packed[ev.unit]} is packed; lines refer to its unpacked source)"
    return ""


class _Inline(ast.NodeTransformer):
    """Replace a local name by its single simple assignment (`use_slot = args.slot_enabled`)."""

    def __init__(self, assigns: dict[str, ast.expr]):
        self.assigns = assigns
        self.depth = 0

    def visit_Name(self, node: ast.Name) -> ast.AST:
        value = self.assigns.get(node.id)
        if value is not None and self.depth < 3:
            self.depth += 1
            out = self.visit(copy_expr(value, {}))
            self.depth -= 1
            return out
        return node


def resolve_test(test: ast.expr, frames: tuple, depth: int = 0) -> ast.expr:
    """`test` (a copy) with the names of its frame replaced by what they are bound to: a local flag by its
    assignment (`assigns.flag_values`), a parameter by the argument its caller passed, or by its literal
    default when the caller passed none, resolved in turn in the caller's frame (`CondRef.frames`)."""
    func, binds = frames[0]
    params = {p.lstrip("*") for p in func.params}
    flags = flag_values(func.node)

    class Resolve(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if depth >= 8:
                return node
            if node.id in params:
                if node.id in flags or binds is None or node.id not in binds:
                    return node                 # rebound inside, or not known from a call
                return resolve_test(copy_expr(binds[node.id], {}), frames[1:], depth + 1) if len(frames) > 1 \
                    else node
            value = flags.get(node.id)
            if value is None:
                return node
            return resolve_test(copy_expr(value, {}), frames, depth + 1)

    return Resolve().visit(test)


def _bare(test: ast.expr) -> ast.expr:
    """`getattr(args, 'x', d)` → `args.x` so settings can be looked up."""
    class Fix(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            if isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                return ast.Attribute(node.args[0], node.args[1].value, ast.Load())
            return node
    return Fix().visit(test)


def path_state(ctx: AuditContext, conds: tuple[CondRef, ...]) -> PathState:
    """Whether the branches on a path run under the folder's configuration (see module docstring)."""
    tests: list[tuple[ast.expr, bool, int, str]] = []
    printed: list[str] = []
    seen: set = set()
    for c in conds:
        if c.uid in seen:
            continue
        seen.add(c.uid)
        bound = printed_in_branch(ctx, c)
        if bound is not None:
            printed.append(f"the branch of `{_show(c)}` at line {c.line} ran: its print at line "
                           f"{bound.code_line} wrote {bound.where} (`{bound.text.strip()[:80]}`)")
            continue
        try:
            if c.frames:
                test = _bare(resolve_test(copy_expr(c.test, {}), c.frames))
            else:
                test = _bare(_Inline(single_assigns(c.func.node)).visit(copy_expr(c.test, {})))
        except Exception:  # noqa: BLE001 - an undecidable branch counts as possibly taken
            continue
        tests.append((test, c.polarity, c.line, _show(c)))
    state = decide_tests(ctx, tests)
    if printed and state.runs:
        return PathState(True, "; ".join(x for x in (*printed, state.note) if x))
    return state


def decide_tests(ctx: AuditContext, tests: list[tuple[ast.expr, bool, int, str]]) -> PathState:
    """The path state of `if` tests that must hold (test with its names resolved, the branch taken, its line,
    its source text), innermost or outermost first: the first test that the folder's configuration decides
    against the branch turns the path off."""
    enabled_notes: list[str] = []
    for test, polarity, line, shown in tests:
        try:
            by_default = config.enabled_by_default(ctx, test)
            by_run = config.enabled_by_run(ctx, test)
            _, why = config.branch_state(ctx, test)
            constant = config.constant_value(test) if by_run is None and by_default is None else None
        except Exception:  # noqa: BLE001 - an undecidable branch counts as possibly taken
            continue
        if constant is not None and constant != polarity:
            return PathState(False, f"this path does not run as the code calls it (`{shown}` at line "
                                    f"{line} is {not polarity} with the arguments its callers pass, or "
                                    f"their defaults)")
        if by_run is not None and by_run != polarity:
            if " from log " in why:
                return PathState(False, f"this path is off in the logged run (`{shown}` at line {line}: {why}), "
                                        f"so it is not decisive")
            if by_default is not None and by_default != polarity:
                return PathState(False, f"this path is off by default (`{shown}` at line {line}: {why}) "
                                        f"and not enabled by the folder's README run command, run scripts or "
                                        f"logs, so it is not decisive")
            return PathState(False, f"the folder's own configuration turns this path off (`{shown}` at line "
                                    f"{line}: {why})")
        if by_default is not None and by_default != polarity and by_run == polarity:
            enabled_notes.append(f"`{shown}` at line {line} is off by default but enabled by the folder's "
                                 f"run configuration ({why}), so the path is judged")
    return PathState(True, "; ".join(enabled_notes))


def branch_span(c: CondRef) -> tuple[int, int] | None:
    """First and last line of the statements a condition guards (its `if` body, or its `else`)."""
    if c.func is None or getattr(c.func, "node", None) is None:
        return None
    for node in ast.walk(c.func.node):
        if isinstance(node, ast.If) and node.test is c.test:
            body = node.body if c.polarity else node.orelse
            if not body:
                return None
            return body[0].lineno, max(getattr(b, "end_lineno", b.lineno) or b.lineno for b in body)
    return None


def printed_in_branch(ctx: AuditContext, c: CondRef):
    """A log line printed by a call inside the branch `c` guards (a harness.scan.logbind Binding that no
    other call can have printed), in a log of the run the claimed score comes from: that branch ran. None
    when no such line binds there."""
    try:
        bindings = log_bindings(ctx).bindings
        logs = claim_logs(ctx)
    except Exception:  # noqa: BLE001 - binding is evidence on top of the configuration
        return None
    hits = [b for b in bindings if b.unit == c.unit and b.ties == 1 and (logs is None or b.log in logs)]
    if not hits:
        return None
    span = branch_span(c)
    if span is None:
        return None
    return next((b for b in hits if span[0] <= b.code_line <= span[1]), None)


def _show(c: CondRef) -> str:
    try:
        text = ast.unparse(c.test)
    except Exception:  # noqa: BLE001
        text = "?"
    return text if c.polarity else f"not ({text})"
