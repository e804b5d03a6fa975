"""A stand-in for FlashAttention-3's `flash_attn_interface`, built on torch's scaled_dot_product_attention.

Put on PYTHONPATH inside the sandbox only when the real module is missing (the run report says so). It is
numerically a reference, not a fast kernel: the records' calls run, on any device, with the same maths.

Covers the call forms the records use (FA layout: q (batch, seqlen, heads, dim); k/v may have fewer heads,
GQA): `flash_attn_func(q, k, v, causal=True)`, with `softmax_scale`, `window_size=(left, right)` (-1 is
unbounded), `softcap`, and `flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
max_seqlen_k, ...)` on packed (total, heads, dim) tensors. Causal masks are aligned bottom-right when the
query is shorter than the key, as FlashAttention does; fully masked rows give zeros. `return_attn_probs=True`
returns `(out, softmax_lse)` with lse shaped (batch, heads, seqlen_q) (varlen: (heads, total_q)); the lse is
not differentiated (its gradient is dropped). Performance-only arguments (deterministic, num_splits, pack_gqa,
sm_margin, seqlen hints) are accepted and ignored; FP8 descales and `qv` are refused.

Varlen without a per-sequence loop: the boundaries are read once per call (one host sync), the sequences are
grouped by length into power-of-two buckets (padding < 2x; sequences under MIN_BUCKET tokens share one
bucket), each bucket is gathered into a zero-padded (n, heads, len, dim) batch by one index copy and attended
in one call (a causal or unmasked SDPA when every sequence of the bucket allows it, else SDPA or explicit
softmax under a per-sequence mask), then scattered back. Buckets are split into chunks so no call
materialises more than SCORE_BUDGET attention scores. The backward (an opaque op too) recomputes each chunk
with autograd and SDPA's own backward (on CUDA the flash/efficient kernels' backward, O(len) memory);
autograd is switched back on inside the op's kernel through torch._C._ForceDispatchKeyGuard, and without that
private API the op is not registered (the eager path, differentiable as it stands, is used instead). GQA goes
through SDPA's enable_gqa where a fused kernel takes it (no k/v copies), else k/v are copied per head.
"""

from __future__ import annotations

import contextlib
import math
import sys
import types
from typing import Any, NamedTuple

IGNORED = {"deterministic", "num_splits", "pack_gqa", "sm_margin", "attention_chunk", "alibi_slopes",
           "dropout_p", "rotary_interleaved", "scheduler_metadata"}
REFUSED = {"qv", "q_descale", "k_descale", "v_descale"}
STANDIN = True
MIN_BUCKET = 16            # sequences shorter than this are padded to (at most) this length
SCORE_BUDGET = 1 << 26     # scores (seqs x heads x len_q x len_k) per call where they are materialised
TILED_BUDGET = 1 << 28     # the same for causal/unmasked SDPA chunks (tiled kernels; bounds a math fallback)
PLAN_CACHE = 8             # varlen plans kept (a model's layers share one cu_seqlens per step)


def _check_kwargs(kwargs: dict[str, Any]) -> None:
    for key, value in kwargs.items():
        if key in REFUSED and value is not None:
            raise NotImplementedError(f"flash_attn_interface stand-in: {key} is not supported")
        if key == "dropout_p" and value:
            raise NotImplementedError("flash_attn_interface stand-in: dropout is not supported")
        if key not in IGNORED and key not in REFUSED:
            raise TypeError(f"flash_attn_interface stand-in: unexpected argument {key!r}")


def _check_heads(h: int, hk: int) -> None:
    if hk == 0 or h % hk:
        raise ValueError(f"flash_attn_interface stand-in: {h} query heads not a multiple of {hk} kv heads")


def _window(causal: bool, window) -> tuple[int, int]:
    """(left, right) reach of each query; -1 is unbounded, causal means right = 0."""
    left, right = (int(window[0]), int(window[1])) if window is not None else (-1, -1)
    return left, (0 if causal else right)


