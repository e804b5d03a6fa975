"""Which slice of validation data an event touches, and whether a training slice reaches past a scored one.

`region(value, frames)` follows a scored or trained value back through single assignments and call
arguments to the slices of val data it is built from (`tokens[a:b]`), as symbolic bounds: polynomials
over names (`ci * chunk + chunk`), names assigned once to arithmetic substituted. `beyond(train, score)`
is True only when every scored slice ends symbolically before the trained slice does, by a positive
multiple of some size name (`tokens[a:b + chunk]` or `tokens[b:b + chunk]` trained, `tokens[a:b]` scored).
Anything it cannot follow (a name assigned twice, an index, a step, slices in different frames) gives
None, and the caller keeps its flow-only judgement.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from harness.scan.assigns import single_assigns

Poly = dict[tuple[str, ...], int]
MAX_FOLLOW = 24


@dataclass(frozen=True)
class Slice:
    """One slice of a val-derived name: `base[lo:hi]` in the frame `key` (a call-chain prefix)."""

    key: tuple
    base: str
    lo: tuple[tuple[tuple[str, ...], int], ...]
    hi: tuple[tuple[tuple[str, ...], int], ...]
    text: str


@dataclass(frozen=True)
class Frame:
    """One call frame seen from an event: the function, its taint closure, the caller's argument
    expressions for its parameters, and the frame's identity."""

    func: object
    closure: object
    args: dict
    key: tuple


def _params(func) -> list[str]:
    return [p.lstrip("*") for p in getattr(func, "params", [])]


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def poly(expr: ast.expr | None, values: dict[str, ast.expr], depth: int = 0) -> Poly | None:
    """A polynomial over names for simple integer arithmetic; None for anything else."""
    if expr is None:
        return None
    if isinstance(expr, ast.Constant) and isinstance(expr.value, int) and not isinstance(expr.value, bool):
        return {(): expr.value} if expr.value else {}
    if isinstance(expr, ast.Name):
        value = values.get(expr.id)
        if value is not None and depth < 4:
            sub = poly(value, values, depth + 1)
            if sub is not None:
                return sub
        return {(expr.id,): 1}
    if isinstance(expr, ast.Attribute):
        name = _dotted(expr)
        return {(name,): 1} if name else None
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        inner = poly(expr.operand, values, depth)
        return None if inner is None else {k: -v for k, v in inner.items()}
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub, ast.Mult)):
        a, b = poly(expr.left, values, depth), poly(expr.right, values, depth)
        if a is None or b is None:
            return None
        if isinstance(expr.op, ast.Mult):
            out: Poly = {}
            for ka, va in a.items():
                for kb, vb in b.items():
                    key = tuple(sorted(ka + kb))
                    out[key] = out.get(key, 0) + va * vb
        else:
            sign = 1 if isinstance(expr.op, ast.Add) else -1
            out = dict(a)
            for k, v in b.items():
                out[k] = out.get(k, 0) + sign * v
        return {k: v for k, v in out.items() if v}
    return None


def _frozen(p: Poly) -> tuple:
    return tuple(sorted(p.items()))


class _Unknown(Exception):
    pass


def region(value: ast.AST | None, frames: list[Frame], coarse: bool = False) -> tuple[Slice, ...] | None:
    """The val slices `value` is built from (innermost frame first in `frames`), or None when unknown. With
    `coarse`, an element of a val-derived array (`chunk[i]`) stands for the whole array, so a value built
    from single tokens gets the region of the slice they were taken from."""
    if value is None or not frames:
        return None
    out: list[Slice] = []
    budget = [MAX_FOLLOW, coarse]  # follows left, and whether an element stands for its array
    try:
        _collect(value, 0, frames, out, budget, {})
    except (_Unknown, RecursionError):
        return None
    if not out or len({(s.key, s.base) for s in out}) != 1:
        return None
    return tuple(dict.fromkeys(out))


def _tainted(frame: Frame, name: str) -> bool:
    return bool(frame.closure.tainted_expr(ast.Name(name, ast.Load())))


