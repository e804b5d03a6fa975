#!/usr/bin/env python3
"""Our reference eval vs a submission's own eval loops: same weights, same tokens, same process.

For a records folder: build the model with random weights, write and reload the artifact with the
record's own code, tokenise a text corpus into a val shard, then
- sliding: the record's own `eval_val_sliding` (warm-up call, then a timed call), ours in `--exact` mode
  (the record's own compiled `forward_logits`, its batching and window layout) and ours in fast mode
  (compiled forward on scored positions only, compiled loss, padded static batches), warm then timed;
  `--profile` adds the fast mode's GPU time by kernel kind;
- TTT, where the record has `eval_val_sliding_ttt`/`eval_val_ttt`: its own and ours (fast: compiled
  training steps, windows scored as the record's own loop scores them: compiled, or compiled with eager
  rounding where its loop is eager; exact) on
  `--ttt-tokens` tokens with the record's hyperparameters, each on a fresh copy of the loaded model, a
  warm-up run before the timed run; with `--deterministic-ttt` also its own (twice) and ours --exact
  under deterministic kernels, where the runs can be compared below the ~1e-6 BPB that the default
  kernels vary by from run to run. Each row has `run_to_run`: the BPB change between its
  warm-up and timed run.
Both sides score one token set: the TTT runs take the first `--ttt-tokens` of the sliding shard (so
`--ttt-tokens` may not exceed `--tokens`), written as the shard the record's own loop reads, cut to a
multiple of both sequence lengths. Every row names the val tokens and TTT chunks its side scored; a row
whose counts differ from the record's own has no BPB difference and the run exits 1.
Prints one table (BPB, difference to the record's own, tokens and chunks scored, seconds, targets/s, speed
ratio, MFU) and writes `--json`. MFU counts the model FLOPs the task needs: the body forward over every window position plus the
head only on scored positions (attention counted causal, i.e. half of the square), for TTT plus 3x the
forward FLOPs per trained token (forward + backward); FLOPs from torch's FlopCounterMode on one window.
Peak: `--peak-tflops` (989 = H100/H200 dense bf16). `--audit-eval` then runs `audit.py eval` itself (a
subprocess: sliding, then `--ttt`) on the same artifact and shards and adds its BPB, scoring and seconds.

    python benchmarks/bench_eval.py local/records/2026-03-23_LeakyReLU_LegalTTT_ParallelMuon \
        --corpus local/bench_corpus.txt --tokenizer local/tokenizers/fineweb_1024_bpe.model --json out/a.json
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus_tokens(corpus: Path, tokenizer: Path, n_tokens: int):
    """The first `n_tokens` + 1 tokens of the corpus (documents split at three newlines, each after a BOS)."""
    import numpy as np
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    text = corpus.read_text(encoding="utf-8", errors="replace")
    docs = [d for d in text.split("\n\n\n") if d.strip()] or [text]
    ids: list[int] = []
    while len(ids) <= n_tokens + 1:
        for d in docs:
            ids.append(sp.bos_id())
            ids.extend(sp.encode(d))
            if len(ids) > n_tokens + 1:
                break
    return np.array(ids[: n_tokens + 1], dtype=np.int64)


def write_corpus_shards(corpus: Path, tokenizer: Path, root: Path, vocab: int, n_tokens: int) -> Path:
    return write_token_shards(corpus_tokens(corpus, tokenizer, n_tokens), tokenizer, root, vocab)


def write_token_shards(arr, tokenizer: Path, root: Path, vocab: int) -> Path:
    """A val shard holding exactly `arr` (and a train shard), with the tokenizer where the records look."""
    import numpy as np

    from harness.evaluate.valdata import write_shard

    data = root / "datasets" / f"fineweb10B_sp{vocab}"
    data.mkdir(parents=True, exist_ok=True)
    write_shard(data / "fineweb_val_000000.bin", arr)
    write_shard(data / "fineweb_train_000000.bin", np.resize(arr, 1 << 20))
    tok = root / "tokenizers"
    tok.mkdir(parents=True, exist_ok=True)
    (tok / tokenizer.name).write_bytes(tokenizer.read_bytes())
    (tok / f"fineweb_{vocab}_bpe.model").write_bytes(tokenizer.read_bytes())
    return data


def check_token_args(tokens: int, ttt_tokens: int) -> str | None:
    """Why the two counts cannot give one token set for both sides (None when they can)."""
    if tokens <= 0 or ttt_tokens <= 0:
        return f"--tokens ({tokens}) and --ttt-tokens ({ttt_tokens}) must be positive"
    if ttt_tokens > tokens:
        return (f"--ttt-tokens ({ttt_tokens:,}) is larger than --tokens ({tokens:,}): both sides' TTT runs score "
                "the first --ttt-tokens of the sliding shard, so it cannot exceed --tokens")
    return None


def shared_cut(n_tokens: int, *seq_lens: int) -> int:
    """The largest target count <= n_tokens that every loader keeps whole: a multiple of each sequence length
    (the records' loaders cut the val tokens to a multiple of their seq_len)."""
    step = math.lcm(*[s for s in seq_lens if s])
    return (n_tokens // step) * step


def chunks(n_targets: int, chunk_tokens: int) -> int:
    return max(1, -(-n_targets // chunk_tokens))


def loaded_targets(kw: dict[str, Any]) -> int | None:
    """How many val targets the arguments hand the record's function (val_tokens, or val_data's tokens)."""
    toks = kw.get("val_tokens")
    if toks is None and kw.get("val_data") is not None:
        toks = getattr(kw["val_data"], "val_tokens", None)
    return int(toks.numel()) - 1 if hasattr(toks, "numel") else None


def call_by_names(fn, mod, h, model, device, stride: int, seen: dict[str, Any] | None = None):
    """Call one of the record's eval functions, filling its parameters by name; (result, seconds). `seen`
    receives `targets`: how many val targets its arguments held (None when it loads them itself)."""
    import sentencepiece as spm

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
    if seen is not None:
        seen["targets"] = loaded_targets(kw)
    return timed(fn, **kw)


def audit_eval_runs(record: Path, artifact: Path, shards: dict[str, Path], tokenizer: Path,
                    device: str) -> list[dict[str, Any]]:
    """`audit.py eval` itself, one subprocess per entry of `shards` ("sliding" or "ttt" → the folder of its
    val shard), on the benchmark's artifact: its BPB, targets, bytes, scoring note, eval seconds, or its
    error. It scores every target once: where the record's own layout scores some twice (03-23: 64 of 4,096
    at L=128, 1,984 of 262k at 2048), its BPB is not the rows' and its target count says so."""
    import subprocess

    out = []
    for kind, data in shards.items():
        cmd = [sys.executable, str(ROOT / "audit.py"), "eval", str(record), "--artifact", str(artifact),
               "--data", str(data), "--tokenizer", str(tokenizer), "--device", device, "--format", "json",
               "--compile", "on" if device.startswith("cuda") else "off"] + (["--ttt"] if kind == "ttt" else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        entry: dict[str, Any] = {"run": f"audit.py eval{' --ttt' if kind == 'ttt' else ''}", "rc": proc.returncode,
                                 "wall_s": round(time.perf_counter() - t0, 1)}
        try:
            sub = json.loads(proc.stdout)["submissions"][0]
            measured = sub["measured"]
            rep = measured["reproduced"]
            entry.update(verdict=sub["verdict"], bpb=measured["val_bpb_mean"]["value"], tokens=rep["tokens"],
                         bytes=rep["bytes"], scoring=rep.get("scoring"), eval_seconds=measured["eval_seconds"]["value"])
        except (ValueError, KeyError, IndexError, TypeError):
            entry["error"] = (proc.stderr or proc.stdout)[-600:]
        out.append(entry)
    return out


def function_source(source: str, name: str) -> str:
    """The source text of top-level function `name` in the (decoded) script, '' when absent."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(source, node) or ""
    return ""


def detect_layout(fn_source: str) -> str:
    """The record's window layout (see harness.evaluate.sliding) read off its eval function's source."""
    flat = "".join(fn_source.split())
    if "context_size<total" in flat or "+context_size<" in flat:
        return "single"
    if ">=strideorws==0" in flat:
        return "style-a-ttt"
    if "-ws>=1]" in flat:
        return "style-a"
    return "single"


class FnScorer:
    """A `Scorer` over a plain logits function (the record's own, compiled as the record compiles it)."""

    def __init__(self, fn):
        self.fn = fn

    def logits(self, x, start: int = 0):
        out = self.fn(x)
        return out[:, start:] if start else out


def window_flops(model, logits_fn, seq_len: int, vocab: int, device) -> dict[str, float]:
    """FLOPs of one [1, seq_len] forward: matmul (incl. head), attention (causal: half the square) and
    the head's share per position."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.evaluate.modelstate import kept_state

    def sdpa_gqa(q, k, v, *args, out_shape=None, **kwargs) -> int:
        """q (b, h, sq, d), k (b, hk, sk, d) with hk dividing h: QK^T and PV, unmasked (halved below)."""
        return 4 * q[0] * q[1] * q[2] * k[2] * q[3]

    aten = torch.ops.aten
    sdpa_ops = [getattr(aten, n) for n in ("_scaled_dot_product_flash_attention",
                                          "_scaled_dot_product_efficient_attention",
                                          "_scaled_dot_product_cudnn_attention",
                                          "_scaled_dot_product_flash_attention_for_cpu") if hasattr(aten, n)]
    x = torch.zeros(1, seq_len, dtype=torch.int64, device=device)
    counter = FlopCounterMode(display=False, custom_mapping={op: sdpa_gqa for op in sdpa_ops})
    # grad mode on: the counter's module tracker breaks on parameters used under no_grad
    with counter, torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"), \
            kept_state(model):        # the record's own loop fills its rotary caches, as in its own run
        logits_fn(x)
    attn = other = 0.0
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        if "attention" in str(op):
            attn += n
        else:
            other += n
    dim = model.tok_emb.weight.shape[1]
    return {"matmul": other, "attention_causal": attn / 2, "total": other + attn / 2,
            "head_per_position": 2.0 * vocab * dim}


def timed(fn, *a, **k):
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn(*a, **k)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def row(label: str, bpb: float, own: float | None, seconds: float, tokens: int, own_s: float | None,
        flops: float, peak: float, scored: tuple[int | None, int | None] = (None, None),
        own_scored: tuple[int | None, int | None] | None = None) -> dict[str, Any]:
    """One table row. `scored`: (val targets, TTT chunks) this side scored; `own_scored`: the record's own,
    for a row compared with it. Rows whose counts differ get no BPB difference (`unequal` says why)."""
    out = {"label": label, "bpb": bpb, "diff": None if own is None else bpb - own, "seconds": seconds,
           "tokens_per_s": tokens / seconds, "ratio": None if own_s is None else own_s / seconds,
           "mfu": flops / seconds / (peak * 1e12), "val_targets": scored[0], "ttt_chunks": scored[1]}
    if own_scored is not None and tuple(scored) != tuple(own_scored):
        out.update(diff=None, ratio=None, unequal=f"scored {scored[0]} targets / {scored[1]} chunks, the record's "
                                                   f"own {own_scored[0]} / {own_scored[1]}")
    return out


def profile_fast(sliding_eval, scorer, toks, tbytes, L: int, stride: int, batch: int, device: str,
                 layout: str) -> dict[str, Any]:
    """GPU time of one fast sliding eval over ~4 batches, by kernel kind, with the attention kernels' names."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    n = min(toks.size - 1, 4 * batch * stride + L)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        sliding_eval(scorer, toks[: n + 1], tbytes[:n], L, stride, batch, device, layout=layout, compile=True,
                     pad=True)
        torch.cuda.synchronize()
    kinds: dict[str, float] = {}
    attn_names = set()
    for ev in prof.key_averages():
        name = ev.key.lower()
        us = getattr(ev, "device_time_total", 0) or getattr(ev, "cuda_time_total", 0)
        if any(k in name for k in ("flash", "fmha", "attention", "cudnn", "sdpa")):
            kind = "attention"
            attn_names.add(ev.key[:80])
        elif any(k in name for k in ("gemm", "nvjet", "cutlass", "sm90_xmma", "matmul")):
            kind = "gemm"
        elif "triton" in name:
            kind = "triton (fused elementwise/reductions)"
        else:
            kind = "other"
        kinds[kind] = kinds.get(kind, 0.0) + us
    total = sum(kinds.values()) or 1.0
    return {"share": {k: round(v / total, 3) for k, v in sorted(kinds.items())},
            "gpu_ms": round(total / 1e3, 2), "attention_kernels": sorted(attn_names)}


def deterministic_ttt_rows(res: dict[str, Any], own_run, ours_exact, targets: int, flops: float,
                           peak: float, own_scored=(None, None), ours_scored=(None, None)) -> None:
    """The record's own TTT twice and ours --exact once with deterministic kernels (torch's deterministic
    algorithms, SDPA's math kernel): the run-to-run spread of the default kernels (atomics in attention
    and embedding backward) is about 1e-6 BPB, larger than what --exact is to show."""
    import torch

    cuda = torch.backends.cuda
    fused = {f: getattr(cuda, f"{f}_enabled")() for f in ("flash_sdp", "mem_efficient_sdp", "cudnn_sdp")}
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        for f in fused:
            getattr(cuda, f"enable_{f}")(False)               # SDPA's math kernel only
        own = [own_run() for _ in range(2)]
        ours, ours_s = ours_exact()
    except Exception as exc:  # noqa: BLE001 - report, keep the other rows
        res["deterministic_ttt_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return
    finally:
        torch.use_deterministic_algorithms(False)
        for f, on in fused.items():
            getattr(cuda, f"enable_{f}")(on)
    (_, b1), s1 = own[0]
    (_, b2), s2 = own[1]
    res["rows"].append(row("TTT deterministic: own", b2, None, s2, targets, None, flops, peak, own_scored))
    res["rows"][-1]["run_to_run"] = b2 - b1
    res["rows"].append(row("TTT deterministic: ours --exact", ours.val_bpb, b2, ours_s, targets, s2, flops, peak,
                           ours_scored, own_scored))
    print("deterministic ttt", res["rows"][-2:], flush=True)


def print_table(res: dict[str, Any]) -> None:
    print(f"\n== {res['record']} | {res['device']} | torch {res['torch']} | sp{res['vocab']} | L={res['seq_len']} "
          f"stride={res['stride']} | layout sliding={res['layout']} ttt={res.get('ttt_layout')} | "
          f"attention: {res['attention']}")
    print(f"{'run':34s} {'val_bpb':>12s} {'diff vs own':>12s} {'targets':>9s} {'chunks':>6s} {'seconds':>8s} "
          f"{'tok/s':>10s} {'ratio':>6s} {'MFU':>6s}")
    for r in res["rows"]:
        diff = "UNEQUAL" if r.get("unequal") else "" if r["diff"] is None else f"{r['diff']:+.2e}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        targets = "?" if r.get("val_targets") is None else str(r["val_targets"])
        n_chunks = "" if r.get("ttt_chunks") is None else str(r["ttt_chunks"])
        print(f"{r['label']:34s} {r['bpb']:12.8f} {diff:>12s} {targets:>9s} {n_chunks:>6s} {r['seconds']:8.3f} "
              f"{r['tokens_per_s']:10.0f} {ratio:>6s} {100 * r['mfu']:5.1f}%")
    for r in res["rows"]:
        if r.get("unequal"):
            print(f"UNEQUAL token sets in '{r['label']}': {r['unequal']}")
    print(flush=True)


def main() -> int:
    from harness.cli_args import SCORING_KINDS
    from harness.evaluate.reference_eval import scoring_kind  # no torch: before the env is set up

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--tokens", type=int, default=262144)
    ap.add_argument("--ttt-tokens", type=int, default=131072)
    ap.add_argument("--batch-seqs", type=int, default=64, help="windows per forward in fast mode")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seq-len", type=int, help="override the record's seq_len and TTT chunk (smoke tests)")
    ap.add_argument("--no-ttt", action="store_true")
    ap.add_argument("--profile", action="store_true", help="GPU time by kernel kind for the fastest fast mode")
    ap.add_argument("--deterministic-ttt", action="store_true",
                    help="also run own and ours --exact TTT with deterministic kernels (math SDPA: slower)")
    ap.add_argument("--eager", action="store_true", help="compile nothing of ours (CPU smoke runs)")
    ap.add_argument("--audit-eval", action="store_true",
                    help="also run `audit.py eval` (sliding and --ttt) on the same artifact and shards")
    ap.add_argument("--scoring", "--ttt-scoring", dest="scoring", default="auto",
                    choices=("auto", *SCORING_KINDS),
                    help="how our fast modes score (as `audit.py eval --scoring`; auto: as the record's loop)")
    a = ap.parse_args()
    problem = check_token_args(a.tokens, a.ttt_tokens)
    if problem:
        ap.error(problem)
    a.record, a.corpus, a.tokenizer = a.record.resolve(), a.corpus.resolve(), a.tokenizer.resolve()
    if a.json:
        a.json = a.json.resolve()
        a.json.parent.mkdir(parents=True, exist_ok=True)

    import sentencepiece as spm

    vocab = spm.SentencePieceProcessor(model_file=str(a.tokenizer)).vocab_size()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    data = write_corpus_shards(a.corpus, a.tokenizer, tmp / "data", vocab, a.tokens)
    os.environ.update(DATA_DIR=str(tmp / "data") + "/", DATA_PATH=str(data), TOKENIZER_PATH=str(a.tokenizer),
                      GPTQ_CALIBRATION_BATCHES="2", GPTQ_RESERVE_SECONDS="0")
    if a.seq_len:
        os.environ.update(TRAIN_SEQ_LEN=str(a.seq_len), EVAL_SEQ_LEN=str(a.seq_len),
                          TTT_CHUNK_TOKENS=str(4 * a.seq_len), ROPE_TRAIN_SEQ_LEN=str(a.seq_len))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")    # deterministic cuBLAS, if asked for
    os.chdir(tmp)
    from harness.evaluate.fastcodec import fast_compressors

    fast_compressors().__enter__()        # the artifact is only a vehicle here: compress it quickly
    import torch

    from harness.data.bytetables import build_byte_tables
    from harness.evaluate.adapter import TTT_LOOPS, SubmissionAdapter
    from harness.evaluate.modelstate import snapshot
    from harness.evaluate.sliding import plan_windows, sliding_eval, target_bytes
    from harness.evaluate.ttt import TTTConfig, ttt_eval
    from harness.evaluate.valdata import load_tokens

    for knob in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 256)
    torch.backends.cuda.matmul.allow_tf32 = True       # as the records' main() sets it
    torch.backends.cudnn.allow_tf32 = True

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
    model = ad.load_artifact(art).eval()   # with the settings the record applies after deserialize()
    as_loaded = snapshot(model)            # caches empty, as after the record's own deserialize()
    st = ad.eval_settings()
    L, stride = st["seq_len"], st["stride"]
    fa = sys.modules.get("flash_attn_interface")
    res: dict[str, Any] = {
        "record": a.record.name, "vocab": vocab, "seq_len": L, "stride": stride,
        "artifact_bytes": art.stat().st_size, "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else a.device,
        "attention": "SDPA stand-in for FA3" if getattr(fa, "STANDIN", False) else "flash_attn_interface",
        "peak_tflops": a.peak_tflops, "batch_seqs_fast": a.batch_seqs, "rows": []}

    own_sliding = getattr(mod, "eval_val_sliding", None)
    layout = detect_layout(function_source(ad.source, "eval_val_sliding"))
    res["layout"] = layout
    toks_np, _, _ = load_tokens(data)
    toks_np = toks_np[: ((toks_np.size - 1) // L) * L + 1]      # the records' loader truncation
    tbytes = target_bytes(toks_np, build_byte_tables(a.tokenizer, vocab), None)
    fl = window_flops(model, model.forward_logits, L, vocab, device)
    res["flops_per_window"] = fl

    def need_flops(windows) -> float:
        return sum(fl["total"] - (L - (w.wlen - w.s)) * fl["head_per_position"] for w in windows)

    windows = plan_windows(toks_np.size - 1, L, stride, layout)
    sl_flops = need_flops(windows)
    res["sliding_targets"] = int(sum(w.wlen - w.s for w in windows))

    own_bpb = own_s = own_sl_scored = None
    ours_sl_scored = (int(toks_np.size - 1), None)
    if own_sliding is not None:
        seen: dict[str, Any] = {}
        call_by_names(own_sliding, mod, h, model, device, stride)                 # warm-up (compile)
        runs = [call_by_names(own_sliding, mod, h, model, device, stride, seen) for _ in range(2)]
        (_, own_bpb), own_s = min(runs, key=lambda r: r[1])                       # best of 2 warm runs
        own_sl_scored = (seen.get("targets"), None)
        res["rows"].append(row("sliding: own eval_val_sliding", own_bpb, None, own_s, res["sliding_targets"],
                               None, sl_flops, a.peak_tflops, own_sl_scored))
        res["rows"][-1]["run_to_run"] = runs[1][0][1] - runs[0][0][1]
        print("own", res["rows"][-1], flush=True)

    compile_ = (lambda f: f) if a.eager else (lambda f: torch.compile(f, dynamic=False, fullgraph=True))
    exact_sc = FnScorer(compile_(model.forward_logits))
    model.eval()
    for _ in range(2):
        r, r_s = timed(sliding_eval, exact_sc, toks_np, tbytes, L, stride, st["batch_seqs"], a.device,
                       exact=True, layout=layout)
    res["rows"].append(row("sliding: ours --exact", r.val_bpb, own_bpb, r_s, r.tokens, own_s, sl_flops,
                           a.peak_tflops, ours_sl_scored, own_sl_scored))
    print("exact", res["rows"][-1], r.extra, flush=True)
    fast_sc = ad.scorer(model, head_slice=True)
    res["head_slice"] = fast_sc.head_slice
    model.eval()
    res["sliding_own_scoring"] = ad.sliding_scoring()
    sl_kind = res["sliding_scoring"] = scoring_kind(a.scoring, res["sliding_own_scoring"])
    runs = [timed(sliding_eval, fast_sc, toks_np, tbytes, L, stride, a.batch_seqs, a.device, layout=layout,
                  compile=not a.eager and sl_kind != "eager", pad=True, eager_rounding=sl_kind == "eager-rounding")
            for _ in range(3)]   # the 1st compiles; best of the other 2
    r, r_s = min(runs[1:], key=lambda t: t[1])
    res["rows"].append(row(f"sliding: ours fast (B={a.batch_seqs}, {r.extra['scoring']} scoring)", r.val_bpb,
                           own_bpb, r_s, r.tokens, own_s, sl_flops, a.peak_tflops, ours_sl_scored, own_sl_scored))
    res["rows"][-1].update(run_to_run=runs[2][0].val_bpb - runs[1][0].val_bpb, compile_s=runs[0][1])
    print("fast", res["rows"][-1], r.extra, flush=True)
    if a.profile:
        res["profile"] = profile_fast(sliding_eval, fast_sc, toks_np, tbytes, L, stride, a.batch_seqs, a.device,
                                      layout)
        print("profile", res["profile"], flush=True)
    print_table(res)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))

    ttt_name = next((n for n in TTT_LOOPS if callable(getattr(mod, n, None))), None)
    if ttt_name is not None and not a.no_ttt:
        ttt_fn = getattr(mod, ttt_name)
        src = function_source(ad.source, ttt_name)
        tl = detect_layout(src)
        res["ttt_layout"] = tl
        own_scoring = res["ttt_own_scoring"] = ad.ttt_scoring()
        own_compiled = own_scoring == "compiled"
        t_kind = res["ttt_scoring"] = scoring_kind(a.scoring, own_scoring)
        settings = ad.ttt_settings()
        Lt = settings["train_seq_len"] or L
        if "eval_seq_len" in "".join(src.split()).split("total_tokens")[0]:
            Lt = L                                     # 04-0x packed records score and train at eval_seq_len
        cfg = TTTConfig(**{**settings, "train_seq_len": Lt})
        # one token set for both sides: the first --ttt-tokens of the sliding shard, cut so that our loop and
        # the record's loader (which cuts to its own seq_len) keep every one of them
        own_seq = getattr(h, "eval_seq_len", 0) or h.train_seq_len
        t2 = toks_np[: shared_cut(min(a.ttt_tokens, toks_np.size - 1), Lt, own_seq) + 1]
        data2 = write_token_shards(t2, a.tokenizer, tmp / "data_ttt", vocab)
        h.val_files = str(data2 / "fineweb_val_*.bin")
        res["ttt_config"] = settings | {"train_seq_len": Lt, "tokens": int(t2.size - 1)}
        tw = plan_windows(t2.size - 1, Lt, stride, tl)
        n_chunks = max(1, (t2.size - 1 + cfg.chunk_tokens - 1) // cfg.chunk_tokens)
        trained = sum(cfg.epochs * ((min((ci + 1) * cfg.chunk_tokens, t2.size - 1) - ci * cfg.chunk_tokens) // Lt)
                      * Lt for ci in range(n_chunks - 1))
        ttt_flops = need_flops(tw) + 3 * trained * fl["total"] / L
        ttt_targets = int(sum(w.wlen - w.s for w in tw))

        # one model object for every TTT run, its loaded weights restored in place before each run, so
        # compiled graphs (theirs and ours) are reused by the timed runs
        mt = model                      # the sliding runs are done: reuse its compiled graphs
        loaded = {k: v.detach().clone() for k, v in mt.state_dict().items()}

        def fresh():            # as the records' TTT: a freshly loaded model (caches made under the
            with torch.no_grad():   # sliding eval's inference_mode cannot be trained through)
                mt.load_state_dict(loaded)
            as_loaded()
            mt.eval()
            return mt

        own_seen: dict[str, Any] = {}

        def own_run():
            return call_by_names(ttt_fn, mod, h, fresh(), device, stride, own_seen)

        own_t_bpb = own_t_s = own_t_scored = None
        try:
            (_, own_t_warm), _ = own_run()
            (_, own_t_bpb), own_t_s = own_run()
        except RuntimeError as exc:     # the record's own loop from a freshly loaded model; on the CPU (fp32,
            # no autocast) the 03-23 record trains through rotary tables its inference_mode scoring cached
            res["own_ttt_error"] = f"{type(exc).__name__}: {exc}"[:300]
            print("own ttt failed:", res["own_ttt_error"], flush=True)
        else:
            own_n = own_seen.get("targets")
            own_t_scored = (own_n, None if own_n is None else chunks(own_n, cfg.chunk_tokens))
            res["rows"].append(row(f"TTT: own {ttt_name}", own_t_bpb, None, own_t_s, ttt_targets, None, ttt_flops,
                                   a.peak_tflops, own_t_scored))
            res["rows"][-1]["run_to_run"] = own_t_bpb - own_t_warm
            print("own ttt", res["rows"][-1], flush=True)

        def train_fn(x, y):             # one callable for every run: its compiled graphs are kept per callable
            return ad.train_loss(mt, x, y)

        def ours(exact: bool):
            m = fresh()
            if exact:
                fn = compile_(m.forward_logits) if own_compiled else m.forward_logits
                sc, bs = FnScorer(fn), cfg.batch_seqs
            else:
                sc, bs = fast_sc, a.batch_seqs
            return timed(ttt_eval, sc, m, train_fn, t2, tbytes[: t2.size - 1], cfg,
                         seq_len=Lt, stride=stride, batch_seqs=bs, device=a.device, exact=exact, layout=tl,
                         compile=not exact and not a.eager and t_kind != "eager", pad=not exact,
                         compile_train=not exact and not a.eager, eager_rounding=t_kind == "eager-rounding")

        (warm, _), (rt, rt_s) = ours(False), ours(False)
        kinds = f"{rt.extra['scoring']} scoring, {'compiled' if rt.extra['compiled_train'] else 'eager'} train"
        ours_t_scored = (int(t2.size - 1), rt.extra["ttt_chunks"])
        res["rows"].append(row(f"TTT: ours fast (B={a.batch_seqs}, {kinds})", rt.val_bpb, own_t_bpb, rt_s,
                               rt.tokens, own_t_s, ttt_flops, a.peak_tflops, ours_t_scored, own_t_scored))
        res["rows"][-1]["run_to_run"] = rt.val_bpb - warm.val_bpb
        print("fast ttt", res["rows"][-1], flush=True)
        re_, re_s = ours(True)
        res["rows"].append(row("TTT: ours --exact (1 run)", re_.val_bpb, own_t_bpb, re_s,
                               re_.tokens, own_t_s, ttt_flops, a.peak_tflops, (int(t2.size - 1),
                                                                              re_.extra["ttt_chunks"]), own_t_scored))
        print("exact ttt", res["rows"][-1], flush=True)
        if a.deterministic_ttt:
            deterministic_ttt_rows(res, own_run, lambda: ours(True), ttt_targets, ttt_flops, a.peak_tflops,
                                   own_t_scored, ours_t_scored)
        res["ttt_steps"] = rt.extra["ttt_steps"]
    if a.audit_eval:
        shards = {"sliding": data} | ({"ttt": data2} if "ttt_config" in res else {})
        res["audit_eval"] = audit_eval_runs(a.record, art, shards, a.tokenizer, a.device)
        for entry in res["audit_eval"]:
            print("audit", entry, flush=True)
    print_table(res)
    print("BENCH " + json.dumps(res), flush=True)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 1 if any(r.get("unequal") for r in res["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
