"""Which pass the reported score came from, and how often a loop ran, read from the logs.

- `claim_bindings(ctx)`: each log's reported score line (the line harness.logs picks as the claim, or the
  score line equal to submission.json's `val_bpb`) bound to the print call that wrote it.
- `feeds(ctx, binding, event)`: whether the number that print wrote was computed through the call that
  leads to `event` (a score or training event of harness.scan.trace): a backward slice from the print's
  holes over the assignments of its function (and, through its parameters, of its callers), compared with
  the call line each frame of the event's call chain passed through.
- `trip_count(ctx, loop, event)`: how many times a `for ... in range(n)` loop (or a `while` loop over
  `iter(range(n))`) ran, when `n` is bound by a
  log line (printed, or a setting the run configuration fixes): `range(args.ttt_epochs)` with `epochs=1`
  printed ran once.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.astwalk import walk
from harness.logdump import differing_dumps
from harness.scan.assigns import single_assigns
from harness.scan.config import resolve_settings, setting_key
from harness.scan.logbind import KEEP_PER_TEMPLATE, Binding, log_bindings

STATED = "the bpb submission.json claims"
CLAIM_KEYS = ("val_bpb", "mean_val_bpb", "val_bpb_mean")
if TYPE_CHECKING:  # pragma: no cover
    from harness.context import AuditContext

MAX_UP = 3          # callers followed from a print's parameters
MAX_SLICE = 3000    # statements in one backward slice


@dataclass(frozen=True)
class Claim:
    bindings: tuple[Binding, ...]   # the calls that can have printed the line (more than one: a tie)
    label: str                      # the score line's label, or what made it the claim

    @property
    def binding(self) -> Binding:
        return self.bindings[0]


def claim_bindings(ctx: AuditContext) -> list[Claim]:
    """Each log's reported score: the last bound line that printed a number submission.json claims as a bpb
    (its `val_bpb`, a per-seed value), else the score line harness.logs picks; logs whose claim no print
    binds are left out (once per audit)."""
    return ctx.derived(_claim_bindings)


def _claim_bindings(ctx: AuditContext) -> list[Claim]:
    lb = log_bindings(ctx)
    claimed = _claimed_bpbs(ctx)
    out: list[Claim] = []
    for log in getattr(ctx.submission, "logs", []) or []:
        stated = [b for b in lb.bindings if b.log == log.name and any(
            isinstance(v, float) and any(abs(v - t) < 1e-6 for t in claimed) for _, v in b.values)]
        if stated:
            last = stated[-1].log_line
            out.append(Claim(tuple(_untie(lb, [b for b in stated if b.log_line == last])), STATED))
            continue
        if log.final is None:
            continue
        bound = _untie(lb, lb.at(log.name, log.final.line))
        if bound:
            out.append(Claim(tuple(bound), log.final.label))
    return out


def _untie(lb, bound: list[Binding]) -> list[Binding]:
    """One call for a line several prints of the same text can have written, by print order: when the log
    holds a multiple of that many such lines, the k-th of each group came from the k-th print in the code
    (`final_..._exact` printed for the sliding, stride-64 and SLOT passes in turn). Else all stay tied."""
    if len(bound) < 2 or len({b.unit for b in bound}) > 1:
        return bound
    calls = sorted(b.code_line for b in bound)
    b0 = bound[0]
    lines = sorted({b.log_line for b in lb.bindings if b.log == b0.log and b.unit == b0.unit
                    and b.code_line == calls[0] and b.ties == len(calls)})
    if b0.log_line not in lines or len(lines) % len(calls) or len(lines) >= 2 * KEEP_PER_TEMPLATE:
        return bound
    chosen = calls[lines.index(b0.log_line) % len(calls)]
    return [b for b in bound if b.code_line == chosen]


def claim_logs(ctx) -> frozenset[str] | None:
    """The logs that print a bpb submission.json claims (the runs the claim comes from), or None when no
    log does: evidence of what ran is read from these logs only, so a training log and a separate
    evaluation log of other settings are not mixed."""
    stated = frozenset(c.binding.log for c in claim_bindings(ctx) if c.label == STATED)
    return stated or None


def _claimed_bpbs(ctx) -> list[float]:
    """Every number submission.json states as `val_bpb` (top level or per seed) or inside a per-seed dict or
    list (`val_bpb_by_seed`, `per_seed_val_bpb`); other keys (`quantized_ttt_phased_val_bpb`,
    `val_bpb_baseline_no_slot`, a sliding or unquantised diagnostic) are not the claim."""
    try:
        data = ctx.submission.submission_json.data or {}
    except Exception:  # noqa: BLE001 - a broken submission.json is reported elsewhere
        return []
    out: list[float] = []

    def visit(value: object, key: str, claimed: bool, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                name = str(k).lower()
                per_seed = "val_bpb" in name and "seed" in name
                visit(v, name, claimed or (isinstance(v, (dict, list)) and per_seed), depth + 1)
        elif isinstance(value, list):
            for v in value[:50]:
                visit(v, key, claimed, depth + 1)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0.1 < value < 10 \
                and (claimed or key in CLAIM_KEYS):
            out.append(float(value))

    visit(data, "", False, 0)
    return out


# -- functions by name ----------------------------------------------------------------------------------
def _cache(ctx: AuditContext) -> dict:
    """This module's memo for one audit (functions by unit, slices by print)."""
    return ctx.derived(_new_cache)


