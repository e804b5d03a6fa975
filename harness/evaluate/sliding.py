"""Sliding-window BPB: every target scored with as much left context as the window allows.

Positions: for tokens t[0..N], position p (0 <= p < N) means "predict t[p+1] from t[0..p]". A window that
starts at `ws` feeds t[ws : ws+L] and scores positions [ws+s, ws+wlen). Layouts (EVAL_INTERNALS §2):
- "single" (Style B, 04-01 onward): the first window scores all of its L positions, later ones their last
  `stride` (s = L - stride), the tail window whatever is left: each target exactly once;
- "style-a" (03-19 to 03-31 `eval_val_sliding`): windows at every multiple of `stride` with at least one
  target, each scoring its last `stride` valid targets, so the tail windows rescore [N-stride, N);
- "style-a-ttt" (03-23 `eval_val_sliding_ttt`): the same, but tail windows need >= `stride` targets.
The Style A layouts exist to reproduce those records' numbers; the ledger counts their double scores.

Fast mode batches `batch_seqs` windows per forward (every batch padded to that size, so shapes stay
static), asks the model for the scored positions only (head, softcap and loss on `stride` positions per
window), gathers the inputs on the device from a window plan sent once, and accumulates the loss on the
device (no host sync per batch); with `compile`, forward and loss run as two torch.compile graphs per
(batch, start) shape (see `_compiled_nll_sum`). Exact mode feeds full windows in the records' batching
(unpadded, full logits, loss on all positions) so the submission's own compiled forward gives the same
numbers.
"""

from __future__ import annotations

import math
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from harness.evaluate.distributed import share
from harness.evaluate.ledger import ScoreLedger

LN2 = math.log(2.0)
LAYOUTS = ("single", "style-a", "style-a-ttt")


class Scorer(Protocol):
    """What the eval loops need from a model: logits for positions [start, L) of a [B, L] batch."""

    def logits(self, x: Any, start: int = 0) -> Any: ...


@dataclass(frozen=True)
class Window:
    ws: int     # first input position
    s: int      # offset of the first scored position inside the window
    wlen: int   # number of valid positions (L, or fewer for the tail)

    @property
    def scored(self) -> tuple[int, int]:
        return self.ws + self.s, self.ws + self.wlen


def plan_windows(n_targets: int, seq_len: int, stride: int, layout: str = "single") -> list[Window]:
    """Windows over `n_targets` positions in one of `LAYOUTS` (see module docstring)."""
    if seq_len < 1 or stride < 1 or stride > seq_len:
        raise ValueError(f"need 1 <= stride <= seq_len (got seq_len={seq_len}, stride={stride})")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown window layout {layout!r} (one of {', '.join(LAYOUTS)})")
    ctx = seq_len - stride
    out: list[Window] = []
    for ws in range(0, max(n_targets, 1), stride):
        wlen = min(ws + seq_len, n_targets) - ws
        if layout == "single":
            if ws > 0 and ws + ctx >= n_targets:
                break
            s = 0 if ws == 0 else ctx
        else:
            if wlen < 1 or (layout == "style-a-ttt" and wlen < stride and ws != 0):
                continue
            s = 0 if ws == 0 else max(wlen - stride, 0)
        out.append(Window(ws, s, wlen))
    return out


def target_bytes(tokens: np.ndarray, tables: Any | None, sidecar: np.ndarray | None) -> np.ndarray:
    """Bytes of each position's target (int64 [N]): the CaseOps sidecar when given, else the tables."""
    if sidecar is not None:
        return np.asarray(sidecar[1:], dtype=np.int64)
    if tables is None:
        raise ValueError("need a tokenizer (byte tables) or a CaseOps byte sidecar")
    if int(tokens.max()) >= tables.size:
        raise ValueError(f"token id {int(tokens.max())} is outside the tokenizer's {tables.size} ids")
    return tables.target_bytes(tokens[:-1], tokens[1:])


