#!/usr/bin/env python3
"""The FA3 stand-in (harness/compat/flash_attn_interface.py) on the shapes record 2026-04-10_VarLenAttn uses.

Compares the bucketed `flash_attn_varlen_func` against the per-sequence loop it replaced (one `_attend` call
per document, autograd for the backward): outputs and q/k/v gradients, then times both (forward, forward +
backward). Also the dense GQA path (SDPA enable_gqa against k/v copied per head) and, with --compile, a
torch.compile(fullgraph=True) projection + varlen attention block, compiled against eager. Prints one JSON
object; exit code 1 when a comparison is off.

    python scripts/gpu_standin_check.py --compile                     # CUDA: bf16, 8/4 heads, dim 64,
                                                                      # 2048*48 tokens, ~300 documents
    python scripts/gpu_standin_check.py --window 256                  # the masked path (sliding window)
    python scripts/gpu_standin_check.py --device cpu                  # small sizes, fp32
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "harness" / "compat"))     # as the sandbox does: the module as flash_attn_interface

import flash_attn_interface as fa  # noqa: E402
import torch  # noqa: E402

BF16_REL_TOL = 2e-2       # relative L2 error allowed in bf16 (two kernels' different rounding)
FP32_REL_TOL = 1e-4


def document_bounds(tokens: int, docs: int, max_len: int, seed: int, bucket: int = 64) -> tuple[list[int], int]:
    """cu_seqlens as the record builds them: documents cut at max_len, the list padded to a multiple of
    `bucket` with the total (empty trailing sequences)."""
    rng = random.Random(seed)
    bounds, pos = [0], 0
    while pos < tokens:
        doc_end = min(tokens, pos + 1 + int(rng.expovariate(docs / tokens)))
        while pos < doc_end:
            pos = min(doc_end, pos + max_len)
            bounds.append(pos)
    longest = max(b - a for a, b in zip(bounds, bounds[1:]))
    return bounds + [tokens] * (-len(bounds) % bucket), longest


def per_sequence(q, k, v, bounds: list[int], scale: float, window: tuple[int, int] = (-1, -1)):
    """The replaced algorithm: one causal attention per document, concatenated."""
    parts = [fa._attend(q[a:b].transpose(0, 1)[None], k[a:b].transpose(0, 1)[None], v[a:b].transpose(0, 1)[None],
                        scale, True, window, 0.0, False)[0][0].transpose(0, 1)
             for a, b in zip(bounds, bounds[1:]) if b > a]
    return torch.cat(parts)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, reps: int) -> float:
    """Median seconds of fn() after one warm-up call."""
    fn()
    _sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def rel_err(got, want) -> float:
    got, want = got.double(), want.double()
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


def fwd_bwd(fn, leaves, grad):
    for t in leaves:
        t.grad = None
    out = fn(*leaves)
    out.backward(grad)
    return out.detach(), [t.grad.detach().clone() for t in leaves]


def check_varlen(args, dtype, tol: float) -> dict:
    bounds, longest = document_bounds(args.tokens, args.docs, args.max_len, args.seed)
    cu = torch.tensor(bounds, dtype=torch.int32, device=args.device)
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    shape_q, shape_kv = (args.tokens, args.heads, args.dim), (args.tokens, args.kv_heads, args.dim)
    q, k, v, grad = (torch.randn(s, generator=g).to(args.device, dtype) for s in (shape_q, shape_kv, shape_kv, shape_q))
    scale = 1.0 / math.sqrt(args.dim)

    window = (args.window, -1)

    def new(q, k, v):
        return fa.flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, causal=True, window_size=window)

    def old(q, k, v):
        return per_sequence(q, k, v, bounds, scale, window)

    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    out_new, grads_new = fwd_bwd(new, leaves, grad)
    out_old, grads_old = fwd_bwd(old, leaves, grad)
    errors = {"out": rel_err(out_new, out_old)}
    errors.update({f"d{name}": rel_err(a, b) for name, a, b in zip("qkv", grads_new, grads_old)})
    result = {"docs": sum(1 for a, b in zip(bounds, bounds[1:]) if b > a), "cu_len": len(bounds),
              "longest": longest, "rel_err": errors, "ok": all(e <= tol for e in errors.values())}
    with torch.no_grad():
        result["fwd_s"] = {"bucketed": timed(lambda: new(q, k, v), args.device, args.reps),
                           "per_sequence": timed(lambda: old(q, k, v), args.device, args.reps)}
    result["fwd_bwd_s"] = {"bucketed": timed(lambda: fwd_bwd(new, leaves, grad), args.device, args.reps),
                           "per_sequence": timed(lambda: fwd_bwd(old, leaves, grad), args.device, args.reps)}
    plan = fa._plan(bounds, bounds, q.device, args.heads, args.window, 0, False)
    result["chunks"] = [{"n": c.n, "len": c.lq, "kind": c.kind} for c in plan.chunks]
    result["padded_over_real"] = sum(c.n * c.lq for c in plan.chunks) / args.tokens
    return result


def check_dense_gqa(args, dtype, tol: float) -> dict:
    """flash_attn_func with fewer kv heads: SDPA's enable_gqa against k/v copied per query head."""
    batch, seq = max(1, args.tokens // args.max_len), args.max_len
    g = torch.Generator(device="cpu").manual_seed(args.seed + 1)
    q = torch.randn(batch, seq, args.heads, args.dim, generator=g).to(args.device, dtype)
    k, v = (torch.randn(batch, seq, args.kv_heads, args.dim, generator=g).to(args.device, dtype) for _ in range(2))
    group = args.heads // args.kv_heads

    def copied():
        return fa.flash_attn_func(q, k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2),
                                  causal=True)

    with torch.no_grad():
        err = rel_err(fa.flash_attn_func(q, k, v, causal=True), copied())
        return {"shape": [batch, seq, args.heads, args.kv_heads, args.dim], "rel_err": err, "ok": err <= tol,
                "enable_gqa": fa._gqa_in_kernel(q.transpose(1, 2), None),
                "fwd_s": {"gqa": timed(lambda: fa.flash_attn_func(q, k, v, causal=True), args.device, args.reps),
                          "copied": timed(copied, args.device, args.reps)}}


