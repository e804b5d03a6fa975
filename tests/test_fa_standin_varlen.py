"""The FA3 stand-in's bucketed varlen path against a per-sequence reference, and the GQA dense path."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from tests.test_fa3_standin import fa, window_mask  # noqa: E402  (the stand-in as the sandbox imports it)

ROOT = Path(__file__).resolve().parent.parent


def sequence_reference(q, k, v, causal=False, scale=None, window=(-1, -1), softcap=0.0):
    """One sequence, float64, written out: q (sq, h, d), k/v (sk, hk, d) → out (sq, h, d), lse (h, sq)."""
    sq, h, d = q.shape
    sk, hk = k.shape[0], k.shape[1]
    scale = scale if scale is not None else 1 / math.sqrt(d)
    heads = torch.arange(h) // (h // hk)
    s = torch.einsum("ihd,jhd->hij", q.double(), k.double()[:, heads]) * scale
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    ok = window_mask(sq, sk, causal, window)
    s = s.masked_fill(~ok, float("-inf"))
    lse = torch.logsumexp(s, -1) if sk else torch.full((h, sq), float("-inf"), dtype=torch.float64)
    live = ok.any(-1)[:, None]
    p = torch.where(live, torch.softmax(torch.where(live, s, 0.0), -1), 0.0)     # no NaN, not even in grads
    return torch.einsum("hij,jhd->ihd", p, v.double()[:, heads]), lse


def varlen_reference(q, k, v, cu_q, cu_k, **kwargs):
    """The old stand-in's algorithm: one attention per sequence, tokens outside every sequence stay zero."""
    out = torch.zeros(q.shape, dtype=torch.float64)
    lse = torch.zeros(q.shape[1], q.shape[0], dtype=torch.float64)
    bq, bk = cu_q.tolist(), cu_k.tolist()
    for q0, q1, k0, k1 in zip(bq, bq[1:], bk, bk[1:]):
        if q1 > q0:
            o, seq_lse = sequence_reference(q[q0:q1], k[k0:max(k0, k1)], v[k0:max(k0, k1)], **kwargs)
            out = out.index_copy(0, torch.arange(q0, q1), o)
            lse[:, q0:q1] = seq_lse
    return out, lse


def _cu(lengths, pad_to=0):
    bounds = [0]
    for n in lengths:
        bounds.append(bounds[-1] + n)
    bounds += [bounds[-1]] * max(0, pad_to - len(bounds))       # trailing empty sequences, as records pad
    return torch.tensor(bounds, dtype=torch.int32)


def _tensors(total_q, total_k, h=4, hk=2, d=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(total_q, h, d, generator=g, dtype=dtype), torch.randn(total_k, hk, d, generator=g, dtype=dtype),
            torch.randn(total_k, hk, d, generator=g, dtype=dtype))


def _mixed_lengths(count, seed, longest=40):
    rng = random.Random(seed)
    lengths = [rng.choice([1, 1, 2, 3, 5, 8, 13, 17, 31, longest]) for _ in range(count)]
    lengths[rng.randrange(count)] = 0                              # an empty sequence in the middle
    return lengths


CASES = {
    "causal-equal": ({"causal": True}, False),
    "full-equal": ({"causal": False}, False),
    "causal-q-shorter-or-longer": ({"causal": True}, True),
    "full-q-k-differ": ({"causal": False}, True),
    "window-left": ({"causal": True, "window_size": (3, -1)}, False),
    "window-both-differ": ({"causal": False, "window_size": (2, 1)}, True),
    "softcap": ({"causal": True, "softcap": 2.5}, False),
    "softcap-window-differ": ({"causal": True, "softcap": 4.0, "window_size": (5, -1)}, True),
    "scale": ({"causal": True, "softmax_scale": 0.2}, False),
}


def _case_inputs(differ: bool, seed: int, h=4, hk=2):
    lengths_q = _mixed_lengths(24, seed)
    lengths_k = list(lengths_q)
    if differ:
        rng = random.Random(seed + 1)
        lengths_k = [max(0, n + rng.choice([-3, -1, 0, 2, 7])) for n in lengths_q]
        lengths_k[3] = 0                                          # queries with no keys at all
    cu_q, cu_k = _cu(lengths_q, pad_to=32), _cu(lengths_k, pad_to=32)
    q, k, v = _tensors(int(cu_q[-1]) + 3, int(cu_k[-1]), h=h, hk=hk, seed=seed)   # 3 tokens outside every seq
    return q, k, v, cu_q, cu_k


