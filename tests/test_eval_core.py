"""Sliding BPB, byte tables, score-first TTT and the runtime legality checks on tiny CPU models."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.data.bytetables import build_byte_tables, load_sentencepiece  # noqa: E402
from harness.evaluate.checks import findings_for, flip_test, normalisation_test  # noqa: E402
from harness.evaluate.ledger import TrainBeforeScoreError  # noqa: E402
from harness.evaluate.sliding import plan_windows, sliding_eval  # noqa: E402
from harness.evaluate.toy import TargetDependent, TinyGPT, UnnormalisedMixture  # noqa: E402
from harness.evaluate.ttt import TTTConfig, ttt_eval  # noqa: E402
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


def record_style_a(n: int, L: int, stride: int, ttt: bool) -> list[tuple[int, int]]:
    """Scored ranges of the 03-19..03-31 records' loops, written from EVAL_INTERNALS §2 (Style A)."""
    out = []
    for ws in range(0, n, stride):
        wlen = min(ws + L, n) - ws
        if wlen < 1 or (ttt and wlen < stride and ws != 0):
            continue
        s = 0 if ws == 0 else max(wlen - stride, 0)
        out.append((ws + s, ws + wlen))
    return out


@pytest.mark.parametrize("n,L,stride", [(300, 64, 16), (257, 32, 32), (100, 128, 8), (205, 48, 16)])
def test_style_a_layouts_match_the_records_loops(n, L, stride):
    for layout, ttt in (("style-a", False), ("style-a-ttt", True)):
        assert [w.scored for w in plan_windows(n, L, stride, layout)] == record_style_a(n, L, stride, ttt)
    with pytest.raises(ValueError, match="unknown window layout"):
        plan_windows(n, L, stride, "style-c")


@pytest.mark.parametrize("layout", ["single", "style-a", "style-a-ttt"])
@pytest.mark.parametrize("batch_seqs", [1, 3, 5])
def test_fast_padded_equals_exact_and_direct(layout, batch_seqs):
    """Head slicing, grouped batches padded to `batch_seqs` and device-side accumulation give the exact
    mode's numbers; every target counted once (Style A: plus the records' rescored tail)."""
    model = tiny()
    n, L, stride = 205, 48, 16
    toks = tokens(n)
    b = np.random.default_rng(4).integers(1, 5, n)
    exact = sliding_eval(model, toks, b, seq_len=L, stride=stride, batch_seqs=4, exact=True, layout=layout)
    fast = sliding_eval(model, toks, b, seq_len=L, stride=stride, batch_seqs=batch_seqs, layout=layout, pad=True)
    assert fast.extra["padded"] and not exact.extra["padded"]
    assert fast.val_bpb == pytest.approx(exact.val_bpb, rel=1e-6)
    assert fast.tokens == exact.tokens == n + fast.extra["rescored_positions"]
    assert fast.bytes == exact.bytes
    # independent: one unbatched, unpadded forward per window of the records' loops
    t = torch.as_tensor(toks.astype(np.int64))
    want_loss, want_bytes = 0.0, 0
    for w in plan_windows(n, L, stride, layout):
        with torch.no_grad():
            lp = torch.log_softmax(model.forward_logits(t[w.ws:w.ws + w.wlen][None]).float(), -1)[0]
        for p in range(w.s, w.wlen):
            want_loss -= lp[p, t[w.ws + p + 1]].item()
            want_bytes += int(b[w.ws + p])
    assert fast.val_loss * fast.tokens == pytest.approx(want_loss, rel=1e-5)
    assert fast.bytes == want_bytes
    if layout == "single":
        assert fast.extra["rescored_positions"] == 0
        assert want_loss == pytest.approx(direct_nll(model, toks, L, stride).sum(), rel=1e-5)
    else:
        assert fast.extra["rescored_positions"] > 0


def test_padded_batches_score_every_target_once():
    """A scorer that records the (row, position) pairs its loss reads: each target exactly once."""
    from harness.evaluate.ledger import ScoreLedger
    from harness.evaluate.sliding import WindowScorer, batches

    n, L, stride = 150, 32, 8
    toks = tokens(n)
    ledger = ScoreLedger(n)
    wsc = WindowScorer(tiny(), toks, np.ones(n, dtype=np.int64), L, ledger=ledger, pad_to=4, stride=stride)
    seen = np.zeros(n, dtype=int)
    shapes = set()
    for batch in batches(plan_windows(n, L, stride), 4, group_first=True):
        plan = wsc._plan(batch)
        shapes.add(tuple(plan.shape))
        ws, s, wlen = (plan[i].numpy() for i in range(3))
        for j in range(plan.shape[1]):
            seen[ws[j] + s[j]: ws[j] + wlen[j]] += 1
        wsc.score(batch)
    assert (seen == 1).all() and shapes == {(3, 4)}
    ledger.require_complete()


def test_ttt_zero_epochs_equals_sliding_fast_and_style_a():
    model = tiny()
    toks = tokens(300)
    b = np.random.default_rng(5).integers(1, 4, 300)
    cfg = TTTConfig(chunk_tokens=64, epochs=0)
    for layout in ("single", "style-a-ttt"):
        plain = sliding_eval(model, toks, b, seq_len=32, stride=8, batch_seqs=4, exact=True, layout=layout)
        ttt = ttt_eval(model, model, model, toks, b, cfg, seq_len=32, stride=8, batch_seqs=3, layout=layout,
                       pad=True)
        assert ttt.val_bpb == pytest.approx(plain.val_bpb, rel=1e-6)
        assert ttt.tokens == plain.tokens and ttt.bytes == plain.bytes
        assert ttt.chunks[-1]["running_bpb"] == pytest.approx(ttt.val_bpb, rel=1e-9)


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
    from harness.evaluate.sliding import target_bytes
    from harness.evaluate.valdata import ShardError, load_tokens, write_shard

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


def test_flip_test_takes_its_reference_from_a_second_forward():
    """A causal model whose very first forward is off (as seen on the CPU for a freshly loaded model) passes,
    and the detail says so; a peeking model still fails."""
    x = torch.as_tensor(tokens(63).astype(np.int64))[None]

    def first_call_off(model):
        calls = []

        def fn(a):
            calls.append(1)
            out = model.forward_logits(a)
            return out * 1.5 if len(calls) == 1 else out
        return fn

    ok = flip_test(first_call_off(tiny()), x, VOCAB)
    assert ok.passed and "first forward differed from the second" in ok.detail
    assert not flip_test(first_call_off(tiny(peek=True)), x, VOCAB).passed
