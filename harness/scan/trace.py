"""Walk a `Program` in execution order and emit the events the TTT order analysis reads.

Every unit's module body is walked statement by statement. Calls to user functions (resolved by
harness.scan.model) are inlined with the taint of their actual arguments, so a helper that scores, a
lambda or closure that trains, and a function passed as an argument are all seen at the place they run.
Loops (`for`/`while`) and `if` branches around each event are recorded with identities that include the
call chain, so two events can be compared: same loop iteration or not, exclusive branches or not.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace

from harness.astwalk import walk
from harness.scan.bounds import Frame, region
from harness.scan.calib import QUANTIZER_CALL, forward_like, grid_search, hook_span
from harness.scan.model import (
    MAX_DEPTH,
    MAX_EVENTS,
    MUTATORS,
    SAVE_CALLS,
    SAVE_EXCLUDE,
    VAL,
    Closure,
    Func,
    Program,
    _flatten_targets,
    _is_nograd_expr,
    _stmt_exprs,
    calls_in,
    expr_names,
    target_base,
)
from harness.scan.roles import VAL_PARAM, role_params
from harness.scan.table_sites import (
    RESETS,
    built_tables,
    call_lookup,
    call_update,
    has_builders,
    is_slot_store,
    keyed,
    store_updates,
    subscript_lookups,
    table_path,
    written_names,
)

MAX_STEPS = 400_000


class TraceBudget(Exception):
    """The program is too large or too deeply nested to trace within the budget."""


@dataclass(frozen=True)
class LoopRef:
    uid: tuple
    unit: str
    line: int
    kind: str
    frame: int
    node: ast.AST = field(compare=False, hash=False, repr=False)
    func: Func = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class CondRef:
    uid: tuple
    unit: str
    line: int
    polarity: bool
    frame: int
    depth: int
    test: ast.expr = field(compare=False, hash=False, repr=False)
    func: Func = field(compare=False, hash=False, repr=False)
    # the call frames around the test, innermost first: (function, its parameters' argument expressions at
    # the call that entered it, literal defaults included; None where no call is known)
    frames: tuple = field(default=(), compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Event:
    """One thing that happens: kind is grad | score | save | restore | dynamic."""

    kind: str
    unit: str
    line: int
    seq: int
    loops: tuple[LoopRef, ...]
    conds: tuple[CondRef, ...]
    frame_deps: tuple[frozenset[str], ...]
    chain: tuple[tuple[str, int, str], ...]
    nograd: bool
    detail: str = ""
    region: tuple | None = field(default=None, compare=False, hash=False, repr=False)
    by_name: str = ""  # the parameter this event was traced from, taken as val by its role, when no flow reaches it
    # names the event acts on directly: a copy's source names, a restore's receiver (see harness.scan.ttt)
    names: frozenset[str] = field(default=frozenset(), compare=False, hash=False, repr=False)
    # for a `calib` event: the routes by which val data reaches it, each the `if` tests (test, branch, line,
    # function node) around the assignments it passes through (see Tracer.val_routes)
    routes: tuple = field(default=(), compare=False, hash=False, repr=False)
    # table events (update | read | reset): the table's path as each frame names it, outermost first ('' where
    # the table is a local of a deeper frame); score events of a program with tables: the names the scored
    # value depends on per frame, a method's `self` mapped to the object it was called on
    table: tuple[str, ...] = field(default=(), compare=False, hash=False, repr=False)
    reach: tuple[frozenset[str], ...] = field(default=(), compare=False, hash=False, repr=False)
    node: ast.AST | None = field(default=None, compare=False, hash=False, repr=False)
    func: Func | None = field(default=None, compare=False, hash=False, repr=False)
    span: tuple | None = field(default=None, compare=False, hash=False, repr=False)  # bounds.region(coarse=True)
    role: str = ""  # why `by_name` is taken as val ("by its name", "because f() passes it `tokens[a:b]` ...")

    def deps_at(self, frame: int) -> frozenset[str]:
        return self.frame_deps[frame] if 0 <= frame < len(self.frame_deps) else frozenset()

    @property
    def func_names(self) -> list[str]:
        return [c[2] for c in self.chain]


@dataclass(frozen=True)
class _Up:
    closure: Closure
    params: dict[str, frozenset[str]]
    callee_locals: frozenset[str]
    args: dict = field(default_factory=dict, compare=False, hash=False)
    binds: dict = field(default_factory=dict, compare=False, hash=False)  # see CondRef.frames
    # a method call `obj.m(...)`: the callee's `self` parameter, the names `obj` depends on and its path
    self_name: str = ""
    receiver: frozenset[str] = frozenset()
    receiver_path: str = ""
    result: str = ""  # the name the call's value is assigned to (`table = build(tokens)`), else ''


@dataclass(frozen=True)
class State:
    func: Func
    closure: Closure
    frame: int
    loops: tuple[LoopRef, ...] = ()
    conds: tuple[CondRef, ...] = ()
    nograd: bool = False
    chain: tuple[tuple[str, int, str], ...] = ()
    ups: tuple[_Up, ...] = ()
    stack: tuple[int, ...] = ()
    fn_params: tuple[tuple[str, Func], ...] = ()
    outer_states: tuple[State, ...] = ()
    # the innermost frame that registers collecting hooks: (chain depth, first line, last line, the names its
    # hooks store into), see harness.scan.calib.hook_span
    hooked: tuple | None = None


class Tracer:
    def __init__(self, program: Program):
        self.program = program
        self.events: list[Event] = []
        self.steps = 0
        self.seq = 0
        self.entered: dict[int, set[str]] = {}  # id(func) -> parameters entered with val data (key: called at all)
        self.by_name = ""
        self.calib_seen: set[tuple] = set()
        self.role = ""  # why `by_name` holds validation tokens (harness.scan.roles)
        self.active: set[int] = set()  # id of every function on the call stack of a val-data event
        # last components of the paths written through a key anywhere: lookups of other names are no table reads
        self.table_names: frozenset[str] = frozenset().union(*(written_names(m.node) for m in program.modules))
        self.builders = any(has_builders(m.node) for m in program.modules)
        self.stmt_now: ast.stmt | None = None

    # -- entry ----------------------------------------------------------------------------------
    def run(self) -> list[Event]:
        for mod in self.program.modules:
            st = State(mod, Closure(self.program, mod, {}), 0, chain=((mod.unit, 0, "<module>"),),
                       stack=(id(mod),))
            self.block(mod.body(), st)
        return self.events

    def run_by_name(self) -> list[tuple[int, int]]:
        """Trace each function or method with a parameter that holds validation tokens by its role
        (harness.scan.roles: its name, the token input of an evaluation function, or a slice of val tokens
        passed to it) that `run()` never entered with val data (library-style code, a caller outside the
        folder, a loader the flow does not know) and that may train or write a table, those parameters
        seeded as val. Functions given their role by a caller come after the others, so a caller traced
        first covers its helpers. Returns the (first, last) event index of each such run."""
        runs = []
        roles = role_params(self.program)
        order = sorted(roles.values(), key=lambda fr: (any(w.startswith("because") for w in fr[1].values()),
                                                       fr[0].unit, fr[0].line))
        for f, why in order:
            # a function the flow called is taken by a parameter's name only when nothing called it: its callers'
            # data is known (`val_data.sp` of a val-data object is no token); other roles still apply
            names = [p for p in why if not (id(f) in self.entered and why[p] == "by its name")]
            if not names or self.entered.get(id(f)) or id(f) in self.active or not self._may_train(f, 0, set()):
                continue
            mod = next(m for m in self.program.modules if m.unit == f.unit)
            start = len(self.events)
            self.by_name = names[0]
            self.role = why[names[0]]
            st = State(f, Closure(self.program, f, {p: {VAL} for p in names}), 1,
                       chain=((f.unit, 0, "<module>"), (f.unit, 0, f.name)),
                       ups=(_Up(Closure(self.program, mod, {}), {}, frozenset(f.local_names)),),
                       stack=(id(mod), id(f)), nograd=f.nograd_decorated)
            self.entered.setdefault(id(f), set()).update(names)
            try:
                self.block(f.body(), st)
            finally:
                self.by_name = self.role = ""
            if len(self.events) > start:
                runs.append((start, len(self.events)))
        return runs

    def _may_train(self, f: Func, depth: int, seen: set[int]) -> bool:
        """Whether `f` or a user function it calls (by name, a few levels deep) has a `.backward()` or
        `autograd.grad` call, or writes a table through a key (`counts[ctx] += 1`, `T.scatter_add_(...)`):
        only those are worth a trace by parameter name."""
        if f.may_train is not None:
            return f.may_train
        if id(f) in seen or depth > 4:
            return False
        seen.add(id(f))
        found = any(isinstance(n, (ast.AugAssign, ast.Assign)) and _token_keyed_store(n) for n in walk(f.node))
        for n in walk(f.node) if not found else ():
            if not isinstance(n, ast.Call):
                continue
            if isinstance(n.func, ast.Attribute) and n.func.attr in ("backward", "grad"):
                found = True
                break
            if call_update(n) is not None:  # a table written through a key (n-gram cache)
                found = True
                break
            callee = self.program.resolve(n, f)
            if callee is not None and callee is not f and not isinstance(callee.node, (ast.ClassDef, ast.Module)) \
                    and self._may_train(callee, depth + 1, seen):
                found = True
                break
        if found or depth == 0:
            f.may_train = found
        return found

    # -- emission -------------------------------------------------------------------------------
    def emit(self, kind: str, node: ast.AST, st: State, value: ast.AST | None, detail: str = "",
             names: frozenset[str] = frozenset(), routes: tuple = (), table: str = "") -> None:
        if len(self.events) >= MAX_EVENTS:
            raise TraceBudget(f"more than {MAX_EVENTS} events")
        inner = st.closure.data_deps(value) if value is not None else frozenset()
        self.seq += 1
        frames = _frames(st) if kind in ("grad", "score", "slot", "update", "read") else []
        if frames:
            self.active.update(st.stack)    # val data reached this code through the flow
        where = region(value, frames) if kind in ("grad", "score") else None
        reach, span = (), None
        if self.table_names and frames:
            span = region(value, frames, coarse=True)
            if kind in ("score", "slot"):
                reach = _frame_deps(st, inner, receivers=True)
        self.events.append(Event(kind, st.func.unit, getattr(node, "lineno", 0), self.seq, st.loops, st.conds,
                                 _frame_deps(st, inner), st.chain, st.nograd, detail, where, self.by_name,
                                 names, routes, _table_paths(st, table) if table else (), reach, node, st.func,
                                 span, self.role))

    # -- tables (n-gram caches) ------------------------------------------------------------------
    def table_reads(self, nodes: list[ast.expr], st: State, skip: set[str] = frozenset()) -> None:
        """A lookup `T[key]` / `T.get(key)` of a table written somewhere, with a key built from val data."""
        if not self.table_names:
            return
        cl = st.closure
        for expr in nodes:
            for n in subscript_lookups(expr):
                path = table_path(n.value)
                if path and path not in skip and path.rsplit(".", 1)[-1] in self.table_names \
                        and cl.tainted_expr(n.slice):
                    self.emit("read", n, st, n.slice, path, table=path)
            for c in calls_in(expr):
                hit = call_lookup(c)
                if hit and hit[0] not in skip and hit[0].rsplit(".", 1)[-1] in self.table_names \
                        and cl.tainted_expr(hit[1]):
                    self.emit("read", c, st, hit[1], hit[0], table=hit[0])

    def table_writes(self, s: ast.stmt, st: State) -> list[tuple[str, ast.expr]]:
        """`T[key] (+)= v` with a val-derived key, and `T = bincount(tokens)` of val data."""
        cl = st.closure
        found = (*store_updates(s), *(built_tables(s) if self.builders else ()))
        return [(path, key) for path, key in found if cl.tainted_expr(key)]

    # -- statements -----------------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt], st: State) -> None:
        for s in stmts:
            self.stmt(s, st)
            if isinstance(s, ast.If) and not s.orelse and _leaves(s.body):
                # `if c: ...; return f(...)` then `return g(...)`: the rest of the block is the `else`
                uid = st.chain + ((st.func.unit, s.lineno, "if"),)
                c = CondRef(uid, st.func.unit, s.lineno, False, st.frame, len(st.loops), s.test, st.func,
                            _cond_frames(st))
                st = replace(st, conds=st.conds + (c,))

    def stmt(self, s: ast.stmt, st: State) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TraceBudget(f"more than {MAX_STEPS} statements walked")
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
            loop = LoopRef(st.chain + ((st.func.unit, s.lineno, "loop"),), st.func.unit, s.lineno,
                           "while" if isinstance(s, ast.While) else "for", st.frame, s, st.func)
            if isinstance(s, ast.For):
                fitted = grid_search(s, st.closure.tainted_expr)
                if fitted is not None:
                    self.emit("calib", s, st, fitted, f"grid:{s.target.id}:{len(s.iter.elts)}",  # type: ignore
                              routes=self.val_routes(fitted, st))
            self.table_reads([s.test] if isinstance(s, ast.While) else [s.iter], st)
            self.exprs([s.test] if isinstance(s, ast.While) else [s.iter], st)
            inner = replace(st, loops=st.loops + (loop,))
            if isinstance(s, ast.While):
                self.exprs([s.test], inner)
            self.block(s.body, inner)
            self.block(s.orelse, st)
            return
        if isinstance(s, ast.If):
            self.table_reads([s.test], st)
            self.exprs([s.test], st)
            uid = st.chain + ((st.func.unit, s.lineno, "if"),)
            for pol, body in ((True, s.body), (False, s.orelse)):
                if body:
                    c = CondRef(uid, st.func.unit, s.lineno, pol, st.frame, len(st.loops), s.test, st.func,
                                _cond_frames(st))
                    self.block(body, replace(st, conds=st.conds + (c,)))
            return
        if isinstance(s, (ast.With, ast.AsyncWith)):
            nograd = st.nograd
            for item in s.items:
                self.exprs([item.context_expr], st)
                if _is_nograd_expr(item.context_expr):
                    nograd = True
                elif "enable_grad" in _dotted(item.context_expr):
                    nograd = False
            self.block(s.body, replace(st, nograd=nograd))
            return
        if isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            self.block(s.body, st)
            for h in s.handlers:
                self.block(h.body, st)
            self.block(s.orelse, st)
            self.block(s.finalbody, st)
            return
        if isinstance(s, ast.Match):
            self.exprs([s.subject], st)
            uid = st.chain + ((st.func.unit, s.lineno, "match"),)
            for i, case in enumerate(s.cases):
                c = CondRef(uid + (i,), st.func.unit, s.lineno, True, st.frame, len(st.loops), s.subject, st.func)
                self.block(case.body, replace(st, conds=st.conds + (c,)))
            return
        if isinstance(s, ast.Delete):
            names = [target_base(t) for t in s.targets]
            self.emit("discard", s, st, None, ",".join(n for n in names if n))
            return
        exprs = _stmt_exprs(s)
        writes = self.table_writes(s, st)
        self.stmt_now = s
        self.table_reads(exprs, st, {path for path, _ in writes})
        self.exprs(exprs, st)
        for path, key in writes:
            self.emit("update", s, st, key, path, table=path)
        self.score_check(s, st)
        self.copy_check(s, st)

    def copy_check(self, s: ast.stmt, st: State) -> None:
        """`sd = model.state_dict()`, `{k: v.clone() for k, v in model.state_dict().items()}`,
        `m2 = copy.deepcopy(model)`, `w = p.detach().clone()`: a copy of a module's weights that outlives the
        module (harness.scan.ttt follows it past a `del` or a restore of the original)."""
        if not isinstance(s, (ast.Assign, ast.AnnAssign)) or s.value is None:
            return
        source = copied_names(s.value)
        if not source:
            return
        targets = s.targets if isinstance(s, ast.Assign) else [s.target]
        bases = {target_base(t) for tt in targets for t in _flatten_targets(tt)} - {None}
        if bases - source:
            self.emit("copy", s, st, s.value, ",".join(sorted(bases - source)), frozenset(source))

    def score_check(self, s: ast.stmt, st: State) -> None:
        """An accumulation of val-derived values into a zero-initialised accumulator (or a passed-in one)
        that is a score: under no_grad/inference_mode, or flowing into the function's return value."""
        slot = is_slot_store(s) if self.table_names else None
        if slot is not None and not st.closure.tainted_expr(slot[1]) and st.closure.tainted_expr(slot[2]):
            # `nll[i] = v`: per-position scores stored, not summed (read by the table analysis only)
            self.emit("slot", s, st, slot[2], slot[0])
        value = target = None
        if isinstance(s, ast.AugAssign) and isinstance(s.op, (ast.Add, ast.Sub)):
            value, target = s.value, s.target
        elif isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.value, ast.BinOp) \
                and isinstance(s.value.op, ast.Add):
            base = target_base(s.targets[0])
            left = s.value.left
            if base and isinstance(s.targets[0], ast.Name) and isinstance(left, ast.Name) and left.id == base \
                    and base in _zero_inits(st.func):
                value, target = s.value.right, s.targets[0]
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) \
                and isinstance(s.value.func, ast.Attribute) and s.value.func.attr == "add_" and s.value.args:
            value, target = s.value.args[0], s.value.func.value
        if value is None or target is None or not st.closure.tainted_expr(value):
            return
        base = target_base(target)
        if base is None:
            return
        zero = base in _zero_inits(st.func)
        param = base in st.func.params
        returned = base in st.closure.of_names(st.func.return_names)
        if (st.nograd and (zero or param)) or (returned and zero):
            self.emit("score", s, st, value, base)
        elif _detached(value) and _whole_pass(st, base, _zero_made(st.func, self.program)) \
                and _reported(st.func, base, s):
            # `sums[0] += nll.detach().sum()` into a zero accumulator made once, outside every loop around the
            # accumulation, and reported afterwards: a score read off the forward pass of the update that
            # follows (per-document LoRA TTT). A per-epoch training-loss meter is reset inside the loop.
            self.emit("score", s, st, value, base)

    # -- expressions and calls ------------------------------------------------------------------
    def exprs(self, nodes: list[ast.expr], st: State) -> None:
        for n in nodes:
            for c in calls_in(n):
                self.call(c, st)

    def call(self, node: ast.Call, st: State) -> None:
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        cl = st.closure
        if name == "backward" and isinstance(f, ast.Attribute):
            if cl.tainted_expr(f.value):
                self.emit("grad", node, st, f.value, "backward")
            return
        if name == "grad" and isinstance(f, ast.Attribute) and "autograd" in _dotted(f.value) and node.args:
            if cl.tainted_expr(node.args[0]):
                self.emit("grad", node, st, node.args[0], "autograd.grad")
            return
        if name in ("exec", "eval", "compile") and isinstance(f, ast.Name) and node.args:
            arg = node.args[0]
            if not isinstance(arg, ast.Constant):
                literal = any(isinstance(c, ast.Constant) and isinstance(c.value, (str, bytes))
                              and len(c.value) > 64 for c in walk(arg))
                self.emit("dynamic", node, st, None, "packed" if literal else name)
            return
        if name == "load_state_dict":
            receiver = target_base(f.value) if isinstance(f, ast.Attribute) else None
            self.emit("restore", node, st, _arguments(node), _snapshot_line(node, st.func),
                      frozenset({receiver}) if receiver else frozenset())
            source = copied_names(node.args[0]) if node.args else set()
            if receiver and source and receiver not in source:
                # `other.load_state_dict(model.state_dict())`: `other` now holds `model`'s weights
                self.emit("copy", node, st, node.args[0], receiver, frozenset(source))
        elif name and name not in SAVE_EXCLUDE and SAVE_CALLS.search(name):
            self.emit("save", node, st, _arguments(node, owner=True), name)
        if isinstance(f, ast.Attribute) and name in MUTATORS and st.nograd and name in ("append", "extend"):
            return
        target = self._resolve(node, st)
        if target is not None:
            self.inline(target, node, st, method=isinstance(f, ast.Attribute) and target.cls is not None)
            return
        self.calib_check(node, name, st)
        if self.table_names and isinstance(f, ast.Attribute):
            hit = call_update(node)
            if hit is not None and cl.tainted_expr(hit[1]):
                self.emit("update", node, st, hit[1], hit[0], table=hit[0])
            elif name in RESETS and table_path(f.value):
                self.emit("reset", node, st, None, name, table=table_path(f.value))
        # a library call that may run a user function it is given (step(closure), checkpoint(fn, x), ...)
        for i, arg in enumerate(node.args):
            fn = self._resolve_value(arg, st)
            if fn is not None:
                rest = ast.Call(func=arg, args=list(node.args[i + 1:]), keywords=[], lineno=node.lineno,
                                col_offset=0)
                self.inline(fn, rest, st, method=False)

    def calib_check(self, node: ast.Call, name: str, st: State) -> None:
        """Val data given to a library quantizer, or run through a model while hooks collect statistics
        (harness.scan.calib): a `calib` event, detail `quantizer:NAME` or `hook:CHAIN_DEPTH:LINE`."""
        # a parameter or a variable bound to a value (`hessian_model(x)`), not an imported quantizer
        local = isinstance(node.func, ast.Name) and (node.func.id in st.func.params or bool(
            st.func.deps.get(node.func.id)))
        quantizer = bool(name) and not local and bool(QUANTIZER_CALL.search(name))
        hooked = st.hooked
        if not quantizer and hooked is None:
            return
        args = [a.value if isinstance(a, ast.Starred) else a for a in node.args] + [k.value for k in node.keywords]
        fed = next((a for a in args if st.closure.tainted_expr(a)), None)
        if fed is None:
            return
        if quantizer:
            self.emit("calib", node, st, fed, f"quantizer:{name}", routes=self.val_routes(fed, st))
        elif hooked is not None and forward_like(node, st.closure.tainted_expr):
            depth, start, end, stores = hooked
            line = st.chain[depth + 1][1] if depth + 1 < len(st.chain) else node.lineno
            key = (st.chain[:depth + 1], line)
            if start < line < end and key not in self.calib_seen:  # one event per forward line of the hooked function
                self.calib_seen.add(key)
                self.emit("calib", node, st, fed, f"hook:{depth}:{start}", stores | self._receivers(st, depth),
                          routes=self.val_routes(fed, st))

    def _receivers(self, st: State, depth: int) -> frozenset[str]:
        """Where the caller of the hooked function (the frame at chain depth `depth`) keeps what that function
        computes, marked `^name`: the names its call's statement assigns and the object of a method call
        (`quantizer.collect(...)`), else the function's own name (a call nested in another expression)."""
        if depth < 1:
            return frozenset()
        frames = {len(chain) - 1: func for func, _, _, chain in _frame_walk(st)}
        caller, callee = frames.get(depth - 1), st.chain[depth]
        out: set[str] = set()
        if caller is not None:
            for n in walk(caller.node) if not isinstance(caller.node, ast.Module) else caller.node.body:
                if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)) and \
                        n.lineno <= callee[1] <= (n.end_lineno or n.lineno):
                    targets = n.targets if isinstance(n, ast.Assign) else [] if isinstance(n, ast.Expr) else [n.target]
                    direct = isinstance(n.value, ast.Call) and _call_name(n.value) == callee[2]
                    if direct:      # `hessians = collect(...)`, not `sd = quantize(sd, collect(...))`
                        out |= {"^" + b for t in targets for x in _flatten_targets(t) if (b := target_base(x))}
                    for c in walk(n.value) if n.value is not None else ():
                        if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.lineno == callee[1] \
                                and c.func.attr == callee[2] and (b := target_base(c.func.value)):
                            out.add("^" + b)
        return frozenset(out or {"^" + callee[2]})

    def val_routes(self, expr: ast.expr, st: State, limit: int = 16) -> tuple:
        """How val data reaches `expr`: followed back through the assignments of its names that carry val
        (and a parameter to the argument its caller passed), each route the `if` tests around those
        assignments. A route with no test is unconditional: val reaches `expr` whatever the branches."""
        frames = _frame_walk(st)
        routes: list[tuple] = []

        def visit(names: set[str], level: int, depth: int, acc: tuple) -> None:
            if len(routes) >= limit:
                return
            func, closure, up, _ = frames[level]
            plain = {n for n in names if n[0] not in ".(<"}
            if depth > 10 or VAL in closure.of_names(names - plain):
                routes.append(acc)          # a source right here: the val shards, a val attribute, a loader
                if depth > 10:
                    return
            for n in sorted(plain):
                if VAL not in closure.of_names({n}):
                    continue
                defs = func.defs.get(n) if not isinstance(func.node, ast.Module) else None
                if defs:
                    for line, used in defs:
                        if VAL in closure.of_names(used, line):
                            visit(set(used) - {n}, level, depth + 1, acc + _tests_to(func.node, line))
                elif n in func.params and up is not None and n in up.args and level + 1 < len(frames):
                    visit(expr_names(up.args[n]), level + 1, depth + 1, acc)
                else:
                    routes.append(acc)      # a seed, a global or a free variable: taken as it is
        visit(expr_names(expr), 0, 0, ())
        return tuple(dict.fromkeys(routes)) or ((),)

    def _resolve_value(self, arg: ast.expr, st: State) -> Func | None:
        if isinstance(arg, ast.Lambda):
            return self.program.resolve_expr(arg, st.func)
        if isinstance(arg, ast.Name):
            for k, v in st.fn_params:
                if k == arg.id:
                    return v
            fn = self.program.resolve_expr(arg, st.func)
            if fn is not None and not isinstance(fn.node, ast.ClassDef):
                return fn
        return None

    def _resolve(self, node: ast.Call, st: State) -> Func | None:
        f = node.func
        if isinstance(f, ast.Name):
            for k, v in st.fn_params:
                if k == f.id:
                    return v
        if isinstance(f, ast.Attribute) and not (isinstance(f.value, ast.Name) and f.value.id in ("self", "cls")):
            args = [*node.args, *(k.value for k in node.keywords)]
            if not any(st.closure.tainted_expr(a) for a in args):
                return None
        fn = self.program.resolve(node, st.func)
        if fn is None or isinstance(fn.node, ast.ClassDef):
            return None
        return fn

    def inline(self, target: Func, node: ast.Call, st: State, method: bool) -> None:
        if id(target) in st.stack or st.frame >= MAX_DEPTH:
            return
        params = [p for p in target.params]
        if method and params and params[0] in ("self", "cls"):
            params = params[1:]
        positional = [p for p in params if not p.startswith("*")]
        vararg = next((p[1:] for p in params if p.startswith("*") and not p.startswith("**")), None)
        cl = st.closure
        seeds: dict[str, set[str]] = {}
        mapping: dict[str, frozenset[str]] = {}
        arg_exprs: dict[str, ast.expr] = {}
        fn_params: list[tuple[str, Func]] = []

        def bind(pname: str, arg: ast.expr) -> None:
            deps = cl.data_deps(arg)
            mapping[pname] = mapping.get(pname, frozenset()) | deps
            arg_exprs[pname] = arg
            if cl.tainted_expr(arg):
                seeds.setdefault(pname, set()).add("<VAL>")
            fn = self._resolve_value(arg, st)
            if fn is not None:
                fn_params.append((pname, fn))

        starred = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                for p in positional[i:]:
                    bind(p, arg.value)
                break
            if i < len(positional):
                bind(positional[i], arg)
            elif vararg:
                bind(vararg, arg)
        for kw in node.keywords:
            if kw.arg and kw.arg in positional:
                bind(kw.arg, kw.value)
            elif kw.arg is None:
                for p in positional:
                    bind(p, kw.value)
        binds = {} if starred else {**literal_defaults(target.node), **arg_exprs}
        outer = None
        outer_states = st.outer_states + (st,)
        for s in reversed(outer_states):
            if target.parent is s.func:
                outer = s.closure
                break
        closure = Closure(self.program, target, seeds, outer)
        self.entered.setdefault(id(target), set()).update(seeds)
        chain = st.chain + ((target.unit, node.lineno, target.name),)
        registers = self._hooks(target)
        self_name = receiver_path = ""
        receiver: frozenset[str] = frozenset()
        if method and target.params and target.params[0] in ("self", "cls") and isinstance(node.func, ast.Attribute):
            self_name, receiver_path = target.params[0], table_path(node.func.value)
            receiver = cl.data_deps(node.func.value)
        now = self.stmt_now
        result = table_path(now.targets[0]) if isinstance(now, ast.Assign) and now.value is node \
            and len(now.targets) == 1 else ""
        up = _Up(cl, mapping, frozenset(target.local_names), arg_exprs, binds, self_name, receiver, receiver_path,
                 result)
        new = State(target, closure, st.frame + 1, st.loops, st.conds,
                    st.nograd or target.nograd_decorated, chain,
                    st.ups + (up,), st.stack + (id(target),), tuple(fn_params), outer_states,
                    (len(chain) - 1, *registers) if registers is not None else st.hooked)
        self.block(target.body(), new)

    def _function_named(self, name: str) -> ast.AST | None:
        """The one function definition of that name in the program (a hook installed by name)."""
        found = [f.node for f in self.program.by_name.get(name, [])
                 if isinstance(f.node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        return found[0] if len(found) == 1 else None

    def _hooks(self, func: Func) -> tuple[int, int, frozenset[str]] | None:
        """(first line, last line, containers) of the span in which `func` has collecting hooks registered: its
        own registrations, and calls of helpers that register collecting hooks themselves (`self._register_hooks()`:
        the helper's containers are then the object it was called on)."""
        span = hook_span(func.node, self._function_named)
        if span is None:
            return None
        start, end, stores, helpers = span
        stores = set(stores)
        for call in helpers:
            helper = self.program.resolve(call, func)
            inner = hook_span(helper.node, self._function_named) if helper is not None and helper is not func else None
            if inner is not None and inner[2]:
                start = min(start, call.lineno)
                owner = target_base(call.func.value) if isinstance(call.func, ast.Attribute) else None
                stores |= {owner} if owner else set(inner[2])
        if start >= end:
            return None
        return start, end, frozenset(stores)


COPY_CALLS = {"state_dict", "deepcopy", "clone", "copy"}


def copied_names(value: ast.expr) -> set[str]:
    """The names whose weights `value` copies: the receiver of `.state_dict()`, `.clone()` or `.copy()`, and the
    argument of `copy.deepcopy(...)`, anywhere inside it (a dict comprehension over `model.state_dict().items()`
    included); empty when it copies nothing."""
    out: set[str] = set()
    for n in calls_in(value):
        f = n.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name not in COPY_CALLS:
            continue
        if name == "deepcopy" and n.args:
            base = target_base(n.args[0])
        elif isinstance(f, ast.Attribute) and name != "deepcopy":
            base = target_base(f.value)
        else:
            base = None
        if base:
            out.add(base)
    return out


def _tests_to(func_node: ast.AST, line: int) -> tuple:
    """The `if`/`while` tests around the first statement of a function's own body at `line`, outermost first:
    ((test, branch taken, if line, function node), ...)."""
    def search(body: list[ast.stmt], acc: tuple) -> tuple | None:
        for stmt in body:
            if getattr(stmt, "lineno", None) == line:
                return acc
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(stmt, (ast.If, ast.While)):
                for branch, block in ((True, stmt.body), (False, stmt.orelse)):
                    found = search(block, acc + ((stmt.test, branch, stmt.lineno, func_node),))
                    if found is not None:
                        return found
                continue
            for fname in ("body", "orelse", "finalbody", "handlers"):
                block = getattr(stmt, fname, None)
                if isinstance(block, list) and block:
                    found = search([b for b in block if isinstance(b, (ast.stmt, ast.excepthandler))], acc)
                    if found is not None:
                        return found
        return None
    if isinstance(func_node, (ast.Lambda, ast.Module)):
        return ()
    return search(list(getattr(func_node, "body", [])), ()) or ()


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _arguments(node: ast.Call, owner: bool = False) -> ast.Tuple:
    """A call's arguments as one expression, for the names a save or restore reads; with `owner`, the object of
    a method call too (`quantizer.quantize(sd)` reads what `quantizer` collected)."""
    first = [node.func.value] if owner and isinstance(node.func, ast.Attribute) else []
    return ast.Tuple([*first, *node.args, *(k.value for k in node.keywords)], ast.Load())


def literal_defaults(fn: ast.AST) -> dict[str, ast.expr]:
    """Parameters of a def or lambda whose default is a literal constant (`flag: bool = False`)."""
    args = getattr(fn, "args", None)
    if not isinstance(args, ast.arguments):
        return {}
    positional = [*args.posonlyargs, *args.args]
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    return {a.arg: d for a, d in pairs if isinstance(d, ast.Constant)}


def _frame_deps(st: State, inner: frozenset[str], receivers: bool = False) -> tuple[frozenset[str], ...]:
    """The names a value depends on in each call frame, outermost first: a callee's parameters mapped to
    what its caller passed, free names to the caller's own; with `receivers`, a method's `self` to what
    the object it was called on depends on."""
    deps = [inner]
    cur = inner
    for up in reversed(st.ups):
        mapped: set[str] = set()
        for name in cur:
            if name in up.params:
                mapped |= up.params[name]
            elif receivers and name == up.self_name and up.self_name:
                mapped |= up.receiver
            elif name not in up.callee_locals:
                mapped |= up.closure.data_deps(ast.Name(name, ast.Load()))
        cur = frozenset(mapped)
        deps.append(cur)
    return tuple(reversed(deps))


def _table_paths(st: State, path: str) -> tuple[str, ...]:
    """A table's path as each frame names it, outermost first: `self.counts` in a method is
    `cache.counts` where the method was called as `cache.update(...)`; a parameter is what the caller
    passed; a local the callee returns is the name its value is assigned to; a local that stays in its
    frame is '' outside it."""
    funcs = [up.closure.func for up in st.ups] + [st.func]
    out = [path]
    cur = path
    for i in range(len(st.ups) - 1, -1, -1):
        up, callee = st.ups[i], funcs[i + 1]
        if not cur:
            out.append("")
            continue
        head, dot, rest = cur.partition(".")
        if up.self_name and head == up.self_name:
            new = up.receiver_path
        elif head in up.args:
            new = table_path(up.args[head]) if isinstance(up.args[head], (ast.Name, ast.Attribute)) else ""
        elif head in up.callee_locals:
            new = up.result if head in callee.return_names else ""
        else:
            new = head
        cur = (new + dot + rest) if new else ""
        out.append(cur)
    return tuple(reversed(out))


def _token_keyed_store(s: ast.stmt) -> bool:
    """`T[key] += 1` / `T[key] = T.get(key, 0) + 1`: a store whose key is not a plain position slice (a batch
    fill `x[i, :n] = toks` is not a table write)."""
    targets = s.targets if isinstance(s, ast.Assign) else [s.target]
    for t in targets:
        if isinstance(t, ast.Subscript) and keyed(t.slice) and (isinstance(s, ast.AugAssign) or any(
                    isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "get" for n in walk(s.value))):
            return True
    return False


def _cond_frames(st: State) -> tuple:
    """CondRef.frames for a test in the current frame."""
    return tuple((func, up.binds if up else None) for func, _, up, _ in _frame_walk(st))


def _snapshot_line(node: ast.Call, func: Func) -> str:
    """`load_state_dict` of what: the last line at which a local name its argument is built from is (re)bound
    in this function, as "load_state_dict@LINE" ("load_state_dict" when it is built from no local)."""
    arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "state_dict"), None)
    lines = [line for n in expr_names(arg) if n[0] not in ".(<" for line, _ in func.defs.get(n, ())]
    return f"load_state_dict@{max(lines)}" if lines else "load_state_dict"


