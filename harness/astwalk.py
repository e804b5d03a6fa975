"""`ast.walk` as a list, in the same breadth-first order, computed once per node.

The scanner and the rules walk the same functions and modules many times (measured: ~6 million node
visits for the 60 folders of records/, a quarter of a cold `check`), so each node's list is kept in a
`NodeMemo` (harness.nodememo).
"""

from __future__ import annotations

import ast

from harness.nodememo import NodeMemo

_WALKS: NodeMemo[list[ast.AST]] = NodeMemo("walk")
_KEY = _WALKS.key


def walk(node: ast.AST) -> list[ast.AST]:
    """Every node under `node` (itself first), breadth first like `ast.walk`; computed once per node."""
    cached = node.__dict__.get(_KEY)  # NodeMemo.get, inlined: this is the scanner's hottest call
    if cached is None:
        cached = node.__dict__[_KEY] = _walk(node)
    return cached


def local_values(fn: ast.AST) -> dict[str, list[ast.expr]]:
    """name → every expression assigned to it inside `fn` (plain, annotated, augmented, for-targets)."""
    out: dict[str, list[ast.expr]] = {}
    for node in walk(fn):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                for n in walk(t):
                    if isinstance(n, ast.Name):
                        out.setdefault(n.id, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None \
                and isinstance(node.target, ast.Name):
            out.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, (ast.For, ast.comprehension)):
            for n in walk(node.target):
                if isinstance(n, ast.Name):
                    out.setdefault(n.id, []).append(node.iter)
        elif isinstance(node, ast.NamedExpr):
            out.setdefault(node.target.id, []).append(node.value)
    return out


def _walk(node: ast.AST) -> list[ast.AST]:
    out = [node]
    append = out.append
    i = 0
    while i < len(out):
        current = out[i]
        i += 1
        for name in current._fields:
            value = getattr(current, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        append(item)
            elif isinstance(value, ast.AST):
                append(value)
    return out