def _reference_kwargs(kwargs):
    return {"causal": kwargs.get("causal", False), "scale": kwargs.get("softmax_scale"),
            "window": kwargs.get("window_size", (-1, -1)), "softcap": kwargs.get("softcap", 0.0)}


HEADS = [pytest.param(name, (4, 2), id=f"{name}-gqa") for name in sorted(CASES)] + [
    pytest.param(name, (2, 2), id=f"{name}-mha") for name in ("causal-equal", "window-both-differ", "softcap")]


@pytest.mark.parametrize("name,heads", HEADS)
def test_varlen_forward_backward_and_lse_match_per_sequence_reference(name, heads):
    kwargs, differ = CASES[name]
    q, k, v, cu_q, cu_k = _case_inputs(differ, seed=len(name), h=heads[0], hk=heads[1])
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    out, lse = fa.flash_attn_varlen_func(*leaves, cu_q, cu_k, 64, 64, return_attn_probs=True, **kwargs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    (out * weights).sum().backward()
    ref_leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    ref, ref_lse = varlen_reference(*ref_leaves, cu_q, cu_k, **_reference_kwargs(kwargs))
    (ref * weights).sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lse.double(), ref_lse, rtol=1e-5, atol=1e-5)
    for got, want in zip(leaves, ref_leaves):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-6, atol=1e-6)
    plain = fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, **kwargs)   # no lse: the SDPA paths
    torch.testing.assert_close(plain, ref, rtol=1e-6, atol=1e-6)


def test_fully_masked_rows_are_zero_and_lse_minus_inf():
    q, k, v = _tensors(6, 3)
    cu_q, cu_k = torch.tensor([0, 6], dtype=torch.int32), torch.tensor([0, 3], dtype=torch.int32)
    out, lse = fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, causal=True, return_attn_probs=True)
    assert torch.all(out[:3] == 0) and torch.isfinite(out).all()
    assert torch.all(torch.isinf(lse[:, :3])) and torch.isfinite(lse[:, 3:]).all()


def test_float32_matches_reference():
    q, k, v, cu_q, cu_k = _case_inputs(False, seed=3)
    q, k, v = (t.float() for t in (q, k, v))
    out = fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, causal=True)
    ref, _ = varlen_reference(q, k, v, cu_q, cu_k, causal=True)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_buckets_keep_padding_under_twice_for_one_long_and_many_short():
    lengths = [2000] + [random.Random(i).randint(1, 70) for i in range(300)]
    bounds = _cu(lengths).tolist()
    plan = fa._plan(bounds, bounds, torch.device("cpu"), 8, -1, 0, False)
    padded = sum(c.n * c.lq for c in plan.chunks)
    real = sum(max(n, fa.MIN_BUCKET) for n in lengths)
    assert padded < 2 * real
    assert len(plan.chunks) <= 12                              # a few padded batches, not one call per sequence
    assert all(c.kind == "causal" for c in plan.chunks)        # equal lengths, causal: no mask anywhere
    assert sorted(int(t) for c in plan.chunks for t in c.q_dst) == list(range(sum(lengths)))


def test_budget_splits_buckets_into_chunks_with_the_same_result(monkeypatch):
    q, k, v, cu_q, cu_k = _case_inputs(True, seed=11)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    whole = fa.flash_attn_varlen_func(*leaves, cu_q, cu_k, causal=True, window_size=(4, -1))
    whole.sum().backward()
    monkeypatch.setitem(fa._OPS, "plans", {})
    monkeypatch.setattr(fa, "SCORE_BUDGET", 1)
    monkeypatch.setattr(fa, "TILED_BUDGET", 1)
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    assert len(fa._plan(bounds_q, bounds_k, q.device, 4, 4, 0, False).chunks) > 10
    split = [t.clone().requires_grad_(True) for t in (q, k, v)]
    out = fa.flash_attn_varlen_func(*split, cu_q, cu_k, causal=True, window_size=(4, -1))
    out.sum().backward()
    torch.testing.assert_close(out, whole, rtol=1e-9, atol=1e-9)
    for got, want in zip(split, leaves):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-9, atol=1e-9)


