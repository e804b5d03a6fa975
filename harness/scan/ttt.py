"""Order analysis: is every validation token scored before it reaches a gradient?

Reads the events of harness.scan.trace and classifies every `grad` event (val-derived value reaching
`.backward()` / `autograd.grad`):

- **covered** (score-first): some `score` event precedes it in the body of a common loop `Lc`, and the
  data of both depend on `Lc`'s iteration (the loop variable or names rebound in the loop), so each
  iteration scores its chunk and then trains on it. A score that runs only every N-th iteration
  (`if step % n == 0`, periodic validation in a training loop) covers nothing. The proof names the
  shape, the score line, the update line and the last-chunk guard (an `if` inside `Lc` on a
  per-iteration name), when there is one.
  - a common loop *outside* `Lc` whose iteration the data does not depend on is a re-pass over the same
    tokens (an epoch loop around the chunk loop): TTT-MULTI-EPOCH;
  - a score over val after the adapted loop (outside `Lc`, not in an exclusive branch): TTT-NO-RESCORE.
- **not covered**: the next score after it (later in program order, or in a later iteration of a
  common loop) scores tokens that were already trained on: TTT-SCORE-FIRST; when a `save`
  (serialize/quantize/compress) comes between the training and that score: PREQUANT-TTT-ON-VAL; when a
  `load_state_dict` restores the weights, or a `del` throws away the module the step trained, before
  that score: TTT-WARMUP-ON-VAL (warning). A restore of weights built after the step in the same function
  (a checkpoint average, the dequantised trained model) is not one.
- a grad with no score anywhere, exec/eval of computed strings, or a trace over budget: undecided
  (the rules report these with confidence `low`, i.e. needs-review).

Within a covered loop, harness.scan.bounds compares the slices scored and trained when their bounds are
simple: training past the scored slice (`tokens[a:b + chunk]` after scoring `tokens[a:b]`) is
TTT-SCORE-FIRST, not a proof. No proof is kept for a grad or score that another judgement finds illegal.
Functions with a val-named parameter (`val_tokens`, ...) that the flow trace never calls are traced once
more with that parameter taken as val (`Event.by_name`); the rules report those with confidence `low`.

`analyse(ctx)` is computed once per audit; the five rules only format its `Judgement`s. When a log's source
dump differs from the shipped script, the dump is analysed too (alone) and its judgements name it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from harness.astwalk import walk
from harness.codeload import CodeUnit
from harness.context import AuditContext
from harness.logdump import differing_dumps
from harness.nodememo import NodeMemo
from harness.scan.assigns import flag_values
from harness.scan.bounds import beyond
from harness.scan.model import Program, _flatten_targets, build_deps, expr_names, target_base
from harness.scan.trace import CondRef, Event, LoopRef, TraceBudget, trace_by_name
from harness.scan.vocabulary import call_name

_NORMAL_TESTS: NodeMemo[tuple[str, bool]] = NodeMemo("normal test")
_ASSIGNED_IN: NodeMemo[frozenset[str]] = NodeMemo("assigned in")


@dataclass(frozen=True)
class Judgement:
    """One conclusion about one gradient site (or one undecidable thing)."""

    kind: str  # proof | score-after-train | prequant | warmup | multi-epoch | rescore | undecided
    grad: Event | None
    score: Event | None = None
    loop: LoopRef | None = None
    outer: LoopRef | None = None
    guard: CondRef | None = None
    save: Event | None = None
    shape: str = ""
    note: str = ""
    conds: tuple[CondRef, ...] = ()


@dataclass
class Analysis:
    events: list[Event]
    judgements: list[Judgement] = field(default_factory=list)
    packed: dict[str, str] = field(default_factory=dict)  # unpacked unit name -> packed file
    error: str | None = None
    texts: dict[str, str] = field(default_factory=dict)
    groups: list = field(default_factory=list)  # the flow trace's events, then each by-role trace's

    def of_kind(self, *kinds: str) -> list[Judgement]:
        return [j for j in self.judgements if j.kind in kinds]


# ---------------------------------------------------------------------------------------------------
def _norm(c: CondRef) -> tuple[int, str, bool]:
    hit = _NORMAL_TESTS(c.test, _normal_test)
    return id(c.func), hit[0], c.polarity != hit[1]


def _normal_test(test: ast.AST) -> tuple[str, bool]:
    """A branch test without its leading `not`s (dumped), and whether they flip it."""
    flip = False
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, flip = test.operand, not flip
    return ast.dump(test), flip


def exclusive(a: Event, b: Event) -> bool:
    """True when a and b lie in different branches of the same `if`, or under `if X:` and `if not X:` of
    the same function (they never both run)."""
    pa = {c.uid: c.polarity for c in a.conds}
    for c in b.conds:
        if c.uid in pa and pa[c.uid] != c.polarity:
            return True
    na = {_norm(c)[:2]: _norm(c)[2] for c in a.conds}
    for c in b.conds:
        key = _norm(c)
        if key[:2] in na and na[key[:2]] != key[2]:
            return True
    return False


def common_loops(a: Event, b: Event) -> list[LoopRef]:
    out = []
    for x, y in zip(a.loops, b.loops):
        if x.uid != y.uid:
            break
        out.append(x)
    return out


def assigned_in(node: ast.AST) -> frozenset[str]:
    """Names (re)bound anywhere inside a loop: its target and every store in its body (cached on the node)."""
    return _ASSIGNED_IN(node, _assigned_in)


def _assigned_in(node: ast.AST) -> frozenset[str]:
    names: set[str] = set()
    if isinstance(node, (ast.For, ast.AsyncFor)):
        names |= {n.id for n in walk(node.target) if isinstance(n, ast.Name)}
    deps, _ = build_deps(list(getattr(node, "body", [])))
    names |= set(deps)
    return frozenset(names)


PURE_CALLS = {"iter", "range", "len", "enumerate", "zip", "list", "tuple", "dict", "set", "sorted", "reversed",
              "min", "max", "int", "float", "bool", "str", "zeros", "zeros_like", "ones", "empty", "tensor",
              "arange", "full", "contiguous", "to", "clone", "cuda", "long", "reshape", "view"}


def own_names(outer: LoopRef, inner: LoopRef | None) -> frozenset[str]:
    """Names whose value changes from one iteration of `outer` to the next (ignoring the nested `inner`
    loop's own body): its loop variable, counters (`i += 1`), values of opaque calls (`next(it)`, a batch
    claimed from a queue) and whatever is computed from those. A fresh `iter(range(n))` does not vary."""
    skip = inner.node if inner is not None and inner.frame == outer.frame else None
    assigns: list[tuple[set[str], ast.expr | None, bool]] = []
    varying: set[str] = set()
    if isinstance(outer.node, (ast.For, ast.AsyncFor)):
        varying |= {n.id for n in walk(outer.node.target) if isinstance(n, ast.Name)}
    stack = list(getattr(outer.node, "body", []))
    while stack:
        node = stack.pop()
        if node is skip or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {target_base(t) for tt in targets for t in _flatten_targets(tt)} - {None}
            opaque = isinstance(node, ast.AugAssign) or any(
                isinstance(c, ast.Call) and call_name(c) not in PURE_CALLS for c in walk(node.value))
            assigns.append((names, node.value, opaque))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            assigns.append(({n.id for n in walk(node.target) if isinstance(n, ast.Name)}, node.iter, False))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func,
                                                                                             ast.Attribute):
            base = target_base(node.value.func.value)
            if base and node.value.func.attr in ("append", "extend", "update", "add", "insert"):
                assigns.append(({base}, node.value, True))
        stack.extend(ast.iter_child_nodes(node))
    for names, _, opaque in assigns:
        if opaque:
            varying |= names
    changed = True
    while changed:
        changed = False
        for names, value, _ in assigns:
            if not names <= varying and {n.lstrip("()") for n in expr_names(value)} & varying:
                varying |= names
                changed = True
    return frozenset(varying)


def depends_on(ev: Event, loop: LoopRef, names: frozenset[str]) -> bool:
    return bool(ev.deps_at(loop.frame) & names)


# ---------------------------------------------------------------------------------------------------
def _shape(grad: Event, loop: LoopRef, outer_dep: LoopRef | None) -> str:
    chain = " ".join(grad.func_names).lower()
    if "global" in grad.func_names[-1].lower():
        return "phased global TTT over already-scored documents"
    if "lora" in chain or "phase" in chain or outer_dep is not None:
        return "per-document TTT: each chunk scored before its update (LoRA-style)"
    return "score-first chunk loop: score chunk, then train on that chunk"


def _guard(grad: Event, loop: LoopRef) -> CondRef | None:
    names = assigned_in(loop.node)
    depth = grad.loops.index(loop) + 1
    for c in grad.conds:
        if c.frame == loop.frame and c.depth >= depth:
            test_names = {n.id for n in walk(c.test) if isinstance(n, ast.Name)}
            if test_names & names:
                return c
    for c in grad.conds:  # a guard inside a helper called from the loop
        if c.frame > loop.frame and c.depth >= depth:
            return c
    return None


def _drops_trained(d: Event, g: Event) -> bool:
    """A `del` that throws away something the training step used (a throw-away LoRA / model copy)."""
    frame = len(d.frame_deps) - 1
    if d.chain != g.chain[:len(d.chain)]:
        return False
    return bool(set(d.detail.split(",")) & g.deps_at(frame))


def _snapshot_before(restore: Event, g: Event) -> bool:
    """The weights a `load_state_dict` restores were taken before the training step (`initial_state`
    saved before a warm-up), not built after it (a checkpoint average, the dequantised trained weights):
    judged by the last line binding a local they come from, when the restore's function is on the training
    step's call stack (compared with the line of the step, or of the call leading to it, in that function)."""
    _, _, line = restore.detail.partition("@")
    depth = len(restore.chain)
    if not line or g.chain[:depth] != restore.chain:
        return True
    return int(line) < (g.line if len(g.chain) == depth else g.chain[depth][1])