@dataclass
class Sums:
    """Accumulators of one eval (or one TTT chunk). `loss` may be a device tensor (float64) until read."""

    loss: Any = 0.0
    tokens: int = 0
    bytes: int = 0

    def add(self, other: Sums) -> None:
        self.loss = self.loss + other.loss
        self.tokens += other.tokens
        self.bytes += other.bytes

    @property
    def loss_value(self) -> float:
        return float(self.loss)

    @property
    def val_loss(self) -> float:
        return self.loss_value / self.tokens if self.tokens else float("nan")

    @property
    def val_bpb(self) -> float:
        return self.loss_value / (LN2 * self.bytes) if self.bytes else float("nan")


@dataclass
class EvalResult:
    val_loss: float
    val_bpb: float
    tokens: int
    bytes: int
    seconds: float
    seq_len: int
    stride: int
    mode: str
    windows: int
    chunks: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("val_loss", "val_bpb", "tokens", "bytes", "seconds", "seq_len",
                                             "stride", "mode", "windows")}
        out["tokens_per_second"] = self.tokens / self.seconds if self.seconds > 0 else None
        if self.chunks:
            out["chunks"] = len(self.chunks)
        out.update(self.extra)
        return out


def batches(windows: list[Window], batch_seqs: int, group_first: bool) -> Iterator[list[Window]]:
    """Batches of at most `batch_seqs` windows, in order. With `group_first` a batch never mixes regular
    windows (the largest offset s = L - stride, shared by all) with irregular ones (the first window,
    Style A tails), so regular batches can ask the model for their last `stride` positions only."""
    if not group_first:
        for i in range(0, len(windows), batch_seqs):
            yield windows[i:i + batch_seqs]
        return
    regular = max((w.s for w in windows), default=0)
    cur: list[Window] = []
    kind = False
    for w in windows:
        k = w.s == regular
        if cur and (k != kind or len(cur) == batch_seqs):
            yield cur
            cur = []
        kind = k
        cur.append(w)
    if cur:
        yield cur


class WindowScorer:
    """Scores batches of windows on one device; shared by the sliding eval and the TTT loop."""

    def __init__(self, scorer: Scorer, tokens: np.ndarray, tbytes: np.ndarray, seq_len: int,
                 device: str = "cpu", autocast: bool | None = None, head_slice: bool = True,
                 ledger: Any | None = None, pad_to: int | None = None, compile: bool = False,
                 stride: int | None = None, eager_rounding: bool = False):
        import torch

        self.torch = torch
        self.scorer = scorer
        self.seq_len = seq_len
        self.device = torch.device(device)
        self.autocast = (self.device.type == "cuda") if autocast is None else autocast
        self.head_slice = head_slice
        self.ledger = ledger
        self.pad_to = pad_to
        self.regular_s = seq_len - stride if stride else None
        self.tokens = torch.as_tensor(tokens.astype(np.int64), device=self.device)
        self.cum_bytes = np.concatenate([[0], np.cumsum(tbytes, dtype=np.int64)])
        self.arange = torch.arange(seq_len, device=self.device)
        self.compiled = bool(compile)
        self.scoring = scoring_name(self.compiled, eager_rounding)
        self._fn: Callable[..., Any] = (_compiled_nll_sum(scorer, eager_rounding) if compile
                                        else _masked_nll_sum(scorer))

    def _plan(self, batch: list[Window]) -> Any:
        """[3, B] int64 (ws, s, wlen) for the batch, padded with empty windows (wlen 0) to `pad_to`."""
        rows = [(w.ws, w.s, w.wlen) for w in batch]
        if self.pad_to and len(rows) < self.pad_to:
            rows += [(0, 0, 0)] * (self.pad_to - len(rows))
        arr = np.asarray(rows, dtype=np.int64).T.copy()
        t = self.torch.from_numpy(arr)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def score(self, batch: list[Window]) -> Sums:
        torch = self.torch
        s0 = batch[0].s
        # one start per kind of batch (regular: their shared offset; irregular: 0), so shapes stay few
        start = s0 if self.head_slice and all(w.s == s0 for w in batch) and s0 == self.regular_s else 0
        plan = self._plan(batch)
        with torch.no_grad():
            if self.autocast:
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    loss = self._fn(*gather_batch(self.tokens, self.arange, plan), start)
            else:
                loss = self._fn(*gather_batch(self.tokens, self.arange, plan), start)
        sums = Sums(loss=loss)
        for w in batch:
            a, b = w.scored
            if self.ledger is not None:
                self.ledger.mark_scored(a, b)
            sums.tokens += b - a
            sums.bytes += int(self.cum_bytes[b] - self.cum_bytes[a])
        return sums


