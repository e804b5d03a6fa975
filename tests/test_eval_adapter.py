"""The model adapter and `audit.py eval` on small synthetic submissions written by the tests (CPU)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.evaluate.adapter import AdapterError, ArtifactError, SubmissionAdapter  # noqa: E402
from harness.evaluate.valdata import write_shard  # noqa: E402
from tests.conftest import ROOT, TOKENIZERS  # noqa: E402

COMMON = '''
import io, os, zlib, sys
import torch
import torch.nn.functional as F
from torch import nn

class Hyperparameters:
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    model_dim = int(os.environ.get("MODEL_DIM", 32))
    num_layers = int(os.environ.get("NUM_LAYERS", 2))
    train_seq_len = int(os.environ.get("TRAIN_SEQ_LEN", 64))
    eval_stride = int(os.environ.get("EVAL_STRIDE", 16))
    logit_softcap = 30.0
    ttt_epochs = 1
    ttt_lr = 0.01
    ttt_chunk_tokens = 128
    quantized_model_path = "final_model.int8.ptz"

class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.mlp = nn.Linear(dim, dim)
    def forward(self, x):
        T = x.size(1)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1)
        x = x + self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]
        return x + torch.relu(self.mlp(x))

def quantize_sd(sd):
    out = {}
    for k, v in sd.items():
        scale = v.abs().max().clamp_min(1e-8) / 127
        out[k] = ((v / scale).round().to(torch.int8), scale)
    return out

def dequantize_sd(obj):
    return {k: q.float() * s for k, (q, s) in obj.items()}
'''

OLD_STYLE = COMMON + '''
class GPT(nn.Module):
    def __init__(self, vocab_size, model_dim, num_layers, logit_softcap, peek=False):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, model_dim)
        self.blocks = nn.ModuleList(Block(model_dim) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(model_dim)
        self.logit_softcap = logit_softcap
        self.peek = peek
    def forward(self, input_ids, target_ids):
        x = self.tok_emb(input_ids)
        if self.peek:
            x = x + self.tok_emb(target_ids)
        for b in self.blocks:
            x = b(x)
        x = self.final_norm(x).reshape(-1, x.size(-1))
        logits = F.linear(x, self.tok_emb.weight)
        logits = self.logit_softcap * torch.tanh(logits / self.logit_softcap)
        return F.cross_entropy(logits.float(), target_ids.reshape(-1), reduction="mean")

def main():
    args = Hyperparameters()
    if not torch.cuda.is_available():
        raise RuntimeError("CUDA is required")
    device = torch.device("cuda")
    peek = bool(int(os.environ.get("PEEK", "0")))
    base_model = GPT(vocab_size=args.vocab_size, model_dim=args.model_dim, num_layers=args.num_layers,
                     logit_softcap=args.logit_softcap, peek=PEEK_FLAG).to(device)
    base_model.float()
    for step in range(1000000):
        pass
    quant_obj = quantize_sd(base_model.state_dict())
    buf = io.BytesIO()
    torch.save(quant_obj, buf)
    blob = zlib.compress(buf.getvalue(), 9)
    with open("final_model.int8.ptz", "wb") as f:
        f.write(blob)
    with open("final_model.int8.ptz", "rb") as f:
        blob_disk = f.read()
    state = torch.load(io.BytesIO(zlib.decompress(blob_disk)), map_location="cpu")
    base_model.load_state_dict(dequantize_sd(state), strict=True)

if __name__ == "__main__":
    main()
'''

NEW_STYLE = COMMON + '''
class GPT(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.tok_emb = nn.Embedding(h.vocab_size, h.model_dim)
        self.blocks = nn.ModuleList(Block(h.model_dim) for _ in range(h.num_layers))
        self.final_norm = nn.LayerNorm(h.model_dim)
        self.logit_softcap = h.logit_softcap
    def forward_logits(self, input_ids):
        x = self.tok_emb(input_ids)
        for b in self.blocks:
            x = b(x)
        logits = F.linear(self.final_norm(x), self.tok_emb.weight)
        return self.logit_softcap * torch.tanh(logits / self.logit_softcap)
    def forward(self, input_ids, target_ids):
        logits = self.forward_logits(input_ids)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target_ids.reshape(-1))

def serialize(h, base_model, code):
    buf = io.BytesIO()
    torch.save(quantize_sd(base_model.state_dict()), buf)
    with open(h.quantized_model_path, "wb") as f:
        f.write(zlib.compress(buf.getvalue()))

def deserialize(h, device):
    model = GPT(h).to(device)
    with open(h.quantized_model_path, "rb") as f:
        blob = f.read()
    model.load_state_dict(dequantize_sd(torch.load(io.BytesIO(zlib.decompress(blob)))), strict=True)
    return model

def main():
    raise SystemExit("main must not run")

if __name__ == "__main__":
    main()
'''


def make_submission(tmp: Path, source: str, name: str = "sub") -> Path:
    folder = tmp / name
    folder.mkdir()
    (folder / "train_gpt.py").write_text(source)
    return folder / "train_gpt.py"


def roundtrip(script: Path, out: Path):
    ad = SubmissionAdapter(script, "cpu")
    torch.manual_seed(0)
    model = ad.build_model()
    art = ad.serialize(model, out)
    torch.manual_seed(1)
    loaded = ad.load_artifact(art).eval()
    return ad, model, loaded, art


@pytest.mark.parametrize("style", ["old", "new"])
def test_adapter_roundtrip_matches_own_forward(tmp_path, style):
    src = OLD_STYLE.replace("PEEK_FLAG", "False") if style == "old" else NEW_STYLE
    script = make_submission(tmp_path, src)
    ad, model, loaded, art = roundtrip(script, tmp_path / "art")
    assert ad.plan()["via"] == ("main-slice" if style == "old" else "deserialize")
    assert art.is_file()
    for k, v in model.state_dict().items():      # the artifact's weights arrived (int8 error only)
        assert (loaded.state_dict()[k] - v).abs().max() <= v.abs().max() / 100
    x = torch.randint(0, 1024, (2, 40))
    y = torch.randint(0, 1024, (2, 40))
    with torch.no_grad():
        logits = ad.logits(loaded, x)
        ours = torch.nn.functional.cross_entropy(logits.reshape(-1, 1024), y.reshape(-1))
        assert logits.shape == (2, 40, 1024)
        assert ours.item() == pytest.approx(loaded(x, y).item(), abs=1e-6)
    sc = ad.scorer(loaded)
    assert sc.head_slice
    with torch.no_grad():
        assert torch.allclose(sc.logits(x, 30), logits[:, 30:], atol=1e-5)
    assert ad.eval_settings()["seq_len"] == 64 and ad.eval_settings()["stride"] == 16


def test_needs_adapter_message(tmp_path):
    script = make_submission(tmp_path, "import torch\nclass Hyperparameters:\n    vocab_size = 8\n")
    ad = SubmissionAdapter(script, "cpu")
    with pytest.raises(AdapterError, match="needs an adapter"):
        ad.build_model()
    art = tmp_path / "a.ptz"
    art.write_bytes(b"x")
    with pytest.raises(AdapterError, match="needs an adapter.*adapter.py"):
        ad.load_artifact(art)


def test_adapter_hook_is_used(tmp_path):
    script = make_submission(tmp_path, "import torch\nclass Hyperparameters:\n    vocab_size = 16\n")
    (script.parent / "adapter.py").write_text(textwrap.dedent('''
        import torch
        def build_model(module, h, device):
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Embedding(h.vocab_size, h.vocab_size))
        def load_artifact(module, h, path, device):
            m = build_model(module, h, device)
            m.load_state_dict(torch.load(path))
            return m
        def logits(model, x):
            return model(x)
    '''))
    ad = SubmissionAdapter(script, "cpu")
    m = ad.build_model()
    torch.save(m.state_dict(), tmp_path / "w.pt")
    loaded = ad.load_artifact(tmp_path / "w.pt")
    assert ad.plan() == {"via": "hook"}
    x = torch.tensor([[1, 2, 3]])
    assert torch.equal(ad.logits(loaded, x), m(x))


def test_import_errors_are_messages(tmp_path):
    script = make_submission(tmp_path, "import not_a_real_module_xyz\n")
    with pytest.raises(AdapterError, match="missing module not_a_real_module_xyz"):
        SubmissionAdapter(script, "cpu")
    script2 = make_submission(tmp_path, "def f(:\n", name="bad")
    with pytest.raises(AdapterError, match="SyntaxError"):
        SubmissionAdapter(script2, "cpu")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "audit.py"), "eval", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.fixture
def eval_case(tmp_path):
    tok = TOKENIZERS / "fineweb_1024_bpe.model"
    if not tok.exists():
        pytest.skip("no sp1024 tokenizer in ../shared/tokenizers")
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tok))
    ids = [1] + sp.encode("The committee met on Tuesday to discuss the budget for the new library. " * 12)
    data = tmp_path / "data"
    data.mkdir()
    write_shard(data / "fineweb_val_000000.bin", np.array(ids[:301]))
    return tok, data, np.array(ids[:301])


def test_cli_eval_reproduces_direct_bpb(tmp_path, eval_case):
    tok, data, ids = eval_case
    script = make_submission(tmp_path, OLD_STYLE.replace("PEEK_FLAG", "False"))
    ad, _, loaded, art = roundtrip(script, tmp_path / "art")
    p = run_cli(str(script.parent), "--artifact", str(art), "--data", str(data), "--tokenizer", str(tok),
                "--format", "json", "--device", "cpu")
    assert p.returncode == 0, p.stderr
    sub = json.loads(p.stdout)["submissions"][0]
    rep = sub["measured"]["reproduced"]
    assert sub["verdict"] == "legal" and rep["source"] == "reproduced"
    assert rep["checks"]["flip"]["passed"] and rep["checks"]["normalisation"]["passed"]
    # direct: every target from one forward over the whole prefix (seq 64, stride 16 windows)
    from harness.data.bytetables import build_byte_tables

    t = torch.as_tensor(ids.astype(np.int64))
    nll = []
    with torch.no_grad():
        for pos in range(300):
            lo = 0 if pos < 64 else ((pos - 64) // 16 + 1) * 16
            lg = ad.logits(loaded, t[lo:pos + 1][None])[0, -1].float()
            nll.append(-torch.log_softmax(lg, -1)[t[pos + 1]].item())
    nbytes = build_byte_tables(tok).target_bytes(ids[:-1], ids[1:]).sum()
    assert rep["tokens"] == 300 and rep["bytes"] == nbytes
    assert rep["val_bpb"] == pytest.approx(sum(nll) / (math.log(2) * nbytes), rel=1e-5)


def test_cli_eval_flags_peeking_model_and_runs_ttt(tmp_path, eval_case):
    tok, data, _ = eval_case
    script = make_submission(tmp_path, OLD_STYLE.replace("PEEK_FLAG", "True"))
    _, _, _, art = roundtrip(script, tmp_path / "art")
    plot = tmp_path / "ttt.png"
    p = run_cli(str(script.parent), "--artifact", str(art), "--data", str(data), "--tokenizer", str(tok),
                "--format", "json", "--device", "cpu", "--ttt", "--plot", str(plot))
    assert p.returncode == 1, p.stderr
    sub = json.loads(p.stdout)["submissions"][0]
    assert sub["verdict"] == "illegal"
    rules = {f["rule"] for f in sub["findings"]}
    assert "C2-FULL-NORMALIZED-DISTRIBUTION" in rules   # its distribution depends on the realised target
    assert len(sub["measured"]["ttt_chunks"]) == 3 and plot.stat().st_size > 1000
    assert sub["measured"]["reproduced"]["scoring"] == (
        "eager (the submission has no chunked TTT loop; compiled not used: nothing is compiled (--exact, "
        "--compile off, or auto on a CPU or a short run); --scoring auto)")


def test_cli_eval_bad_inputs(tmp_path, eval_case):
    tok, data, _ = eval_case
    script = make_submission(tmp_path, OLD_STYLE.replace("PEEK_FLAG", "False"))
    p = run_cli(str(script.parent), "--artifact", str(tmp_path / "missing.ptz"), "--data", str(data))
    assert p.returncode == 2 and "--artifact: no such file" in p.stderr
    bad = tmp_path / "final_model.int8.ptz"
    bad.write_bytes(b"not zlib at all")
    p = run_cli(str(script.parent), "--artifact", str(bad), "--data", str(data), "--tokenizer", str(tok),
                "--format", "json", "--device", "cpu")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    sub = json.loads(p.stdout)["submissions"][0]
    assert sub["verdict"] == "error" and "final_model.int8.ptz" in sub["error"]


def test_cli_eval_without_adapter_is_needs_review(tmp_path, eval_case):
    """A model the adapter cannot build is `needs-review` (with the hook docs), not `error`."""
    _, data, _ = eval_case
    script = make_submission(tmp_path, "import torch\nclass Hyperparameters:\n    vocab_size = 8\n")
    art = tmp_path / "final_model.ptz"
    art.write_bytes(b"whatever")
    p = run_cli(str(script.parent), "--artifact", str(art), "--data", str(data), "--format", "json",
                "--device", "cpu")
    assert "Traceback" not in p.stderr and p.returncode in (0, 1), p.stderr
    sub = json.loads(p.stdout)["submissions"][0]
    assert sub["verdict"] == "needs-review" and "error" not in sub
    (f,) = sub["findings"]
    assert f["rule"] == "EVAL-ADAPTER" and f["confidence"] == "low" and f["severity"] == "error"
    assert "needs an adapter" in f["message"] and "docs/adapter_hooks/README.md" in f["message"]


def test_unreadable_artifact_is_artifact_error_but_missing_code_is_not(tmp_path):
    script = make_submission(tmp_path, OLD_STYLE.replace("PEEK_FLAG", "False"))
    ad = SubmissionAdapter(script, "cpu")
    bad = tmp_path / "final_model.int8.ptz"
    bad.write_bytes(b"not zlib at all")
    with pytest.raises(ArtifactError, match="final_model.int8.ptz"):
        ad.load_artifact(bad)
    hookless = make_submission(tmp_path, "import torch\nclass Hyperparameters:\n    vocab_size = 8\n", name="h")
    with pytest.raises(AdapterError) as got:
        SubmissionAdapter(hookless, "cpu").load_artifact(bad)
    assert not isinstance(got.value, ArtifactError)


def test_hook_serialize_and_failing_hook_are_messages(tmp_path):
    script = make_submission(tmp_path, "import torch\nclass Hyperparameters:\n    vocab_size = 16\n")
    (script.parent / "adapter.py").write_text(textwrap.dedent('''
        import torch
        def build_model(module, h, device):
            return torch.nn.Embedding(h.vocab_size, 4)
        def load_artifact(module, h, path, device):
            m = build_model(module, h, device)
            m.load_state_dict(torch.load(path))
            return m
        def serialize(module, h, model, out_dir):
            torch.save(model.state_dict(), out_dir + "/w.pt")
            return out_dir + "/w.pt"
    '''))
    ad = SubmissionAdapter(script, "cpu")
    m = ad.build_model()
    art = ad.serialize(m, tmp_path / "out")
    assert torch.equal(ad.load_artifact(art).weight, m.weight)
    art.write_bytes(b"junk")
    with pytest.raises(AdapterError, match="adapter hook's load_artifact"):
        ad.load_artifact(art)


FSTRING_CASES = ['f"a {x!r:>{w}} b {x=} {x = :.2f} {{lit}} {d[\'k\']} {f\'{x:.1f}\'} \\n end"',
                 "rf'\\d{x}' + f'''tri {w}\nnext'''", "f'{x:{w}.{2}f}|{(lambda: 1)()}|{1, 2}'",
                 'f"{", ".join(xs)}"']   # the last one is PEP 701 (same quotes inside): Python >= 3.12 only


@pytest.mark.parametrize("expr", FSTRING_CASES)
def test_fstring_downgrade_computes_the_same_string(expr):
    from harness.compat.fstrings import downgrade_fstrings

    env = {"x": 3.14159, "w": 10, "xs": ["a", "b"], "d": {"k": "v"}}
    rewritten = downgrade_fstrings(f"out = {expr}\n")
    assert "f'" not in rewritten and 'f"' not in rewritten
    exec(rewritten, env)  # noqa: S102 - our own test expression
    expected = {"x": 3.14159, "w": 10, "xs": ["a", "b"], "d": {"k": "v"}}
    if sys.version_info >= (3, 12) or expr != FSTRING_CASES[-1]:
        exec(f"out = {expr}\n", expected)  # noqa: S102
        assert env["out"] == expected["out"]
    else:
        assert env["out"] == "a, b"


def test_python312_fstrings_in_a_packed_script_import(tmp_path):
    """Packed records whose code needs Python 3.12 (PEP 701) still import on 3.11."""
    import base64
    import lzma

    inner = ('import torch\nclass Hyperparameters:\n    vocab_size = 8\n'
             'NAMES = ["a", "b"]\nLABEL = f"{", ".join(NAMES)}"\n')
    blob = base64.b85encode(lzma.compress(inner.encode())).decode()
    script = make_submission(tmp_path, f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{blob}")))\n')
    ad = SubmissionAdapter(script, "cpu")
    assert ad.module.LABEL == "a, b" and ad.vocab_size == 8


def test_artifact_name_computed_at_run_time(tmp_path):
    """`f"final_model.int{bits}.ptz"` (03-31 LegendreGPT): found as a pattern, written and read back."""
    src = OLD_STYLE.replace("PEEK_FLAG", "False").replace(
        '    with open("final_model.int8.ptz", "wb")', '    bits = len(str(args.vocab_size)) + 4\n'
        '    name = f"final_model.int{bits}.ptz"\n    with open(name, "wb")').replace(
        'open("final_model.int8.ptz", "rb")', 'open(name, "rb")')
    assert 'f"final_model.int{bits}.ptz"' in src
    script = make_submission(tmp_path, src)
    ad, model, loaded, art = roundtrip(script, tmp_path / "art")
    assert art.name == "final_model.int8.ptz" and ad.plan()["reads"] == ["final_model.int*.ptz"]
    for k, v in model.state_dict().items():
        assert (loaded.state_dict()[k] - v).abs().max() <= v.abs().max() / 100


def test_serialize_slice_skips_the_training_loop(tmp_path):
    """03-24 106M: the written state is `(ema if ema is not None else base_model)`, `ema` set in the training
    loop. The slice must not pull the loop in (running it here would fail: `opt` does not exist)."""
    src = OLD_STYLE.replace("PEEK_FLAG", "False").replace(
        "    quant_obj = quantize_sd(base_model.state_dict())",
        "    ema = None\n    while True:\n        opt.step()\n        ema = base_model\n"
        "    quant_obj = quantize_sd((ema if ema is not None else base_model).state_dict())")
    assert "opt.step()" in src
    script = make_submission(tmp_path, src)
    ad, model, loaded, art = roundtrip(script, tmp_path / "art")
    for k, v in model.state_dict().items():
        assert (loaded.state_dict()[k] - v).abs().max() <= v.abs().max() / 100


def test_logits_captured_through_reduction_none(tmp_path):
    """A forward that calls F.cross_entropy only for reduction="none" (its mean loss fused by hand)."""
    script = make_submission(tmp_path, "import torch\nclass Hyperparameters:\n    vocab_size = 16\n")
    ad = SubmissionAdapter(script, "cpu")

    class Fused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(16, 16)

        def forward(self, x, y, reduction="mean"):
            logits = self.emb(x).reshape(-1, 16)
            if reduction == "none":
                return torch.nn.functional.cross_entropy(logits, y.reshape(-1), reduction="none")
            lse = torch.logsumexp(logits, -1)
            return (lse - logits.gather(1, y.reshape(-1, 1))[:, 0]).mean() + 1e-4 * (lse ** 2).mean()

    m = Fused()
    x = torch.randint(0, 16, (2, 5))
    got = ad.logits(m, x)
    assert got.shape == (2, 5, 16) and torch.equal(got, m.emb(x))


def test_eval_time_model_settings_are_replayed_after_deserialize(tmp_path):
    """Records from 2026-04-08 set `eval_model.looping_active = True` after deserialize() when num_loops > 0;
    our load must do the same (else the model is evaluated without its layer loops)."""
    src = NEW_STYLE.replace("        self.logit_softcap = h.logit_softcap\n",
                            "        self.logit_softcap = h.logit_softcap\n        self.looping_active = False\n"
                            "        self.other_flag = 0\n")
    src = src.replace("    num_layers = int(", "    num_loops = int(os.environ.get('NUM_LOOPS', 2))\n    num_layers = int(")
    src = src.replace('def main():\n    raise SystemExit("main must not run")',
                      'def run_eval(h, device):\n'
                      '    eval_model = deserialize(h, device)\n'
                      '    if h.num_loops > 0:\n'
                      '        eval_model.looping_active = True\n'
                      '    if os.path.exists("x"):\n'
                      '        eval_model.other_flag = 7\n'
                      '    return eval_model\n\n'
                      'def main():\n    raise SystemExit("main must not run")')
    script = make_submission(tmp_path, src)
    ad, model, loaded, art = roundtrip(script, tmp_path / "art")
    assert loaded.looping_active is True
    assert loaded.other_flag == 0            # a condition on anything but h is not replayed
    assert ad.applied_settings == ["looping_active=True"]


OWN_TTT_LOOP = '''
def eval_val_sliding_ttt(args, base_model, rank, world_size, device, val_tokens, stride, log0=print):
    logits_fn = COMPILE(base_model.forward_logits)
    for x in val_tokens:
        logits_fn(x)
'''


@pytest.mark.parametrize("loop, expected", [(None, None), ("base_model.forward_logits", "eager"),
                                            ("torch.compile", "compiled")])
def test_ttt_scoring_follows_the_submissions_own_loop(tmp_path, loop, expected):
    from harness.evaluate.reference_eval import scoring_kind

    src = NEW_STYLE if loop is None else NEW_STYLE + OWN_TTT_LOOP.replace(
        "COMPILE(base_model.forward_logits)", loop if loop != "torch.compile" else
        "torch.compile(base_model.forward_logits, dynamic=False)")
    ad = SubmissionAdapter(make_submission(tmp_path, src), "cpu")
    assert ad.ttt_scoring() == expected
    # auto scores as the submission's loop rounds: its eager loop by compiled graphs that round as eager
    assert scoring_kind("auto", expected) == ("eager-rounding" if expected == "eager" else "compiled")
    for choice in ("compiled", "eager-rounding", "eager"):
        assert scoring_kind(choice, expected) == choice


OWN_SLIDING_LOOP = '''
def eval_val_sliding(h, device, val_data, base_model, forward_logits_fn=None, batch_seqs=32):
    run = base_model.forward_logits if forward_logits_fn is None else forward_logits_fn
    return run(val_data)

def main_eval(h, device, val_data, eval_model):
    fwd = COMPILE
    return eval_val_sliding(h, device, val_data, eval_model, forward_logits_fn=fwd)
'''


@pytest.mark.parametrize("compiled_in_main, expected", [(True, "compiled"), (False, "eager")])
def test_sliding_scoring_sees_a_logits_function_compiled_outside_the_loop(tmp_path, compiled_in_main, expected):
    """The 04-1x records compile forward_logits in main and pass it to eval_val_sliding; the 03-19 ones
    call base_model eagerly."""
    fwd = "torch.compile(eval_model.forward_logits, dynamic=False)" if compiled_in_main else "eval_model.forward_logits"
    ad = SubmissionAdapter(make_submission(tmp_path, NEW_STYLE + OWN_SLIDING_LOOP.replace("COMPILE", fwd)), "cpu")
    assert ad.sliding_scoring() == expected
    assert ad.ttt_scoring() is None