def _leaves(body: list[ast.stmt]) -> bool:
    """True when a block always leaves its function: it ends in `return` or `raise`, or in an `if` whose
    branches both do."""
    last = body[-1] if body else None
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    return isinstance(last, ast.If) and bool(last.orelse) and _leaves(last.body) and _leaves(last.orelse)


def _frame_walk(st: State) -> list[tuple[Func, Closure, _Up | None, tuple]]:
    """The call frames around the current statement, innermost first: function, taint closure, the call
    that entered it (None for the outermost frame) and the frame's chain."""
    ups = st.ups
    out = [(st.func, st.closure, ups[-1] if ups else None, st.chain)]
    for i in range(len(ups) - 1, -1, -1):
        out.append((ups[i].closure.func, ups[i].closure, ups[i - 1] if i > 0 else None, st.chain[:i + 1]))
    return out


def _frames(st: State) -> list[Frame]:
    """The call frames around an event, innermost first, for harness.scan.bounds.region."""
    return [Frame(func, closure, up.args if up else {}, chain) for func, closure, up, chain in _frame_walk(st)]


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, (ast.Attribute, ast.Call)):
        if isinstance(node, ast.Call):
            node = node.func
            continue
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


_ZERO_CALLS = {"zeros", "zeros_like", "tensor", "scalar_tensor", "float", "int", "new_zeros", "zero_"}