def window_scorer(scorer: Scorer, tokens: np.ndarray, tbytes: np.ndarray, seq_len: int, stride: int,
                  batch_seqs: int, device: str, autocast: bool | None, exact: bool, layout: str,
                  compile: bool, pad: bool | None, eager_rounding: bool = False) -> WindowScorer:
    """The `WindowScorer` of `sliding_eval` and `ttt_eval`, with a fresh ledger for `layout`: fast mode pads
    (by default on CUDA) and compiles when asked (`eager_rounding`: see `compile_fast`), `exact` does
    neither and feeds full windows."""
    pad = (str(device).startswith("cuda") if pad is None else pad) and not exact
    ledger = ScoreLedger(int(tokens.size) - 1, allow_rescore=layout != "single")
    return WindowScorer(scorer, tokens, tbytes, seq_len, device, autocast, head_slice=not exact, ledger=ledger,
                        pad_to=batch_seqs if pad else None, compile=compile and not exact, stride=stride,
                        eager_rounding=eager_rounding)


def gather_batch(tokens: Any, arange: Any, plan: Any) -> tuple[Any, Any, Any]:
    """(x, y, scored) [B, L] gathered on the device from the [3, B] (ws, s, wlen) plan; padding rows
    (wlen 0) and positions past a window's end are zeros and never scored."""
    import torch

    n = tokens.size(0) - 1
    ws, s, wlen = plan[0][:, None], plan[1][:, None], plan[2][:, None]
    pos = ws + arange[None, :]
    valid = arange[None, :] < wlen
    scored = valid & (arange[None, :] >= s)
    x = torch.where(valid, tokens[pos.clamp(max=n - 1)], 0)
    y = torch.where(valid, tokens[(pos + 1).clamp(max=n)], 0)
    return x, y, scored


def _masked_nll_sum(scorer: Scorer) -> Callable[..., Any]:
    """fn(x, y, scored, start): float64 sum of the NLL of one batch's scored positions. Shapes depend on
    (B, L, start) only, so the sliding eval and a TTT run over other tokens share compiled graphs."""
    def nll_sum(x: Any, y: Any, scored: Any, start: int) -> Any:
        return _nll_of_logits(_checked_logits(scorer, x, start), y, scored, start)

    return nll_sum


def _checked_logits(scorer: Scorer, x: Any, start: int) -> Any:
    logits = scorer.logits(x, start)
    bsz, width = x.size(0), x.size(1) - start
    if tuple(logits.shape[:2]) != (bsz, width):
        raise RuntimeError(f"model returned logits of shape {tuple(logits.shape)}, "
                           f"expected ({bsz}, {width}, vocab)")
    return logits


def _nll_of_logits(logits: Any, y: Any, scored: Any, start: int) -> Any:
    import torch.nn.functional as F

    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y[:, start:].reshape(-1),
                          reduction="none")
    return (nll.double() * scored[:, start:].reshape(-1)).sum()


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COMPILED_EAGER_ROUNDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scoring_name(compiled: bool, eager_rounding: bool) -> str:
    """How a run's windows were scored: one of `harness.cli_args.SCORING_KINDS`."""
    return "eager" if not compiled else ("eager-rounding" if eager_rounding else "compiled")