def test_bad_boundaries_are_refused():
    q, k, v = _tensors(8, 8)
    with pytest.raises(ValueError, match="differ in length"):
        fa.flash_attn_varlen_func(q, k, v, torch.tensor([0, 4, 8]), torch.tensor([0, 8]), causal=True)
    with pytest.raises(ValueError, match="outside the 8 packed tokens"):
        fa.flash_attn_varlen_func(q, k, v, torch.tensor([0, 4, 9]), torch.tensor([0, 4, 8]), causal=True)


def _old_attend(q, k, v, scale, causal, window, softcap, want_lse):
    """The dense path as it was before GQA went to SDPA: k/v copied per query head."""
    h, hk = q.shape[1], k.shape[1]
    k = k.repeat_interleave(h // hk, dim=1)
    v = v.repeat_interleave(h // hk, dim=1)
    mask = fa._mask(q.shape[2], k.shape[2], causal, window, q.device)
    if not want_lse and softcap <= 0:
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, scale=scale), None
        if causal and q.shape[2] == k.shape[2] and window[0] < 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale), None
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    if softcap > 0:
        scores = softcap * torch.tanh(scores / softcap)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    probs = torch.nan_to_num(torch.exp(scores - lse[..., None]), nan=0.0)
    return torch.matmul(probs, v.float()).to(q.dtype), lse


@pytest.mark.parametrize("args", [
    (True, (-1, -1), 0.0, False), (False, (-1, -1), 0.0, False), (True, (3, -1), 0.0, False),
    (True, (-1, -1), 3.0, False), (True, (-1, -1), 0.0, True), (False, (2, 2), 0.0, True),
], ids=["causal", "full", "window", "softcap", "lse", "window-lse"])
def test_dense_gqa_without_copies_equals_the_repeat_interleave_path(args):
    causal, window, softcap, want_lse = args
    g = torch.Generator().manual_seed(5)
    q = torch.randn(2, 8, 33, 16, generator=g)
    k, v = torch.randn(2, 2, 33, 16, generator=g), torch.randn(2, 2, 33, 16, generator=g)
    out, lse = fa._attend(q, k, v, 0.25, causal, window, softcap, want_lse)
    old, old_lse = _old_attend(q, k, v, 0.25, causal, window, softcap, want_lse)
    assert (out - old).abs().max().item() <= 1e-6
    if want_lse:
        assert (lse - old_lse).abs().max().item() <= 1e-6


def test_fullgraph_compile_with_uneven_lengths_window_and_gqa():
    lengths = [1, 9, 3, 17, 2]
    cu = _cu(lengths, pad_to=8)
    q, k, v = _tensors(32, 32, dtype=torch.float32)

    def attn(q, k, v):
        return fa.flash_attn_varlen_func(q, k, v, cu, cu, 17, 17, causal=True, window_size=(4, -1))

    compiled = torch.compile(attn, fullgraph=True, backend="aot_eager")
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    got = compiled(*leaves)
    got.pow(2).sum().backward()
    eager = [t.clone().requires_grad_(True) for t in (q, k, v)]
    want = attn(*eager)
    want.pow(2).sum().backward()
    torch.testing.assert_close(got, want)
    for a, b in zip(leaves, eager):
        torch.testing.assert_close(a.grad, b.grad)


def test_timing_new_against_per_sequence_loop_on_cpu(capsys):
    """A print, not an assertion: 64 mixed-length sequences, 8192 tokens, 8/4 heads, dim 64, fp32."""
    rng = random.Random(0)
    cuts = sorted(rng.sample(range(1, 8192), 63))
    lengths = [b - a for a, b in zip([0] + cuts, cuts + [8192])]
    cu = _cu(lengths)
    q, k, v = _tensors(8192, 8192, h=8, hk=4, d=64, dtype=torch.float32)
    warm = torch.tensor([0, 100, 256], dtype=torch.int32)
    fa.flash_attn_varlen_func(q[:256], k[:256], v[:256], warm, warm, causal=True)   # first-call set-up, not timed

    def per_sequence(q, k, v):
        bounds = cu.tolist()
        parts = [fa._attend(q[a:b].transpose(0, 1)[None], k[a:b].transpose(0, 1)[None],
                            v[a:b].transpose(0, 1)[None], 0.125, True, (-1, -1), 0.0, False)[0][0].transpose(0, 1)
                 for a, b in zip(bounds, bounds[1:])]
        return torch.cat(parts)

    def new(q, k, v):
        return fa.flash_attn_varlen_func(q, k, v, cu, cu, max(lengths), max(lengths), causal=True)

    timings = {}
    for name, fn in (("per-sequence", per_sequence), ("bucketed", new)):
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        start = time.perf_counter()                           # cold plan: a new cu_seqlens every step
        out = fn(*leaves)
        out.sum().backward()
        timings[name] = (time.perf_counter() - start, out.detach())
    torch.testing.assert_close(timings["bucketed"][1], timings["per-sequence"][1], rtol=1e-5, atol=1e-5)
    with capsys.disabled():
        print(f"\nvarlen fwd+bwd on CPU, 64 seqs / 8192 tokens (max {max(lengths)}, min {min(lengths)}): "
              f"per-sequence {timings['per-sequence'][0]:.3f}s, bucketed {timings['bucketed'][0]:.3f}s "
              f"(noisy: shared CPU)")