def _new_cache(ctx: AuditContext) -> dict:
    return {}


def _units(ctx: AuditContext) -> list:
    """The code the TTT analysis reads: the context's units and a differing source dump."""
    return [*ctx.units, *differing_dumps(ctx)]


def _functions(ctx: AuditContext, unit: str) -> tuple[ast.Module | None, dict[str, list[ast.AST]],
                                                      dict[ast.AST, ast.AST]]:
    cache = _cache(ctx).setdefault("functions", {})
    if unit in cache:
        return cache[unit]
    found = next((u for u in _units(ctx) if u.name == unit), None)
    tree = found.tree if found is not None else None
    funcs: dict[str, list[ast.AST]] = {}
    parents: dict[ast.AST, ast.AST] = found.parents if found is not None else {}
    if tree is not None:
        for node in found.nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.setdefault(node.name, []).append(node)
    cache[unit] = (tree, funcs, parents)
    return cache[unit]


def _enclosing(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    up = parents.get(node)
    while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
        up = parents.get(up)
    return up


def _params(fn: ast.AST) -> list[str]:
    a = fn.args
    return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]


# -- backward slice ---------------------------------------------------------------------------------------
# unit, function name ("<module>" for module level), first and last line, and how the value gets there:
# "value" (an assignment or the printed expression) or "mutate" (a call handed the name may change it)
Span = tuple[str, str, int, int, str]


def _stores(scope: ast.AST) -> dict[str, list[ast.stmt]]:
    """Statements of a scope that bind each name (assignments, augmented assignments, for targets; a store
    through `x.a = v` or `x[i] = v` binds `x`)."""
    cached = scope.__dict__.get("_golfaudit_stores")
    if cached is not None:
        return cached
    out: dict[str, list[ast.stmt]] = {}
    for node in walk(scope):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            targets = [node.target]
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value            # a call may modify what it is handed: `acc.add_(x)`, `add(acc, x)`
            targets = [a for a in (*call.args, *(k.value for k in call.keywords)) if isinstance(a, ast.Name)]
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                targets.append(call.func.value)
        for t in targets:
            for n in walk(t):
                if isinstance(n, ast.Name):
                    out.setdefault(n.id, []).append(node)
                elif isinstance(n, (ast.Attribute, ast.Subscript)) and isinstance(n.value, ast.Name):
                    out.setdefault(n.value.id, []).append(node)
    scope.__dict__["_golfaudit_stores"] = out
    return out