def check_compile(args, dtype, tol: float) -> dict:
    """A projection + varlen attention block under torch.compile(fullgraph=True), against eager."""
    bounds, longest = document_bounds(args.tokens, args.docs, args.max_len, args.seed)
    cu = torch.tensor(bounds, dtype=torch.int32, device=args.device)
    width = args.heads * args.dim
    kv_width = args.kv_heads * args.dim
    g = torch.Generator(device="cpu").manual_seed(args.seed + 2)
    x = torch.randn(args.tokens, width, generator=g).to(args.device, dtype)
    weight = (torch.randn(width + 2 * kv_width, width, generator=g) / math.sqrt(width)).to(args.device, dtype)

    def block(x, w):
        q, k, v = (x @ w.T).split([width, kv_width, kv_width], dim=-1)
        out = fa.flash_attn_varlen_func(q.reshape(-1, args.heads, args.dim), k.reshape(-1, args.kv_heads, args.dim),
                                        v.reshape(-1, args.kv_heads, args.dim), cu, cu, longest, longest,
                                        causal=True)
        return out.reshape(-1, width).float().square().mean()

    compiled = torch.compile(block, fullgraph=True)
    leaves = [x.clone().requires_grad_(True), weight.clone().requires_grad_(True)]
    start = time.perf_counter()
    loss = compiled(*leaves)
    loss.backward()
    _sync(args.device)
    first = time.perf_counter() - start
    got = [t.grad.clone() for t in leaves]
    for t in leaves:
        t.grad = None
    want_loss = block(*leaves)
    want_loss.backward()
    errors = {"loss": rel_err(loss.detach(), want_loss.detach()), "dx": rel_err(got[0], leaves[0].grad),
              "dw": rel_err(got[1], leaves[1].grad)}

    def step():
        compiled(*leaves).backward()

    step()                           # a second call can still compile (grads now accumulate): not timed
    return {"first_call_s": first, "step_s": timed(step, args.device, args.reps), "rel_err": errors,
            "ok": all(e <= tol for e in errors.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tokens", type=int, help="packed tokens (cuda 2048*48, cpu 1024)")
    parser.add_argument("--docs", type=int, help="documents in the batch on average (cuda 300, cpu 12)")
    parser.add_argument("--max-len", type=int, help="documents are cut at this length (cuda 2048, cpu 256)")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--dtype", choices=["bf16", "fp32"], help="cuda bf16, cpu fp32")
    parser.add_argument("--reps", type=int, help="timed repetitions (median; cuda 5, cpu 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=-1, help="sliding window (left) for the varlen check: "
                        "the masked path; -1 (default) is plain causal, as the record")
    parser.add_argument("--compile", action="store_true", help="also a fullgraph torch.compile check (inductor)")
    parser.add_argument("--out", help="also write the JSON here (default $OUT/gpu_standin_check.json if OUT is set)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu)")
    gpu = args.device.startswith("cuda")
    args.tokens = args.tokens or (2048 * 48 if gpu else 1024)
    args.docs = args.docs or (300 if gpu else 12)
    args.max_len = args.max_len or (2048 if gpu else 256)
    args.reps = args.reps or (5 if gpu else 1)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype or ("bf16" if gpu else "fp32")]
    tol = BF16_REL_TOL if dtype == torch.bfloat16 else FP32_REL_TOL
    report = {"device": torch.cuda.get_device_name() if gpu else "cpu", "torch": torch.__version__,
              "dtype": str(dtype), "tokens": args.tokens, "window": args.window, "heads": [args.heads, args.kv_heads, args.dim],
              "varlen": check_varlen(args, dtype, tol), "dense_gqa": check_dense_gqa(args, dtype, tol)}
    if args.compile:
        report["compile"] = check_compile(args, dtype, tol)
    report["ok"] = all(part["ok"] for part in report.values() if isinstance(part, dict))
    text = json.dumps(report, indent=1)
    print(text)
    out = args.out or (os.path.join(os.environ["OUT"], "gpu_standin_check.json") if os.environ.get("OUT") else None)
    if out:
        Path(out).write_text(text + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
