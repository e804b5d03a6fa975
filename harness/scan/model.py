"""Program model for the TTT-order scanner: functions, call graph, val-data flow, and an event trace.

Everything is `ast`, nothing runs. The model has three layers:

1. `Program`: every function, method, nested function and lambda of every unit, with simple aliases
   (`f = g`, `f = functools.partial(g, ...)`, `f = torch.compile(g)`) and name-based call resolution.
2. Data flow *by flow, not by name*: per function, a flow-insensitive def-use map (`deps`): assignments,
   tuple unpacking, loop targets, `with ... as`, subscript/attribute stores (`x[i] = v` makes `x` depend
   on `v`) and mutating calls (`x.append(v)`, `x.copy_(v)`). Validation data is the pseudo-name `<VAL>`:
   it enters through string literals naming the val split (`fineweb_val_*`), attributes that such values
   were stored in (`args.val_files`, `self.val_tokens`), functions that return such data, and the
   parameters / free variables bound to it at call sites. Shape queries (`.numel()`, `len()`, `.shape`)
   do not carry data.
3. `trace(program)`: walks every unit's module body in program order, inlining calls to user functions
   (context-sensitive: the callee is re-walked with the taint of its actual arguments). It emits `Event`s
   — `grad` (val-derived value reaching `.backward()` / `autograd.grad`), `score` (val-derived value
   accumulated under no_grad/inference_mode or into the function's return value), `save` (serialize /
   quantize / compress), `restore` (`load_state_dict`) and `dynamic` (exec/eval of a computed string) —
   each with the loops, `if` branches and call chain around it and, per call frame, the names its data
   depends on. The order analysis in harness.scan.ttt only reads these events.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.astwalk import walk
from harness.nodememo import NodeMemo
from harness.scan.assigns import scope_walk, single_assigns

VAL = "<VAL>"
VAL_STRING = re.compile(r"fineweb_val|(^|[/_])val_\*|(^|[/_])val_\d{3,}\.bin|_val_\{")
SHAPE_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad"}
SHAPE_METHODS = {"numel", "size", "dim", "nelement", "element_size", "get_device", "is_contiguous"}
SHAPE_FUNCS = {"len", "isinstance", "hasattr", "id", "type", "print", "log0", "range"}
MUTATORS = {"append", "extend", "insert", "copy_", "add_", "update", "index_copy_", "index_add_",
            "scatter_", "scatter_add_", "put_", "fill_", "push", "setdefault", "__setitem__"}
NOGRAD_CTX = {"no_grad", "inference_mode"}
SAVE_CALLS = re.compile(r"(^|_)(save|serialize|quantiz|quantis|gptq|compress|pack_|export)|^dump", re.I)
SAVE_EXCLUDE = {"save_for_backward"}
MAX_DEPTH = 14
INF = 1 << 30
MAX_EVENTS = 20000

FuncNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


# ---------------------------------------------------------------------------------------------------
# functions and the program
# ---------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Func:
    """One function, method, nested function, lambda, or a unit's module body (`node` is the Module)."""

    name: str
    qualname: str
    unit: str
    node: ast.AST
    parent: Func | None
    cls: str | None = None
    params: list[str] = field(default_factory=list)
    nested: dict[str, Func] = field(default_factory=dict)
    aliases: dict[str, ast.expr] = field(default_factory=dict)
    nograd_decorated: bool = False
    _deps: dict[str, set[str]] | None = None
    _returns: set[str] | None = None
    _assigned: set[str] | None = None
    _defs: dict | None = None
    _spans: list | None = None
    may_train: bool | None = None          # harness.scan.trace: has a backward / autograd.grad call, or calls one
    zero_inits: set[str] | None = None     # harness.scan.trace: names it initialises to zero

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 1)

    def body(self) -> list[ast.stmt]:
        if isinstance(self.node, ast.Lambda):
            return [ast.Return(value=self.node.body, lineno=self.node.lineno, col_offset=0)]
        return list(getattr(self.node, "body", []))

    @property
    def dicts(self) -> dict[str, dict[str, ast.expr]]:
        """`literal_dicts` of this scope (cached)."""
        cached = self.__dict__.get("_literal_dicts")
        if cached is None:
            cached = self.__dict__["_literal_dicts"] = literal_dicts(self.node)
        return cached

    def _build(self) -> None:
        self._defs = {}
        self._deps, self._returns = build_deps(self.body(), self._defs, self.dicts)
        self._spans = [(n.lineno, getattr(n, "end_lineno", n.lineno)) for n in _walk_same_scope(self.body())
                       if isinstance(n, (ast.For, ast.AsyncFor, ast.While))]

    @property
    def deps(self) -> dict[str, set[str]]:
        if self._deps is None:
            self._build()
        return self._deps

    @property
    def defs(self) -> dict[str, list[tuple[int, set[str]]]]:
        if self._deps is None:
            self._build()
        return self._defs

    @property
    def loop_spans(self) -> list[tuple[int, int]]:
        if self._deps is None:
            self._build()
        return self._spans

    @property
    def return_names(self) -> set[str]:
        if self._returns is None:
            self._build()
        return self._returns

    @property
    def local_names(self) -> set[str]:
        if self._assigned is None:
            self._assigned = set(self.deps) | set(self.params)
        return self._assigned


