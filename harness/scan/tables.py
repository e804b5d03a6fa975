"""Order analysis of eval-time tables (n-gram caches, hint tables) built from validation tokens.

Reads the `update`, `read`, `reset`, `score` and `slot` events of harness.scan.trace. A table (dict, Counter,
tensor, a field of a custom class) is legal to score with only as a single left-to-right pass: the lookup
for a position comes first, the update with that position's token after it, and no lookup runs again over
positions the table has already counted. Each `update` whose table is looked up (`read`) with val-derived
keys and reaches a score is judged like a TTT gradient (harness.scan.ttt), the lookup playing the score:

- **covered**: a lookup of the same table precedes the update in the body of a common loop whose
  iteration both depend on (score, then update). Then:
  - an outer loop around it whose iteration the data does not depend on repeats the pass: `repass`;
  - the update's slice reaches past the looked-up slice (`update(tokens[a:b + 1])`): `ahead`;
  - a lookup after the loop ends, with no reset of the table between: `rescore` (a second pass over the
    completed table; its losses replace or mix with the first pass's).
- **not covered**: the first lookup after the update (later in program order, or in a later iteration
  of a shared loop) either shares the update's iteration — the update comes first and counts the token
  being scored (`update-first`; an update keyed only by earlier positions, `tokens[p - 1]` before the
  lookup of `tokens[p]`, is not one) — or runs after the table was filled over the stream: `prefill`.
- a lookup whose key carries the target token and is hashed into buckets or decides a gate (`if full_c
  > 0`): `target-key` (the #779/#982 family: hashed full-context counts do not renormalise, and a gate on
  the target's count looks at the answer).

Tables a score never depends on (a dedup set, a statistics dict) are not judged.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from harness.astwalk import walk
from harness.context import AuditContext
from harness.nodememo import NodeMemo
from harness.scan.bounds import beyond, past, poly
from harness.scan.model import SHAPE_ATTRS, SHAPE_METHODS
from harness.scan.trace import Event, LoopRef
from harness.scan.ttt import analyse, assigned_in, common_loops, depends_on, exclusive, own_names

TARGET_NAME = re.compile(r"^(?:y|ys|y_batch|yb|y_true|tgt|tgts|target|targets|target_ids|labels?|next_tok(?:en)?s?"
                         r"|next_ids|gold)$")
HASH_CALL = re.compile(r"hash|bucket|fnv|murmur|xxh", re.I)
HASH_OPS = (ast.BitXor, ast.BitAnd, ast.Mod, ast.LShift, ast.RShift)
_ELEMENTWISE: NodeMemo[dict[str, list[ast.expr]]] = NodeMemo("elementwise assignments")


@dataclass(frozen=True)
class TableJudgement:
    """One conclusion about one table update (or one lookup, for `target-key`)."""

    kind: str  # prefill | update-first | repass | ahead | rescore | target-key
    update: Event | None
    read: Event | None
    loop: LoopRef | None = None
    first: Event | None = None   # the lookup that covered the update (rescore, repass)
    note: str = ""
    conds: tuple = ()

    @property
    def table(self) -> str:
        ev = self.update or self.read
        return ev.detail if ev is not None else ""


ILLEGAL_TABLE_KINDS = ("prefill", "update-first", "repass", "ahead", "rescore", "target-key")


def same_table(a: Event, b: Event) -> bool:
    """The two events name the same table in some frame they share."""
    for k, (x, y) in enumerate(zip(a.table, b.table)):
        if a.chain[:k + 1] != b.chain[:k + 1]:
            break
        if x and x == y:
            return True
    return False


def feeds_score(u: Event, scores: list[Event]) -> bool:
    """Some score depends on the table (its object, in a frame both share)."""
    for s in scores:
        for k, path in enumerate(u.table):
            if k >= len(s.reach) or u.chain[:k + 1] != s.chain[:k + 1]:
                break
            if path and path.split(".", 1)[0] in s.reach[k]:
                return True
    return False


def _reset_between(u: Event, r: Event, resets: list[Event]) -> bool:
    """A reset of the table, or of the object holding it (`cache.reset()`), runs between the two."""
    return any(u.seq < x.seq < r.seq and _holds(x, u) and not exclusive(x, u) for x in resets)


def _holds(reset: Event, u: Event) -> bool:
    for k, (x, y) in enumerate(zip(reset.table, u.table)):
        if reset.chain[:k + 1] != u.chain[:k + 1]:
            break
        if x and (x == y or y.startswith(x + ".")):
            return True
    return False


def _covering(u: Event, reads: list[Event]) -> tuple[Event, LoopRef, int] | None:
    best: tuple[Event, LoopRef, int] | None = None
    for r in reads:
        if r.seq >= u.seq:
            continue
        loops = common_loops(r, u)
        for depth in range(len(loops) - 1, -1, -1):
            lc = loops[depth]
            names = assigned_in(lc.node)
            if depends_on(u, lc, names) and depends_on(r, lc, names):
                if best is None or depth > best[2] or (depth == best[2] and r.seq > best[0].seq):
                    best = (r, lc, depth)
                break
    return best


def _offsets(ev: Event, var: str) -> list[int]:
    """c for every index `var + c` of the token arrays the event's key is built from (its function's local
    assignments followed, a tuple assigned from a tuple element by element)."""
    func = ev.func
    if func is None or ev.node is None:
        return []
    values = _values(func.node)
    out: list[int] = []
    seen: set[str] = set()
    frontier: list[ast.AST] = [_key_of(ev.node)]
    for _ in range(4):
        nxt: list[ast.AST] = []
        for expr in frontier:
            for n in walk(expr):
                if isinstance(n, ast.Subscript) and not isinstance(n.slice, ast.Slice):
                    p = poly(n.slice, {})
                    if p is not None and set(p) <= {(var,), ()} and p.get((var,)) == 1:
                        out.append(p.get((), 0))
                elif isinstance(n, ast.Name) and n.id in values and n.id not in seen:
                    seen.add(n.id)
                    nxt.extend(values[n.id])
        frontier = nxt
    return out


def _key_of(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.Subscript):
        return node.slice
    if isinstance(node, ast.Call):
        return node.args[0] if node.args else node
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        keys = [t.slice for t in targets if isinstance(t, ast.Subscript)]
        return keys[0] if keys else node
    if isinstance(node, ast.Expr):
        return node.value
    return node


def _values(fn: ast.AST) -> dict[str, list[ast.expr]]:
    """name -> expressions assigned to it in `fn`; `a, b = x, y` binds a to x and b to y (cached)."""
    return _ELEMENTWISE(fn, _elementwise)


def _elementwise(fn: ast.AST) -> dict[str, list[ast.expr]]:
    out: dict[str, list[ast.expr]] = {}
    for node in walk(fn):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, (ast.Tuple, ast.List)) and isinstance(node.value, (ast.Tuple, ast.List)) \
                        and len(t.elts) == len(node.value.elts):
                    for te, ve in zip(t.elts, node.value.elts):
                        if isinstance(te, ast.Name):
                            out.setdefault(te.id, []).append(ve)
                    continue
                for n in _bound_names(t):
                    out.setdefault(n, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None \
                and isinstance(node.target, ast.Name):
            out.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.NamedExpr):
            out.setdefault(node.target.id, []).append(node.value)
    return out


def _bound_names(t: ast.expr) -> list[str]:
    """Names a target binds (`a`, `a, (b, c)`, `*a`); a subscript or attribute store binds none."""
    if isinstance(t, ast.Name):
        return [t.id]
    if isinstance(t, (ast.Tuple, ast.List)):
        return [n for e in t.elts for n in _bound_names(e)]
    if isinstance(t, ast.Starred):
        return _bound_names(t.value)
    return []


def _earlier_positions(u: Event, r: Event, loop: LoopRef) -> bool:
    """The update is keyed only by tokens before the one the lookup reads (`tokens[p - 1]` counted before
    `tokens[p]` is looked up), in a position loop `for p in ...`."""
    target = getattr(loop.node, "target", None)
    if not isinstance(target, ast.Name):
        return False
    mine, theirs = _offsets(u, target.id), _offsets(r, target.id)
    return bool(mine) and bool(theirs) and max(mine) < max(theirs)


def _past_scored(u: Event, r: Event, lc: LoopRef, scores: list[Event]) -> tuple | None:
    """The update's slice ends after the slices scored with the table in the same iteration (the lookup's and
    the scores' inside the loop), by a known amount."""
    spans = [e.span for e in [r, *scores] if e.span and (e is r or lc.uid in {x.uid for x in e.loops})
             and (e is r or feeds_score(u, [e]))]
    hits = [past(u.span, sp) for sp in spans]
    known = [h for h in hits if h is not None]
    comparable = [sp for sp in spans if {(x.key, x.base) for x in sp} == {(x.key, x.base) for x in (u.span or ())}]
    return known[0] if known and len(known) == len(comparable) else None