def compile_fast(fn: Callable[..., Any], eager_rounding: bool = False) -> Callable[..., Any]:
    """torch.compile as fast mode uses it: static shapes, default inductor options (its coordinate-descent
    kernel tuning made no difference on an H200, sp8192 04-08 record, and compiled 4x slower).

    `eager_rounding` turns on inductor's `emulate_precision_casts`: the fused kernels round each bf16
    intermediate where eager PyTorch would, so the graph scores as an eager forward does. Measured on one
    H100 (sp1024 03-23 record, whose own TTT loop scores eagerly; random weights; 131k tokens, four
    chunks): compiled scoring differed from the record's own TTT by 1.07e-3 BPB, with eager rounding by
    -8.9e-7 (the record's own run-to-run: -8.1e-6), at the same speed (2.64x its loop)."""
    import torch

    if eager_rounding:
        return torch.compile(fn, dynamic=False, options={"emulate_precision_casts": True})
    return torch.compile(fn, dynamic=False)


def compiled_per(cache: weakref.WeakKeyDictionary, key: Any, build: Callable[[], Any]) -> Any:
    """`build()` once per `key` object, kept in `cache` for later evals on the same object (a timed run,
    the next TTT run on the same model reuse the compiled graphs); built afresh for a key that cannot be
    weakly referenced."""
    try:
        fn = cache.get(key)
    except TypeError:           # not weak-referenceable / hashable: compile for this eval only
        return build()
    if fn is None:
        fn = cache[key] = build()
    return fn


def _compiled_nll_sum(scorer: Scorer, eager_rounding: bool = False) -> Callable[..., Any]:
    """`_masked_nll_sum` as two compiled graphs, forward then loss, kept per scorer object across evals.

    Two graphs, not one: the logits leave the forward graph in the model's dtype (bf16 under autocast),
    rounded once as the submission's own compiled `forward_logits` rounds them. Fused into the loss, the
    softcapped logits stay fp32 and, on saturated logits, the BPB moves by ~5e-4 (H100, sp8192)."""
    def build() -> Callable[..., Any]:
        forward = compile_fast(lambda x, start: _checked_logits(scorer, x, start), eager_rounding)
        loss = compile_fast(_nll_of_logits, eager_rounding)

        def fn(x: Any, y: Any, scored: Any, start: int) -> Any:
            return loss(forward(x, start), y, scored, start)

        return fn

    return compiled_per(_COMPILED_EAGER_ROUNDING if eager_rounding else _COMPILED, scorer, build)


