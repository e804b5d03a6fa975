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


# ----------------------------------------------------------------------------- scripts/gpu_eval_coverage.py
# (the driver of the adapter coverage run; its GPU part is run by the lead, these are its CPU pieces)

def _coverage_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "gpu_eval_coverage.py"
    spec = importlib.util.spec_from_file_location("gpu_eval_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_coverage_slots_spread_over_gpus_and_reasons_are_grouped():
    cov = _coverage_module()
    q = cov._slots(4, 2)
    assert [q.get() for _ in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    table = cov.reasons_table([{"record": "a", "ok": False, "reason": "timeout 120s"},
                               {"record": "b", "ok": False, "reason": "timeout 120s"},
                               {"record": "c", "ok": False, "reason": "AdapterError: x: needs an adapter: y"},
                               {"record": "d", "ok": False, "reason": "KeyError: 'w'"},
                               {"record": "e", "ok": True}])
    rows = table.splitlines()[1:]
    assert rows[0].split()[:2] == ["timeout", "2"] and "a, b" in rows[0]
    assert any(r.startswith("needs an adapter") and r.rstrip().endswith("c") for r in rows)
    assert any(r.startswith("error: KeyError") for r in rows) and "e" not in " ".join(rows).split()


def test_coverage_fake_data_has_every_path_and_an_identity_pyminify(tmp_path):
    import subprocess

    cov = _coverage_module()
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "fineweb_1024_bpe.model").write_bytes(b"model")
    cov.make_fake_data(tmp_path, tok)
    d = tmp_path / "data"
    for name in cov.VARIANTS:
        assert (d / "datasets" / f"fineweb10B_{name}" / "fineweb_val_000000.bin").stat().st_size > 1000
    nested = d / "datasets" / "fineweb10B_sp8192_caseops" / "datasets"
    assert (nested / "datasets" / "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved" / "fineweb_train_000000.bin").exists()
    assert (nested / "tokenizers" / "fineweb_1024_bpe.model").read_bytes() == b"model"
    out = subprocess.run([str(tmp_path / "bin" / "pyminify"), "-"], input=b"x = 1\n", capture_output=True)
    assert out.stdout == b"x = 1\n"


def test_coverage_speedups_keep_formats_and_make_compile_the_identity():
    """In a fresh process (they patch modules): low-level compressors still round-trip, compile is a no-op."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = (
        "import sys, zlib, lzma; sys.path.insert(0, sys.argv[1])\n"
        "import gpu_eval_coverage as c; sys.path.insert(0, sys.argv[2])\n"
        "from harness.evaluate.fastcodec import fast_compressors; fast_compressors().__enter__()\n"
        "data = bytes(range(256)) * 4000\n"
        "assert zlib.decompress(zlib.compress(data, 9)) == data\n"
        "assert lzma.decompress(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)) == data\n"
        "import zstandard\n"
        "blob = zstandard.ZstdCompressor(level=22).compress(data)\n"
        "assert zstandard.ZstdDecompressor().decompress(blob) == data\n"
        "assert zstandard.decompress(zstandard.compress(data, 22)) == data\n"
        "import torch; c._no_compile()\n"
        "f = lambda x: x + 1\n"
        "assert torch.compile(f) is f and torch.compile(f, fullgraph=True, dynamic=False) is f\n"
        "assert torch.compile(mode='max-autotune')(f) is f\n"
        "m = torch.nn.Linear(2, 2); assert torch.compile(m) is m\n"
        "import gc; gc.collect(); print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code, str(root / "scripts"), str(root)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_coverage_caps_calibration_generators_only():
    import types

    cov = _coverage_module()
    mod = types.ModuleType("rec")
    seen = {}

    def generate_autoregressive_calib(model, device, num_seqs=64, seq_len=2048, temperature=0.8, batch_size=8):
        seen.update(num_seqs=num_seqs, seq_len=seq_len, temperature=temperature, batch_size=batch_size)
        return "tokens"

    def generate(model, n=100):
        return n

    mod.generate_autoregressive_calib, mod.generate = generate_autoregressive_calib, generate
    assert cov._small_calibration(mod) == ["generate_autoregressive_calib"]
    assert mod.generate_autoregressive_calib(None, "cpu", num_seqs=64, temperature=0.5) == "tokens"
    assert seen == {"num_seqs": 2, "seq_len": 64, "temperature": 0.5, "batch_size": 2}
    assert mod.generate(None) == 100


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_eager_rounding_scores_as_the_eager_forward_on_cuda():
    """Compiled graphs with eager rounding give the eager forward's BPB under bf16 autocast (measured on a
    record: -8.9e-7 after four TTT chunks, against 1.07e-3 for plain compiled graphs)."""
    torch.manual_seed(0)
    model = TinyGPT(vocab=64).cuda().eval()
    toks = np.random.default_rng(0).integers(0, 64, 2049).astype(np.uint16)
    b = np.ones(2048, dtype=np.int64)
    eager = sliding_eval(model, toks, b, seq_len=256, stride=64, device="cuda")
    rounded = sliding_eval(model, toks, b, seq_len=256, stride=64, device="cuda", compile=True,
                           eager_rounding=True)
    assert rounded.extra["scoring"] == "eager-rounding" and eager.extra["scoring"] == "eager"
    assert rounded.val_bpb == pytest.approx(eager.val_bpb, rel=1e-5)     # H100: 1.7e-6