def judge_update(u: Event, reads: list[Event], resets: list[Event], scores: list[Event] = ()) -> list[TableJudgement]:
    out: list[TableJudgement] = []
    covered = _covering(u, reads)
    if covered is not None:
        r, lc, depth = covered
        loops = common_loops(r, u)
        for lo in reversed(loops[:depth]):
            own = own_names(lo, lc)
            if not depends_on(u, lo, own) and not depends_on(r, lo, own):
                out.append(TableJudgement("repass", u, r, lo, r, conds=u.conds + r.conds,
                                          note=f"the loop at line {lo.line} repeats the lookup/update pass over "
                                               f"the same tokens"))
                break
        ahead = beyond(u.region, r.region) or _past_scored(u, r, lc, scores)
        if ahead is not None:
            out.append(TableJudgement("ahead", u, r, lc, conds=u.conds + r.conds,
                                      note=f"each iteration of the loop at line {lc.line} scores `{ahead[1].text}` "
                                           f"but counts `{ahead[0].text}`, which reaches past it"))
        after = [s for s in scores if s.seq > u.seq and lc.uid not in {x.uid for x in s.loops} and feeds_score(u, [s])]
        for r2 in reads:
            if r2.seq > u.seq and not exclusive(r2, u) and lc.uid not in {x.uid for x in r2.loops} \
                    and not _reset_between(u, r2, resets) and any(s.seq >= r2.seq for s in after):
                out.append(TableJudgement("rescore", u, r2, lc, r, conds=u.conds + r2.conds,
                                          note=f"the table is first looked up at line {r.line}, inside the loop at "
                                               f"line {lc.line} that completes it"))
                break
        return out
    later = []
    for r in reads:
        shared = common_loops(r, u)
        if r.seq > u.seq:
            later.append((r.seq, r, shared))
        elif shared:
            later.append((u.seq + r.seq + 10**9, r, shared))
    if not later:
        return out
    later.sort(key=lambda t: t[0])
    _, r, shared = later[0]
    if _reset_between(u, r, resets):
        return out
    for lo in reversed(shared):
        names = assigned_in(lo.node)
        if depends_on(u, lo, names) and depends_on(r, lo, names):
            if not _earlier_positions(u, r, lo):
                out.append(TableJudgement("update-first", u, r, lo, conds=u.conds + r.conds))
            return out
    out.append(TableJudgement("prefill", u, r, shared[-1] if shared else None, conds=u.conds + r.conds))
    return out


