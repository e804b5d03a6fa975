"""The FA3 stand-in against a plain reference attention written out here, on the CPU."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

PATH = Path(__file__).resolve().parent.parent / "harness" / "compat" / "flash_attn_interface.py"
spec = importlib.util.spec_from_file_location("flash_attn_interface", PATH)
fa = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fa)
sys.modules.setdefault("flash_attn_interface", fa)     # as on the sandbox's PYTHONPATH; dynamo re-imports it


def window_mask(sq, sk, causal=False, window=(-1, -1)):
    """[sq, sk] bool: query i may attend key j (bottom-right aligned; causal, then the (left, right) window)."""
    i = torch.arange(sq)[:, None] + (sk - sq)
    j = torch.arange(sk)[None, :]
    left, right = window
    if causal:
        right = 0
    ok = torch.ones(sq, sk, dtype=torch.bool)
    if right >= 0:
        ok &= j <= i + right
    if left >= 0:
        ok &= j >= i - left
    return ok


def reference(q, k, v, causal=False, scale=None, window=(-1, -1), softcap=0.0):
    """Loop-free but naive: FA layout (b, s, h, d), GQA by head index, bottom-right causal alignment."""
    b, sq, h, d = q.shape
    sk, hk = k.shape[1], k.shape[2]
    scale = scale if scale is not None else 1 / math.sqrt(d)
    out = torch.zeros(b, sq, h, d, dtype=torch.float64)
    lse = torch.zeros(b, h, sq, dtype=torch.float64)
    for head in range(h):
        kh = head // (h // hk)
        s = torch.einsum("bid,bjd->bij", q[:, :, head].double(), k[:, :, kh].double()) * scale
        if softcap:
            s = softcap * torch.tanh(s / softcap)
        s = s.masked_fill(~window_mask(sq, sk, causal, window), float("-inf"))
        lse[:, head] = torch.logsumexp(s, -1)
        p = torch.nan_to_num(torch.softmax(s, -1), nan=0.0)
        out[:, :, head] = torch.einsum("bij,bjd->bid", p, v[:, :, kh].double())
    return out, lse


def _qkv(b=2, sq=12, sk=12, h=4, hk=2, d=8, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)

    def make(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(grad)

    return make(b, sq, h, d), make(b, sk, hk, d), make(b, sk, hk, d)


@pytest.mark.parametrize("kwargs", [
    {"causal": True}, {"causal": False}, {"causal": True, "softmax_scale": 0.3},
    {"causal": True, "window_size": (3, -1)}, {"causal": False, "window_size": (2, 2)},
    {"causal": True, "softcap": 5.0}, {"causal": True, "window_size": (-1, -1), "deterministic": True},
], ids=["causal", "full", "scale", "window-left", "window-both", "softcap", "ignored-kwarg"])
def test_dense_matches_reference(kwargs):
    q, k, v = _qkv()
    out = fa.flash_attn_func(q, k, v, **kwargs)
    ref, _ = reference(q, k, v, causal=kwargs.get("causal", False), scale=kwargs.get("softmax_scale"),
                       window=kwargs.get("window_size", (-1, -1)), softcap=kwargs.get("softcap", 0.0))
    assert out.shape == q.shape
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)


def test_causal_is_bottom_right_aligned_and_lse_returned():
    q, k, v = _qkv(sq=5, sk=9)
    out, lse = fa.flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    ref, ref_lse = reference(q, k, v, causal=True)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lse.double(), ref_lse, rtol=1e-6, atol=1e-6)


def test_fully_masked_rows_are_zero():
    q, k, v = _qkv(sq=6, sk=3)          # bottom-right causal: the first 3 queries see no key
    out = fa.flash_attn_func(q, k, v, causal=True)
    assert torch.all(out[:, :3] == 0) and torch.isfinite(out).all()


def test_gradients_match_reference():
    q, k, v = _qkv(grad=True)
    fa.flash_attn_func(q, k, v, causal=True).pow(2).sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    reference(q, k, v, causal=True)[0].pow(2).sum().backward()
    for got, want in zip(grads, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_varlen_equals_each_sequence_alone():
    lengths = [5, 1, 9, 3]
    total = sum(lengths)
    q, k, v = (t[0] for t in _qkv(b=1, sq=total, sk=total))
    cu = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0)), dtype=torch.int32)
    out = fa.flash_attn_varlen_func(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=max(lengths),
                                    max_seqlen_k=max(lengths), causal=True, window_size=(-1, -1))
    out_b = fa.flash_attn_varlen_func(q[None][0], k, v, cu, cu, max(lengths), max(lengths), causal=True)
    start = 0
    for n in lengths:
        ref, _ = reference(q[None, start:start + n], k[None, start:start + n], v[None, start:start + n],
                           causal=True)
        torch.testing.assert_close(out[start:start + n], ref[0], rtol=1e-6, atol=1e-6)
        start += n
    torch.testing.assert_close(out, out_b)


def test_varlen_lse_shape_and_bf16_dense():
    q, k, v = (t[0] for t in _qkv(b=1, sq=8, sk=8))
    cu = torch.tensor([0, 3, 8], dtype=torch.int32)
    out, lse = fa.flash_attn_varlen_func(q, k, v, cu, cu, 5, 5, causal=True, return_attn_probs=True)
    assert lse.shape == (q.shape[1], 8)
    qb, kb, vb = (t.to(torch.bfloat16) for t in _qkv())
    got = fa.flash_attn_func(qb, kb, vb, causal=True)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.double(), reference(qb, kb, vb, causal=True)[0], rtol=0.05, atol=0.05)


def test_unsupported_arguments_are_refused():
    q, k, v = _qkv()
    with pytest.raises(NotImplementedError):
        fa.flash_attn_func(q, k, v, causal=True, q_descale=torch.ones(1))
    with pytest.raises(TypeError):
        fa.flash_attn_func(q, k, v, causal=True, bogus=1)


@pytest.mark.parametrize("varlen", [False, True], ids=["dense", "varlen"])
def test_fullgraph_compile_traces_and_matches_eager(varlen):
    """Records compile their model with fullgraph=True: the stand-in must trace without graph breaks."""
    q, k, v = (t[0] for t in _qkv(b=1, sq=10, sk=10, grad=False))
    cu = torch.tensor([0, 4, 10], dtype=torch.int32)

    def attn(q, k, v):
        if varlen:
            return fa.flash_attn_varlen_func(q, k, v, cu, cu, 6, 6, causal=True, window_size=(-1, -1))
        return fa.flash_attn_func(q[None], k[None], v[None], causal=True)[0]

    compiled = torch.compile(attn, fullgraph=True, backend="aot_eager")
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    compiled(*leaves).sum().backward()
    eager = [t.clone().requires_grad_(True) for t in (q, k, v)]
    attn(*eager).sum().backward()
    torch.testing.assert_close(compiled(*leaves), attn(*eager))
    for got, want in zip(leaves, eager):
        torch.testing.assert_close(got.grad, want.grad)


def test_varlen_gradients_match_reference_with_gqa_window_softcap():
    lengths = [4, 7]
    q, k, v = (t[0].clone().requires_grad_(True) for t in _qkv(b=1, sq=11, sk=11))
    cu = torch.tensor([0, 4, 11], dtype=torch.int32)
    out = fa.flash_attn_varlen_func(q, k, v, cu, cu, 7, 7, causal=True, window_size=(2, -1), softcap=3.0)
    out.pow(2).sum().backward()
    got = [t.grad.clone() for t in (q, k, v)]
    ref_leaves = [t.detach().clone().requires_grad_(True) for t in (q, k, v)]
    total = 0
    start = 0
    for n in lengths:
        sl = slice(start, start + n)
        ref, _ = reference(*(t[None, sl] for t in ref_leaves), causal=True, window=(2, -1), softcap=3.0)
        total = total + ref.pow(2).sum()
        start += n
    total.backward()
    for g, leaf in zip(got, ref_leaves):
        torch.testing.assert_close(g, leaf.grad, rtol=1e-6, atol=1e-6)


def test_varlen_op_is_registered_at_import():
    """A first call inside a fullgraph-compiled model must not have to register anything."""
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    assert fresh._OPS.get("varlen") is not None
    assert hasattr(torch.ops.golfaudit_fa_standin, "varlen_fwd")


@pytest.mark.slow
def test_first_call_inside_fullgraph_compile_in_a_fresh_process():
    """The 04-10 record failed this way on the GPU before the op was registered at import."""
    import subprocess

    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import torch, flash_attn_interface as fa\n"
        "q = torch.randn(10, 4, 8, requires_grad=True); k = torch.randn(10, 2, 8); v = torch.randn(10, 2, 8)\n"
        "cu = torch.tensor([0, 4, 10], dtype=torch.int32)\n"
        "f = torch.compile(lambda q: fa.flash_attn_varlen_func(q, k, v, cu, cu, 6, 6, causal=True),\n"
        "                  fullgraph=True, backend='aot_eager')\n"
        "f(q).sum().backward(); print('ok', tuple(q.grad.shape))\n")
    done = subprocess.run([sys.executable, "-c", code, str(PATH.parent)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok (10, 4, 8)" in done.stdout


def test_eval_adapter_installs_this_same_standin():
    """One implementation: the eval adapter's `fa_compat` registers harness/compat's module itself."""
    import subprocess

    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from harness.evaluate import fa_compat\n"
        "import harness.compat.flash_attn_interface as compat\n"
        "first = fa_compat.install()\n"
        "import flash_attn_interface\n"
        "assert flash_attn_interface is compat, flash_attn_interface\n"
        "assert fa_compat.flash_attn_func is compat.flash_attn_func\n"
        "assert fa_compat.flash_attn_varlen_func is compat.flash_attn_varlen_func\n"
        "print('ok', first, fa_compat.install())\n")
    done = subprocess.run([sys.executable, "-c", code, str(PATH.parent.parent.parent)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok True True" in done.stdout