def _params(node: FuncNode) -> list[str]:
    a = node.args
    out = [p.arg for p in [*a.posonlyargs, *a.args]]
    if a.vararg:
        out.append("*" + a.vararg.arg)
    out += [p.arg for p in a.kwonlyargs]
    if a.kwarg:
        out.append("**" + a.kwarg.arg)
    return out


def _is_nograd_expr(node: ast.AST) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    return name in NOGRAD_CTX


class Program:
    """All functions of all units, and name-based call resolution."""

    def __init__(self, units: list):
        self.units = units
        self.modules: list[Func] = []
        self.by_name: dict[str, list[Func]] = {}
        self.methods: dict[str, list[Func]] = {}
        self.class_methods: dict[tuple[str, str], Func] = {}
        self.val_attrs: set[str] = set()
        self.val_globals: dict[str, set[str]] = {}
        self.val_returning: set[int] = set()
        self.classes: list[Func] = []
        self._lambdas: dict[int, Func] = {}
        self._stores: dict[int, list[tuple[str, ast.expr]]] = {}
        for unit in units:
            mod = Func("<module>", f"{unit.name}:<module>", unit.name, unit.tree, None)
            self.modules.append(mod)
            self._collect(mod, unit.tree.body, None)
        self._global_flow()

    # -- collection -----------------------------------------------------------------------------
    def _collect(self, owner: Func, body: list[ast.stmt], cls: str | None) -> None:
        for node in _walk_same_scope(body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                f = Func(node.name, f"{owner.qualname}.{node.name}", owner.unit, node, owner, cls, _params(node))
                f.nograd_decorated = any(_is_nograd_expr(d) for d in node.decorator_list)
                owner.nested.setdefault(node.name, f)
                if cls is not None:
                    self.methods.setdefault(node.name, []).append(f)
                    self.class_methods[(cls, node.name)] = f
                else:
                    self.by_name.setdefault(node.name, []).append(f)
                self._collect(f, node.body, None)
            elif isinstance(node, ast.ClassDef):
                holder = Func(node.name, f"{owner.qualname}.{node.name}", owner.unit, node, owner, node.name)
                holder.cls = node.name
                self._collect(holder, node.body, node.name)
                for k, v in holder.nested.items():
                    v.cls = node.name
                    self.class_methods[(node.name, k)] = v
                self.by_name.setdefault(f"<class>{node.name}", []).append(holder)
                self.classes.append(holder)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        if isinstance(node.value, ast.Lambda):
                            lam = Func(t.id, f"{owner.qualname}.{t.id}", owner.unit, node.value, owner, cls,
                                       _params(node.value))
                            owner.nested[t.id] = lam
                            if owner.parent is None:
                                self.by_name.setdefault(t.id, []).append(lam)
                        else:
                            owner.aliases[t.id] = node.value

    # -- global data flow: which attributes / globals / functions carry val data -----------------
    def _global_flow(self) -> None:
        funcs = list(self.all_funcs())
        for _ in range(4):
            changed = False
            for f in funcs:
                closure = Closure(self, f, {})
                stores = self._stores.get(id(f))
                if stores is None:
                    stores = self._stores[id(f)] = list(_attribute_stores(f))
                for target, value in stores:
                    if target not in self.val_attrs and closure.tainted_expr(value):
                        self.val_attrs.add(target)
                        changed = True
                if f.parent is None:  # module: its globals
                    for name in f.deps:
                        if VAL in closure.of_names({name}) and name not in self.val_globals:
                            self.val_globals[name] = set()
                            changed = True
                if id(f) not in self.val_returning and not isinstance(f.node, ast.Module):
                    if VAL in closure.of_names(f.return_names):
                        self.val_returning.add(id(f))
                        changed = True
            if not changed:
                break

    def all_funcs(self) -> Iterator[Func]:
        stack = list(self.modules) + [m for c in self.classes for m in c.nested.values()]
        while stack:
            f = stack.pop()
            yield f
            stack.extend(f.nested.values())

    # -- resolution -----------------------------------------------------------------------------
    def resolve(self, call: ast.Call, scope: Func, depth: int = 0) -> Func | None:
        """The user function a call runs, when it can be told from names; else None."""
        return self.resolve_expr(call.func, scope, depth)

    def resolve_expr(self, fn: ast.expr, scope: Func, depth: int = 0) -> Func | None:
        if depth > 6:
            return None
        if isinstance(fn, ast.Lambda):
            cached = self._lambdas.get(id(fn))
            if cached is None or cached.node is not fn:
                cached = Func("<lambda>", f"{scope.qualname}.<lambda@{fn.lineno}>", scope.unit, fn, scope,
                              None, _params(fn))
                self._lambdas[id(fn)] = cached
            return cached
        if isinstance(fn, ast.Name):
            s: Func | None = scope
            while s is not None:
                if fn.id in s.nested:
                    return s.nested[fn.id]
                if fn.id in s.aliases:
                    target = _unwrap_alias(s.aliases[fn.id])
                    if target is not None and not (isinstance(target, ast.Name) and target.id == fn.id):
                        return self.resolve_expr(target, s, depth + 1)
                    return None
                s = s.parent
            cands = self.by_name.get(fn.id, [])
            return cands[0] if len(cands) >= 1 else None
        if isinstance(fn, ast.Attribute):
            if isinstance(fn.value, ast.Name) and fn.value.id in ("self", "cls"):
                owner = scope
                while owner is not None and owner.cls is None:
                    owner = owner.parent
                if owner is not None and (owner.cls, fn.attr) in self.class_methods:
                    return self.class_methods[(owner.cls, fn.attr)]
            cands = self.methods.get(fn.attr, [])
            if len(cands) == 1 and fn.attr not in ("forward", "step", "__call__", "zero_grad", "reset"):
                return cands[0]
        return None


def _unwrap_alias(value: ast.expr) -> ast.expr | None:
    """`g` for `g`, `functools.partial(g, ...)`, `torch.compile(g, ...)`, `torch.no_grad()(g)`."""
    if isinstance(value, (ast.Name, ast.Lambda)):
        return value
    if isinstance(value, ast.Attribute) and not isinstance(value.value, ast.Call):
        return value
    if isinstance(value, ast.Call) and value.args:
        name = value.func.attr if isinstance(value.func, ast.Attribute) else getattr(value.func, "id", "")
        if name in ("partial", "compile", "wraps", "script", "trace", "checkpoint"):
            return _unwrap_alias(value.args[0])
    return None


def _walk_same_scope(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Statements of a body, recursing into compound statements but not into defs/classes/lambdas."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        children = []
        for fname in ("body", "orelse", "finalbody", "handlers", "cases"):
            children.extend(getattr(node, fname, []) or [])
        stack.extend(reversed([c for c in children if isinstance(c, (ast.stmt, ast.excepthandler,
                                                                      ast.match_case))]))


def _attribute_stores(f: Func) -> Iterator[tuple[str, ast.expr]]:
    """(attr, value) for `x.attr = value` in a function and `attr = value` in a class body."""
    for node in _walk_same_scope(f.body() if not isinstance(f.node, ast.ClassDef) else f.node.body):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in _flatten_targets(t):
                    if isinstance(sub, ast.Attribute):
                        yield sub.attr, node.value
                    elif isinstance(f.node, ast.ClassDef) and isinstance(sub, ast.Name):
                        yield sub.id, node.value
    if isinstance(f.node, ast.Module):
        for node in f.node.body:
            if isinstance(node, ast.ClassDef):
                holder = Func(node.name, node.name, f.unit, node, f)
                yield from _attribute_stores(holder)


def _flatten_targets(t: ast.expr) -> Iterator[ast.expr]:
    if isinstance(t, (ast.Tuple, ast.List)):
        for e in t.elts:
            yield from _flatten_targets(e)
    elif isinstance(t, ast.Starred):
        yield from _flatten_targets(t.value)
    else:
        yield t


def target_base(t: ast.expr) -> str | None:
    """The variable a store writes into: `x` for `x`, `x[i]`, `x.a`, `x[i].a[j]`."""
    while isinstance(t, (ast.Subscript, ast.Attribute, ast.Starred)):
        t = t.value
    return t.id if isinstance(t, ast.Name) else None


# ---------------------------------------------------------------------------------------------------
# def-use
# ---------------------------------------------------------------------------------------------------
def expr_names(node: ast.AST | None) -> set[str]:
    """Names an expression's value depends on (shape queries and nested lambdas excluded).
    Val-naming string literals contribute `<VAL>`; attributes contribute `.attr` markers. Cached on the node
    (callers get a copy)."""
    if node is None:
        return set()
    return set(_EXPR_NAMES(node, _frozen_expr_names))


_EXPR_NAMES: NodeMemo[frozenset[str]] = NodeMemo("expression names")
_CALLS_IN: NodeMemo[list[ast.Call]] = NodeMemo("calls in")


def _frozen_expr_names(node: ast.AST) -> frozenset[str]:
    return frozenset(_expr_names(node))


def keyed_names(node: ast.AST | None, dicts: dict[str, dict[str, ast.expr]]) -> set[str]:
    """`expr_names`, where a read of a constant key of a literal dict (`conf["seq_len"]`,
    `conf.get("seq_len", d)`; `dicts` from `literal_dicts`) depends on that key's value only, not on the whole
    dict: a config dict that also holds the val file pattern does not make every setting val data."""
    if node is None:
        return set()
    if not dicts:
        return expr_names(node)
    keyed = {id(n): v for n in walk(node) if (v := _keyed_value(n, dicts)) is not None}
    return _expr_names(node, keyed) if keyed else expr_names(node)


def _keyed_value(n: ast.AST, dicts: dict[str, dict[str, ast.expr]]) -> ast.expr | None:
    if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in dicts \
            and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str):
        return dicts[n.value.id].get(n.slice.value)
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get" \
            and isinstance(n.func.value, ast.Name) and n.func.value.id in dicts and not n.keywords \
            and 1 <= len(n.args) <= 2 and isinstance(n.args[0], ast.Constant) \
            and isinstance(n.args[0].value, str):
        value = dicts[n.func.value.id].get(n.args[0].value)
        if value is None:
            return n.args[1] if len(n.args) == 2 else ast.Constant(None)
        return value if len(n.args) == 1 else ast.Tuple([value, n.args[1]], ast.Load())
    return None


def literal_dicts(scope: ast.AST) -> dict[str, dict[str, ast.expr]]:
    """Names the scope of `scope` binds once (`assigns.single_assigns`: no item store, `del`, augmented
    assignment or other rebinding), to a dict display whose keys are all string constants (no `**`), and never
    changes through a mutating method call: name -> key -> value."""
    mutated = {target_base(n.func.value) for n in scope_walk(scope)
               if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in MUTATORS}
    return {name: dict(zip((k.value for k in value.keys), value.values))  # type: ignore[union-attr]
            for name, value in single_assigns(scope).items()
            if isinstance(value, ast.Dict) and name not in mutated
            and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys)}