def _periodic(s: Event, g: Event, loop: LoopRef, names: frozenset[str]) -> bool:
    """The score runs only every N-th iteration of `loop` (an `if` inside it whose test, local flags inlined,
    takes a loop-varying name modulo something: `step % val_every == 0`), and the training is not under that
    same `if`: periodic validation in a training loop, not a chunk scored before it is trained on."""
    depth = s.loops.index(loop) + 1
    shared = {(c.uid, c.polarity) for c in g.conds}
    for c in s.conds:
        if c.frame != loop.frame or c.depth < depth or (c.uid, c.polarity) in shared:
            continue
        flags = flag_values(c.func.node)
        test = c.test
        # add the values of local flags beside their names (`should_validate = last or step % n == 0`);
        # replacing them would lose `step` where `step = next(it)` (a for loop written as a while loop)
        for _ in range(3):
            bound = [n.id for n in walk(test) if isinstance(n, ast.Name) and n.id in flags]
            if not bound:
                break
            test = ast.BoolOp(ast.Or(), [test, *(flags[b] for b in bound)])
        for n in walk(test):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) and \
                    {x.id for x in walk(n.left) if isinstance(x, ast.Name)} & names:
                return True
    return False


def _kept_copy(drop: Event, g: Event, copies: list[Event], saves: list[Event], restores: list[Event],
               scores: list[Event]) -> list[tuple[str, Event, Event]]:
    """Copies of the trained module's weights taken after the training step and before `drop` (the restore
    or `del` that throws the module away), in the same function, followed to what they reach: each
    serialization ("save", one per branch it lies in) or else the first score, directly or after a
    `load_state_dict` into another module ("score"): [(how, the event reached, the copy)]."""
    frame = len(drop.frame_deps) - 1
    if drop.chain != g.chain[:len(drop.chain)]:
        return []
    trained = g.deps_at(frame)
    lost = set(drop.names) if drop.kind == "restore" else set(drop.detail.split(","))
    lost &= trained
    if not lost:
        return []
    depth = len(drop.chain)
    for c in copies:
        if not (g.seq < c.seq < drop.seq) or c.chain != drop.chain or not (c.names & lost):
            continue
        targets = set(c.detail.split(",")) - lost
        if not targets:
            continue
        reached = [("save", v, c) for v in saves if v.seq > c.seq and v.chain[:depth] == drop.chain
                   and not exclusive(v, g) and v.deps_at(frame) & targets]
        if reached:
            return reached
        for r in restores:
            if r.seq > c.seq and r.chain[:depth] == drop.chain and r.deps_at(frame) & targets:
                later = [s for s in scores if s.seq > r.seq]
                if later:
                    return [("score", later[0], c)]
        for s in scores:
            if s.seq > c.seq and s.chain[:depth] == drop.chain and s.deps_at(frame) & targets:
                return [("score", s, c)]
    return []


