"""The static pattern detectors: eval-time adaptations of free tensors (SLOT, ETLB), the functions on the
evaluation path, and the position loops of causal caches and n-gram experts (NGRAM-CACHE, C1-STRICT-CAUSAL).

They read `CodeUnit`s (harness.codeload), the code an `AuditContext` holds, through the words and `ast`
shapes of harness.scan.vocabulary. Everything here is pure `ast`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.astwalk import walk
from harness.codeload import CodeUnit
from harness.context import AuditContext
from harness.scan.vocabulary import (
    call_name,
    dotted,
    is_eval_function,
    traced_words,
    words_of,
)

# -- free tensors optimised at eval time (ETLB, SLOT) ------------------------------------------------
OPTIMIZERS = {"SGD", "Adam", "AdamW", "LBFGS", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam", "Muon"}
HIDDEN_WORD = re.compile(r"hidden|hid|^h$|^x$|feat|resid|state|emb|^z$|repr|act", re.I)


@dataclass(frozen=True)
class Adaptation:
    """A tensor created with requires_grad inside a function and stepped by an optimizer there.

    kind: "logit-bias" (added to logits), "hidden-delta" (added to hidden states / fed to the model),
    "other". region: which targets its loss uses — "scored" (the window's scored targets, or the whole
    window), "context" (only positions before the scored slice, `[:s]`), "unknown"."""

    unit: CodeUnit
    function: ast.FunctionDef | ast.AsyncFunctionDef
    var: str
    line: int
    kind: str
    region: str
    loss_line: int | None
    where: str
    node: ast.AST | None = field(default=None, compare=False, hash=False, repr=False)  # the optimizer call


def _creates_free_tensor(expr: ast.expr) -> bool:
    for n in walk(expr):
        if isinstance(n, ast.Attribute) and n.attr == "requires_grad_":
            return True
        if isinstance(n, ast.keyword) and n.arg == "requires_grad" and isinstance(n.value, ast.Constant) \
                and n.value.value is True:
            return True
        if isinstance(n, ast.Call) and call_name(n) == "Parameter":
            return True
    return False


def _made_free_later(nodes: list[ast.AST], var: str) -> bool:
    """`var.requires_grad_()` as its own statement, or `var.requires_grad = True`."""
    for n in nodes:
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "requires_grad_" \
                and isinstance(n.func.value, ast.Name) and n.func.value.id == var:
            return True
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "requires_grad"
                                             and isinstance(t.value, ast.Name) and t.value.id == var
                                             for t in n.targets):
            return True
    return False


def _aliases(var: str, values: dict[str, list[ast.expr]]) -> set[str]:
    out = {var}
    for _ in range(3):
        grew = False
        for name, exprs in values.items():
            if name in out:
                continue
            for e in exprs:
                if isinstance(e, (ast.Call, ast.Attribute, ast.Name, ast.Subscript)) and \
                        any(isinstance(n, ast.Name) and n.id in out for n in walk(e)):
                    # b.detach(), b.clone().clamp_(...), b[None] — still the same tensor's value
                    if not any(isinstance(n, ast.Call) and call_name(n) in OPTIMIZERS for n in walk(e)):
                        out.add(name)
                        grew = True
                        break
        if not grew:
            break
    return out


def _kind(fn: ast.AST, aliases: set[str]) -> tuple[str, int | None]:
    hidden_line = None
    for n in walk(fn):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            left = {w for w in words_of(n.left)}
            right = {w for w in words_of(n.right)}
            for mine, other in ((left, right), (right, left)):
                if mine & aliases and not other & aliases:
                    if any("logit" in w.lower() for w in other):
                        return "logit-bias", n.lineno
                    if any(HIDDEN_WORD.search(w) for w in other) or any(
                            isinstance(c, ast.Call) and "hidden" in call_name(c).lower()
                            for side in (n.left, n.right) for c in walk(side)):
                        hidden_line = hidden_line or n.lineno
        elif isinstance(n, ast.Call):
            name = call_name(n).lower()
            if any(isinstance(a, ast.Name) and a.id in aliases for a in list(n.args) +
                   [k.value for k in n.keywords]) and ("forward" in name or "hidden" in name or "delta" in name):
                hidden_line = hidden_line or n.lineno
    if hidden_line:
        return "hidden-delta", hidden_line
    return "other", None


LOSS_CALLS = {"cross_entropy", "nll_loss", "CrossEntropyLoss", "log_softmax", "kl_div"}


def _loss_region(fn: ast.AST, values: dict[str, list[ast.expr]],
                 aliases: set[str] | None = None) -> tuple[str, int | None]:
    """Region of the targets in the loss that is back-propagated inside `fn`: of the losses whose value
    involves `aliases` (the optimised tensor), when some do — the loss that optimizer actually minimises, not
    another one in the same function — else of every loss there."""
    backward = [n for n in walk(fn) if isinstance(n, ast.Call) and call_name(n) == "backward"]
    if aliases:
        own = [b for b in backward if isinstance(b.func, ast.Attribute)
               and traced_words(b.func.value, values, 3) & aliases]
        backward = own or backward
    if not backward:
        return "unknown", None
    verdicts: list[tuple[str, int]] = []
    for b in backward:
        loss_expr = b.func.value if isinstance(b.func, ast.Attribute) else b
        frontier: list[ast.AST] = [loss_expr]
        targets: list[ast.expr] = []
        seen: set[str] = set()
        for _ in range(4):
            nxt: list[ast.AST] = []
            for e in frontier:
                for n in walk(e):
                    if isinstance(n, ast.Call) and call_name(n) in LOSS_CALLS and len(n.args) >= 2:
                        targets.append(n.args[1])
                    elif isinstance(n, ast.Call) and call_name(n) in LOSS_CALLS:
                        targets.extend(k.value for k in n.keywords if k.arg in ("target", "targets"))
                    elif isinstance(n, ast.Name) and n.id in values and n.id not in seen:
                        seen.add(n.id)
                        nxt.extend(values[n.id])
            frontier = nxt
        if not targets:
            verdicts.append(("unknown", b.lineno))
            continue
        region = _target_region(targets, values)
        words = [w.lower() for w in traced_words(loss_expr, values, 2)]
        if region == "scored" and any("mask" in w for w in words):
            # a mask restricts the loss: to the scored tail (still scored) or to the context (causal)
            if any(k in w for w in words for k in ("ctx", "context", "prefix", "prev")):
                region = "context"
            elif not any(k in w for w in words for k in ("score", "tail", "target", "eval")):
                region = "unknown"
        verdicts.append((region, b.lineno))
    for want in ("scored", "unknown", "context"):
        for region, line in verdicts:
            if region == want:
                return region, line
    return "unknown", None


_VIEW_METHODS = {"squeeze", "unsqueeze", "reshape", "view", "long", "to", "contiguous", "flatten", "float",
                 "detach", "clone", "int", "cuda"}


def _region_of(expr: ast.AST, values: dict[str, list[ast.expr]], depth: int) -> set[str]:
    """{"context"|"scored"|"whole"} for a target expression: the outermost slice decides."""
    e = expr
    while isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr in _VIEW_METHODS:
        e = e.func.value
    if isinstance(e, ast.Subscript):
        slices = e.slice.elts if isinstance(e.slice, ast.Tuple) else [e.slice]
        found: set[str] = set()
        for sl in slices:
            if isinstance(sl, ast.Slice):
                if sl.lower is None and sl.upper is not None:
                    found.add("context")
                elif sl.lower is not None and not (isinstance(sl.lower, ast.Constant) and sl.lower.value in (0, 1)):
                    found.add("scored")
        if found:
            return found
        return _region_of(e.value, values, depth)
    if isinstance(e, ast.Name) and depth > 0 and e.id in values:
        out: set[str] = set()
        for v in values[e.id]:
            out |= _region_of(v, values, depth - 1)
        return out or {"whole"}
    return {"whole"}


def _target_region(targets: list[ast.expr], values: dict[str, list[ast.expr]]) -> str:
    found: set[str] = set()
    for t in targets:
        found |= _region_of(t, values, 3)
    if "scored" in found:
        return "scored"
    if "context" in found and "whole" not in found:
        return "context"
    if "context" in found:
        return "unknown"
    return "scored"  # no slicing at all: the loss covers the whole window, scored targets included


def adaptations(units: Iterable[CodeUnit]) -> list[Adaptation]:
    out: list[Adaptation] = []
    for unit in units:
        if "requires_grad" not in unit.text and "Parameter(" not in unit.text:
            continue
        for fn in unit.functions:
            if "requires_grad" not in unit.segment(fn) and "Parameter(" not in unit.segment(fn):
                continue
            opts = [n for n in unit.walk(fn) if isinstance(n, ast.Call) and call_name(n) in OPTIMIZERS]
            if not opts:
                continue
            values = unit.values(fn)
            for opt in opts:
                params = opt.args[0] if opt.args else next((k.value for k in opt.keywords if k.arg == "params"),
                                                           None)
                if params is None:
                    continue
                names = [n.id for n in (params.elts if isinstance(params, (ast.List, ast.Tuple)) else [params])
                         if isinstance(n, ast.Name)]
                for var in names:
                    if not any(_creates_free_tensor(e) for e in values.get(var, [])) and \
                            not _made_free_later(unit.walk(fn), var):
                        continue
                    aliases = _aliases(var, values)
                    kind, where_line = _kind(fn, aliases)
                    region, loss_line = _loss_region(fn, values, aliases)
                    out.append(Adaptation(unit, fn, var, opt.lineno, kind, region, loss_line,
                                          f"line {where_line}" if where_line else "", opt))
    return out


EvalFunctions = dict[str, tuple[CodeUnit, ast.FunctionDef | ast.AsyncFunctionDef, str]]


def eval_path(ctx: AuditContext) -> EvalFunctions:
    """`eval_functions` of the submission's code, computed once per audit."""
    return ctx.derived(_eval_path)


