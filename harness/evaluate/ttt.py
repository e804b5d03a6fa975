"""Score-first test-time training (chunked SGD, EVAL_INTERNALS §3), with a guard against training on
tokens before they are scored.

Each chunk of `chunk_tokens` positions is first scored (its sliding windows, under no_grad, sums
accumulated), then — unless it is the last chunk — trained on for `epochs` passes of SGD over its
contiguous `seq_len` sequences with a cosine learning rate over chunks. The `ScoreLedger`
(harness.evaluate.ledger) records which positions have been scored; every training batch asks it first and
a violation raises `TrainBeforeScoreError`.
"""

from __future__ import annotations

import functools
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.evaluate.distributed import share
from harness.evaluate.ledger import TrainBeforeScoreError
from harness.evaluate.sliding import (
    EvalResult,
    Scorer,
    Sums,
    _sync,
    compile_fast,
    compiled_per,
    plan_windows,
    progress_bar,
    score_windows,
    window_scorer,
)


@dataclass(frozen=True)
class TTTConfig:
    chunk_tokens: int = 32768
    epochs: int = 3
    lr: float = 0.002
    momentum: float = 0.9
    batch_seqs: int = 32
    grad_clip: float = 1.0
    freeze_blocks: int = 0
    train_seq_len: int | None = None   # default: the eval seq_len


def trainable_params(model: Any, freeze_blocks: int) -> list[Any]:
    """Parameters outside the first `freeze_blocks` blocks (names `blocks.<i>.`). Every parameter gets
    `requires_grad=True` (a loaded model may have it off) and keeps it: the frozen ones are frozen by never
    being stepped or clipped, not by flag, so the flags never change between runs and compiled scoring
    graphs (which guard on them) stay valid across TTT runs."""
    frozen = tuple(f"blocks.{i}." for i in range(freeze_blocks))
    out = []
    for name, p in model.named_parameters():
        p.requires_grad_(True)
        if not any(name.startswith(f) or f".{f}" in name for f in frozen):
            out.append(p)
    return out


