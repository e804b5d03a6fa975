"""Names a scope binds exactly once (`name = value`), with their value: one table for the scanner.

`single_assigns(node)` is used by harness.scan.bounds (symbolic slice bounds) and harness.scan.explain
(inlining a local flag into a branch test). The semantics are the strict ones: a name counts as assigned
once only when its one binding in the scope is a plain `name = value` statement (one target, a bare name).
Any other binding of the name in the same scope disqualifies it: a tuple or starred target, a chained
`a = b = v`, a subscript or attribute store through it (`x[i] = v`, `x.a = v`), `+=`, an annotated
assignment, a `for`/`with`/`except`/`import`/`del`/`match` binding, a walrus, a comprehension target, a
nested `def`/`class` of that name, a `global`/`nonlocal` declaration here, or one in a nested function
(it may rebind the name from there; for a function scope a nested `global` is over-strict). Nested
function, class and lambda bodies are other scopes and are not looked into (their decorators, defaults,
bases and keywords are evaluated in this scope and are).
"""

from __future__ import annotations

import ast

from harness.astwalk import walk
from harness.nodememo import NodeMemo

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_SCOPE_WALKS: NodeMemo[list[ast.AST]] = NodeMemo("scope walk")
_SINGLE_ASSIGNS: NodeMemo[dict[str, ast.expr]] = NodeMemo("single assigns")
_FLAG_VALUES: NodeMemo[dict[str, ast.expr]] = NodeMemo("flag values")
_BINDINGS: NodeMemo[dict[str, list[ast.expr | None]]] = NodeMemo("bindings")
_TARGETED = (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.NamedExpr, ast.comprehension)
_BINDERS = frozenset((*_TARGETED, ast.withitem, ast.Delete, ast.Import, ast.ImportFrom, ast.Global,
                      ast.Nonlocal, ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping,
                      ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


def scope_walk(node: ast.AST) -> list[ast.AST]:
    """The nodes of `node`'s own scope (its body), breadth first; a nested def/class/lambda appears itself
    with the parts evaluated in this scope (decorators, defaults, bases, keywords), never its body. Cached."""
    return _SCOPE_WALKS(node, _scope_walk)


def _scope_walk(node: ast.AST) -> list[ast.AST]:
    body = getattr(node, "body", None)
    out: list[ast.AST] = list(body) if isinstance(body, list) else [body] if isinstance(body, ast.AST) else []
    append = out.append
    i = 0
    while i < len(out):
        current = out[i]
        i += 1
        if isinstance(current, _SCOPES):
            out.extend(_outer_parts(current))
            continue
        for name in current._fields:
            value = getattr(current, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        append(item)
            elif isinstance(value, ast.AST):
                append(value)
    return out


def _outer_parts(node: ast.AST) -> list[ast.AST]:
    """What a nested def/class/lambda evaluates in the enclosing scope."""
    parts: list[ast.AST] = list(getattr(node, "decorator_list", ()))
    if isinstance(node, ast.ClassDef):
        return parts + list(node.bases) + list(node.keywords)
    args = node.args  # type: ignore[attr-defined]
    return parts + list(args.defaults) + [d for d in args.kw_defaults if d is not None]


def _names(target: ast.AST | None) -> list[str]:
    return [x.id for x in walk(target) if isinstance(x, ast.Name)] if target is not None else []


def _rebound(n: ast.AST) -> list[str]:
    """Names that `n` binds in some way other than a plain `name = value`."""
    if isinstance(n, _TARGETED):
        return _names(n.target)
    if isinstance(n, ast.withitem):
        return _names(n.optional_vars)
    if isinstance(n, ast.Delete):
        return [x for t in n.targets for x in _names(t)]
    if isinstance(n, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in n.names]
    if isinstance(n, (ast.Global, ast.Nonlocal)):
        return list(n.names)
    if isinstance(n, ast.ExceptHandler):
        return [n.name] if n.name else []
    if isinstance(n, (ast.MatchAs, ast.MatchStar)):
        return [n.name] if n.name else []
    if isinstance(n, ast.MatchMapping):
        return [n.rest] if n.rest else []
    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [n.name] + [x for m in walk(n) if isinstance(m, (ast.Nonlocal, ast.Global)) for x in m.names]
    return []


def _bindings(node: ast.AST) -> dict[str, list[ast.expr | None]]:
    """Every binding of each name in the scope of `node`: the value of a plain `name = value`, None for any
    other kind (cached on the node)."""
    cached = _BINDINGS.get(node)
    if cached is not None:
        return cached
    out: dict[str, list[ast.expr | None]] = {}
    for n in scope_walk(node):
        cls = n.__class__
        if cls is ast.Assign:
            plain = len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
            for t in n.targets:
                for name in _names(t):
                    out.setdefault(name, []).append(n.value if plain else None)
        elif cls in _BINDERS:
            for name in _rebound(n):
                out.setdefault(name, []).extend([None, None])
    return _BINDINGS.put(node, out)


def single_assigns(node: ast.AST) -> dict[str, ast.expr]:
    """Names the scope of `node` (a function, lambda, class or module) binds exactly once, by a plain
    `name = value`, with that value (see the module docstring); cached on the node."""
    cached = _SINGLE_ASSIGNS.get(node)
    if cached is None:
        cached = _SINGLE_ASSIGNS.put(node, {k: v[0] for k, v in _bindings(node).items()
                                            if len(v) == 1 and v[0] is not None})
    return cached


UNKNOWN_NAME = "__golfaudit_unknown__"   # a name nothing binds: a value that cannot be known


def _falsy_constant(value: ast.expr) -> bool:
    return isinstance(value, ast.Constant) and not value.value


def flag_values(node: ast.AST) -> dict[str, ast.expr]:
    """`single_assigns`, plus names that are also reset to a falsy constant (`active = False`, `= None`)
    elsewhere in the scope: those get `value and __golfaudit_unknown__`, which is false when their one other
    value is and unknown otherwise (a flag switched off on some path). For deciding branch tests only."""
    cached = _FLAG_VALUES.get(node)
    if cached is not None:
        return cached
    out: dict[str, ast.expr] = {}
    for name, values in _bindings(node).items():
        if any(v is None for v in values):
            continue
        main = [v for v in values if v is not None and not _falsy_constant(v)]
        if len(main) > 1:
            continue
        if len(values) == 1:
            out[name] = values[0]
        elif main:
            out[name] = ast.BoolOp(ast.And(), [main[0], ast.Name(UNKNOWN_NAME, ast.Load())])
        else:
            out[name] = ast.Constant(False)
    return _FLAG_VALUES.put(node, out)


__all__ = ["UNKNOWN_NAME", "flag_values", "scope_walk", "single_assigns"]
