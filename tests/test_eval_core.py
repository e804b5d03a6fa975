"""Sliding BPB, byte tables, score-first TTT and the runtime legality checks on tiny CPU models."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.evaluate.bytes import build_byte_tables, load_sentencepiece  # noqa: E402
from harness.evaluate.checks import findings_for, flip_test, normalisation_test  # noqa: E402
from harness.evaluate.sliding import plan_windows, sliding_eval  # noqa: E402
from harness.evaluate.toy import TargetDependent, TinyGPT, UnnormalisedMixture  # noqa: E402
from harness.evaluate.ttt import TrainBeforeScoreError, TTTConfig, ttt_eval  # noqa: E402
from tests.conftest import TOKENIZERS  # noqa: E402

VOCAB = 64
TEXT = ("The quick brown fox jumps over the lazy dog. Ünïcödé — “quotes”, émojis 🎉 and digits 12345!\n"
        "  Two  spaces, tabs\tand CAPITALS. Le café coûte 3,50 €; 東京は大きい。\n") * 3


def tiny(seed: int = 0, **kw) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(vocab=VOCAB, **kw).eval()


def tokens(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, n + 1).astype(np.uint16)


@pytest.mark.parametrize("n,L,stride", [(300, 64, 16), (257, 32, 32), (100, 128, 8), (65, 64, 1)])
def test_windows_cover_every_target_once(n, L, stride):
    seen = np.zeros(n, dtype=int)
    for w in plan_windows(n, L, stride):
        a, b = w.scored
        assert w.wlen <= L and (w.ws == 0 or w.s == L - stride)
        seen[a:b] += 1
    assert (seen == 1).all()


def direct_nll(model: TinyGPT, toks: np.ndarray, L: int, stride: int) -> np.ndarray:
    """Per-target NLL, each computed from its own full-sequence forward over the same left context."""
    t = torch.as_tensor(toks.astype(np.int64))
    n = t.numel() - 1
    out = np.zeros(n)
    with torch.no_grad():
        for p in range(n):
            if p < L:
                lo = 0
            else:
                ctx = L - stride
                k = (p - L) // stride + 1          # window index scoring p
                lo = k * stride
                assert lo + ctx <= p < lo + L
            lp = torch.log_softmax(model.forward_logits(t[lo:p + 1][None]).float(), -1)[0, -1]
            out[p] = -lp[t[p + 1]].item()
    return out


def test_sliding_equals_direct_computation():
    model = tiny()
    toks = tokens(200)
    bytes_per = np.random.default_rng(3).integers(1, 5, 200)
    res = sliding_eval(model, toks, bytes_per, seq_len=48, stride=16, batch_seqs=3)
    nll = direct_nll(model, toks, 48, 16)
    assert res.tokens == 200 and res.bytes == bytes_per.sum()
    assert res.val_loss == pytest.approx(nll.mean(), rel=1e-5)
    assert res.val_bpb == pytest.approx(nll.sum() / (math.log(2) * bytes_per.sum()), rel=1e-5)
    exact = sliding_eval(model, toks, bytes_per, seq_len=48, stride=16, batch_seqs=4, exact=True)
    assert exact.val_bpb == pytest.approx(res.val_bpb, rel=1e-5)


@pytest.mark.parametrize("name", sorted(p.name for p in TOKENIZERS.glob("*.model")) or ["none"])
def test_byte_table_matches_utf8_length(name):
    path = TOKENIZERS / name
    if not path.exists():
        pytest.skip("no tokenizers in ../shared/tokenizers")
    sp = load_sentencepiece(path)
    tables = build_byte_tables(path)
    for line in TEXT.splitlines():
        ids = [sp.bos_id()] + sp.encode(line)
        arr = np.array(ids)
        counted = int(tables.target_bytes(arr[:-1], arr[1:]).sum())
        assert counted == len(sp.decode(ids[1:]).encode("utf-8")), line


def test_ttt_zero_epochs_equals_sliding():
    model = tiny()
    toks = tokens(400)
    b = np.ones(400, dtype=np.int64) * 2
    plain = sliding_eval(model, toks, b, seq_len=32, stride=8)
    cfg = TTTConfig(chunk_tokens=64, epochs=0)
    ttt = ttt_eval(model, model, model, toks, b, cfg, seq_len=32, stride=8)
    assert ttt.val_bpb == pytest.approx(plain.val_bpb, rel=1e-6)
    assert ttt.tokens == plain.tokens and len(ttt.chunks) == 7


def test_ttt_trains_and_changes_score_but_not_first_chunk():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    toks = np.tile(tokens(50), 8)[:401]
    b = np.ones(400, dtype=np.int64)
    plain = sliding_eval(model, toks, b, seq_len=32, stride=8)
    cfg = TTTConfig(chunk_tokens=64, epochs=2, lr=0.05, batch_seqs=2, freeze_blocks=1)
    res = ttt_eval(model, model, model, toks, b, cfg, seq_len=32, stride=8)
    assert res.extra["ttt_steps"] > 0
    assert res.chunks[0]["bpb"] == pytest.approx(
        sliding_eval(tiny(), toks[:65], b[:64], seq_len=32, stride=8).val_bpb, rel=1e-5)
    assert res.val_bpb < plain.val_bpb          # repeated text: training on scored chunks helps
    after = model.state_dict()
    assert torch.equal(after["blocks.0.linear1.weight"], before["blocks.0.linear1.weight"])  # frozen
    assert not torch.equal(after["blocks.1.linear1.weight"], before["blocks.1.linear1.weight"])


def test_train_before_score_trips_guard():
    model = tiny()
    toks = tokens(200)
    with pytest.raises(TrainBeforeScoreError):
        ttt_eval(model, model, model, toks, np.ones(200, dtype=np.int64), TTTConfig(chunk_tokens=64, epochs=1),
                 seq_len=32, stride=8, train_first=True)


def test_flip_test_passes_causal_and_fails_peeking_model():
    x = torch.as_tensor(tokens(63).astype(np.int64))[None].repeat(2, 1)
    good = flip_test(tiny().forward_logits, x, VOCAB)
    assert good.passed, good.detail
    bad = flip_test(tiny(peek=True).forward_logits, x, VOCAB)
    assert not bad.passed
    (f,) = findings_for([good, bad], "train_gpt.py")
    assert f.rule == "C1-STRICT-CAUSAL" and f.category == "legality" and f.severity == "error"


def test_normalisation_check():
    model = tiny()
    x = torch.as_tensor(tokens(40).astype(np.int64))[None]
    y = torch.roll(x, -1, 1)
    ok = normalisation_test(lambda a, b: torch.log_softmax(model.forward_logits(a), -1), x, y, VOCAB)
    assert ok.passed, ok.detail
    mix = normalisation_test(UnnormalisedMixture(model, VOCAB).log_probs, x, y, VOCAB)
    assert not mix.passed and "sum to 1" in mix.detail
    dep = normalisation_test(TargetDependent(model).log_probs, x, y, VOCAB)
    assert not dep.passed and "realised target" in dep.detail
    (f, g) = findings_for([mix, dep], None)
    assert f.rule == g.rule == "C2-FULL-NORMALIZED-DISTRIBUTION"


def test_shards_and_caseops_sidecar(tmp_path):
    from harness.evaluate.shards import ShardError, load_tokens, write_shard
    from harness.evaluate.sliding import target_bytes

    toks = np.array([1, 5, 6, 7, 1, 9, 10], dtype=np.uint16)
    side = np.array([0, 3, 1, 2, 0, 4, 1], dtype=np.uint16)
    write_shard(tmp_path / "fineweb_val_000000.bin", toks)
    write_shard(tmp_path / "fineweb_val_bytes_000000.bin", side)
    t, s, files = load_tokens(tmp_path)
    assert (t == toks).all() and (s == side).all() and len(files) == 2
    assert target_bytes(t, None, s).tolist() == [3, 1, 2, 0, 4, 1]     # BOS targets carry 0 bytes
    t2, s2, _ = load_tokens(tmp_path, max_tokens=3)
    assert t2.size == 4 and s2.size == 4
    (tmp_path / "fineweb_val_000001.bin").write_bytes(b"\x00" * 1030)
    with pytest.raises(ShardError, match="fineweb_val_000001.bin: bad header"):
        load_tokens(tmp_path)
