"""Training data read after the training loop has ended: GPTQ calibration batches, tables filled from
`fineweb_train_*`, loaders rebuilt from `train_files` / `train_pattern`.

Such a read is still training (it shapes the artifact from training data), so its time belongs to the
600 s training budget. Found statically, nothing is executed:

- a *training site* is a loop that calls `.backward()` and reads training data (directly or through the
  functions it calls), or a call of a function holding one (`train_model(h, ...)`);
- in each function that holds training sites, every call after the last one that reads training data is a
  *late read*: its arguments name training data (`h.train_files`, a `train_loader`, a `"fineweb_train_*"`
  glob, a module constant or local name built from one), or the function or class it calls reads some
  (`ShuffledSequenceLoader(h, device)` whose `__init__` globs `h.train_files`), followed three calls deep.

Calls of evaluation functions are left to EVAL-NO-TRAIN-DATA; logging calls, f-strings and path building
(a config class naming `fineweb_train_*.bin`) are not reads; a call in a branch the submission's settings
switch off (harness.scan.config.node_state) does not run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.astwalk import walk
from harness.codeload import CodeUnit as Unit
from harness.scan.config import node_state
from harness.scan.vocabulary import TRAIN_DATA_WORD, call_name, is_eval_function

if TYPE_CHECKING:  # pragma: no cover
    from harness.context import AuditContext

LOG_CALLS = {"print", "log", "log0", "logger", "info", "debug", "warning", "write", "print0", "log_rank0"}
DEPTH = 3
# calls that only build a path or a name: naming the training shards is not reading them (a config class
# holding `train_files = os.path.join(data_path, "fineweb_train_*.bin")` reads nothing)
PATH_CALLS = {"join", "Path", "PurePath", "str", "fspath", "expanduser", "abspath", "dirname", "basename",
              "format", "replace", "get", "getenv", "environ"}
# calls whose result is still the training data they are given (a path, a list of shard files, an iterator)
PASS_THROUGH = PATH_CALLS | {"glob", "iglob", "sorted", "list", "tuple", "iter"}


@dataclass(frozen=True)
class LateRead:
    file: str                # where training data is read (innermost)
    line: int
    text: str
    function: str            # the function whose training ends before the read
    after_file: str          # the last training site of that function
    after_line: int
    via: tuple[str, ...]     # calls from that function down to the read, e.g. ("serialize() line 3591",)

    def describe(self) -> str:
        """`main() reads training data after its training loop (train_gpt.py:32): ...`"""
        chain = "".join(f" → {step}" for step in self.via)
        return (f"{self.function}() reads training data after its training loop ({self.after_file}:"
                f"{self.after_line}){chain} at {self.file}:{self.line} `{self.text[:120]}`")


def train_data_after_training(ctx: AuditContext) -> list[LateRead]:
    """The first late read of training data of each function that trains, computed once per audit."""
    return ctx.derived(_late_reads)


def _late_reads(ctx: AuditContext) -> list[LateRead]:
    units = ctx.units
    return _Finder(units, ctx).run() if any(TRAIN_DATA_WORD.search(u.text) for u in units) else []


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """Nodes of `scope` outside nested functions, classes and lambdas (in source order of statements)."""
    out: list[ast.AST] = []
    stack = list(reversed(list(ast.iter_child_nodes(scope))))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        out.append(node)
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return out


def _end(node: ast.AST) -> tuple[int, int]:
    return node.end_lineno or node.lineno, node.end_col_offset or 0


def _is_log_call(node: ast.Call) -> bool:
    name = call_name(node)
    return name in LOG_CALLS or (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                                 and node.func.value.id in ("logger", "logging", "sys"))


class _Finder:
    def __init__(self, units: list[Unit], ctx: AuditContext | None = None):
        self.units = units
        self.ctx = ctx
        self.defs: dict[str, tuple[Unit, ast.AST]] = {}
        for unit in units:
            for node in unit.nodes:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.defs.setdefault(node.name, (unit, node))
        # values stored into a subscript (`hparams["train_files"] = args.train_files`): an entry of a mapping,
        # not what the mapping's name holds
        self.stored_items = {id(node.value) for unit in units for node in unit.nodes
                             if isinstance(node, ast.Assign) and all(isinstance(t, ast.Subscript)
                                                                     for t in node.targets)}
        self.module_train: set[str] = set()
        for unit in units:
            for stmt in unit.tree.body:
                if isinstance(stmt, ast.Assign) and self._carries(stmt.value) and self._names_train(stmt.value, {}):
                    self.module_train.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
        self._reads: dict[str, tuple | None] = {}
        self._backward: dict[str, bool] = {}

    def _off(self, unit: Unit, node: ast.AST) -> bool:
        """The node sits in a branch the submission's settings switch off (`if h.gptq_ar_selfgen: ... else:`)."""
        if self.ctx is None:
            return False
        try:
            return node_state(self.ctx, unit, node)[0] == "off"
        except Exception:  # noqa: BLE001 - an undecidable branch counts as running
            return False

    # -- what an expression or a function touches -------------------------------------------------
    def _names_train(self, expr: ast.AST, local: dict[str, list[ast.expr]], depth: int = 2,
                     unit: Unit | None = None) -> bool:
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.JoinedStr):
                continue
            if isinstance(node, ast.Name) and (TRAIN_DATA_WORD.search(node.id) or node.id in self.module_train):
                return True
            if isinstance(node, ast.Attribute) and TRAIN_DATA_WORD.search(node.attr):
                return True
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                    and isinstance(node.slice.value, str):
                if TRAIN_DATA_WORD.search(node.slice.value):
                    return True         # cfg["train_pattern"]
                continue                # cfg["batch_size"]: a key of a config names nothing else in it
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "fineweb_train" in node.value:
                return True
            if isinstance(node, ast.Name) and depth > 0 and node.id in local:
                for v in local[node.id]:
                    if id(v) in self.stored_items or (unit is not None and self._off(unit, v)):
                        continue
                    if self._carries(v) and (self._names_train(v, local, depth - 1, unit)
                                             or self._built_reading(v)):
                        return True
            stack.extend(ast.iter_child_nodes(node))
        return False

    def _carries(self, value: ast.expr) -> bool:
        """A local name given this value is the training data itself (a path, a file list, a loader), not
        something computed from it (Hessians, a loss)."""
        if isinstance(value, (ast.Dict, ast.DictComp)):
            return False                # a mapping of settings that names the shards among other things
        if not isinstance(value, ast.Call):
            return True
        name = call_name(value)
        found = self.defs.get(name)
        return name in PASS_THROUGH or name[:1].isupper() or (found is not None
                                                              and isinstance(found[1], ast.ClassDef))

    def _built_reading(self, value: ast.expr) -> bool:
        """`TrainLoader(h)`: an object of the submission's own class (or factory) that reads training data."""
        name = call_name(value) if isinstance(value, ast.Call) else ""
        return name in self.defs and not is_eval_function(name) and self._def_reads(name, DEPTH - 1) is not None

    def _call_reads(self, call: ast.Call, unit: Unit, local: dict[str, list[ast.expr]],
                    depth: int) -> tuple[str, int, str, tuple[str, ...]] | None:
        """(file, line, text, via) of the training-data read this call makes, or None."""
        if _is_log_call(call) or call_name(call) in PATH_CALLS:
            return None
        name = call_name(call)
        if name in self.defs and is_eval_function(name):
            return None
        args = [*call.args, *(k.value for k in call.keywords)]
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        if any(self._names_train(a, local, 2, unit) for a in args) or (
                receiver is not None and self._names_train(receiver, local, 2, unit)):
            return unit.name, call.lineno, unit.line_text(call.lineno), ()
        if depth > 0 and name in self.defs:
            inner = self._def_reads(name, depth - 1)
            if inner is not None:
                file, line, text, via = inner
                return file, line, text, (f"{name}() line {call.lineno}", *via)
        return None

    def _def_reads(self, name: str, depth: int) -> tuple[str, int, str, tuple[str, ...]] | None:
        if name in self._reads:
            return self._reads[name]
        self._reads[name] = None          # recursion guard
        unit, node = self.defs[name]
        local = unit.values(node) if not isinstance(node, ast.ClassDef) else {}
        found = None
        for sub in walk(node):
            if isinstance(sub, ast.Call) and not self._off(unit, sub):
                found = self._call_reads(sub, unit, local, depth)
                if found is not None:
                    break
        self._reads[name] = found
        return found

    def _has_backward(self, node: ast.AST, depth: int) -> bool:
        for sub in walk(node):
            if isinstance(sub, ast.Call):
                name = call_name(sub)
                if name == "backward":
                    return True
                if depth > 0 and name in self.defs and not is_eval_function(name):
                    if name not in self._backward:
                        self._backward[name] = False
                        self._backward[name] = self._has_backward(self.defs[name][1], depth - 1)
                    if self._backward[name]:
                        return True
        return False

    def _trains(self, node: ast.AST, unit: Unit, local: dict[str, list[ast.expr]]) -> bool:
        """A loop (or a call) that runs backward passes on training data."""
        if not self._has_backward(node, DEPTH):
            return False
        if self._names_train(node, local, 2, unit):
            return True
        return any(isinstance(c, ast.Call) and self._call_reads(c, unit, local, DEPTH) is not None
                   for c in walk(node))

    # -- the search ---------------------------------------------------------------------------------
    def run(self) -> list[LateRead]:
        out: list[LateRead] = []
        seen: set[tuple[str, int]] = set()
        for unit in self.units:
            scopes: list[tuple[str, ast.AST]] = [("<module>", unit.tree)]
            scopes += [(fn.name, fn) for fn in unit.functions if not is_eval_function(fn.name)]
            for name, scope in scopes:
                for read in self._late_reads(unit, name, scope):
                    if (read.file, read.line) not in seen:
                        seen.add((read.file, read.line))
                        out.append(read)
        return out

    def _late_reads(self, unit: Unit, name: str, scope: ast.AST) -> list[LateRead]:
        nodes = _own_nodes(scope)
        if not any(isinstance(n, ast.Call) and call_name(n) == "backward" for n in nodes) \
                and not any(isinstance(n, ast.Call) and call_name(n) in self.defs for n in nodes):
            return []
        local = unit.values(scope) if not isinstance(scope, ast.Module) else {}
        end = None
        for node in nodes:
            site = None
            if isinstance(node, (ast.For, ast.While, ast.AsyncFor)):
                site = node
            elif isinstance(node, ast.Call) and call_name(node) in self.defs \
                    and not is_eval_function(call_name(node)):
                site = node
            if site is not None and (end is None or _end(site) > end[1]) \
                    and self._trains(site if not isinstance(site, ast.Call) else self.defs[call_name(site)][1],
                                     unit, local):
                end = (site.lineno, _end(site))
        if end is None:
            return []
        logged = {id(n) for c in nodes if isinstance(c, ast.Call) and _is_log_call(c) for n in walk(c)}
        for node in nodes:
            if isinstance(node, ast.Call) and (node.lineno, node.col_offset) >= end[1] and id(node) not in logged \
                    and not self._off(unit, node):
                found = self._call_reads(node, unit, local, DEPTH)
                if found is not None:
                    file, line, text, via = found
                    return [LateRead(file, line, text, name, unit.name, end[0], via)]
        return []
