#!/usr/bin/env python3
"""Adapter coverage over records folders (GPU): for each record, random weights, serialise with the
record's own code, load with our adapter, and require CE(our logits) == the record's own forward(x, y).

Each record runs in its own subprocess (its own imports, env and a time limit). Fake train/val shards
(random tokens) stand in for FineWeb so that GPTQ calibration inside `serialize` has data.

    python scripts/gpu_eval_coverage.py local/records --out out/coverage.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"sp1024": 1024, "sp4096": 4096, "sp8192": 8192,
            "sp8192_lossless_caps_caseops_v1_reserved": 8192}
SMALL_ENV = {"GPTQ_CALIBRATION_BATCHES": "2", "GPTQ_CALIB_BATCHES": "2", "GPTQ_CALIB_SAMPLES": "4",
             "GPTQ_NUM_SEQS": "4", "GPTQ_AR_SELFGEN": "0", "GPTQ_RESERVE_SECONDS": "0",
             "TRAIN_BATCH_TOKENS": "65536", "COMPRESSOR_FALLBACK": "1"}


def script_of(folder: Path) -> Path | None:
    main = folder / "train_gpt.py"
    if main.is_file() and main.stat().st_size > 0:
        return main
    cands = sorted(p for p in folder.glob("train*.py") if p.stat().st_size > 0)
    return cands[0] if cands else None


def make_fake_data(root: Path, tokenizers: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from harness.evaluate.shards import write_shard

    rng = np.random.default_rng(0)
    for name, vocab in VARIANTS.items():
        d = root / "data" / "datasets" / f"fineweb10B_{name}"
        d.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", 1 << 20), ("val", 1 << 17)):
            toks = rng.integers(4, vocab, n)
            toks[:: 1000] = 1
            write_shard(d / f"fineweb_{split}_000000.bin", toks)
        write_shard(d / "fineweb_val_bytes_000000.bin", rng.integers(1, 5, 1 << 17))
    tok = root / "data" / "tokenizers"
    tok.mkdir(parents=True, exist_ok=True)
    for m in tokenizers.glob("*.model"):
        (tok / m.name).write_bytes(m.read_bytes())


def one(script: Path, out: Path) -> dict:
    """Runs inside the subprocess."""
    import torch
    import torch.nn.functional as F

    from harness.evaluate.adapter import SubmissionAdapter
    from harness.evaluate.checks import flip_test

    rec: dict = {"record": script.parent.name, "script": script.name}
    t0 = time.time()
    dev = os.environ.get("GA_DEVICE", "cuda")
    ad = SubmissionAdapter(script, dev)
    rec["via"] = ("hook" if ad.hook else "deserialize" if callable(getattr(ad.module, "deserialize", None))
                  else "main-slice")
    torch.manual_seed(0)
    model = ad.build_model()
    if os.environ.get("GA_DRY"):  # CPU-only: resolve the strategy and build the model, run nothing else
        rec.update(ad.plan(), ok=True, params=sum(p.numel() for p in model.parameters()),
                   seconds=time.time() - t0)
        rec.pop("lines", None)
        return rec
    with torch.no_grad():
        g = torch.Generator(device="cpu").manual_seed(1)
        for p in model.parameters():
            if p.is_floating_point():
                p.add_((torch.randn(p.shape, generator=g) * 0.02).to(p.device, p.dtype))
    orig = {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}
    art = ad.serialize(model, out)
    rec["artifact_bytes"] = art.stat().st_size
    torch.manual_seed(123)  # a different fresh init: a load that did nothing is caught below
    loaded = ad.load_artifact(art)
    loaded.eval()
    sd = loaded.state_dict()
    errs = []
    for k, v in orig.items():
        if k in sd and v.numel() > 1 and v.norm() > 0:
            errs.append(((sd[k].detach().float().cpu() - v).norm() / v.norm()).item())
    rec["weight_relerr_median"] = sorted(errs)[len(errs) // 2] if errs else None
    V = ad.vocab_size
    L = min(int(ad.eval_settings()["seq_len"]), 1024)
    x = torch.randint(0, V, (2, L), generator=torch.Generator().manual_seed(2)).to(dev)
    y = torch.randint(0, V, (2, L), generator=torch.Generator().manual_seed(3)).to(dev)
    with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
        logits = ad.logits(loaded, x)
        ours = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1)).item()
        own = loaded(x, y)
        own = float(own[0] if isinstance(own, tuple) else own)
    rec.update(loss_ours=ours, loss_own=own, diff=abs(ours - own), logits_shape=list(logits.shape))
    sc = ad.scorer(loaded)
    rec["head_slice"] = sc.head_slice
    with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
        ft = flip_test(lambda t: ad.logits(loaded, t), x[:, :256], V, tol=2e-2)
    rec["flip"] = {"passed": ft.passed, "max_diff": ft.max_diff}
    rel = rec["weight_relerr_median"]
    rec["ok"] = bool(rec["diff"] <= 2e-3 * max(1.0, abs(own)) and rel is not None and rel < 0.5
                     and logits.size(-1) >= V)
    if not rec["ok"]:
        rec["reason"] = (f"loss mismatch ours={ours:.5f} own={own:.5f}" if rec["diff"] > 2e-3 * max(1, abs(own))
                         else f"weights not loaded (median rel err {rel})")
    rec["seconds"] = time.time() - t0
    return rec


def _fast_compressors() -> None:
    """Coverage runs dozens of records: make brotli/lzma/zstd compress at a low level. The format (and
    the record's own decompression) is unchanged; only the size of the test artifact is."""
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
    ap.add_argument("records", type=Path, nargs="?")
    ap.add_argument("--out", type=Path, default=Path("out/coverage.jsonl"))
    ap.add_argument("--tokenizers", type=Path, default=ROOT / "local" / "tokenizers")
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--jobs", type=int, default=6, help="records run at once (they share the GPU)")
    ap.add_argument("--only", default="", help="substring filter on record names")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        sys.path.insert(0, str(ROOT))
        _fast_compressors()
        try:
            rec = one(a.one, Path(tempfile.mkdtemp(prefix="cov-")))
        except BaseException as exc:  # noqa: BLE001 - report every failure as a reason
            rec = {"record": a.one.parent.name, "script": a.one.name, "ok": False,
                   "reason": f"{type(exc).__name__}: {str(exc)[:400]}"}
        print("COVERAGE " + json.dumps(rec), flush=True)
        return 0
    fake = Path(tempfile.mkdtemp(prefix="ga-fake-"))
    make_fake_data(fake, a.tokenizers)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    folders = sorted(p for p in a.records.iterdir() if p.is_dir() and a.only in p.name)
    env = dict(os.environ, DATA_DIR=str(fake / "data") + "/", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]), **SMALL_ENV)

    def run_one(folder: Path) -> dict:
        script = script_of(folder)
        if script is None:
            return {"record": folder.name, "ok": False, "reason": "no training script"}
        try:
            p = subprocess.run([sys.executable, __file__, "--one", str(script.resolve())], cwd=fake,
                               env=env, capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            return {"record": folder.name, "ok": False, "reason": f"timeout {a.timeout}s"}
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("COVERAGE ")), None)
        return json.loads(line[9:]) if line else {"record": folder.name, "ok": False,
                                                  "reason": "crashed: " + p.stderr[-300:]}

    from concurrent.futures import ThreadPoolExecutor, as_completed

    results = []
    with ThreadPoolExecutor(a.jobs) as pool:
        futures = [pool.submit(run_one, f) for f in folders]
        for fut in as_completed(futures):
            rec = fut.result()
            results.append(rec)
            print(("PASS " if rec["ok"] else "FAIL ") + rec["record"]
                  + ("" if rec["ok"] else "  " + rec["reason"][:200]), flush=True)
            with a.out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
    with_code = [r for r in results if r.get("reason") != "no training script"]
    npass = sum(r["ok"] for r in results)
    print(f"coverage: {npass}/{len(with_code)} records with code pass ({npass}/{len(results)} folders)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
