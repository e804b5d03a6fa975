"""FA3 stand-in against explicit attention (CPU), and the eval loops on CUDA (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.evaluate.fa_compat import flash_attn_func, flash_attn_varlen_func  # noqa: E402
from harness.evaluate.sliding import sliding_eval  # noqa: E402
from harness.evaluate.toy import TinyGPT  # noqa: E402


def naive(q, k, v, causal):
    rep = q.size(2) // k.size(2)
    k, v = k.repeat_interleave(rep, 2), v.repeat_interleave(rep, 2)
    s = torch.einsum("bthd,bshd->bhts", q, k) / q.size(-1) ** 0.5
    if causal:
        T = q.size(1)
        s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return torch.einsum("bhts,bshd->bthd", s.softmax(-1), v)


def test_fa_standin_matches_explicit_attention_with_gqa():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 10, 4, 8), torch.randn(2, 10, 2, 8), torch.randn(2, 10, 2, 8)
    assert torch.allclose(flash_attn_func(q, k, v, causal=True), naive(q, k, v, True), atol=1e-5)


def test_fa_standin_varlen_never_crosses_documents():
    torch.manual_seed(0)
    q, k, v = torch.randn(12, 4, 8), torch.randn(12, 2, 8), torch.randn(12, 2, 8)
    cu = torch.tensor([0, 5, 12], dtype=torch.int32)
    out = flash_attn_varlen_func(q, k, v, cu, cu, 7, 7, causal=True)
    second = naive(q[None, 5:], k[None, 5:], v[None, 5:], True)[0]
    assert torch.allclose(out[5:], second, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sliding_eval_on_cuda_matches_cpu():
    torch.manual_seed(0)
    model = TinyGPT(vocab=64).eval()
    toks = np.random.default_rng(0).integers(0, 64, 501).astype(np.uint16)
    b = np.ones(500, dtype=np.int64)
    cpu = sliding_eval(model, toks, b, seq_len=64, stride=16)
    gpu = sliding_eval(model.cuda(), toks, b, seq_len=64, stride=16, device="cuda", autocast=False)
    assert gpu.val_bpb == pytest.approx(cpu.val_bpb, rel=1e-4)
