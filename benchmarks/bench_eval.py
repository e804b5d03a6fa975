#!/usr/bin/env python3
"""Our reference eval vs a submission's own eval loops: same weights, same tokens, same process.

For a records folder: build the model with random weights, write and reload the artifact with the
record's own code, tokenise a text corpus into a val shard, then time (warm, second call)
- the record's own `eval_val_sliding` and ours (fast mode, with and without torch.compile; exact mode);
- where the record has one, its own chunked TTT (`eval_val_sliding_ttt`/`eval_val_ttt`) and ours, on a
  reduced token count.
Prints BPB differences, throughput ratios and MFU (bf16 dense peak of the card, default H100 989 TFLOP/s).

    python benchmarks/bench_eval.py local/records/2026-03-23_LeakyReLU_LegalTTT_ParallelMuon \
        --corpus local/bench_corpus.txt --tokenizer local/tokenizers/fineweb_1024_bpe.model
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_corpus_shards(corpus: Path, tokenizer: Path, root: Path, vocab: int, n_tokens: int) -> Path:
    import numpy as np
    import sentencepiece as spm

    from harness.evaluate.shards import write_shard

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    text = corpus.read_text(encoding="utf-8", errors="replace")
    docs = [d for d in text.split("\n\n\n") if d.strip()] or [text]
    ids: list[int] = []
    for d in docs:
        ids.append(sp.bos_id())
        ids.extend(sp.encode(d))
        if len(ids) > n_tokens + 1:
            break
    arr = np.array(ids[: n_tokens + 1], dtype=np.int64)
    if arr.size < n_tokens + 1:
        arr = np.resize(arr, n_tokens + 1)
    data = root / "datasets" / f"fineweb10B_sp{vocab}"
    data.mkdir(parents=True, exist_ok=True)
    write_shard(data / "fineweb_val_000000.bin", arr)
    write_shard(data / "fineweb_train_000000.bin", np.resize(arr, 1 << 20))
    tok = root / "tokenizers"
    tok.mkdir(parents=True, exist_ok=True)
    (tok / tokenizer.name).write_bytes(tokenizer.read_bytes())
    (tok / f"fineweb_{vocab}_bpe.model").write_bytes(tokenizer.read_bytes())
    return data


def call_by_names(fn, mod, h, model, device, stride: int):
    """Call one of the record's eval functions, filling its parameters by name."""
    import sentencepiece as spm
    import torch

    params = inspect.signature(fn).parameters
    cache: dict = {}

    def luts():
        if "luts" not in cache:
            sp = spm.SentencePieceProcessor(model_file=h.tokenizer_path)
            cache["luts"] = mod.build_sentencepiece_luts(sp, h.vocab_size, device)
        return cache["luts"]

    def val_tokens():
        seq = getattr(h, "eval_seq_len", 0) or h.train_seq_len
        return mod.load_validation_tokens(h.val_files, seq).to(device)

    kw = {}
    for name in params:
        if name in ("args", "h"):
            kw[name] = h
        elif name in ("base_model", "model"):
            kw[name] = model
        elif name == "rank":
            kw[name] = 0
        elif name == "world_size":
            kw[name] = 1
        elif name == "device":
            kw[name] = device
        elif name == "val_data":
            kw[name] = mod.ValidationData(h, device)
        elif name == "val_tokens":
            kw[name] = val_tokens()
        elif name == "base_bytes_lut":
            kw[name] = luts()[0]
        elif name == "has_leading_space_lut":
            kw[name] = luts()[1]
        elif name == "is_boundary_token_lut":
            kw[name] = luts()[2]
        elif name == "stride":
            kw[name] = stride
        elif name == "eval_seq_len":
            kw[name] = getattr(h, "eval_seq_len", None)
        elif name in ("log0", "log"):
            kw[name] = lambda *a, **k: None
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    out = fn(**kw)
    sync()
    return out, time.perf_counter() - t


def flops_per_token(model, vocab: int, seq_len: int) -> float:
    """2 x matmul params (head included, embedding lookup excluded) + attention 2*T*d per layer."""
    mat = 0
    for name, p in model.named_parameters():
        if p.dim() >= 2 and "emb" not in name:
            mat += p.numel()
    dim = model.tok_emb.weight.shape[1]
    mat += vocab * dim
    layers = len(getattr(model, "blocks", [])) or 1
    return 2.0 * mat + 2.0 * seq_len * dim * layers