def judge_grad(g: Event, scores: list[Event], saves: list[Event], restores: list[Event],
               discards: list[Event] = (), copies: list[Event] = ()) -> list[Judgement]:
    out: list[Judgement] = []
    # 1. covered: a score before it in a common loop, both depending on that loop's iteration
    best: tuple[int, Event, LoopRef] | None = None
    partial: tuple[Event, LoopRef] | None = None
    for s in scores:
        if s.seq >= g.seq or exclusive(s, g):
            continue
        loops = common_loops(s, g)
        for depth in range(len(loops) - 1, -1, -1):
            lc = loops[depth]
            names = assigned_in(lc.node)
            if _periodic(s, g, lc, names):
                continue                # an eval every N steps of a training loop scores ahead of no chunk
            if depends_on(g, lc, names) and depends_on(s, lc, names):
                if best is None or depth > best[0] or (depth == best[0] and s.seq > best[1].seq):
                    best = (depth, s, lc)
                break
            if partial is None:
                partial = (s, lc)
    if best is not None:
        depth, s, lc = best
        loops = common_loops(s, g)
        outer_dep = None
        for lo in reversed(loops[:depth]):
            own = own_names(lo, lc)
            if depends_on(g, lo, own) or depends_on(s, lo, own):
                outer_dep = lo
                continue
            out.append(Judgement("multi-epoch", g, s, lc, lo, conds=g.conds + s.conds,
                                 note="the data scored and trained inside does not change with this loop"))
        ahead = beyond(g.region, s.region)
        if ahead is not None:
            out.append(Judgement("score-after-train", g, s, lc, conds=g.conds + s.conds,
                                 note=f"each iteration of the loop at line {lc.line} scores `{ahead[1].text}` but "
                                      f"trains on `{ahead[0].text}`, which reaches past the scored tokens"))
        else:
            out.append(Judgement("proof", g, s, lc, guard=_guard(g, lc), shape=_shape(g, lc, outer_dep),
                                 conds=g.conds + s.conds))
        for s2 in scores:
            if s2.seq > g.seq and not exclusive(s2, g) and lc not in s2.loops and lc.uid not in \
                    {x.uid for x in s2.loops} and not _sums_callee(s2, s):
                out.append(Judgement("rescore", g, s2, lc, conds=g.conds + s2.conds,
                                     note=f"first scored at line {s.line}"))
                break
        return out
    # 2. not covered: the first later score over val
    later = []
    for s in scores:
        if exclusive(s, g):
            continue
        shared = common_loops(s, g)
        if s.seq > g.seq:
            later.append((s.seq, s, shared))
        elif shared:
            later.append((g.seq + s.seq + 10**9, s, shared))  # in a later iteration of a shared loop
    later.sort(key=lambda t: t[0])
    if not later:
        earlier = [s for s in scores if s.seq < g.seq and not exclusive(s, g)]
        if earlier:
            out.append(Judgement("proof", g, earlier[-1], None, shape="training only after every token is scored",
                                 conds=g.conds))
        else:
            out.append(Judgement("undecided", g, conds=g.conds,
                                 note="validation data reaches a gradient, and no score over validation data "
                                      "was found after it"))
        return out
    _, s, shared = later[0]
    for k, lo in enumerate(shared):
        own = own_names(lo, shared[k + 1] if k + 1 < len(shared) else None)
        if not depends_on(g, lo, own) and not depends_on(s, lo, own):
            out.append(Judgement("multi-epoch", g, s, None, lo, conds=g.conds + s.conds,
                                 note="scoring and training repeat over the same tokens in this loop"))
            break
    between = [r for r in restores if g.seq < r.seq < s.seq and not exclusive(r, g) and not common_loops(r, g)
               and _snapshot_before(r, g)]
    saved = [v for v in saves if g.seq < v.seq < s.seq and not exclusive(v, g) and not common_loops(v, g)]
    dropped = [d for d in discards if g.seq < d.seq < s.seq and not exclusive(d, g) and _drops_trained(d, g)]
    kept: list[tuple[str, Event, Event]] = []
    drop = None
    for drop in sorted(between + dropped, key=lambda e: e.seq) if not shared else ():
        kept = _kept_copy(drop, g, copies, saves, restores, scores)
        if kept:
            break
    if kept and drop is not None:
        # the trained weights were copied out before the module was restored or deleted: follow the copy
        gone = "restored" if drop.kind == "restore" else "deleted"
        for how, reached, copy in kept:
            note = (f"the trained weights are copied at line {copy.line} before the module is {gone} at line "
                    f"{drop.line}, and the copy reaches {'the serialization' if how == 'save' else 'scoring'} at "
                    f"line {reached.line}")
            if how == "save":
                out.append(Judgement("prequant", g, s, save=reached, conds=g.conds + reached.conds, note=note))
            else:
                out.append(Judgement("score-after-train", g, s, conds=g.conds + s.conds, note=note))
    elif (between or dropped) and not shared:
        out.append(Judgement("warmup", g, s, save=(between or dropped)[0], conds=g.conds))
    elif saved and not shared:
        out.append(Judgement("prequant", g, s, save=saved[0], conds=g.conds + saved[0].conds))
    else:
        note = ""
        if partial is not None and partial[1] in g.loops:
            note = (f"the chunk loop at line {partial[1].line} scores first, but the data trained on does not "
                    f"change with that loop, so it includes tokens not yet scored")
        out.append(Judgement("score-after-train", g, s, shared[-1] if shared else None, conds=g.conds + s.conds,
                             note=note))
    return out