def _mask(sq: int, sk: int, causal: bool, window, device):
    """Boolean (sq, sk) mask, True where attention is allowed; None when nothing is masked."""
    import torch

    left, right = _window(causal, window)
    if left < 0 and right < 0:
        return None
    i = torch.arange(sq, device=device)[:, None] + (sk - sq)      # bottom-right alignment
    j = torch.arange(sk, device=device)[None, :]
    allowed = torch.ones(sq, sk, dtype=torch.bool, device=device)
    if right >= 0:
        allowed &= j <= i + right
    if left >= 0:
        allowed &= j >= i - left
    return allowed


def _sdpa_has_gqa() -> bool:
    """torch >= 2.5: SDPA takes enable_gqa=True and broadcasts kv heads without copies."""
    if "gqa" not in _OPS:
        import torch

        try:
            major, minor = (int(part) for part in torch.__version__.split(".")[:2])
        except ValueError:
            major, minor = 0, 0
        _OPS["gqa"] = (major, minor) >= (2, 5)
    return _OPS["gqa"]


def _gqa_in_kernel(q, mask) -> bool:
    """Whether SDPA's enable_gqa reaches a fused kernel: CPU's flash kernel, or CUDA's flash kernel (half
    precision, no mask, head dim <= 256). Elsewhere it falls back to the math kernel: copy k/v instead."""
    import torch

    if not _sdpa_has_gqa():
        return False
    if q.device.type == "cpu":
        return True
    return (q.device.type == "cuda" and mask is None and q.dtype in (torch.float16, torch.bfloat16)
            and q.shape[-1] <= 256 and _fused_gqa_backend_enabled())


def _fused_gqa_backend_enabled() -> bool:
    """Flash or cuDNN SDPA enabled (both take enable_gqa on CUDA). Under torch.compile the flags cannot be
    read (dynamo refuses non-tensor torch.* results): assume yes, which is still correct if neither is
    enabled, because the math kernel also takes enable_gqa."""
    import torch

    if torch.compiler.is_compiling():
        return True
    return torch.backends.cuda.flash_sdp_enabled() or torch.backends.cuda.cudnn_sdp_enabled()