def _collect(expr: ast.AST, level: int, frames: list[Frame], out: list[Slice], budget: list,
             seen: dict) -> None:
    frame = frames[level]
    values = single_assigns(frame.func.node)
    stack = [expr]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and _tainted(frame, n.value.id):
            base = n.value.id
            defined = values.get(base)
            if defined is not None and _is_slice_call(defined):
                inner: list[Slice] = []
                _follow(defined, level, frames, inner, budget, seen)  # x[:-1] of x = tokens[a:b]: x's region
                if inner:
                    out.extend(inner)
                    continue
            if budget[1] and not isinstance(n.slice, ast.Slice):
                stack.append(n.value)           # coarse: `chunk[i]` is somewhere in `chunk`
                continue
            if not isinstance(n.slice, ast.Slice) or n.slice.step is not None:
                raise _Unknown
            lo = poly(n.slice.lower, values) if n.slice.lower is not None else {}
            hi = poly(n.slice.upper, values) if n.slice.upper is not None else {("<end>",): 1}
            if lo is None or hi is None:
                raise _Unknown
            out.append(Slice(frame.key, base, _frozen(lo), _frozen(hi), ast.unparse(n)))
            continue
        if isinstance(n, ast.Name):
            if not _tainted(frame, n.id):
                continue
            if n.id in values:
                _follow(values[n.id], level, frames, out, budget, seen)
            elif n.id in _params(frame.func) and n.id in frame.args and level + 1 < len(frames):
                _follow(frame.args[n.id], level + 1, frames, out, budget, seen)
            else:
                raise _Unknown
            continue
        stack.extend(ast.iter_child_nodes(n))


def _is_slice_call(node: ast.AST) -> bool:
    """`tokens[a:b].to(device)` and the like: a method chain over a slice."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        node = node.func.value
    return isinstance(node, ast.Subscript)


def _follow(expr: ast.AST, level: int, frames: list[Frame], out: list[Slice], budget: list,
            seen: dict) -> None:
    key = (id(expr), level)
    if key in seen:  # seen: a dict of results, None while in progress (a cycle contributes nothing)
        out.extend(seen[key] or ())
        return
    seen[key] = None
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unknown
    mine: list[Slice] = []
    _collect(expr, level, frames, mine, budget, seen)
    seen[key] = mine
    out.extend(mine)


def _positive(diff: Poly) -> bool:
    """A difference that is a positive multiple of some size name (`chunk`, `2 * chunk - 1`)."""
    symbolic = {k: v for k, v in diff.items() if k}
    return bool(symbolic) and all(v > 0 for v in symbolic.values()) and \
        all("<end>" not in k for k in symbolic)


def past(update: tuple[Slice, ...] | None, scored: tuple[Slice, ...] | None) -> tuple[Slice, Slice] | None:
    """(update slice, scored slice) when an update's slice ends after every scored slice of the same array by a
    known positive amount (`update(tokens[a:b + 2])` after scoring `tokens[a:b + 1]`), else None."""
    if not update or not scored or {(s.key, s.base) for s in update} != {(s.key, s.base) for s in scored}:
        return None
    for u in update:
        diffs = []
        for s in scored:
            d = dict(u.hi)
            for k, v in s.hi:
                d[k] = d.get(k, 0) - v
            diffs.append({k: v for k, v in d.items() if v})
        if all(d and all(v > 0 and "<end>" not in k for k, v in d.items()) for d in diffs):
            return u, scored[0]
    return None


def beyond(train: tuple[Slice, ...] | None, score: tuple[Slice, ...] | None) -> tuple[Slice, Slice] | None:
    """(trained slice, scored slice) when a trained slice reaches past every scored slice, else None."""
    if not train or not score or {(s.key, s.base) for s in train} != {(s.key, s.base) for s in score}:
        return None
    for t in train:
        hi_t = dict(t.hi)
        diffs = []
        for s in score:
            d = dict(hi_t)
            for k, v in s.hi:
                d[k] = d.get(k, 0) - v
            diffs.append({k: v for k, v in d.items() if v})
        if all(_positive(d) for d in diffs):
            return t, score[0]
    return None


__all__ = ["Frame", "Slice", "beyond", "past", "poly", "region", "single_assigns"]