def _expr_names(node: ast.AST, keyed: dict[int, ast.expr] | None = None) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if keyed and id(n) in keyed:
            out |= expr_names(keyed[id(n)])
            continue
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Constant):
            if isinstance(n.value, str) and VAL_STRING.search(n.value):
                out.add(VAL)
        elif isinstance(n, ast.Attribute):
            if n.attr in SHAPE_ATTRS:
                continue
            out.add("." + n.attr)
            stack.append(n.value)
        elif isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Attribute) and f.attr in SHAPE_METHODS:
                continue
            if isinstance(f, ast.Name) and f.id in SHAPE_FUNCS:
                if f.id == "range":
                    stack.extend(n.args)
                continue
            if isinstance(f, ast.Name):
                out.add("()" + f.id)
            else:
                stack.append(f)
            stack.extend(n.args)
            stack.extend(k.value for k in n.keywords)
        elif isinstance(n, ast.Lambda):
            continue
        elif isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner: set[str] = set()
            bound: set[str] = set()
            for g in n.generators:
                inner |= expr_names(g.iter)
                for c in g.ifs:
                    inner |= expr_names(c)
                bound |= {t.id for t in walk(g.target) if isinstance(t, ast.Name)}
            elts = [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]
            for e in elts:
                inner |= expr_names(e)
            out |= inner - bound
        else:
            stack.extend(ast.iter_child_nodes(n))
    return out


