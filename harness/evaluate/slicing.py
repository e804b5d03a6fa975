"""Run selected statements of a submission's own function (its model construction, its artifact
write, its artifact read-and-load) without running the rest of it.

Older records serialise and reload their model inline in `main()`. To use their own code we take the
statement that matters (e.g. `eval_model.load_state_dict(deq_state)`), and walk backwards through the
function body collecting (1) for every free name, the nearest earlier statement that assigns it and
(2) statements that only mutate a collected variable (`torch.save(obj, buf)`, `model.float()`, a `for`
over `model.modules()`). Names we provide (`args`, `device`, `base_model`, …) stop the walk. The slice
is compiled with the script's file name so tracebacks point at the submission's own lines.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

BUILTINS = set(dir(builtins))


@dataclass(frozen=True)
class StmtInfo:
    loads: frozenset[str]
    stores: frozenset[str]       # plain names bound at statement level
    local: frozenset[str]        # names bound only as loop/with targets inside the statement


def _names(node: ast.AST) -> tuple[set[str], set[str]]:
    loads, stores = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (stores if isinstance(n.ctx, (ast.Store, ast.Del)) else loads).add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(n.name)
        elif isinstance(n, ast.alias):
            stores.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, ast.arg):
            stores.add(n.arg)
    return loads, stores


def info(stmt: ast.stmt) -> StmtInfo:
    loads, stores = _names(stmt)
    local: set[str] = set()
    for n in ast.walk(stmt):
        if isinstance(n, (ast.For, ast.comprehension)):
            local |= _names(n.target)[1]
        elif isinstance(n, ast.withitem) and n.optional_vars is not None:
            local |= _names(n.optional_vars)[1]
        elif isinstance(n, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
            local |= {a.arg for a in ast.walk(n.args) if isinstance(a, ast.arg)}
    if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)):
        free = loads - local
    else:
        free = loads - (stores - local) - local
    return StmtInfo(frozenset(free), frozenset(stores - local), frozenset(local))


def mentions(stmt: ast.stmt, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt))


def backward_slice(body: list[ast.stmt], targets: list[int], provided: set[str]) -> list[int]:
    """Indices of `body` needed to run the statements `targets` (see module docstring)."""
    infos = [info(s) for s in body]
    stop = set(provided) | BUILTINS
    included = set(targets)
    changed = True
    while changed:
        changed = False
        last = max(included)
        for j in sorted(included):
            for name in infos[j].loads - stop:
                for i in range(j - 1, -1, -1):
                    if name in infos[i].stores:
                        if i not in included:
                            included.add(i)
                            changed = True
                        if not _conditional(body[i]):
                            break
        for k in range(min(included), last):
            if k in included or infos[k].stores or _is_noise(body[k]):
                continue
            if any(mentions(body[k], v) for i in included if i < k for v in infos[i].stores - stop):
                included.add(k)
                changed = True
    return sorted(included)


def _conditional(stmt: ast.stmt) -> bool:
    """A statement that may or may not bind its names (so an earlier binding may still be the live one)."""
    return isinstance(stmt, (ast.If, ast.For, ast.While, ast.Try, ast.With))


def _is_noise(stmt: ast.stmt) -> bool:
    """Statements a slice never needs: distributed barriers, timers, CUDA syncs."""
    src = ast.unparse(stmt)
    return any(tok in src for tok in ("dist.barrier", "torch.cuda.synchronize", "dist.all_reduce"))


def following_mutations(body: list[ast.stmt], start: int, name: str) -> list[int]:
    """Consecutive statements after `start` that only mutate `name` (casts, init helpers)."""
    out = []
    for k in range(start + 1, len(body)):
        st = body[k]
        if info(st).stores or not mentions(st, name):
            break
        src = ast.unparse(st)
        if "compile(" in src or "DDP(" in src:
            break
        out.append(k)
    return out


def run_statements(body: list[ast.stmt], indices: list[int], namespace: dict, filename: str) -> dict:
    mod = ast.Module(body=[body[i] for i in indices], type_ignores=[])
    ast.fix_missing_locations(mod)
    exec(compile(mod, filename, "exec"), namespace)  # noqa: S102 - the submission's own statements
    return namespace


def find_function(tree: ast.Module, predicate) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and predicate(node):
            return node
    return None


def calls_named(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name):
                out.add(f.id)
            elif isinstance(f, ast.Attribute):
                out.add(f.attr)
    return out