def _zero_inits(func: Func) -> set[str]:
    """Names a function initialises to zero: `x = 0`, `x = 0.0`, `x = torch.zeros(...)`, `x = torch.tensor(0.)`."""
    if func.zero_inits is not None:
        return func.zero_inits
    out: set[str] = set()
    for node in walk(func.node) if not isinstance(func.node, ast.Module) else func.node.body:
        if isinstance(node, ast.Assign):
            v = node.value
            ok = isinstance(v, ast.Constant) and v.value in (0, 0.0) and not isinstance(v.value, bool)
            if isinstance(v, ast.Call):
                name = v.func.attr if isinstance(v.func, ast.Attribute) else getattr(v.func, "id", "")
                ok = name in _ZERO_CALLS and all(
                    not isinstance(a, ast.Constant) or a.value in (0, 0.0) for a in v.args[:1])
            if ok:
                for t in node.targets:
                    out |= {target_base(x) for x in _flatten_targets(t)} - {None}
    aliases = [(t.id, n.value.id) for n in walk(func.node) if isinstance(n, ast.Assign)
               and isinstance(n.value, ast.Name) for t in n.targets if isinstance(t, ast.Name)]
    changed = True
    while changed:  # `acc = total` where total is a zero accumulator: acc is the same accumulator
        changed = False
        for new, old in aliases:
            if old in out and new not in out:
                out.add(new)
                changed = True
    func.zero_inits = out
    return out