def build_deps(body: list[ast.stmt], defs: dict[str, list[tuple[int, set[str]]]] | None = None,
               dicts: dict[str, dict[str, ast.expr]] | None = None) -> tuple[dict[str, set[str]], set[str]]:
    """Def-use map of a function body (flow-insensitive union per name), and the names its return values
    depend on. With `defs`, each definition is also recorded with its line, for `Closure` to tell which
    definitions reach a use. With `dicts` (the scope's `literal_dicts`), a constant-key read of one of those
    dicts depends on that key's value only."""
    deps: dict[str, set[str]] = {}
    returns: set[str] = set()
    line = 0

    def expr_names(node: ast.AST | None) -> set[str]:  # noqa: F811 - the keyed reads of this scope
        return keyed_names(node, dicts or {})

    def add(name: str | None, names: set[str]) -> None:
        if name:
            deps.setdefault(name, set()).update(names)
            if defs is not None:
                defs.setdefault(name, []).append((line, names))

    def store(target: ast.expr, names: set[str]) -> None:
        for t in _flatten_targets(target):
            base = target_base(t)
            extra = expr_names(t.slice) if isinstance(t, ast.Subscript) else set()
            add(base, names | extra)

    for node in _walk_same_scope(body):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Assign):
            names = expr_names(node.value)
            for t in node.targets:
                store(t, names)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            if node.value is not None:
                store(node.target, expr_names(node.value))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            store(node.target, expr_names(node.iter))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    store(item.optional_vars, expr_names(item.context_expr))
        elif isinstance(node, ast.Return) and node.value is not None:
            returns |= expr_names(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            add(node.name, set())
            continue
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                add((a.asname or a.name).split(".")[0], set())
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            continue
        if isinstance(node, (ast.If, ast.While)):
            for n in walk(node.test):
                if isinstance(n, ast.NamedExpr):
                    add(n.target.id, expr_names(n.value))
        if isinstance(node, ast.stmt):
            for sub in _stmt_exprs(node):
                for n in calls_in(sub):
                    if isinstance(n.func, ast.Attribute) and n.func.attr in MUTATORS:
                        names = set()
                        for a in [*n.args, *(k.value for k in n.keywords)]:
                            names |= expr_names(a)
                        add(target_base(n.func.value), names)
    return deps, returns


def calls_in(node: ast.AST) -> list[ast.Call]:
    """Calls inside an expression in evaluation order (arguments before the call), lambdas skipped;
    cached on the node."""
    cached = _CALLS_IN.get(node)
    if cached is not None:
        return cached
    out: list[ast.Call] = []

    def visit(n: ast.AST) -> None:
        if isinstance(n, ast.Lambda):
            return
        for child in ast.iter_child_nodes(n):
            if isinstance(child, (ast.expr, ast.keyword, ast.comprehension, ast.arguments)):
                visit(child)
        if isinstance(n, ast.Call):
            out.append(n)

    visit(node)
    return _CALLS_IN.put(node, out)


def _stmt_exprs(node: ast.stmt) -> list[ast.expr]:
    """The expressions evaluated by a statement itself (not by its nested body)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    out = []
    for fname, value in ast.iter_fields(node):
        if fname in ("body", "orelse", "finalbody", "handlers", "cases"):
            continue
        if isinstance(value, ast.expr):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, ast.expr))
            for v in value:
                if isinstance(v, ast.withitem):
                    out.append(v.context_expr)
    return out


class Closure:
    """Transitive deps of names inside one function, under a seed (params/free vars bound to val)."""

    def __init__(self, program: Program, func: Func, seeds: dict[str, set[str]],
                 outer: Closure | None = None):
        self.program, self.func, self.seeds, self.outer = program, func, seeds, outer
        self._memo: dict[tuple, frozenset[str]] = {}

    def of_names(self, names: set[str], line: int = INF) -> set[str]:
        out: set[str] = set()
        for n in names:
            out |= self._one(n, line)
        return out

    def _reaches(self, def_line: int, use_line: int) -> bool:
        """A definition reaches a use when it comes first in the source or shares a loop with it."""
        if def_line < use_line or use_line >= INF:
            return True
        return any(a <= def_line <= b and a <= use_line <= b for a, b in self.func.loop_spans)

    def _one(self, name: str, line: int = INF) -> frozenset[str]:
        local = self.func.defs.get(name) if name[0] not in ".(<" else None
        if local is not None:  # memo by the set of definitions that reach, not by line
            key: tuple = (name, tuple(i for i, (d, _) in enumerate(local) if self._reaches(d, line)))
        else:
            key = (name, None)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = frozenset({name})  # cycle guard
        result = {name}
        if name == VAL:
            pass
        elif name.startswith("."):
            if name[1:] in self.program.val_attrs:
                result.add(VAL)
        elif name.startswith("()"):
            target = self.program.resolve_expr(ast.Name(name[2:], ast.Load()), self.func)
            if target is not None and id(target) in self.program.val_returning:
                result.add(VAL)
            if re.search(r"load_val|validation_tokens|val_tokens|_val_data", name[2:]):
                result.add(VAL)
        else:
            if name in self.seeds:
                result |= self.seeds[name]
            if local is not None:
                for i in key[1]:
                    def_line, names = local[i]
                    result |= self.of_names(names, def_line)
            elif name not in self.func.local_names:
                if self.outer is not None and name in self.outer.func.local_names | set(self.outer.seeds):
                    if VAL in self.outer._one(name):
                        result.add(VAL)
                elif name in self.program.val_globals:
                    result.add(VAL)
        frozen = frozenset(result)
        self._memo[key] = frozen
        return frozen

    def tainted_expr(self, node: ast.AST | None) -> bool:
        return VAL in self.of_names(keyed_names(node, self.func.dicts), getattr(node, "lineno", INF))

    def data_deps(self, node: ast.AST | None) -> frozenset[str]:
        """Plain variable names (no markers) the value of `node` depends on, transitively."""
        names = self.of_names(keyed_names(node, self.func.dicts), getattr(node, "lineno", INF))
        return frozenset(n[2:] if n.startswith("()") else n for n in names if n[0] not in ".<")