def _sums_callee(outer: Event, inner: Event) -> bool:
    """`total += helper(...)` where the helper's own score accumulation is `inner`: the same numbers summed
    once more by the caller (a per-document helper returning its document's loss), not a second pass."""
    depth = len(outer.chain)
    return len(inner.chain) > depth and inner.chain[:depth] == outer.chain and inner.chain[depth][1] == outer.line \
        and inner.chain[depth][0] == outer.unit


ILLEGAL_KINDS = ("score-after-train", "prequant", "multi-epoch", "rescore")


def judge_events(events: list[Event]) -> list[Judgement]:
    """Every grad event of one trace, judged against that trace's scores, saves and restores."""
    scores = [e for e in events if e.kind == "score"]
    saves = [e for e in events if e.kind == "save"]
    restores = [e for e in events if e.kind == "restore"]
    discards = [e for e in events if e.kind == "discard"]
    copies = [e for e in events if e.kind == "copy"]
    return [j for g in events if g.kind == "grad"
            for j in judge_grad(g, scores, saves, restores, discards, copies)]


def drop_contradicted_proofs(judgements: list[Judgement]) -> list[Judgement]:
    """No proof for a gradient or a score that some TTT rule judges illegal (an epoch loop around the proven
    chunk loop, a re-score after it, training past the scored slice): the file would read both "legal order
    proven" and "illegal" about the same lines."""
    bad = {e.seq for j in judgements if j.kind in ILLEGAL_KINDS for e in (j.grad, j.score) if e is not None}
    return [j for j in judgements if j.kind != "proof" or not ({j.grad.seq, j.score.seq} & bad)]