def _sdpa(q, k, v, scale: float, is_causal: bool = False, mask=None):
    """SDPA on (b, h, s, d) tensors; k/v may have fewer heads."""
    import torch.nn.functional as F

    h, hk = q.shape[1], k.shape[1]
    _check_heads(h, hk)
    if h != hk:
        if _gqa_in_kernel(q, mask):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale,
                                                  enable_gqa=True)
        k = k.repeat_interleave(h // hk, dim=1)
        v = v.repeat_interleave(h // hk, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale)


def _softmax_attend(q, k, v, scale: float, softcap: float, mask):
    """Explicit fp32 softmax attention → (out in q's dtype, lse fp32); mask broadcasts to (b, h, sq, sk).

    GQA without copies of k/v: each kv head's query group is folded into the query rows.
    """
    import torch

    b, h, sq, d = q.shape
    hk, sk = k.shape[1], k.shape[2]
    _check_heads(h, hk)
    qf = q.float().reshape(b, hk, (h // hk) * sq, d)
    scores = (torch.matmul(qf, k.float().transpose(-1, -2)) * scale).view(b, h, sq, sk)
    if softcap > 0:
        scores = softcap * torch.tanh(scores / softcap)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    probs = torch.nan_to_num(torch.exp(scores - lse[..., None]), nan=0.0)     # fully masked rows → zeros
    out = torch.matmul(probs.view(b, hk, -1, sk), v.float()).view(b, h, sq, d)
    return out.to(q.dtype), lse


def _attend(q, k, v, scale: float, causal: bool, window, softcap: float, want_lse: bool):
    """q (b, h, sq, d), k/v (b, hk, sk, d) → out (b, h, sq, d) [, lse (b, h, sq)]."""
    _check_heads(q.shape[1], k.shape[1])
    sq, sk = q.shape[2], k.shape[2]
    mask = _mask(sq, sk, causal, window, q.device)
    if not want_lse and softcap <= 0:
        if mask is None:
            return _sdpa(q, k, v, scale), None
        if causal and sq == sk and (window is None or int(window[0]) < 0):
            return _sdpa(q, k, v, scale, is_causal=True), None
    return _softmax_attend(q, k, v, scale, softcap, mask)


def flash_attn_func(q, k, v, softmax_scale: float | None = None, causal: bool = False,
                    window_size: tuple[int, int] = (-1, -1), softcap: float = 0.0,
                    return_attn_probs: bool = False, **kwargs: Any):
    """Dense attention on (batch, seqlen, heads, dim) tensors; see the module docstring."""
    _check_kwargs(kwargs)
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    out, lse = _attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale, causal, window_size,
                       softcap, return_attn_probs)
    out = out.transpose(1, 2).contiguous()
    return (out, lse) if return_attn_probs else out


class _Chunk(NamedTuple):
    """Sequences attended in one call: padded to (n, lq) queries and (n, lk) keys."""

    n: int
    lq: int
    lk: int
    kind: str                 # "causal" / "full": plain SDPA; "masked": per-sequence mask
    q_src: Any                # positions in the flat padded (n * lq) batch ...
    q_dst: Any                # ... and the packed tokens they hold
    k_src: Any
    k_dst: Any
    len_q: Any                # (n,) true lengths, on the device
    len_k: Any


class _Plan(NamedTuple):
    chunks: tuple[_Chunk, ...]
    keyless_q: Any            # query tokens of sequences with no keys (lse -inf), or None


def _bounds(cu_q, cu_k, total_q: int, total_k: int) -> tuple[list[int], list[int]]:
    """Both boundary lists with one host read, checked against the packed lengths."""
    import torch

    if cu_q is cu_k:
        bq = bk = [int(x) for x in cu_q.tolist()]
    else:
        both = torch.cat([cu_q.reshape(-1).long(), cu_k.reshape(-1).to(cu_q.device).long()]).tolist()
        bq, bk = both[:cu_q.numel()], both[cu_q.numel():]
    if len(bq) != len(bk):
        raise ValueError("flash_attn_interface stand-in: cu_seqlens_q and cu_seqlens_k differ in length")
    for name, bounds, total in (("cu_seqlens_q", bq, total_q), ("cu_seqlens_k", bk, total_k)):
        if bounds and (min(bounds) < 0 or max(bounds) > total):
            raise ValueError(f"flash_attn_interface stand-in: {name} points outside the {total} packed tokens")
    return bq, bk


def _flat_index(starts: list[int], lens: list[int], width: int, device):
    """(src, dst): token t of sequence r sits at r * width + t of the padded batch and starts[r] + t packed.

    Built on the device from the per-sequence lists (output_size known: no host sync)."""
    import torch

    lens_t = torch.tensor(lens, dtype=torch.long, device=device)
    total = sum(lens)
    seq = torch.repeat_interleave(torch.arange(len(lens), device=device), lens_t, output_size=total)
    offset = torch.arange(total, device=device) - (torch.cumsum(lens_t, 0) - lens_t)[seq]
    return seq * width + offset, torch.tensor(starts, dtype=torch.long, device=device)[seq] + offset


def _chunk_kind(segs: list[tuple[int, int, int, int]], lk: int, left: int, right: int, explicit: bool) -> str:
    if explicit or left >= 0:
        return "masked"
    if right == 0 and all(s[1] == s[3] for s in segs):
        return "causal"        # right-padded, equal lengths: padded keys lie only after the real queries
    if right < 0 and all(s[3] == lk for s in segs):
        return "full"          # no padded keys; padded queries are dropped
    return "masked"


def _make_chunk(segs: list[tuple[int, int, int, int]], left: int, right: int, explicit: bool, device) -> _Chunk:
    import torch

    lq, lk = max(s[1] for s in segs), max(s[3] for s in segs)
    q_src, q_dst = _flat_index([s[0] for s in segs], [s[1] for s in segs], lq, device)
    if all(s[0] == s[2] and s[1] == s[3] for s in segs):           # self-attention: the keys are the queries
        k_src, k_dst = q_src, q_dst
    else:
        k_src, k_dst = _flat_index([s[2] for s in segs], [s[3] for s in segs], lk, device)
    lens = torch.tensor([[s[1] for s in segs], [s[3] for s in segs]], dtype=torch.long, device=device)
    return _Chunk(len(segs), lq, lk, _chunk_kind(segs, lk, left, right, explicit), q_src, q_dst, k_src, k_dst,
                  lens[0], lens[1])


def _plan(bq: list[int], bk: list[int], device, heads: int, left: int, right: int, explicit: bool) -> _Plan:
    """Bucket the sequences by length (powers of two) and cut the buckets into chunks within the budgets."""
    import torch

    key = (tuple(bq), tuple(bk), str(device), heads, left, right, explicit)
    plans = _OPS.setdefault("plans", {})
    if key in plans:
        return plans[key]
    buckets: dict[int, list[tuple[int, int, int, int]]] = {}
    keyless: list[int] = []
    for q0, q1, k0, k1 in zip(bq, bq[1:], bk, bk[1:]):
        if q1 <= q0:
            continue
        if k1 <= k0:
            keyless.extend(range(q0, q1))
            continue
        size = max(q1 - q0, k1 - k0, MIN_BUCKET)
        buckets.setdefault((size - 1).bit_length(), []).append((q0, q1 - q0, k0, k1 - k0))
    chunks = []
    for _, segs in sorted(buckets.items()):
        lq, lk = max(s[1] for s in segs), max(s[3] for s in segs)
        tiled = _chunk_kind(segs, lk, left, right, explicit) != "masked"
        per = max(1, (TILED_BUDGET if tiled else SCORE_BUDGET) // (heads * lq * lk))
        chunks.extend(_make_chunk(segs[i:i + per], left, right, explicit, device)
                      for i in range(0, len(segs), per))
    plan = _Plan(tuple(chunks), torch.tensor(keyless, dtype=torch.long, device=device) if keyless else None)
    if len(plans) >= PLAN_CACHE:
        plans.clear()
    plans[key] = plan
    return plan


def _pack(x, src, dst, n: int, width: int):
    """Packed (total, heads, dim) → zero-padded (n, heads, width, dim)."""
    flat = x.new_zeros(n * width, x.shape[1], x.shape[2])
    flat.index_copy_(0, src, x.index_select(0, dst))
    return flat.view(n, width, x.shape[1], x.shape[2]).transpose(1, 2)


def _unpacked(padded, src):
    """Padded (n, heads, width, dim) → the real tokens, (tokens, heads, dim) in src order."""
    n, h, width, d = padded.shape
    return padded.transpose(1, 2).reshape(n * width, h, d).index_select(0, src)


def _attend_chunk(qp, kp, vp, c: _Chunk, scale: float, left: int, right: int, softcap: float, want_lse: bool):
    """One padded chunk → out (n, h, lq, d) with padded and fully masked rows zero [, lse (n, h, lq)]."""
    import torch

    if c.kind != "masked":
        return _sdpa(qp, kp, vp, scale, is_causal=c.kind == "causal"), None
    i = torch.arange(c.lq, device=qp.device)[None, :, None]
    j = torch.arange(c.lk, device=qp.device)[None, None, :]
    len_q, len_k = c.len_q[:, None, None], c.len_k[:, None, None]
    diagonal = i + (len_k - len_q)                                  # bottom-right alignment per sequence
    allowed = (i < len_q) & (j < len_k)
    if right >= 0:
        allowed &= j <= diagonal + right
    if left >= 0:
        allowed &= j >= diagonal - left
    live = allowed.any(-1)                                          # (n, lq)
    safe = (allowed | ~live[..., None])[:, None]                    # dead rows attend anywhere, then zeroed
    if want_lse or softcap > 0:
        out, lse = _softmax_attend(qp, kp, vp, scale, softcap, safe)
        lse = lse.masked_fill(~live[:, None], float("-inf"))
    else:
        out, lse = _sdpa(qp, kp, vp, scale, mask=safe), None
    return out * live[:, None, :, None].to(out.dtype), lse


def _varlen_impl(q, k, v, cu_q, cu_k, scale: float, causal: bool, window, softcap: float, want_lse: bool):
    """Attention over packed sequences, a few padded batches per call (see the module docstring)."""
    import torch

    _check_heads(q.shape[1], k.shape[1])
    left, right = _window(causal, window)
    bq, bk = _bounds(cu_q, cu_k, q.shape[0], k.shape[0])
    plan = _plan(bq, bk, q.device, q.shape[1], left, right, want_lse or softcap > 0)
    out = torch.zeros_like(q)
    lse = torch.zeros(q.shape[1], q.shape[0], dtype=torch.float32, device=q.device)
    for c in plan.chunks:
        o, chunk_lse = _attend_chunk(_pack(q, c.q_src, c.q_dst, c.n, c.lq), _pack(k, c.k_src, c.k_dst, c.n, c.lk),
                                     _pack(v, c.k_src, c.k_dst, c.n, c.lk), c, scale, left, right, softcap,
                                     want_lse)
        out.index_copy_(0, c.q_dst, _unpacked(o, c.q_src))
        if want_lse:
            lse.index_copy_(1, c.q_dst, chunk_lse.permute(1, 0, 2).reshape(q.shape[1], -1).index_select(1, c.q_src))
    if want_lse and plan.keyless_q is not None:
        lse.index_fill_(1, plan.keyless_q, float("-inf"))
    return out, lse


_AUTOGRAD_KEYS: list[Any] = []


@contextlib.contextmanager
def _recording():
    """Autograd back on inside a custom op's kernel (the dispatcher excludes it there), grad mode on."""
    import torch

    C = torch._C
    if not _AUTOGRAD_KEYS:
        _AUTOGRAD_KEYS.extend(getattr(C.DispatchKey, name) for name in dir(C.DispatchKey)
                              if name.startswith("Autograd") or name == "ADInplaceOrView")
    exclude = C._dispatch_tls_local_exclude_set()
    for key in _AUTOGRAD_KEYS:
        try:
            exclude = exclude.remove(key)
        except (RuntimeError, TypeError, ValueError):     # alias keys cannot be removed one by one
            pass
    with C._ForceDispatchKeyGuard(C._dispatch_tls_local_include_set(), exclude), torch.enable_grad():
        yield


def _varlen_backward(grad, q, k, v, cu_q, cu_k, scale: float, causal: bool, window, softcap: float):
    """Gradients chunk by chunk: the padded chunk recomputed under autograd, then SDPA's own backward."""
    import torch

    left, right = _window(causal, window)
    bq, bk = _bounds(cu_q, cu_k, q.shape[0], k.shape[0])
    plan = _plan(bq, bk, q.device, q.shape[1], left, right, softcap > 0)
    gq, gk, gv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    with _recording():
        for c in plan.chunks:
            leaves = [_pack(x, src, dst, c.n, width).detach().requires_grad_(True)
                      for x, src, dst, width in ((q, c.q_src, c.q_dst, c.lq), (k, c.k_src, c.k_dst, c.lk),
                                                 (v, c.k_src, c.k_dst, c.lk))]
            out, _ = _attend_chunk(*leaves, c, scale, left, right, softcap, False)
            if out.grad_fn is None:
                raise RuntimeError("flash_attn_interface stand-in: autograd could not record the varlen backward")
            dq, dk, dv = torch.autograd.grad(out, leaves, _pack(grad, c.q_src, c.q_dst, c.n, c.lq))
            gq.index_copy_(0, c.q_dst, _unpacked(dq, c.q_src))
            gk.index_add_(0, c.k_dst, _unpacked(dk, c.k_src))
            gv.index_add_(0, c.k_dst, _unpacked(dv, c.k_src))
    return gq, gk, gv


# One registration per process, kept alive outside this module: the file may be loaded twice (as
# `flash_attn_interface` on a PYTHONPATH and as `harness.compat.flash_attn_interface`), and a second
# registration of the same op name, or the garbage collection of the copy that registered it, breaks the op.
_HOLDER = sys.modules.setdefault("_golfaudit_fa_standin_ops", types.ModuleType("_golfaudit_fa_standin_ops"))
_OPS: dict[str, Any] = _HOLDER.__dict__.setdefault("ops", {})


def _varlen_op():
    """The varlen kernel as a torch custom op: opaque to torch.compile(fullgraph=True), like the real FA3."""
    if "varlen" in _OPS:
        return _OPS["varlen"]
    import torch

    if not hasattr(getattr(torch, "library", None), "custom_op") or not hasattr(torch._C, "_ForceDispatchKeyGuard"):
        _OPS["varlen"] = None
        return None
    args = "Tensor q, Tensor k, Tensor v, Tensor cu_q, Tensor cu_k, float scale, bool causal, int left, int right, " \
           "float softcap"

    @torch.library.custom_op("golfaudit_fa_standin::varlen_fwd", mutates_args=(),
                             schema=f"({args}, bool want_lse) -> (Tensor, Tensor)")
    def varlen_fwd(q, k, v, cu_q, cu_k, scale, causal, left, right, softcap, want_lse):
        return _varlen_impl(q, k, v, cu_q, cu_k, scale, causal, (left, right), softcap, want_lse)

    @varlen_fwd.register_fake
    def _(q, k, v, cu_q, cu_k, scale, causal, left, right, softcap, want_lse):
        return torch.empty_like(q), q.new_empty((q.shape[1], q.shape[0]), dtype=torch.float32)

    @torch.library.custom_op("golfaudit_fa_standin::varlen_bwd", mutates_args=(),
                             schema=f"(Tensor grad, {args}) -> (Tensor, Tensor, Tensor)")
    def varlen_bwd(grad, q, k, v, cu_q, cu_k, scale, causal, left, right, softcap):
        return _varlen_backward(grad, q, k, v, cu_q, cu_k, scale, causal, (left, right), softcap)

    @varlen_bwd.register_fake
    def _(grad, q, k, v, cu_q, cu_k, scale, causal, left, right, softcap):
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)

    def setup_context(ctx, inputs, output):
        q, k, v, cu_q, cu_k, scale, causal, left, right, softcap, _ = inputs
        ctx.save_for_backward(q, k, v, cu_q, cu_k)
        ctx.params = (scale, causal, left, right, softcap)

    def backward(ctx, grad_out, grad_lse):
        q, k, v, cu_q, cu_k = ctx.saved_tensors
        gq, gk, gv = varlen_bwd(grad_out.contiguous(), q, k, v, cu_q, cu_k, *ctx.params)
        return gq, gk, gv, None, None, None, None, None, None, None, None

    varlen_fwd.register_autograd(backward, setup_context=setup_context)
    _OPS["varlen"] = varlen_fwd
    return varlen_fwd


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q: int | None = None,
                           max_seqlen_k: int | None = None, seqused_q=None, seqused_k=None,
                           softmax_scale: float | None = None, causal: bool = False,
                           window_size: tuple[int, int] = (-1, -1), softcap: float = 0.0,
                           return_attn_probs: bool = False, **kwargs: Any):
    """Attention over packed sequences: q (total_q, heads, dim), boundaries in cu_seqlens_q/k.

    The padded lengths come from cu_seqlens itself (read once per call for the bucketing), so the
    max_seqlen hints are not needed and not trusted.
    """
    _check_kwargs(kwargs)
    if seqused_q is not None or seqused_k is not None:
        raise NotImplementedError("flash_attn_interface stand-in: seqused_q/seqused_k are not supported")
    scale = float(softmax_scale) if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    left, right = (int(window_size[0]), int(window_size[1])) if window_size is not None else (-1, -1)
    op = _varlen_op()
    if op is not None:
        out, lse = op(q, k, v, cu_seqlens_q, cu_seqlens_k, scale, bool(causal), left, right, float(softcap),
                      bool(return_attn_probs))
    else:          # differentiable as it stands (index copies and SDPA under autograd), not compilable
        out, lse = _varlen_impl(q, k, v, cu_seqlens_q, cu_seqlens_k, scale, causal, (left, right), softcap,
                                return_attn_probs)
    return (out, lse) if return_attn_probs else out


# Register the custom op now: registering it lazily inside a torch.compile(fullgraph=True) region fails
# (dynamo will not trace torch.library.Library.__init__), and records compile their whole model.
try:
    _varlen_op()
except ImportError:          # no torch: the module stays importable, calls will fail clearly
    pass