def _eval_path(ctx: AuditContext) -> EvalFunctions:
    return eval_functions(ctx.units)


def eval_functions(units: list[CodeUnit]) -> EvalFunctions:
    """Functions run at evaluation time: eval-named ones (eval_val*, *ttt*, *sliding*, score*) and every
    function they call, transitively. name → (unit, def, how it is reached)."""
    defs: dict[str, tuple[CodeUnit, Any]] = {}
    for u in units:
        for fn in u.functions:
            defs.setdefault(fn.name, (u, fn))
    out: dict[str, tuple[CodeUnit, Any, str]] = {}
    frontier = [(name, "an evaluation function by its name") for name in defs if is_eval_function(name)]
    while frontier:
        name, how = frontier.pop()
        if name in out or name not in defs:
            continue
        unit, fn = defs[name]
        out[name] = (unit, fn, how)
        for node in unit.walk(fn):
            if isinstance(node, ast.Call):
                callee = call_name(node)
                if callee in defs and callee not in out and callee != "main":
                    frontier.append((callee, f"called from {name}() line {node.lineno}"))
    return out


# -- position loops of causal caches / n-gram experts (NGRAM-CACHE, C1-STRICT-CAUSAL) ---------------------
SCORE_ACC = re.compile(r"loss|nll|bits|logp|log_prob|neg_log|score_sum|total_ce|ce_sum", re.I)
UPDATE_METHODS = {"update", "add", "observe", "push", "record", "insert", "increment", "learn", "append_token",
                  "update_counts", "add_token", "feed"}