def _derivation(fn: ast.AST, expr: ast.AST, depth: int = 4) -> list[tuple[str, ast.AST]]:
    """`expr` ('' , expr) and, a few steps back, each expression a local name it reads was assigned from
    (name, value)."""
    values = _values(fn)
    out: list[tuple[str, ast.AST]] = [("", expr)]
    seen: set[str] = set()
    frontier = [expr]
    for _ in range(depth):
        nxt = []
        for e in frontier:
            for n in walk(e):
                if isinstance(n, ast.Name) and n.id in values and n.id not in seen:
                    seen.add(n.id)
                    nxt.extend(values[n.id])
                    out.extend((n.id, v) for v in values[n.id])
        frontier = nxt
    return out


def _position_vars(r: Event) -> set[str]:
    return {lo.node.target.id for lo in r.loops if lo.func is r.func and isinstance(lo.node, ast.For)
            and isinstance(lo.node.target, ast.Name)}


def _has_target(exprs: list[ast.AST], pos: set[str]) -> str:
    for e in exprs:
        for n in walk(e):
            if isinstance(n, ast.Name) and TARGET_NAME.match(n.id):
                return n.id
            if isinstance(n, ast.Subscript) and not isinstance(n.slice, ast.Slice) and pos:
                p = poly(n.slice, {})
                if p is not None and any(p.get((v,)) == 1 and set(p) <= {(v,), ()} and p.get((), 0) >= 0
                                         for v in pos):
                    return ast.unparse(n)
    return ""


