"""Sliding eval and score-first TTT split across 2 ranks (gloo, CPU) against one process.

One start of 2 spawned ranks runs every scenario (a process group costs seconds on busy
cores); rank 0 also runs the one-process references with the same thread count. Each rank writes its
results to a JSON file; the tests compare them."""

from __future__ import annotations

import faulthandler
import json
import os
import socket
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import audit  # noqa: E402
from harness.evaluate import distributed as D  # noqa: E402

VOCAB = 64
L, STRIDE, BATCH = 32, 8, 4
TTT_EQUAL = dict(chunk_tokens=128, epochs=2, lr=0.05, batch_seqs=4)     # 4 seqs a chunk: 2 + 2
TTT_UNEQUAL = dict(chunk_tokens=96, epochs=2, lr=0.05, batch_seqs=4)    # 3 seqs a chunk: 1 + 2
TTT_CASES = [("equal", TTT_EQUAL, "single"), ("unequal", TTT_UNEQUAL, "single"),
             ("equal-style-a", TTT_EQUAL, "style-a-ttt")]
SLIDING_CASES = [  # (name, n_targets, layout, pad, exact): 35 / 37 windows, odd on purpose
    ("single", 300, "single", False, False),
    ("single-pad", 300, "single", True, False),
    ("single-exact", 300, "single", False, True),
    ("style-a", 295, "style-a", False, False),
    ("style-a-pad", 295, "style-a", True, False),
]


def _tiny(seed: int = 0):
    from harness.evaluate.toy import TinyGPT

    torch.manual_seed(seed)
    return TinyGPT(vocab=VOCAB).eval()


def _data(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCAB, n + 1).astype(np.uint16), rng.integers(1, 4, n).astype(np.int64)


def _summary(res) -> dict:
    return {"bpb": res.val_bpb, "loss": res.val_loss, "tokens": res.tokens, "bytes": res.bytes,
            "windows": res.windows, "rescored": res.extra.get("rescored_positions"), "seconds": res.seconds,
            "world_size": res.extra["world_size"],
            "chunks": [{k: c[k] for k in ("tokens", "bytes", "bpb")} for c in res.chunks]}


def _outcome(fn, *args, **kw) -> dict:
    try:
        return _summary(fn(*args, **kw))
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


def _drop_batch(which: int):
    """A `batches` that silently skips one batch of this rank's share (-1: the last; a middle one only
    where there are at least 3)."""
    from harness.evaluate import sliding

    real = sliding.batches

    def faulty(windows, batch_seqs, group_first):
        out = list(real(windows, batch_seqs, group_first))
        if len(out) > (2 if which > 0 else 1):
            del out[which]
        return iter(out)

    return faulty


def _scenarios(dist) -> dict:
    from harness.evaluate import sliding
    from harness.evaluate.sliding import sliding_eval
    from harness.evaluate.ttt import TTTConfig, ttt_eval

    out: dict = {}
    ref = dist is None or dist.rank == 0
    for name, n, layout, pad, exact in SLIDING_CASES:
        toks, b = _data(n)
        for key, d in ((name, dist), (f"{name}/one", None)):
            if d is None and not ref:
                continue
            out[f"sliding/{key}"] = _outcome(sliding_eval, _tiny(), toks, b, L, STRIDE, BATCH, layout=layout,
                                             pad=pad, exact=exact, dist=d)
    for name, kw, layout in TTT_CASES:
        toks, b = _data(444)
        for who, d in (("dist", dist), ("one", None)):
            if d is None and not ref:
                continue
            model = _tiny()
            out[f"ttt/{name}/{who}"] = _outcome(ttt_eval, model, model, model, toks, b, TTTConfig(**kw), L,
                                                STRIDE, BATCH, layout=layout, dist=d)
    toks, b = _data(300)
    model = _tiny()
    out["guard/train_first"] = _outcome(ttt_eval, model, model, model, toks, b, TTTConfig(**TTT_EQUAL), L,
                                        STRIDE, BATCH, train_first=True, dist=dist)
    real = sliding.batches      # faults: rank 1 skips a batch of its share
    for name, which in (("last", -1), ("middle", 1)):
        if dist is not None and dist.rank == 1:
            sliding.batches = _drop_batch(which)
        try:
            out[f"fault/sliding/{name}"] = _outcome(sliding_eval, _tiny(), toks, b, L, STRIDE, BATCH, dist=dist)
            model = _tiny()
            out[f"fault/ttt/{name}"] = _outcome(ttt_eval, model, model, model, toks, b, TTTConfig(**TTT_EQUAL),
                                                L, STRIDE, 2, dist=dist)
        finally:
            sliding.batches = real
    return out