_COMPILED_TRAIN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ttt_eval(scorer: Scorer, model: Any, train_loss: Callable[[Any, Any], Any], tokens: np.ndarray,
             tbytes: np.ndarray, cfg: TTTConfig, seq_len: int = 2048, stride: int = 64,
             batch_seqs: int = 32, device: str = "cpu", autocast: bool | None = None, exact: bool = False,
             progress: bool = False, train_first: bool = False, layout: str = "single",
             compile: bool = False, pad: bool | None = None, compile_train: bool | None = None,
             dist: Any | None = None, eager_rounding: bool = False) -> EvalResult:
    """Score-first TTT. `train_loss(x, y)` is the submission's own training loss (mean over targets).

    `layout`, `compile`, `pad` and `eager_rounding` as in `sliding_eval` (they concern the scoring).
    Training steps run the submission's own loss eagerly, as the records do, unless `compile_train`
    (default: `compile` outside `exact`): then forward and backward of that loss run as torch.compile
    graphs, kept per `train_loss` object so that a second run with the same callable reuses them.
    `train_first` deliberately trains on each chunk before scoring it (the illegal order); it exists so the
    guard can be shown to fire, and always ends in `TrainBeforeScoreError`.

    With `dist` (a `distributed.Dist`, the records' recipe for world_size > 1): each chunk's windows are
    split across ranks and scored, the global scoring of the chunk is verified (`score_windows`) before any
    rank trains on it, then the chunk's sequences are split across ranks, each rank steps over its share in
    batches of `cfg.batch_seqs` and the gradients are averaged over ranks before clipping and the step, so
    all ranks keep the same weights (checked at the start and the end). Ranks whose share has fewer
    batches than the largest share contribute zero gradients to the extra steps (the records would hang
    there). Every rank returns the same global result.
    """
    import torch

    n = int(tokens.size) - 1
    L_train = cfg.train_seq_len or seq_len
    windows = plan_windows(n, seq_len, stride, layout)
    num_chunks = max(1, (n + cfg.chunk_tokens - 1) // cfg.chunk_tokens)
    per_chunk: list[list] = [[] for _ in range(num_chunks)]
    for w in windows:
        per_chunk[min(w.scored[0] // cfg.chunk_tokens, num_chunks - 1)].append(w)
    wsc = window_scorer(scorer, tokens, tbytes, seq_len, stride, batch_seqs, device, autocast, exact, layout,
                        compile, pad, eager_rounding)
    ledger = wsc.ledger
    use_autocast = wsc.autocast
    tok = wsc.tokens
    if compile_train is None:
        compile_train = compile and not exact
    if compile_train:
        train_loss = compiled_per(_COMPILED_TRAIN, train_loss, functools.partial(compile_fast, train_loss))
    params = trainable_params(model, cfg.freeze_blocks)
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    rank, world = (0, 1) if dist is None else (dist.rank, dist.world_size)
    if dist is not None:
        dist.check_same(_checksum(model), "the model's weights before TTT")

    advance, close = progress_bar(num_chunks, "score-first TTT", progress and rank == 0)
    total = Sums()
    chunks: list[dict[str, float]] = []
    steps = 0
    t0 = time.perf_counter()

    def train_chunk(ci: int) -> int:
        cs, ce = ci * cfg.chunk_tokens, min((ci + 1) * cfg.chunk_tokens, n)
        nseq = (ce - cs) // L_train
        if nseq == 0 or cfg.epochs == 0:
            return 0
        ledger.check_train(cs, cs + nseq * L_train)     # the global ledger: the same answer on every rank
        lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * ci / max(num_chunks - 1, 1)))
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        s0, s1 = share(nseq, rank, world)
        mine = s1 - s0
        largest = -(-nseq // world)
        per_epoch = -(-largest // cfg.batch_seqs)       # batches of the largest share, the same on every rank
        done = 0
        for _ in range(cfg.epochs):
            for bs in range(0, per_epoch * cfg.batch_seqs, cfg.batch_seqs):
                model.zero_grad(set_to_none=True)
                if bs < mine:
                    be = min(bs + cfg.batch_seqs, mine)
                    a, b = cs + (s0 + bs) * L_train, cs + (s0 + be) * L_train
                    ledger.check_train(a, b)
                    seg = tok[a:b + 1]
                    x = seg[:-1].reshape(-1, L_train)
                    y = seg[1:].reshape(-1, L_train)
                    if use_autocast:
                        with torch.autocast(device_type=wsc.device.type, dtype=torch.bfloat16):
                            loss = train_loss(x, y)
                    else:
                        loss = train_loss(x, y)
                    loss.backward()
                if dist is not None:
                    dist.average_grads(params)
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                done += 1
        model.eval()
        return done

    try:
        model.eval()
        for ci in range(num_chunks):
            last = ci == num_chunks - 1
            if train_first and not last:
                steps += train_chunk(ci)
            sums = score_windows(wsc, per_chunk[ci], batch_seqs, exact, ledger, dist,
                                 incomplete=RuntimeError if last else TrainBeforeScoreError)
            total.add(sums)
            if not train_first and not last:
                steps += train_chunk(ci)
            chunks.append({"chunk": ci, "tokens": sums.tokens, "bytes": sums.bytes, "loss": sums.loss})
            advance(1)
        running = Sums()
        for c in chunks:        # host syncs after the loop, not per chunk
            chunk = Sums(float(c["loss"]), c["tokens"], c["bytes"])
            running.add(chunk)
            c.update(loss=chunk.loss, bpb=chunk.val_bpb, running_bpb=running.val_bpb)
    finally:
        close()
        for p in model.parameters():    # as trainable_params left them, whatever the model's code did
            p.requires_grad_(True)
        model.eval()
    _sync(device)
    ledger.require_complete()
    seconds = time.perf_counter() - t0
    if dist is not None:
        dist.check_same(_checksum(model), "the model's weights after TTT")
        seconds = dist.slowest(seconds)
    res = EvalResult(total.val_loss, total.val_bpb, total.tokens, total.bytes, seconds,
                     seq_len, stride, ("exact" if exact else "fast") + "+ttt", len(windows), chunks)
    res.extra.update({"ttt_chunks": num_chunks, "ttt_steps": steps, "ttt_epochs": cfg.epochs, "ttt_lr": cfg.lr,
                      "ttt_chunk_tokens": cfg.chunk_tokens, "ttt_freeze_blocks": cfg.freeze_blocks,
                      "compiled_train": bool(compile_train), "scoring": wsc.scoring,
                      "world_size": world,
                      "rescored_positions": ledger.rescored})
    return res


def _checksum(model: Any) -> float:
    """A float64 fingerprint of the weights (sum of |w| and of w * its flat index weight), equal across
    ranks only when the weights are."""
    import torch

    parts = []
    with torch.no_grad():
        for p in model.parameters():
            v = p.detach().double().reshape(-1)
            parts.append(v.abs().sum() + (v * torch.linspace(1.0, 2.0, v.numel(), dtype=torch.float64,
                                                             device=v.device)).sum())
    return float(torch.stack(parts).sum()) if parts else 0.0      # one host sync, not two per parameter