def _slice(ctx, unit: str, exprs: list[ast.expr], scope: ast.AST | None, before: int, depth: int,
           out: set[Span], known: dict[str, str] | None = None, entered: set | None = None) -> None:
    """Add to `out` the spans of the statements whose values reach `exprs` (evaluated at line `before` in
    `scope`, a function or None for module level), following parameters to the callers' arguments."""
    tree, funcs, parents = _functions(ctx, unit)
    if tree is None:
        return
    holder = scope if scope is not None else tree
    fname = scope.name if scope is not None else "<module>"
    stores = _stores(holder)
    params = set(_params(scope)) if scope is not None else set()
    work = [(n.id, before) for e in exprs for n in walk(e) if isinstance(n, ast.Name)]
    for e in exprs:
        out.add((unit, fname, e.lineno, getattr(e, "end_lineno", e.lineno) or e.lineno, "value"))
    seen: set[tuple[str, int]] = set()
    done: set[int] = set()
    reached_params: set[str] = set()
    count = 0
    while work and count < MAX_SLICE:
        name, at = work.pop()
        if (name, at) in seen:
            continue
        seen.add((name, at))
        reaching = _reaching(stores.get(name, ()), at)
        if not reaching and name in params:
            reached_params.add(name)
        for stmt in reaching:
            if id(stmt) in done:
                continue
            done.add(id(stmt))
            count += 1
            out.add((unit, fname, stmt.lineno, getattr(stmt, "end_lineno", stmt.lineno) or stmt.lineno,
                     "mutate" if isinstance(stmt, ast.Expr) else "value"))
            value = stmt.iter if isinstance(stmt, (ast.For, ast.AsyncFor)) else getattr(stmt, "value", None)
            if value is not None:
                work.extend((n.id, stmt.lineno) for n in walk(value) if isinstance(n, ast.Name))
    if reached_params and scope is not None and depth < MAX_UP:
        for caller_unit, call, caller in _calls_of(ctx, scope.name):
            if known and _contradicts(call, scope, known):
                continue                 # `timed_eval("quantized", ...)` did not print `quantized_slot ...`
            if entered is not None:
                entered.add((caller_unit, call.lineno))
            args = _arguments(call, scope, reached_params)
            if args:
                _slice(ctx, caller_unit, args, caller, call.lineno, depth + 1, out)


def _contradicts(call: ast.Call, fn: ast.AST, known: dict[str, str]) -> bool:
    """The call passes a string literal for a parameter the print wrote as another string."""
    for name, value in known.items():
        for arg in _arguments(call, fn, {name}):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value != value:
                return True
    return False


def _reaching(stores, line: int) -> list[ast.AST]:
    """The stores of a name that reach a use at `line`: the last one above it, and the ones before that
    while the later one only adds to the value (`x += ...`, a call handed `x`) or sits in a branch or loop body (it may not run).
    A use with no store above it (a loop-carried or later store) takes the stores below it."""
    above = sorted((s for s in stores if s.lineno < line), key=lambda s: s.lineno, reverse=True)
    out: list[ast.AST] = []
    for stmt in above:
        out.append(stmt)
        if not isinstance(stmt, (ast.AugAssign, ast.Expr)) and getattr(stmt, "col_offset", 0) <= _indent(above):
            break
    if not out:
        out = [s for s in stores if s.lineno >= line][:3]
    return out


def _indent(stmts: list[ast.AST]) -> int:
    """The smallest indentation among the stores: one at that depth is unconditional relative to the others."""
    return min((getattr(s, "col_offset", 0) for s in stmts), default=0)


def _calls_of(ctx, name: str) -> list[tuple[str, ast.Call, ast.AST | None]]:
    out = []
    for u in _units(ctx):
        if name not in u.text:
            continue
        tree, _, parents = _functions(ctx, u.name)
        for node in walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                callee = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if callee == name:
                    out.append((u.name, node, _enclosing(node, parents)))
    return out[:20]


def _arguments(call: ast.Call, fn: ast.AST, wanted: set[str]) -> list[ast.expr]:
    params = [p.arg for p in (*fn.args.posonlyargs, *fn.args.args)]
    if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    out = []
    for i, arg in enumerate(call.args):
        if i < len(params) and params[i] in wanted:
            out.append(arg)
    out.extend(k.value for k in call.keywords if k.arg in wanted)
    return out


