"""The adapter-hook example in docs/adapter_hooks/masked_diffusion/ (a masked-diffusion LM that golfaudit's
automatic adapter cannot drive) and the hook protocol around it (CPU)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.evaluate.adapter import AdapterError, SubmissionAdapter  # noqa: E402
from harness.evaluate.checks import flip_test, normalisation_test  # noqa: E402
from harness.evaluate.valdata import write_shard  # noqa: E402
from tests.conftest import ROOT, TOKENIZERS, pg_repo, requires_pg_repo  # noqa: E402

EXAMPLE = ROOT / "docs" / "adapter_hooks" / "masked_diffusion"
HOOK = EXAMPLE / "adapter.py"
LLADA = "records/track_non_record_16mb/2026-03-29_LLaDA_MDLM_Diffusion/train_mdlm.py"


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of the example folder (the hook is its adapter.py); returns its script."""
    folder = tmp_path / "mdlm"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    return folder / "train_tiny_mdlm.py"


def randomised(ad: SubmissionAdapter, seed: int = 0):
    torch.manual_seed(seed)
    model = ad.build_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def test_without_the_hook_the_message_says_why(example):
    (example.parent / "adapter.py").unlink()
    with pytest.raises(AdapterError) as err:
        SubmissionAdapter(example, "cpu")
    msg = str(err.value)
    assert "needs an adapter: no Hyperparameters class" in msg
    assert "DiffusionLM has forward_logits(xt, sigma) and no forward" in msg
    line = next(i for i, t in enumerate(example.read_text().splitlines(), 1) if "is_causal=False" in t)
    assert f"bidirectional (is_causal=False, line {line})" in msg
    assert "docs/adapter_hooks/README.md" in msg


def test_hook_builds_serialises_and_loads(example, tmp_path):
    ad = SubmissionAdapter(example, "cpu")          # adapter.py in the folder is picked up
    assert ad.plan() == {"via": "hook"}
    assert ad.vocab_size == 1024 and ad.eval_settings()["seq_len"] == ad.module.SEQ_LEN
    model = randomised(ad)
    art = ad.serialize(model, tmp_path / "art")
    loaded = ad.load_artifact(art)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_hook_logits_are_the_prefix_conditionals(example):
    ad = SubmissionAdapter(example, "cpu")
    model = randomised(ad)
    mod = ad.module
    x = torch.randint(0, 1024, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = ad.logits(model, x)
        assert got.shape == (2, 12, 1024)
        # position t, by hand: x[:, :t+1] visible, positions t+1..12 masked, read position t+1
        for t in (0, 5, 11):
            xt = torch.full((2, 13), mod.MASK_ID)
            xt[:, :t + 1] = x[:, :t + 1]
            frac = torch.tensor((12 - t) / 13 / (1 - mod.NOISE_EPS)).clamp(1e-5, 1 - 1e-5)
            sigma = mod.log_linear_noise(frac)[0].expand(2)
            want = mod.DiffusionLM.forward_logits(model, xt, sigma)[:, t + 1, :1024]
            assert torch.allclose(got[:, t], want, atol=1e-5)
    flip = flip_test(lambda a: ad.logits(model, a), x, 1024)
    assert flip.passed and flip.max_diff < 1e-5
    y = torch.randint(0, 1024, x.shape)
    norm = normalisation_test(lambda a, b: torch.log_softmax(ad.logits(model, a, b), -1), x, y, 1024)
    assert norm.passed


def test_naive_hook_is_caught_by_the_flip_test(example):
    """Reading the diffusion model's logits on the unmasked sequence sees the future: the flip test fails."""
    (example.parent / "adapter.py").write_text(HOOK.read_text() + '''

def logits(model, x):
    module = _module_of(model)
    sigma = torch.zeros(x.size(0))
    return model.forward_logits(x, sigma)[..., :module.VOCAB_SIZE]
''')
    ad = SubmissionAdapter(example, "cpu")
    model = randomised(ad)
    x = torch.randint(0, 1024, (2, 16), generator=torch.Generator().manual_seed(2))
    flip = flip_test(lambda a: ad.logits(model, a), x, 1024)
    assert not flip.passed and flip.max_diff > 1e-3


def test_hook_train_loss_and_failures(example):
    ad = SubmissionAdapter(example, "cpu")
    model = randomised(ad)
    x = torch.randint(0, 1024, (2, 16))
    loss = ad.train_loss(model, x, x)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.emb.weight.grad is not None
    with pytest.raises(AdapterError, match=r"the adapter hook's logits\(\) raised .*inputs \(3,\)"):
        ad.logits(model, torch.tensor([1, 2, 3]))     # 1-D input: the hook's own error, as a message


def test_cli_eval_with_the_example_hook(example, tmp_path):
    tok = TOKENIZERS / "fineweb_1024_bpe.model"
    if not tok.exists():
        pytest.skip("no sp1024 tokenizer")
    import sentencepiece as spm

    ad = SubmissionAdapter(example, "cpu")
    art = ad.serialize(randomised(ad), tmp_path / "art")
    sp = spm.SentencePieceProcessor(model_file=str(tok))
    ids = [1] + sp.encode("A small town library opened a new reading room for children this spring. " * 6)
    data = tmp_path / "data"
    data.mkdir()
    write_shard(data / "fineweb_val_000000.bin", np.array(ids[:97]))
    p = subprocess.run([sys.executable, str(ROOT / "audit.py"), "eval", str(example.parent), "--artifact", str(art),
                        "--data", str(data), "--tokenizer", str(tok), "--device", "cpu", "--format", "json", "--ttt",
                        "--ttt-chunk-tokens", "48", "--ttt-epochs", "1"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr
    sub = json.loads(p.stdout)["submissions"][0]
    rep = sub["measured"]["reproduced"]
    assert sub["verdict"] == "legal" and rep["checks"]["flip"]["passed"]
    assert rep["tokens"] == 96 and 0 < rep["val_bpb"] < 20


@requires_pg_repo
def test_example_hook_drives_the_llada_record(tmp_path):
    """The same hook on the real 2026-03-29 LLaDA record (its module names): build, its own artifact format
    (a bf16 state dict), causal logits."""
    script = pg_repo() / LLADA
    if not script.is_file():
        pytest.skip(f"{LLADA} not in PG_REPO")
    with pytest.raises(AdapterError, match="bidirectional"):
        SubmissionAdapter(script, "cpu")
    ad = SubmissionAdapter(script, "cpu", hook=HOOK)
    assert ad.vocab_size == 1024 and ad.eval_settings()["seq_len"] == 2048
    torch.manual_seed(0)
    model = ad.build_model().to(torch.bfloat16)      # as the record trains and saves it
    path = tmp_path / "llada_v4.pt"
    torch.save(model.state_dict(), path)
    loaded = ad.load_artifact(path).eval()
    x = torch.randint(0, 1024, (1, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert ad.logits(loaded, x).shape == (1, 8, 1024)
    assert flip_test(lambda a: ad.logits(loaded, a), x, 1024, tol=1e-3).passed
