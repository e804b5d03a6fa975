"""One cache for values derived from a single AST node: `NodeMemo`.

The scanner asks the same questions of the same nodes many times (the nodes under a function, the names an
expression reads, the bindings of a scope). Each answer is computed once and kept with the node it was
derived from, so it lives exactly as long as the tree: a value that refers back to its node (a walk lists
the node itself) would keep the whole tree alive in any table outside it. Trees parsed from submission code
are never mutated in place (rewrites work on copies), so a kept answer never goes stale; a copy made field by
field starts with no answers.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class NodeMemo(Generic[V]):
    """Answers to one question, one per node. `memo(node, compute)` is `compute(node)`, computed once."""

    __slots__ = ("key",)

    def __init__(self, question: str) -> None:
        self.key = f"memo:{question}"   # not an identifier: no attribute of the node can collide with it

    def get(self, node: ast.AST) -> V | None:
        return node.__dict__.get(self.key)

    def put(self, node: ast.AST, value: V) -> V:
        node.__dict__[self.key] = value
        return value

    def __call__(self, node: ast.AST, compute: Callable[[ast.AST], V]) -> V:
        found = node.__dict__.get(self.key)
        if found is None:
            found = node.__dict__[self.key] = compute(node)
        return found