def printed_from(ctx, binding: Binding) -> tuple[frozenset[Span], frozenset | None]:
    """The statements whose values reach what a bound print wrote, and, when the print sits in a helper
    whose parameters carry the value (`timed_eval(label, fn)`), the call sites of that helper that can
    have printed this line (those passing another string literal for a printed parameter are left out);
    cached per print call and printed strings."""
    cache = _cache(ctx).setdefault("printed_from", {})
    tree, _, parents = _functions(ctx, binding.unit)
    call = binding.template.call
    fn = _enclosing(call, parents) if tree is not None else None
    params = set(_params(fn)) if fn is not None else set()
    known = {h.expr.id: v for h, v in binding.holes if isinstance(h.expr, ast.Name) and h.expr.id in params
             and isinstance(v, str)}
    key = (binding.unit, binding.code_line, tuple(sorted(known.items())))
    if key in cache:
        return cache[key]
    spans: set[Span] = set()
    entered: set | None = set() if fn is not None else None
    if tree is not None:
        holes = [h.expr for h in (p for p in binding.template.parts if hasattr(p, "kind")) if h.expr is not None]
        _slice(ctx, binding.unit, holes, fn, call.lineno, 0, spans, known, entered)
    cache[key] = (frozenset(spans), frozenset(entered) if entered else None)
    return cache[key]


def feeds(ctx, binding: Binding, event) -> bool:
    """True when the number the bound print wrote was computed through the call leading to `event`: in some
    frame of the event's call chain that the print's slice covers, the chain's call line is in the slice;
    then, in each called function down to the event, the chain's next line (or the event's own) is in
    the slice of that function's return values (of its parameters, for a helper that returns nothing and
    accumulates into what it is handed). A pass whose value the callee drops does not feed the print."""
    spans, entered = printed_from(ctx, binding)
    tree, _, parents = _functions(ctx, binding.unit)
    fn = _enclosing(binding.template.call, parents) if tree is not None else None
    chain = list(event.chain)
    for k, (unit, _, fname) in enumerate(chain):
        if entered is not None and fn is not None and unit == binding.unit and fname == fn.name and k > 0 \
                and (chain[k - 1][0], chain[k][1]) not in entered:
            continue                     # the print's helper, entered from a call that printed another line
        via = chain[k + 1][1] if k + 1 < len(chain) else event.line
        modes = _covers(spans, unit, fname, via)
        if modes and _returned(ctx, chain, k + 1, event, "value" if "value" in modes else "mutate"):
            return True
    return False


def _covers(spans, unit: str, fname: str, line: int) -> set[str]:
    return {m for su, sf, lo, hi, m in spans if su == unit and sf == fname and lo <= line <= hi}


def _returned(ctx, chain: list, k: int, event, mode: str) -> bool:
    """Down the chain from frame k: the value leaves each function by its returns ("value") or by what it
    does to its parameters ("mutate": reached through a call that was handed the value, or a function that
    returns nothing)."""
    for i in range(k, len(chain)):
        unit, call_line, fname = chain[i]
        fn = _function_at(ctx, unit, fname)
        if fn is None:
            return False
        spans: set[Span] = set()
        returns = _own_returns(fn) if mode == "value" else []
        for node in returns:
            _slice(ctx, unit, [node.value], fn, node.lineno, MAX_UP, spans)
        if not returns:
            end = (fn.end_lineno or fn.lineno) + 1
            params = [ast.Name(p, ast.Load(), lineno=end, end_lineno=end, col_offset=0) for p in _params(fn)]
            _slice(ctx, unit, params, fn, end, MAX_UP, spans)
        via = chain[i + 1][1] if i + 1 < len(chain) else event.line
        modes = _covers(spans, unit, fname, via)
        if not modes:
            return False
        mode = "value" if "value" in modes else "mutate"
    return True