READ_METHODS = {"get", "lookup", "predict", "query", "probs", "prob", "hint", "hints", "dist", "distribution",
                "score", "logprob", "log_prob", "probability"}


def index_offset(node: ast.AST, var: str) -> int | None:
    """k for an index `var` / `var + k` / `var - k` (as -k); None when it is something else."""
    if isinstance(node, ast.Name) and node.id == var:
        return 0
    if isinstance(node, ast.BinOp) and isinstance(node.left, ast.Name) and node.left.id == var \
            and isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
        if isinstance(node.op, ast.Add):
            return node.right.value
        if isinstance(node.op, ast.Sub):
            return -node.right.value
    return None


def current_token_refs(node: ast.AST, var: str) -> list[ast.Subscript]:
    """`tokens[p]`, `tokens[p + 1]`, ... under `node`: the token at (or after) the position being scored."""
    out = []
    for n in walk(node):
        if isinstance(n, ast.Subscript):
            k = index_offset(n.slice, var)
            if k is not None and k >= 0 and _is_token_array(n.value):
                out.append(n)
    return out


def _is_token_array(node: ast.AST) -> bool:
    name = dotted(node).lower()
    return any(w in name for w in ("tok", "ids", "seq", "stream", "val", "data", "text")) or name in ("x", "y", "t")