def analyse_units(units: list[CodeUnit]) -> Analysis:
    packed = {u.name: u.packed_from for u in units if u.packed_from}
    texts = {u.name: u.text for u in units}
    try:
        program = Program(units)
        events, by_name = trace_by_name(program)
    except (TraceBudget, RecursionError) as exc:
        return Analysis([], [Judgement("undecided", None, note=f"the program could not be traced: {exc}")],
                        packed, str(exc), texts)
    except Exception as exc:  # noqa: BLE001 - an unexpected shape must not become a silent legal
        note = f"the scanner failed on this code ({type(exc).__name__}: {exc})"
        return Analysis([], [Judgement("undecided", None, note=note)], packed, str(exc), texts)
    analysis = Analysis(events, packed=packed, texts=texts)
    seen: set[tuple] = set()
    analysis.groups = [events, *by_name]
    for group in analysis.groups:
        for j in drop_contradicted_proofs(judge_events(group)):
            # one judgement per shape and per set of branches on its path: the same training line reached
            # under another `if` (one path off by configuration, another on) is judged again
            key = (j.kind, j.grad.unit, j.grad.line, j.score.line if j.score else None,
                   frozenset((c.unit, c.line, c.polarity) for c in j.conds))
            if key in seen:
                continue
            seen.add(key)
            analysis.judgements.append(j)
    for e in events:
        if e.kind == "dynamic" and not (e.detail == "packed" and packed):
            analysis.judgements.append(Judgement("undecided", e, conds=e.conds,
                                                 note=f"{e.detail}() of a computed string: the code it runs "
                                                      f"cannot be read statically"))
    return analysis


def analyse(ctx: AuditContext) -> Analysis:
    """The TTT order analysis of a submission, computed once per audit (the five TTT rules share it)."""
    return ctx.derived(_analyse)


def _analyse(ctx: AuditContext) -> Analysis:
    result = analyse_units(ctx.units)
    for unit in differing_dumps(ctx):
        extra = analyse_units([unit])      # traced alone: its functions must not resolve into the script's
        result.events.extend(extra.events)
        result.judgements.extend(extra.judgements)
        result.texts.update(extra.texts)
    return result