def _function_at(ctx, unit: str, name: str) -> ast.AST | None:
    _, funcs, _ = _functions(ctx, unit)
    found = funcs.get(name, [])
    return found[0] if len(found) == 1 else None


def _own_returns(fn: ast.AST) -> list[ast.Return]:
    out: list[ast.Return] = []
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None:
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


# -- trip counts ------------------------------------------------------------------------------------------
def trip_count(ctx, loop, event) -> tuple[int, str] | None:
    """(times, evidence) for `for _ in range(n)` when a log binds `n` (directly, through the parameter the
    call chain passed it in, or as a setting the run configuration fixes); None when no log decides it."""
    it = _iterated(loop)
    if not isinstance(it, ast.Call):
        return None
    if not (isinstance(it.func, ast.Name) and it.func.id == "range") or it.keywords or not 1 <= len(it.args) <= 2:
        return None
    start = 0
    if len(it.args) == 2:
        if not (isinstance(it.args[0], ast.Constant) and isinstance(it.args[0].value, int)):
            return None
        start = it.args[0].value
    chain = list(event.chain)
    k = next((i for i in range(len(chain) - 1, -1, -1) if chain[i][2] == loop.func.name
              and chain[i][0] == loop.unit), None)
    if k is None:
        return None
    found = _value_of(ctx, it.args[-1], loop.unit, loop.func.node if loop.func.name != "<module>" else None,
                      chain, k, 0)
    if found is None or not isinstance(found[0], int) or isinstance(found[0], bool):
        return None
    return max(0, found[0] - start), found[1]


def _iterated(loop) -> ast.expr | None:
    """What a loop iterates over: a `for` loop's iterable, or `xs` of a `while` loop written over an explicit
    iterator (`it = iter(xs)`, then `while True: try: x = next(it) except StopIteration: break`)."""
    node = loop.node
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return node.iter
    if not isinstance(node, ast.While) or not node.body or not isinstance(node.body[0], ast.Try):
        return None
    first = node.body[0].body[0] if node.body[0].body else None
    value = first.value if isinstance(first, ast.Assign) else None
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "next"
            and value.args and isinstance(value.args[0], ast.Name)):
        return None
    made = single_assigns(loop.func.node).get(value.args[0].id) if loop.func is not None else None
    if isinstance(made, ast.Call) and isinstance(made.func, ast.Name) and made.func.id == "iter" and made.args:
        return made.args[0]
    return None


def _value_of(ctx, expr: ast.expr, unit: str, fn: ast.AST | None, chain: list, k: int,
              depth: int) -> tuple[object, str] | None:
    if depth > 6:
        return None
    key = setting_key(expr)
    if key is not None and key[0] in ("attr", "env"):
        s = resolve_settings(ctx).get(key[1])
        if s is not None and s.source != "default":
            return s.effective, f"{s.name}={s.effective} from {s.source}"
        return None
    if not isinstance(expr, ast.Name):
        return None
    name = expr.id
    printed = _printed_in(ctx, unit, fn, name)
    if printed is not None:
        return printed
    if key is not None and name.isupper():
        s = resolve_settings(ctx).get(name)
        if s is not None and s.source != "default":
            return s.effective, f"{s.name}={s.effective} from {s.source}"
    if fn is None:
        return None
    assigned = single_assigns(fn).get(name)
    if assigned is not None:
        return _value_of(ctx, assigned, unit, fn, chain, k, depth + 1)
    if name in _params(fn) and k > 0:
        caller_unit, caller_name = chain[k - 1][0], chain[k - 1][2]
        line = chain[k][1]
        tree, funcs, parents = _functions(ctx, caller_unit)
        if tree is None:
            return None
        caller = None if caller_name == "<module>" else next(
            (f for f in funcs.get(caller_name, []) if f.lineno <= line <= (f.end_lineno or f.lineno)), None)
        holder = caller if caller is not None else tree
        for node in walk(holder):
            if isinstance(node, ast.Call) and node.lineno == line:
                args = _arguments(node, fn, {name})
                if args:
                    return _value_of(ctx, args[0], caller_unit, caller, chain, k - 1, depth + 1)
    return None