def score_lines(loop: ast.AST) -> list[int]:
    """Lines that accumulate a score inside `loop` (`nll += ...`, `loss_sum += ...`, `bits -= ...`)."""
    out = []
    for n in walk(loop):
        if isinstance(n, ast.AugAssign):
            name = dotted(n.target)
            if name and SCORE_ACC.search(name):
                out.append(n.lineno)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "append" \
                and SCORE_ACC.search(dotted(n.func.value)):
            out.append(n.lineno)
    return sorted(out)


def token_keyed(expr: ast.AST, values: dict[str, list[ast.expr]] | None = None, depth: int = 2) -> bool:
    """Does `expr` (a cache key) depend on token *values* (`tokens[p-1]`, a hash of them), not just on
    positions? Names are followed through `values` (local assignments)."""
    frontier: list[ast.AST] = [expr]
    seen: set[str] = set()
    for _ in range(depth + 1):
        nxt: list[ast.AST] = []
        for e in frontier:
            for n in walk(e):
                if isinstance(n, ast.Subscript) and _is_token_array(n.value) and not isinstance(n.slice, ast.Slice):
                    return True
                if values and isinstance(n, ast.Name) and n.id in values and n.id not in seen:
                    seen.add(n.id)
                    nxt.extend(values[n.id])
        frontier = nxt
    return False


def table_updates(loop: ast.AST, values: dict[str, list[ast.expr]] | None = None) -> list[tuple[str, int, ast.AST]]:
    """(table, line, node) for token-keyed writes inside `loop`: `T[key] += ...`, `T[key] = ...`,
    `T.update(tokens...)`. Writes indexed only by positions (`x_batch[i, :n] = ...`) are not caches."""
    out = []
    for n in walk(loop):
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Subscript):
            if token_keyed(n.target.slice, values):
                out.append((dotted(n.target.value), n.lineno, n))
        elif isinstance(n, ast.Assign) and any(isinstance(t, ast.Subscript) for t in n.targets):
            for t in n.targets:
                if isinstance(t, ast.Subscript) and token_keyed(t.slice, values):
                    out.append((dotted(t.value), n.lineno, n))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in UPDATE_METHODS:
            if any(token_keyed(a, values) for a in list(n.args) + [k.value for k in n.keywords]):
                out.append((dotted(n.func.value), n.lineno, n))
    return [o for o in out if o[0]]


def table_reads(loop: ast.AST, tables: set[str]) -> list[tuple[str, int]]:
    out = []
    for n in walk(loop):
        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and dotted(n.value) in tables:
            out.append((dotted(n.value), n.lineno))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in READ_METHODS \
                and dotted(n.func.value) in tables:
            out.append((dotted(n.func.value), n.lineno))
    return out


def position_loops(fn: ast.AST) -> Iterator[tuple[ast.For, str]]:
    """`for p in range(...)` loops (and `for p, t in enumerate(...)`) with their position variable."""
    for n in walk(fn):
        if isinstance(n, ast.For) and isinstance(n.iter, ast.Call) and isinstance(n.iter.func, ast.Name):
            if n.iter.func.id == "range" and isinstance(n.target, ast.Name):
                yield n, n.target.id
            elif n.iter.func.id == "enumerate" and isinstance(n.target, ast.Tuple) and n.target.elts \
                    and isinstance(n.target.elts[0], ast.Name):
                yield n, n.target.elts[0].id