def test_gpu_check_script_runs_on_cpu_with_small_sizes(tmp_path):
    """scripts/gpu_standin_check.py is for the GPU machine; its CPU mode must work as well."""
    script = importlib.util.spec_from_file_location("gpu_standin_check", ROOT / "scripts" / "gpu_standin_check.py")
    module = importlib.util.module_from_spec(script)
    script.loader.exec_module(module)
    out = tmp_path / "check.json"
    code = module.main(["--device", "cpu", "--tokens", "384", "--docs", "8", "--max-len", "96", "--out", str(out)])
    report = json.loads(out.read_text())
    assert code == 0 and report["ok"]
    assert report["varlen"]["docs"] >= 4 and max(report["varlen"]["rel_err"].values()) < 1e-4
    assert report["varlen"]["cu_len"] % 64 == 0                  # padded with empty sequences, as the record does


@pytest.mark.slow
def test_inductor_fullgraph_compile_matches_eager():
    """The records compile with inductor: the op and its backward inside an inductor graph (about 20 s)."""
    cu = _cu([1, 9, 3, 17, 2], pad_to=8)
    q, k, v = _tensors(32, 32, dtype=torch.float32)

    def attn(q, k, v):
        return fa.flash_attn_varlen_func(q * 2, k, v, cu, cu, 17, 17, causal=True).sin()

    compiled = torch.compile(attn, fullgraph=True)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    got = compiled(*leaves)
    got.sum().backward()
    eager = [t.clone().requires_grad_(True) for t in (q, k, v)]
    want = attn(*eager)
    want.sum().backward()
    torch.testing.assert_close(got, want)
    for a, b in zip(leaves, eager):
        torch.testing.assert_close(a.grad, b.grad)


def test_dense_gqa_copies_kv_where_sdpa_lacks_enable_gqa(monkeypatch):
    """torch < 2.5 (no enable_gqa): the k/v copies come back, with the same result."""
    g = torch.Generator().manual_seed(6)
    q, k, v = torch.randn(1, 6, 20, 8, generator=g), torch.randn(1, 3, 20, 8, generator=g), torch.randn(1, 3, 20, 8, generator=g)
    with_gqa, _ = fa._attend(q, k, v, 0.3, True, (-1, -1), 0.0, False)
    monkeypatch.setitem(fa._OPS, "gqa", False)
    assert not fa._gqa_in_kernel(q, None)
    copied, _ = fa._attend(q, k, v, 0.3, True, (-1, -1), 0.0, False)
    assert (with_gqa - copied).abs().max().item() <= 1e-6


def test_without_the_custom_op_the_same_code_is_differentiable_directly(monkeypatch):
    """torch without torch.library.custom_op: the eager path, backward by plain autograd, same numbers."""
    q, k, v, cu_q, cu_k = _case_inputs(True, seed=4)
    by_op = [t.clone().requires_grad_(True) for t in (q, k, v)]
    fa.flash_attn_varlen_func(*by_op, cu_q, cu_k, causal=True, window_size=(6, -1)).pow(2).sum().backward()
    monkeypatch.setattr(fa, "_varlen_op", lambda: None)
    plain = [t.clone().requires_grad_(True) for t in (q, k, v)]
    fa.flash_attn_varlen_func(*plain, cu_q, cu_k, causal=True, window_size=(6, -1)).pow(2).sum().backward()
    for a, b in zip(by_op, plain):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9)
