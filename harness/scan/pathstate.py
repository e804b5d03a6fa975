"""One path state for every code rule: does the line a finding points at run as the folder runs it?

The TTT rules judge paths through the trace (harness.scan.explain.path_state). The pattern rules (SLOT,
ETLB, NGRAM-CACHE, ...) find a line inside a function; `code_state` decides for them, with the same
configuration (harness.scan.config: defaults, README run command, run scripts, logs) and the same
wording: the `if` branches around the line in its function (local flags such as `use_slot =
getattr(args, "slot_enabled", False)` resolved), then whether any call of that function runs. `gate` turns
an error on a path that is off into a warning that says why; `path_gated` applies it to a rule's `check`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.assigns import single_assigns
from harness.scan.config import copy_expr, function_uses, overall_use
from harness.scan.explain import PathState, _bare, _Inline, decide_tests, printed_in_branch
from harness.scan.trace import CondRef

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _branch_tests(node: ast.AST, parents: dict) -> tuple[list[tuple[ast.expr, bool, int]], ast.AST | None]:
    """The `if`/`while`/conditional-expression tests around `node` in its function, innermost first, with the
    branch `node` lies in; and that function (None at module level)."""
    out: list[tuple[ast.expr, bool, int]] = []
    child, parent = node, parents.get(node)
    while parent is not None and not isinstance(parent, (*_FUNCS, ast.Lambda, ast.ClassDef)):
        if isinstance(parent, (ast.If, ast.IfExp, ast.While)):
            body = parent.body if isinstance(parent.body, list) else [parent.body]
            orelse = parent.orelse if isinstance(parent.orelse, list) else [parent.orelse]
            if child in body:
                out.append((parent.test, True, parent.lineno))
            elif child in orelse:
                out.append((parent.test, False, parent.lineno))
        child, parent = parent, parents.get(parent)
    return out, parent if isinstance(parent, _FUNCS) else None


def _show(test: ast.expr, polarity: bool) -> str:
    try:
        text = ast.unparse(test)
    except Exception:  # noqa: BLE001
        text = "?"
    return text if polarity else f"not ({text})"


def code_state(ctx: AuditContext, unit, node: ast.AST, calls: bool = True) -> PathState:
    """Whether `node` of `unit` runs under the folder's configuration: the branches around it in its function,
    then (with `calls`) the calls of that function. Undecidable tests count as taken."""
    tests, func = _branch_tests(node, unit.parents)
    assigns = single_assigns(func) if func is not None else {}
    resolved = []
    printed: list[str] = []
    for test, polarity, line in tests:
        if func is not None:
            # a branch whose body printed a line of the logged run ran (harness.scan.logbind), as for the TTT rules
            bound = printed_in_branch(ctx, CondRef(("code", unit.name, line, polarity), unit.name, line, polarity,
                                                   0, 0, test, SimpleNamespace(node=func)))
            if bound is not None:
                printed.append(f"the branch of `{_show(test, polarity)}` at line {line} ran: its print at line "
                               f"{bound.code_line} wrote {bound.where}")
                continue
        try:
            bare = _bare(_Inline(assigns).visit(copy_expr(test, {})))
        except Exception:  # noqa: BLE001 - an unreadable test counts as taken
            continue
        resolved.append((bare, polarity, line, _show(test, polarity)))
    state = decide_tests(ctx, resolved)
    if printed and state.runs:
        state = PathState(True, "; ".join(x for x in (*printed, state.note) if x))
    if not state.runs or not calls or func is None or func.name == "main":
        return state
    use, why = overall_use(function_uses(ctx, func.name))
    if use == "off":
        return PathState(False, f"{func.name}() is {why}")
    return state


def routes_state(ctx: AuditContext, routes: tuple) -> PathState:
    """Whether some route by which a value reaches a line runs (harness.scan.trace.Tracer.val_routes: each
    route the `if` tests around the assignments it passes through, with the function holding each test).
    The notes of a route that runs; else the note of the first route, which is off."""
    first = None
    for route in routes or ((),):
        resolved = []
        for test, polarity, line, func in route:
            try:
                bare = _bare(_Inline(single_assigns(func)).visit(copy_expr(test, {})))
            except Exception:  # noqa: BLE001 - an unreadable test counts as taken
                continue
            resolved.append((bare, polarity, line, _show(test, polarity)))
        state = decide_tests(ctx, resolved)
        if state.runs:
            return state
        first = first or state
    return first or PathState(True)


def _node_at(unit, line: int) -> ast.AST | None:
    """The innermost statement starting at `line`."""
    best = None
    for n in unit.nodes:
        if isinstance(n, ast.stmt) and getattr(n, "lineno", None) == line:
            best = n  # nodes are walked outside-in, so the last one is the innermost
    return best


def gate(ctx: AuditContext, finding: Finding) -> Finding:
    """An error on a line that is off as the folder runs it becomes a warning saying why; anything else is
    returned as it is."""
    if finding.severity != "error" or not finding.file or not finding.line:
        return finding
    unit = next((u for u in ctx.units if u.name == finding.file), None)
    node = _node_at(unit, finding.line) if unit is not None else None
    if node is None:
        return finding
    state = code_state(ctx, unit, node)
    if state.runs:
        return finding
    return dataclasses.replace(finding, severity="warning", message=f"{finding.message}; {state.note}")


def path_gated(check: Callable[..., Iterable[Finding]]) -> Callable[..., Iterator[Finding]]:
    """Decorate a rule's `check(ctx)` so that each finding passes through `gate`."""
    @functools.wraps(check)
    def wrapper(self, ctx: AuditContext, *args, **kwargs) -> Iterator[Finding]:
        for finding in check(self, ctx, *args, **kwargs):
            yield gate(ctx, finding)
    return wrapper


__all__ = ["code_state", "gate", "path_gated", "routes_state"]