def _worker(rank: int, world: int, port: int, outdir: str) -> None:
    """One rank: run every scenario, write rank<r>.json (whole, by rename) before the process group is torn
    down, then leave through `audit.exit_worker` (os._exit), so no C++ destructor runs at interpreter exit.
    In CI a rank died with SIGABRT ("terminate called without an active exception"); where was not seen,
    and faulthandler prints the Python stack if it happens again."""
    faulthandler.enable()
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GA_DIST_TIMEOUT": "60"})
    torch.set_num_threads(1)
    try:
        dist = D.from_env("cpu")
        result = {"dist": [dist.rank, dist.world_size, dist.device], "local_device": D.local_device("cpu")}
        result.update(_scenarios(dist))
    except Exception:
        result = {"crash": traceback.format_exc()}
    tmp = Path(outdir, f"rank{rank}.json.part")
    tmp.write_text(json.dumps(result))
    tmp.rename(Path(outdir, f"rank{rank}.json"))
    try:
        D.shutdown()
    finally:
        audit.exit_worker(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Both ranks run to their end (no rank is killed because the other one died, unlike mp.spawn); a rank
    that dies after writing its results only warns, one that wrote none fails the tests."""
    import torch.multiprocessing as mp

    outdir = tmp_path_factory.mktemp("dist")
    port = _free_port()
    procs = [mp.get_context("spawn").Process(target=_worker, args=(r, 2, port, str(outdir))) for r in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=600)
        if proc.is_alive():
            proc.kill()
            proc.join()
    codes = [proc.exitcode for proc in procs]
    missing = [r for r in range(2) if not Path(outdir, f"rank{r}.json").exists()]
    assert not missing, f"rank(s) {missing} wrote no results (exit codes {codes})"
    if any(codes):
        warnings.warn(f"both ranks wrote their results, then exited with codes {codes}", stacklevel=1)
    out = [json.loads(Path(outdir, f"rank{r}.json").read_text()) for r in range(2)]
    for r, res in enumerate(out):
        assert "crash" not in res, f"rank {r}:\n{res['crash']}"
    return out


def _same_on_both(ranks: list[dict], key: str) -> dict:
    a, b = ranks[0][key], ranks[1][key]
    assert a == b, f"{key}: rank 0 {a} != rank 1 {b}"
    return a


def test_from_env_inside_torchrun_env(ranks):
    assert ranks[0]["dist"] == [0, 2, "cpu"] and ranks[1]["dist"] == [1, 2, "cpu"]
    assert ranks[1]["local_device"] == "cpu"


@pytest.mark.parametrize("name", [c[0] for c in SLIDING_CASES])
def test_two_rank_sliding_equals_one_process(ranks, name):
    two = _same_on_both(ranks, f"sliding/{name}")       # every field, seconds (the slowest rank's) too
    one = ranks[0][f"sliding/{name}/one"]
    assert "error" not in two, two
    assert (two["world_size"], one["world_size"]) == (2, 1)
    assert two["windows"] % 2 == 1
    assert (two["tokens"], two["bytes"], two["windows"]) == (one["tokens"], one["bytes"], one["windows"])
    assert two["rescored"] == one["rescored"]
    assert abs(two["bpb"] - one["bpb"]) < 1e-12
    if name.startswith("style-a"):
        assert two["rescored"] > 0 and two["tokens"] == 295 + two["rescored"]
    else:
        assert two["rescored"] == 0 and two["tokens"] == 300


@pytest.mark.parametrize("name", ["equal", "equal-style-a"])
def test_two_rank_ttt_equal_shares_matches_one_process(ranks, name):
    """Equal shares of one batch each: the rank average of the two batch means is the one-process mean
    over the 4 sequences, so the runs differ by fp32 rounding only."""
    two = _same_on_both(ranks, f"ttt/{name}/dist")
    one = ranks[0][f"ttt/{name}/one"]
    assert "error" not in two, two
    assert (two["tokens"], two["bytes"]) == (one["tokens"], one["bytes"])
    assert two["rescored"] == one["rescored"] and two["tokens"] == 444 + two["rescored"]
    assert (two["rescored"] == 0) == (name == "equal")
    assert abs(two["bpb"] - one["bpb"]) < 1e-6
    assert [c["tokens"] for c in two["chunks"]] == [c["tokens"] for c in one["chunks"]]
    for c2, c1 in zip(two["chunks"], one["chunks"]):
        assert abs(c2["bpb"] - c1["bpb"]) < 1e-6
    assert two["chunks"][0]["bpb"] == pytest.approx(one["chunks"][0]["bpb"], abs=1e-12)  # before any step


def test_two_rank_ttt_unequal_shares_weights_sequences_differently(ranks):
    """3 sequences a chunk split 1 + 2: the average of the two ranks' means weights the lone sequence 1/2
    (one process: 1/3 each), so the trained chunks move apart while the counts stay equal."""
    two = _same_on_both(ranks, "ttt/unequal/dist")
    one = ranks[0]["ttt/unequal/one"]
    assert (two["tokens"], two["bytes"]) == (one["tokens"], one["bytes"])
    assert two["chunks"][0]["bpb"] == pytest.approx(one["chunks"][0]["bpb"], abs=1e-12)
    diff = abs(two["bpb"] - one["bpb"])
    assert 1e-6 < diff < 0.05, diff


def test_guard_fires_with_train_first_on_every_rank(ranks):
    assert ranks[0]["guard/train_first"]["error"] == ranks[1]["guard/train_first"]["error"] \
        == "TrainBeforeScoreError"


def test_a_rank_that_skips_its_last_batch_is_caught(ranks):
    for r in ranks:
        assert r["fault/sliding/last"]["error"] == "RuntimeError"
        assert "planned" in r["fault/sliding/last"]["message"]
        assert r["fault/ttt/last"]["error"] == "TrainBeforeScoreError"


def test_a_rank_that_skips_a_middle_batch_is_caught(ranks):
    for key in ("fault/sliding/middle", "fault/ttt/middle"):
        assert "gap" in ranks[1][key]["message"]
        assert ranks[0][key]["error"] == "RuntimeError" and "rank(s) [1]" in ranks[0][key]["message"]


def test_no_torchrun_env_means_no_dist(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert D.from_env("cpu") is None and D.local_device("cuda") == "cuda"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert D.from_env("cpu") is None and D.local_device("cuda") == "cuda"
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        D.from_env("cpu")
    D.shutdown()        # nothing was created: a no-op


def test_share_tiles_by_count():
    for n in range(0, 40):
        for w in (1, 2, 3, 8):
            parts = [D.share(n, r, w) for r in range(w)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(parts[i][1] == parts[i + 1][0] for i in range(w - 1))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1