def _fast_compressors() -> None:
    """The artifact is only a vehicle here: compress it quickly (format and decompression unchanged)."""
    import lzma

    orig_lzma = lzma.compress
    lzma.compress = lambda data, *a, **k: orig_lzma(data, *a, **{**k, **({"preset": 1} if "filters" not in k
                                                                         else {})})
    try:
        import brotli

        orig_brotli = brotli.compress
        brotli.compress = lambda data, *a, **k: orig_brotli(data, quality=4)
    except ImportError:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("record", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--tokens", type=int, default=262144)
    ap.add_argument("--ttt-tokens", type=int, default=131072)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seq-len", type=int, help="override the record's eval seq_len (smoke tests)")
    a = ap.parse_args()
    a.record, a.corpus, a.tokenizer = a.record.resolve(), a.corpus.resolve(), a.tokenizer.resolve()

    import sentencepiece as spm

    vocab = spm.SentencePieceProcessor(model_file=str(a.tokenizer)).vocab_size()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    data = write_corpus_shards(a.corpus, a.tokenizer, tmp / "data", vocab, a.tokens)
    os.environ.update(DATA_DIR=str(tmp / "data") + "/", DATA_PATH=str(data), TOKENIZER_PATH=str(a.tokenizer),
                      GPTQ_CALIBRATION_BATCHES="2", GPTQ_RESERVE_SECONDS="0")
    os.chdir(tmp)
    _fast_compressors()
    import torch

    from harness.evaluate.adapter import SubmissionAdapter
    from harness.evaluate.bytes import build_byte_tables
    from harness.evaluate.shards import load_tokens
    from harness.evaluate.sliding import sliding_eval, target_bytes
    from harness.evaluate.ttt import TTTConfig, ttt_eval

    script = a.record / "train_gpt.py"
    ad = SubmissionAdapter(script, a.device)
    mod, h = ad.module, ad.h
    device = torch.device(a.device)
    torch.manual_seed(0)
    model = ad.build_model()
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.add_(torch.randn_like(p) * 0.02)
    art = ad.serialize(model, tmp / "art")
    model = ad.load_artifact(art).eval()
    st = ad.eval_settings()
    L, stride = a.seq_len or st["seq_len"], st["stride"]
    res: dict = {"record": a.record.name, "vocab": vocab, "seq_len": L, "stride": stride,
                 "artifact_bytes": art.stat().st_size, "device": torch.cuda.get_device_name() if a.device == "cuda" else a.device}

    # the same tokens the record's loader returns (truncated to whole sequences)
    toks_np, _, _ = load_tokens(data)
    seqs = (toks_np.size - 1) // L
    toks_np = toks_np[: seqs * L + 1]
    tbytes = target_bytes(toks_np, build_byte_tables(a.tokenizer, vocab), None)
    fpt = flops_per_token(model, vocab, L)
    n_windows = len(range(0, toks_np.size - 1, stride))
    useful = fpt * n_windows * L
    res["tokens"] = int(toks_np.size - 1)

    own_fn = getattr(mod, "eval_val_sliding", None)
    if own_fn is not None:
        call_by_names(own_fn, mod, h, model, device, stride)                 # warm-up (compile)
        (own_loss, own_bpb), own_t = call_by_names(own_fn, mod, h, model, device, stride)
        res["own"] = {"val_loss": own_loss, "val_bpb": own_bpb, "seconds": own_t,
                      "mfu": useful / own_t / (a.peak_tflops * 1e12)}
    variants = [("ours_fast", {"compile": False}), ("ours_fast_compiled", {"compile": True})]
    for label, kw in variants[: 2 if a.device == "cuda" else 1]:
        sc = ad.scorer(model, head_slice=not kw.get("exact", False), compile=kw["compile"])
        for _ in range(2):  # the first call warms up (compile, autotune); the second is timed
            r = sliding_eval(sc, toks_np, tbytes, L, stride, 32, a.device, exact=kw.get("exact", False))
        res[label] = {"val_loss": r.val_loss, "val_bpb": r.val_bpb, "seconds": r.seconds, "tokens": r.tokens,
                      "bytes": r.bytes, "head_slice": sc.head_slice,
                      "mfu": useful / r.seconds / (a.peak_tflops * 1e12)}
        if "own" in res:
            res[label]["bpb_diff_vs_own"] = r.val_bpb - res["own"]["val_bpb"]
            res[label]["speedup_vs_own"] = res["own"]["seconds"] / r.seconds
        print(label, json.dumps(res[label]), flush=True)
    if "own" in res:
        print("own", json.dumps(res["own"]), flush=True)

    ttt_fn = getattr(mod, "eval_val_sliding_ttt", None) or getattr(mod, "eval_val_ttt", None)
    if ttt_fn is not None:
        n = a.ttt_tokens
        data2 = write_corpus_shards(a.corpus, a.tokenizer, tmp / "data_ttt", vocab, n)
        for attr in ("val_files",):
            setattr(h, attr, str(data2 / "fineweb_val_*.bin"))
        cfg = TTTConfig(**ad.ttt_settings())
        Lt = cfg.train_seq_len or L
        t2 = toks_np[: ((min(n, toks_np.size - 1)) // Lt) * Lt + 1]
        m1 = copy.deepcopy(model)
        (own_loss, own_bpb), own_t = call_by_names(ttt_fn, mod, h, m1, device, stride)
        m2 = copy.deepcopy(model)
        r = ttt_eval(ad.scorer(m2), m2, lambda x, y: ad.train_loss(m2, x, y), t2, tbytes[: t2.size - 1], cfg,
                     seq_len=Lt, stride=stride, device=a.device)
        res["ttt"] = {"own_bpb": own_bpb, "own_seconds": own_t, "ours_bpb": r.val_bpb, "ours_seconds": r.seconds,
                      "bpb_diff": r.val_bpb - own_bpb, "speedup_vs_own": own_t / r.seconds, "tokens": r.tokens,
                      "chunks": r.extra["ttt_chunks"], "steps": r.extra["ttt_steps"], "config": ad.ttt_settings()}
        print("ttt", json.dumps(res["ttt"]), flush=True)
    print("BENCH " + json.dumps(res), flush=True)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