def _hashed(derived: list[tuple[str, ast.AST]], target: str) -> bool:
    """A hash step (`^`, `&`, `%`, shifts, a `hash`/`bucket` call) applied to the target on its way into the
    key: `(ctx_h ^ (y * P)) & mask`; a plain index by the target (`uni_counts[y]`) is no hash."""
    carriers = {target}
    for _ in range(4):  # names assigned from something that carries the target
        for name, e in derived:
            if name and name not in carriers and _mentions(e, carriers):
                carriers.add(name)
    for _, e in derived:
        for n in walk(e):
            if isinstance(n, ast.BinOp) and isinstance(n.op, HASH_OPS) and _mentions(n, carriers):
                return True
            if isinstance(n, ast.Call) and _mentions(n, carriers):
                f = n.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if HASH_CALL.search(name):
                    return True
    return False


def _mentions(node: ast.AST, carriers: set[str]) -> bool:
    """`node` reads a carrier's value (its shape, `y.numel()`, `len(y)`, does not count)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Call) and ((isinstance(n.func, ast.Attribute) and n.func.attr in SHAPE_METHODS)
                                        or (isinstance(n.func, ast.Name) and n.func.id == "len")):
            continue
        if isinstance(n, ast.Attribute) and n.attr in SHAPE_ATTRS:
            continue
        if isinstance(n, ast.Name) and n.id in carriers:
            return True
        if isinstance(n, ast.Subscript) and not isinstance(n.slice, ast.Slice) and ast.unparse(n) in carriers:
            return True
        stack.extend(ast.iter_child_nodes(n))
    return False


def _gate(r: Event) -> int | None:
    """Line of a comparison or branch test on the value the lookup returned (in its function)."""
    fn = r.func.node if r.func is not None else None
    if fn is None or r.node is None:
        return None
    names: set[str] = set()
    for node in walk(fn):
        if isinstance(node, ast.Assign) and any(n is r.node for n in walk(node.value)):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    if not names:
        return None
    for node in walk(fn):
        if isinstance(node, ast.Compare) and any(isinstance(n, ast.Name) and n.id in names for n in walk(node)):
            return node.lineno
        if isinstance(node, (ast.If, ast.While, ast.IfExp)) and any(
                isinstance(n, ast.Name) and n.id in names for n in walk(node.test)):
            return node.lineno
    return None


def judge_target_key(r: Event) -> TableJudgement | None:
    fn = r.func.node if r.func is not None else None
    if fn is None or r.node is None:
        return None
    derived = _derivation(fn, _key_of(r.node))
    target = _has_target([e for _, e in derived], _position_vars(r))
    if not target:
        return None
    if _hashed(derived, target):
        how = "hashes it into the bucket the count is read from (hashed counts are not a distribution over the vocabulary)"
    else:
        gate = _gate(r)
        if gate is None:
            return None
        how = f"and line {gate} branches on the count read with it (a gate that looks at the answer)"
    return TableJudgement("target-key", None, r, conds=r.conds, note=f"the key includes `{target}`, the token being scored, {how}")


def analyse_tables(ctx: AuditContext) -> list[TableJudgement]:
    """The table judgements of a submission's traces (harness.scan.ttt.analyse), computed once per audit: one
    per kind and place."""
    return ctx.derived(_analyse_tables)


def _analyse_tables(ctx: AuditContext) -> list[TableJudgement]:
    out: list[TableJudgement] = []
    seen: set[tuple] = set()
    for group in analyse(ctx).groups:
        for t in judge_tables(group):
            ev = t.update or t.read
            key = (t.kind, ev.unit, ev.line, t.read.line if t.read else None)
            if key not in seen:
                seen.add(key)
                out.append(t)
    return out


POSITION_CALLS = {"nonzero", "where", "argwhere", "flatnonzero", "argsort", "sort", "topk", "arange", "range",
                  "enumerate", "searchsorted", "argmax", "argmin", "randperm", "permutation"}


def _temporary(u: Event) -> bool:
    """The table is a local made afresh inside a loop around the update (`probs = {}` at the top of each
    position's iteration, a per-window buffer): a scratch distribution, not a cache that carries tokens from
    one iteration to the next."""
    func = u.func
    head = u.table[-1].split(".", 1)[0] if u.table else ""
    if func is None or not head or head in ("self", "cls") or head in func.params:
        return False
    for lo in u.loops:
        if lo.func is not func:
            continue
        for n in walk(lo.node):
            if isinstance(n, (ast.Assign, ast.AnnAssign)) and n is not u.node and any(
                    isinstance(t, ast.Name) and t.id == head
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target])):
                return True
    return False


def _positional_key(u: Event) -> bool:
    """The key selects positions, not token values: a loop counter (`buf[i]`), a mask (`H[dead, dead]`,
    `x == 0`), or indices from `nonzero` / `argsort` / `arange` (`p_ng[hit_idx]`)."""
    func = u.func
    if func is None or u.node is None:
        return False
    key = _key_of(u.node)
    if isinstance(u.node, ast.Call) and not isinstance(u.node.func, ast.Attribute):
        return False
    parts = key.elts if isinstance(key, ast.Tuple) else [key]
    counters = {lo.node.target.id for lo in u.loops if lo.func is func and isinstance(lo.node, ast.For)
                and isinstance(lo.node.target, ast.Name) and isinstance(lo.node.iter, ast.Call)
                and getattr(lo.node.iter.func, "id", "") == "range"}
    counters |= {lo.node.target.elts[0].id for lo in u.loops if lo.func is func and isinstance(lo.node, ast.For)
                 and isinstance(lo.node.target, ast.Tuple) and lo.node.target.elts
                 and isinstance(lo.node.target.elts[0], ast.Name) and isinstance(lo.node.iter, ast.Call)
                 and getattr(lo.node.iter.func, "id", "") == "enumerate"}
    return all(_positions(p, func.node, counters, 2) for p in parts)


def _positions(expr: ast.AST, fn: ast.AST, counters: set[str], depth: int) -> bool:
    if isinstance(expr, ast.Name):
        if expr.id in counters:
            return True
        values = _values(fn).get(expr.id, [])
        return depth > 0 and bool(values) and all(_positions(v, fn, counters, depth - 1) for v in values)
    if isinstance(expr, ast.Compare) or (isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.Not, ast.Invert))):
        return True
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.BitAnd, ast.BitOr)):
        return any(isinstance(side, ast.Compare) or _positions(side, fn, counters, 0) for side in (expr.left, expr.right)) \
            and not any(isinstance(n, ast.Constant) and isinstance(n.value, int) and n.value > 1
                        for n in (expr.left, expr.right))
    if isinstance(expr, ast.Subscript):               # v_idx[has_data], np.nonzero(mask)[0]
        return _positions(expr.value, fn, counters, depth)
    if isinstance(expr, ast.Call):
        f = expr.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if name in POSITION_CALLS:
            return True
        if isinstance(f, ast.Attribute) and name in ("astype", "long", "to", "int", "view", "reshape", "copy"):
            return _positions(f.value, fn, counters, depth)
    return False


def judge_tables(events: list[Event]) -> list[TableJudgement]:
    """Every table update of one trace that reaches a score, and every lookup keyed by the target."""
    updates = [e for e in events if e.kind == "update"]
    if not updates:
        return []
    reads = [e for e in events if e.kind == "read"]
    resets = [e for e in events if e.kind == "reset"]
    scores = [e for e in events if e.kind in ("score", "slot")]
    out: list[TableJudgement] = []
    judged_reads: set[int] = set()
    for u in updates:
        if _temporary(u) or _positional_key(u):
            continue
        mine = [r for r in reads if same_table(r, u) and not exclusive(r, u)]
        if not mine or not feeds_score(u, scores):
            continue
        out.extend(judge_update(u, mine, resets, scores))
        for r in mine:
            if r.seq in judged_reads:
                continue
            judged_reads.add(r.seq)
            j = judge_target_key(r)
            if j is not None:
                out.append(j)
    return out


__all__ = ["ILLEGAL_TABLE_KINDS", "TableJudgement", "analyse_tables", "judge_tables", "same_table"]