def _detached(value: ast.expr) -> bool:
    """The accumulated value is cut from the graph (`.detach()`, `.item()`) on its way in."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("detach", "item")
               for n in walk(value))


def _zero_made(func: Func, program: Program) -> dict[str, list[int]]:
    """Zero accumulators and the lines that (re)set them, including those made by a user function returning
    zeros (`sums = new_sums()` with `return [torch.zeros(()), 0]`)."""
    zero = _zero_inits(func)
    out: dict[str, list[int]] = {}
    for node in walk(func.node) if not isinstance(func.node, ast.Module) else func.node.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name not in zero and isinstance(node.value, ast.Call) and not node.value.args:
            maker = program.resolve(node.value, func)
            if maker is None or isinstance(maker.node, (ast.ClassDef, ast.Module)) or not _returns_zeros(maker):
                continue
        elif name not in zero:
            continue
        out.setdefault(name, []).append(node.lineno)
    return out


def _whole_pass(st: State, base: str, inits: dict[str, list[int]]) -> bool:
    """`base` is a zero accumulator set only outside every loop of this function around the accumulation."""
    lines = inits.get(base)
    if not lines:
        return False
    spans = [(lo.node.lineno, getattr(lo.node, "end_lineno", lo.node.lineno)) for lo in st.loops
             if lo.func is st.func]
    return not any(a <= ln <= b for ln in lines for a, b in spans)


def _returns_zeros(func: Func) -> bool:
    returns = [n.value for n in walk(func.node) if isinstance(n, ast.Return) and n.value is not None]
    if len(returns) != 1:
        return False
    value = returns[0]
    items = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    for item in items:
        if isinstance(item, ast.Constant):
            if item.value not in (0, 0.0) or isinstance(item.value, bool):
                return False
        elif not (isinstance(item, ast.Call) and _dotted(item.func).split(".")[-1] in _ZERO_CALLS):
            return False
    return True


def _reported(func: Func, base: str, acc: ast.stmt) -> bool:
    """The accumulator reaches a call argument (`report(label, sums)`) or the return value of its function."""
    for node in walk(func.node):
        if isinstance(node, ast.Return) and node.value is not None and \
                any(isinstance(n, ast.Name) and n.id == base for n in walk(node.value)):
            return True
        if isinstance(node, ast.Call) and node.lineno > acc.lineno and any(
                isinstance(a, ast.Name) and a.id == base for a in node.args):
            return True
    return False


def trace(program: Program) -> list[Event]:
    return Tracer(program).run()


def trace_by_name(program: Program) -> tuple[list[Event], list[list[Event]]]:
    """The flow trace, then one trace per function whose val-named parameter no val source reaches."""
    tracer = Tracer(program)
    events = list(tracer.run())
    runs = tracer.run_by_name()
    return events, [tracer.events[a:b] for a, b in runs]


__all__ = ["CondRef", "Event", "LoopRef", "TraceBudget", "VAL_PARAM", "trace", "trace_by_name", "_flatten_targets"]
