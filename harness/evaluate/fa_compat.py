"""A stand-in for FlashAttention-3's `flash_attn_interface` on machines without it: the same call
signatures (tensors laid out [batch, seq, heads, head_dim], grouped KV heads allowed) computed with
PyTorch's scaled_dot_product_attention. Registered only when the real module cannot be imported."""

from __future__ import annotations

import sys
import types


def _sdpa(q, k, v, causal: bool, softmax_scale=None):
    import torch.nn.functional as F

    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if kt.size(1) != qt.size(1):
        rep = qt.size(1) // kt.size(1)
        kt = kt.repeat_interleave(rep, dim=1)
        vt = vt.repeat_interleave(rep, dim=1)
    out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal, scale=softmax_scale)
    return out.transpose(1, 2)


def flash_attn_func(q, k, v, softmax_scale=None, causal: bool = False, *args, **kwargs):
    return _sdpa(q, k, v, causal, softmax_scale)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           softmax_scale=None, causal: bool = False, *args, **kwargs):
    """Packed sequences [total, heads, dim] split at `cu_seqlens_q`; attention never crosses a boundary."""
    import torch

    outs = []
    bounds = cu_seqlens_q.tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            outs.append(_sdpa(q[None, a:b], k[None, a:b], v[None, a:b], causal, softmax_scale)[0])
    return torch.cat(outs, 0) if outs else q.new_zeros(q.shape)


def install() -> bool:
    """Make `import flash_attn_interface` work; True when the stand-in was installed."""
    try:
        import flash_attn_interface  # noqa: F401
        return False
    except ImportError:
        pass
    mod = types.ModuleType("flash_attn_interface")
    mod.flash_attn_func = flash_attn_func
    mod.flash_attn_varlen_func = flash_attn_varlen_func
    mod.__golfaudit_standin__ = True
    sys.modules["flash_attn_interface"] = mod
    return True
