"""Where a statement writes or reads a lookup table keyed by token values (n-gram counts, hint tables).

Pure `ast`: the tracer (harness.scan.trace) asks these helpers which parts of a statement are table
updates and table lookups, then keeps those whose key carries validation data. A table is anything written
through a key: a dict or Counter (`counts[ctx] += 1`, `counts.update(...)`), a tensor or array
(`T.scatter_add_(0, idx, ones)`, `np.add.at(T, idx, 1)`, `T[idx] += 1`), a table built in one call
(`torch.bincount(tokens)`, `Counter(tokens)`), or a field of a custom class (`self.counts[ctx][tok] += 1`).
A table is named by its path (`counts`, `self.full_counts`); subscripts on the path are dropped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from harness.astwalk import walk
from harness.nodememo import NodeMemo

# tensor methods that write through an index argument: name -> position of the index argument
KEYED_WRITES = {"scatter_add_": 1, "index_add_": 1, "scatter_": 1, "scatter_reduce_": 1, "index_fill_": 1,
                "index_copy_": 1, "index_put_": 0, "put_": 0}
# container methods that add their argument(s) to a table (a Counter / dict / set)
ADDING = {"update", "setdefault", "add", "append", "extend", "increment", "__setitem__"}
# calls that build a whole count table from a token stream at once
BUILDERS = {"bincount", "Counter", "histc", "histogram"}
LOOKUPS = {"get", "__getitem__", "index_select", "gather", "take"}
RESETS = {"reset", "clear", "zero_", "fill_", "reset_state", "reset_cache"}
_WRITTEN: NodeMemo[frozenset[str]] = NodeMemo("table names written")
_BUILDERS: NodeMemo[bool] = NodeMemo("whole-stream counters")
SCORE_NAME = re.compile(r"loss|nll|bits|logp|log_prob|neg_log|surpris|(?:^|_)ce(?:_|$)|score", re.I)


def table_path(node: ast.AST) -> str:
    """`self.full_counts` for `self.full_counts[oi]`, `counts` for `counts[k]` and
    `counts.setdefault(ctx, {})[tok]`; '' for anything else."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("setdefault", "get", "__getitem__"):
            node = node.func.value              # T.setdefault(ctx, Counter())[tok] += 1: still T
        elif isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        else:
            return ""


def store_updates(s: ast.stmt) -> Iterator[tuple[str, ast.expr]]:
    """(table path, key) for `T[key] = v` / `T[key] += v` statements."""
    if isinstance(s, ast.Assign):
        targets = s.targets
    elif isinstance(s, (ast.AugAssign, ast.AnnAssign)):
        targets = [s.target]
    else:
        return
    for t in targets:
        if isinstance(t, ast.Subscript) and keyed(t.slice):
            path = table_path(t.value)
            if path:
                yield path, t.slice


def built_tables(s: ast.stmt) -> Iterator[tuple[str, ast.expr]]:
    """(table name, data) for a table counted from a token stream in one call and bound or added to a name:
    `T = torch.bincount(tokens).float()`, `T = Counter(tokens)`, `self.ctx += np.bincount(keys, minlength=n)`."""
    if isinstance(s, ast.Assign) and len(s.targets) == 1:
        target = s.targets[0]
    elif isinstance(s, ast.AugAssign):
        target = s.target
    else:
        return
    path = table_path(target) if not isinstance(target, ast.Subscript) else ""
    if not path:
        return
    for call in walk(s.value):
        if isinstance(call, ast.Call) and call.args:
            name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if name in BUILDERS:
                yield path, call.args[0]
                return