def progress_bar(total: int, label: str, enabled: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(advance, close) for progress on stderr: a rich bar on a terminal, else a line at every tenth of
    `total`; no-ops when disabled."""
    if not enabled:
        return (lambda n: None), (lambda: None)
    if not sys.stderr.isatty():
        return _plain_progress(total, label)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task(label, total=total)
    return (lambda n: bar.advance(task, n)), bar.stop


def _plain_progress(total: int, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    state = {"done": 0, "shown": 0}

    def advance(n: int) -> None:
        state["done"] += n
        tenth = state["done"] * 10 // max(total, 1)
        if tenth > state["shown"]:
            state["shown"] = tenth
            print(f"golfaudit: {label} {state['done']}/{total}", file=sys.stderr, flush=True)

    return advance, lambda: None


def score_windows(wsc: WindowScorer, windows: list[Window], batch_seqs: int, exact: bool, ledger: Any,
                  dist: Any | None = None, advance: Callable[[int], None] = lambda n: None,
                  incomplete: type[Exception] = RuntimeError) -> Sums:
    """Score `windows` (in order) into `ledger`, the eval's global `ScoreLedger`.

    Without `dist` this process scores them all. With `dist` each rank scores its contiguous share
    (`share` by count) into a ledger of its own that starts at the share's first scored position, so a gap
    inside a share raises; the ranks then exchange (first position, end, tokens, bytes, loss, failed) and
    every rank replays the ranges into `ledger` in rank order: under the single layout they must tile
    exactly (a gap or an overlap raises), and the tokens must add up to the plan's count, else `incomplete`
    is raised. Every rank gets the same global sums, or the same kind of error (a rank's own failure is
    held until the exchange, so no rank is left waiting in a collective)."""
    def score_all(todo: list[Window]) -> Sums:
        sums = Sums()
        for batch in batches(todo, batch_seqs, group_first=not exact):
            sums.add(wsc.score(batch))
            advance(len(batch))
        return sums

    if dist is None:
        wsc.ledger = ledger
        return score_all(windows)
    lo, hi = share(len(windows), dist.rank, dist.world_size)
    mine = windows[lo:hi]
    start = mine[0].scored[0] if mine else -1
    local = wsc.ledger = ScoreLedger(ledger.n, ledger.allow_rescore, start=max(start, 0))
    sums = Sums()
    error: Exception | None = None
    try:
        sums = score_all(mine)
        loss = sums.loss_value
    except Exception as exc:       # held until every rank has reported (see docstring)
        error, loss = exc, 0.0
    rows = dist.gather_rows([float(start), float(local.scored_hi), float(sums.tokens), float(sums.bytes),
                             float(local.rescored), loss, float(error is not None)])
    failed = [r for r, row in enumerate(rows) if row[6]]
    if error is not None:
        raise error
    if failed:
        raise RuntimeError(f"rank(s) {failed} failed while scoring their share of windows "
                           f"[{windows[0].scored[0] if windows else 0}, ...): see their error")
    planned = sum(w.scored[1] - w.scored[0] for w in windows)
    tokens = sum(int(row[2]) for row in rows)
    if tokens != planned:
        got = [int(row[2]) for row in rows]
        raise incomplete(f"the ranks scored {tokens} positions ({got} per rank) of the {planned} planned "
                         f"for windows starting at position {windows[0].scored[0] if windows else 0}")
    total = Sums()
    for row in rows:
        if row[0] < 0:
            continue
        ledger.mark_scored(int(row[0]), int(row[1]))
        ledger.rescored += int(row[4])
        total.add(Sums(row[5], int(row[2]), int(row[3])))
    return total


def sliding_eval(scorer: Scorer, tokens: np.ndarray, tbytes: np.ndarray, seq_len: int = 2048,
                 stride: int = 64, batch_seqs: int = 32, device: str = "cpu", autocast: bool | None = None,
                 exact: bool = False, progress: bool = False, layout: str = "single",
                 compile: bool = False, pad: bool | None = None, dist: Any | None = None,
                 eager_rounding: bool = False) -> EvalResult:
    """Sliding-window BPB of `scorer` on `tokens` (uint16/int array), bytes per target in `tbytes`.

    Fast mode asks the model for the scored positions only and (by default on CUDA) pads every batch to
    `batch_seqs` windows; `compile` compiles forward + loss (`eager_rounding`: see `compile_fast`). `exact`
    feeds full windows in the submission's batching (`batch_seqs` windows, unpadded, full logits) and never
    compiles our wrapper. With `dist` (a `distributed.Dist`) each rank scores a contiguous share of the
    windows and every rank returns the same global result (`seconds`: the slowest rank's).
    """
    windows = plan_windows(int(tokens.size) - 1, seq_len, stride, layout)
    ws = window_scorer(scorer, tokens, tbytes, seq_len, stride, batch_seqs, device, autocast, exact, layout,
                       compile, pad, eager_rounding)
    ledger = ws.ledger
    show = progress and (dist is None or dist.rank == 0)
    advance, close = progress_bar(len(windows) if dist is None else len(windows) // dist.world_size,
                                  "sliding eval", show)
    t0 = time.perf_counter()
    try:
        total = score_windows(ws, windows, batch_seqs, exact, ledger, dist, advance)
        loss = total.loss_value        # the one host sync
    finally:
        close()
    _sync(device)
    seconds = time.perf_counter() - t0
    if dist is not None:
        seconds = dist.slowest(seconds)
    ledger.require_complete()
    res = EvalResult(loss / total.tokens, total.val_bpb, total.tokens, total.bytes, seconds, seq_len, stride,
                     "exact" if exact else "fast", len(windows))
    res.extra.update({"layout": layout, "rescored_positions": ledger.rescored, "padded": ws.pad_to is not None,
                      "compiled": ws.compiled, "scoring": ws.scoring, "batch_seqs": batch_seqs,
                      "world_size": 1 if dist is None else dist.world_size})
    return res


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
