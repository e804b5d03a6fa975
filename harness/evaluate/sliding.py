"""Sliding-window BPB: every target scored exactly once, with as much left context as the window allows.

Positions: for tokens t[0..N], position p (0 <= p < N) means "predict t[p+1] from t[0..p]". A window that
starts at `ws` feeds t[ws : ws+L] and scores positions [ws+s, ws+wlen): the first window scores all of
its L positions, later ones only their last `stride` (s = L - stride), the tail window whatever is left.
This is the single-coverage layout of the newer records (EVAL_INTERNALS §2, "Style B").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

LN2 = math.log(2.0)


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


def plan_windows(n_targets: int, seq_len: int, stride: int) -> list[Window]:
    """Windows that score each of the `n_targets` positions exactly once (see module docstring)."""
    if seq_len < 1 or stride < 1 or stride > seq_len:
        raise ValueError(f"need 1 <= stride <= seq_len (got seq_len={seq_len}, stride={stride})")
    ctx = seq_len - stride
    out: list[Window] = []
    for ws in range(0, max(n_targets, 1), stride):
        if ws > 0 and ws + ctx >= n_targets:
            break
        wlen = min(ws + seq_len, n_targets) - ws
        s = 0 if ws == 0 else ctx
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
    """Float64 accumulators of one eval (or one TTT chunk)."""

    loss: float = 0.0
    tokens: int = 0
    bytes: int = 0

    def add(self, other: Sums) -> None:
        self.loss += other.loss
        self.tokens += other.tokens
        self.bytes += other.bytes

    @property
    def val_loss(self) -> float:
        return self.loss / self.tokens if self.tokens else float("nan")

    @property
    def val_bpb(self) -> float:
        return self.loss / (LN2 * self.bytes) if self.bytes else float("nan")


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
    """Batches of windows; with `group_first` the first window (s=0) travels alone so every other batch
    can ask the model for the last `stride` positions only."""
    rest = windows
    if group_first and windows and windows[0].s == 0 and windows[0].wlen > 0:
        yield [windows[0]]
        rest = windows[1:]
    for i in range(0, len(rest), batch_seqs):
        yield rest[i:i + batch_seqs]


class WindowScorer:
    """Scores batches of windows on one device; shared by the sliding eval and the TTT loop."""

    def __init__(self, scorer: Scorer, tokens: np.ndarray, tbytes: np.ndarray, seq_len: int,
                 device: str = "cpu", autocast: bool | None = None, head_slice: bool = True,
                 ledger: Any | None = None):
        import torch

        self.torch = torch
        self.scorer = scorer
        self.seq_len = seq_len
        self.device = torch.device(device)
        self.autocast = (self.device.type == "cuda") if autocast is None else autocast
        self.head_slice = head_slice
        self.ledger = ledger
        self.tokens = torch.as_tensor(tokens.astype(np.int64), device=self.device)
        self.cum_bytes = np.concatenate([[0], np.cumsum(tbytes, dtype=np.int64)])

    def score(self, batch: list[Window]) -> Sums:
        torch = self.torch
        import torch.nn.functional as F

        L = self.seq_len
        bsz = len(batch)
        x = torch.zeros(bsz, L, dtype=torch.int64, device=self.device)
        y = torch.zeros(bsz, L, dtype=torch.int64, device=self.device)
        mask = torch.zeros(bsz, L, dtype=torch.bool, device=self.device)
        for i, w in enumerate(batch):
            seg = self.tokens[w.ws:w.ws + w.wlen + 1]
            x[i, :w.wlen] = seg[:-1]
            y[i, :w.wlen] = seg[1:]
            mask[i, w.s:w.wlen] = True
        start = min(w.s for w in batch) if self.head_slice else 0
        with torch.no_grad():
            if self.autocast:
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    logits = self.scorer.logits(x, start)
            else:
                logits = self.scorer.logits(x, start)
            if logits.shape[:2] != (bsz, L - start):
                raise RuntimeError(f"model returned logits of shape {tuple(logits.shape)}, "
                                   f"expected ({bsz}, {L - start}, vocab)")
            nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y[:, start:].reshape(-1),
                                  reduction="none").reshape(bsz, L - start)
            loss = (nll.double() * mask[:, start:]).sum().item()
        sums = Sums(loss=loss)
        for w in batch:
            a, b = w.scored
            if self.ledger is not None:
                self.ledger.mark_scored(a, b)
            sums.tokens += b - a
            sums.bytes += int(self.cum_bytes[b] - self.cum_bytes[a])
        return sums


def progress_bar(total: int, label: str, enabled: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(advance, close) for a rich progress bar on stderr; no-ops when disabled."""
    if not enabled:
        return (lambda n: None), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task(label, total=total)
    return (lambda n: bar.advance(task, n)), bar.stop


def sliding_eval(scorer: Scorer, tokens: np.ndarray, tbytes: np.ndarray, seq_len: int = 2048,
                 stride: int = 64, batch_seqs: int = 32, device: str = "cpu", autocast: bool | None = None,
                 exact: bool = False, progress: bool = False) -> EvalResult:
    """Sliding-window BPB of `scorer` on `tokens` (uint16/int array), bytes per target in `tbytes`.

    Fast mode asks the model for the scored positions only (head and loss on `stride` positions per
    window); `exact` feeds full windows in the submission's batching (32 windows, full logits).
    """
    from harness.evaluate.ttt import ScoreLedger

    n = int(tokens.size) - 1
    windows = plan_windows(n, seq_len, stride)
    ledger = ScoreLedger(n)
    ws = WindowScorer(scorer, tokens, tbytes, seq_len, device, autocast, head_slice=not exact, ledger=ledger)
    advance, close = progress_bar(len(windows), "sliding eval", progress)
    total = Sums()
    t0 = time.perf_counter()
    try:
        for batch in batches(windows, batch_seqs, group_first=not exact):
            total.add(ws.score(batch))
            advance(len(batch))
    finally:
        close()
    _sync(device)
    seconds = time.perf_counter() - t0
    ledger.require_complete()
    return EvalResult(total.val_loss, total.val_bpb, total.tokens, total.bytes, seconds, seq_len, stride,
                      "exact" if exact else "fast", len(windows))


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