def _printed_in(ctx, unit: str, fn: ast.AST | None, name: str) -> tuple[object, str] | None:
    """The value a print in the same function wrote for the bare name `name`, when every log line agrees."""
    lo = fn.lineno if fn is not None else 0
    hi = (fn.end_lineno or fn.lineno) if fn is not None else 10**9
    values: dict[object, Binding] = {}
    for b in log_bindings(ctx).bindings:
        if b.unit != unit or not lo <= b.code_line <= hi:
            continue
        if fn is None:
            _, _, parents = _functions(ctx, unit)
            if _enclosing(b.template.call, parents) is not None:
                continue
        for hole, value in b.holes:
            if hole.text == name:
                values.setdefault(value, b)
    if len(values) != 1:
        return None
    value, b = next(iter(values.items()))
    return value, f"`{name}` printed as {value} at {b.where} (`{b.text.strip()[:80]}`)"


# -- fresh weights between two passes ---------------------------------------------------------------------
def rebound_between(ctx, first, second) -> str | None:
    """A name the second pass is handed that is bound anew (`m = deserialize(...)`, `m = GPT(...)`) between
    the call leading to `first` and the call leading to `second`, in the deepest function both calls share:
    the second pass may then run on other weights than the ones the first pass trained. Returns the line
    `name = ...` at that binding, None when no such binding is seen."""
    a, b = list(first.chain), list(second.chain)
    d = 0
    while d + 1 < min(len(a), len(b)) and a[d + 1] == b[d + 1]:
        d += 1
    if d + 1 >= len(a) or d + 1 >= len(b):
        return None
    unit, _, fname = b[d]
    first_line, second_line = a[d + 1][1], b[d + 1][1]
    if first_line >= second_line:
        return None
    tree, _, _ = _functions(ctx, unit)
    fn = None if fname == "<module>" else _function_at(ctx, unit, fname)
    holder = fn if fn is not None else tree
    if holder is None:
        return None
    stores = _stores(holder)
    for node in walk(holder):
        if not (isinstance(node, ast.Call) and node.lineno == second_line):
            continue
        for arg in (*node.args, *(k.value for k in node.keywords)):
            if not isinstance(arg, ast.Name):
                continue
            for stmt in _reaching(stores.get(arg.id, ()), second_line):
                if isinstance(stmt, ast.Assign) and first_line < stmt.lineno < second_line:
                    return f"`{arg.id}` is bound anew at line {stmt.lineno}"
    return None


def called_objects(ctx: AuditContext, unit: str, fname: str) -> frozenset[str]:
    """Names a function calls directly that are objects, not functions: `m(x)` where `m` is neither defined
    by a `def` in the code, nor imported, nor a builtin, nor a local name for one of those (`_ln = math.log`):
    a module passed in, a callable built at run time."""
    cache = _cache(ctx).setdefault("called", {})
    key = (unit, fname)
    if key in cache:
        return cache[key]
    import builtins

    tree, funcs, _ = _functions(ctx, unit)
    fn = None if fname == "<module>" else _function_at(ctx, unit, fname)
    out: set[str] = set()
    if tree is not None and (fn is not None or fname == "<module>"):
        imported = {a.asname or a.name.split(".")[0] for n in walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in n.names}
        classes = {n.name for n in walk(tree) if isinstance(n, ast.ClassDef)}
        known = set(funcs) | imported | classes | set(dir(builtins))
        aliases = {**single_assigns(tree), **(single_assigns(fn) if fn is not None else {})}
        for node in walk(fn if fn is not None else tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in known \
                    and not _alias_of_known(aliases.get(node.func.id), known):
                out.add(node.func.id)
    cache[key] = frozenset(out)
    return cache[key]


def _alias_of_known(value: ast.expr | None, known: set[str]) -> bool:
    """`_ln = math.log`, `f = F.relu`, `g = lambda x: ...`: a local name for a library function."""
    if isinstance(value, ast.Lambda):
        return True
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name) and value.id in known