def call_update(call: ast.Call) -> tuple[str, ast.expr] | None:
    """(table path, key or data) when a library call writes a table: `T.scatter_add_(0, idx, src)`,
    `np.add.at(T, idx, v)`, `T.update(items)`, `T[ctx].append(tok)`."""
    f = call.func
    if not isinstance(f, ast.Attribute):
        return None
    if f.attr == "at" and isinstance(f.value, ast.Attribute) and f.value.attr in ("add", "maximum") \
            and len(call.args) >= 2:
        path = table_path(call.args[0])
        return (path, call.args[1]) if path else None
    if f.attr in KEYED_WRITES:
        idx = KEYED_WRITES[f.attr]
        key = call.args[idx] if len(call.args) > idx else next(
            (k.value for k in call.keywords if k.arg in ("index", "indices")), None)
        path = table_path(f.value)
        return (path, key) if path and key is not None else None
    if f.attr in ADDING and call.args:
        if isinstance(f.value, ast.Subscript) and keyed(f.value.slice):  # T[ctx].append(tok): keyed by ctx
            path = table_path(f.value)
            return (path, f.value.slice) if path else None
        if f.attr in ("update", "setdefault", "increment", "__setitem__"):
            path = table_path(f.value)
            return (path, call.args[0]) if path else None
    return None


def call_lookup(call: ast.Call) -> tuple[str, ast.expr] | None:
    """(table path, key) for `T.get(key, d)`, `T.index_select(0, idx)`, `T.gather(0, idx)`."""
    f = call.func
    if not isinstance(f, ast.Attribute) or f.attr not in LOOKUPS or not call.args:
        return None
    path = table_path(f.value)
    if not path:
        return None
    key = call.args[1] if f.attr in ("index_select", "gather") and len(call.args) > 1 else call.args[0]
    return path, key


def keyed(key: ast.expr) -> bool:
    """A key that selects entries by value (`T[ctx]`, `T[h % n]`, `T[idx_tensor]`), not a range of positions:
    a slice among its indices (`x[b, :n]`, `buf[a:b]`) makes it a positional read or write, while a slice
    inside an index is a token array used as keys (`counts[piece[1:]]`)."""
    parts = key.elts if isinstance(key, ast.Tuple) else [key]
    return not isinstance(key, ast.Constant) and not any(isinstance(n, ast.Slice) for n in parts)


def subscript_lookups(node: ast.AST) -> Iterator[ast.Subscript]:
    """Subscript loads under `node` with a keyed index (reads of `T[key]`)."""
    for n in walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and keyed(n.slice):
            yield n


def written_names(tree: ast.AST) -> frozenset[str]:
    """Last components of every path written through a key anywhere in `tree`: the names a lookup must have
    to be worth an event (cached on the tree)."""
    return _WRITTEN(tree, _written_names)


def _written_names(tree: ast.AST) -> frozenset[str]:
    out: set[str] = set()
    builders = has_builders(tree)
    for n in walk(tree):
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for path, _ in (*store_updates(n), *(built_tables(n) if builders else ())):
                out.add(path.rsplit(".", 1)[-1])
        elif isinstance(n, ast.Call):
            hit = call_update(n)
            if hit:
                out.add(hit[0].rsplit(".", 1)[-1])
    return frozenset(out)


def has_builders(tree: ast.AST) -> bool:
    """Whether `tree` calls a whole-stream counter (`bincount`, `Counter`, ...) anywhere (cached)."""
    return _BUILDERS(tree, lambda t: any(
        isinstance(n, ast.Call) and (n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", ""))
        in BUILDERS for n in walk(t)))


def is_slot_store(s: ast.stmt) -> tuple[str, ast.expr, ast.expr] | None:
    """(name, key, value) for `nll[i] = v` / `losses[a:b] += v` into a loss-named array: per-position scores
    stored rather than summed."""
    if isinstance(s, ast.Assign) and len(s.targets) == 1:
        t, value = s.targets[0], s.value
    elif isinstance(s, ast.AugAssign):
        t, value = s.target, s.value
    else:
        return None
    if not isinstance(t, ast.Subscript):
        return None
    path = table_path(t.value)
    name = path.rsplit(".", 1)[-1]
    if path and SCORE_NAME.search(name):
        return path, t.slice, value
    return None


__all__ = ["BUILDERS", "KEYED_WRITES", "RESETS", "SCORE_NAME", "built_tables", "call_lookup", "call_update",
           "has_builders", "is_slot_store", "keyed", "store_updates", "subscript_lookups", "table_path", "written_names"]
