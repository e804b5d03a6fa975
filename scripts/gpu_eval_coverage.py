#!/usr/bin/env python3
"""Adapter coverage over records folders (GPU): for each record, random weights, serialise with the
record's own code, load with our adapter, and require CE(our logits) == the record's own forward(x, y).

Each record runs in its own subprocess (its own imports, env and a time limit). Fake train/val shards
(random tokens) and the real tokenizers stand in for FineWeb under every data path the records use, so that
GPTQ calibration inside their `serialize` has data.

Speed (what is tested is unchanged): inside the subprocess `torch.compile` is the identity (the record's own
forward is its eager forward either way), compressors run at a low level (same formats, bigger test
artifacts) and GPTQ calibration is cut to a few batches through the records' own environment knobs. Each
result carries `phases` (seconds per step) so a slow record shows where its time went.

    python scripts/gpu_eval_coverage.py local/records --gpus 4 --jobs 4 --budget 330
    GA_DEVICE=cpu GA_COVERAGE_LEN=128 python scripts/gpu_eval_coverage.py local/records --only Naive
    GA_DRY=1 ...   # CPU-only: resolve the load strategy and build the model, nothing else
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# dataset folder suffix -> vocabulary of its fake shards
VARIANTS = {"sp1024": 1024, "sp4096": 4096, "sp8192": 8192,
            "sp8192_lossless_caps_caseops_v1_reserved": 8192, "byte260": 260, "bytes": 256}
# extra names under data/datasets/ that records use for the same shards (CaseOps keeps a nested copy)
ALIASES = {"fineweb10B_sp8192_caseops/datasets/datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved":
           "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"}
TOKENIZER_ALIASES = {"fineweb10B_sp8192_caseops/datasets/tokenizers": "tokenizers"}
SMALL_ENV = {"GPTQ_CALIBRATION_BATCHES": "2", "GPTQ_CALIB_BATCHES": "2", "GPTQ_CALIB_SAMPLES": "4",
             "GPTQ_NUM_SEQS": "2", "GPTQ_GEN_LEN": "64", "GPTQ_BATCH_SIZE": "2", "GPTQ_AR_SELFGEN": "0",
             "GPTQ_RESERVE_SECONDS": "0", "GPTQ_RESERVE_MS": "0", "TRAIN_BATCH_TOKENS": "65536",
             "COMPRESSOR_FALLBACK": "1"}


def script_of(folder: Path) -> Path | None:
    main = folder / "train_gpt.py"
    if main.is_file() and main.stat().st_size > 0:
        return main
    cands = sorted(p for p in folder.glob("train*.py") if p.stat().st_size > 0)
    return cands[0] if cands else None


def make_fake_data(root: Path, tokenizers: Path) -> None:
    """root/data/{datasets,tokenizers}: random-token shards for every variant, the real tokenizers."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from harness.evaluate.valdata import write_shard

    rng = np.random.default_rng(0)
    datasets = root / "data" / "datasets"
    for name, vocab in VARIANTS.items():
        d = datasets / f"fineweb10B_{name}"
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
    # newer records' serialize() pipes their code through `pyminify` only to report the code's size: an
    # identity stand-in (the weights, which is what is tested, do not depend on it; real pyminify costs seconds)
    shim = root / "bin" / "pyminify"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text("#!/bin/sh\n# golfaudit coverage stand-in: code size is not what is tested\nexec cat\n")
    shim.chmod(0o755)
    links = {**{alias: datasets / target for alias, target in ALIASES.items()},
             **{alias: tok for alias in TOKENIZER_ALIASES}}
    for alias, dest in links.items():
        link = datasets / alias
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(dest, target_is_directory=True)


# ----------------------------------------------------------------------------- inside the subprocess

def _no_compile() -> None:
    """`torch.compile` becomes the identity (also as a decorator, with or without arguments)."""
    import torch

    def identity(model=None, *args, **kwargs):
        return model if model is not None else (lambda fn: fn)

    torch.compile = identity


CALIB_LIMITS = {"num_seqs": 2, "n_seqs": 2, "seq_len": 64, "gen_len": 64, "batch_size": 2, "num_batches": 2}
# one retry of a serialize whose own linear algebra failed (GPTQ's Cholesky): 16x the calibration tokens
CALIB_RETRY = {"num_seqs": 8, "n_seqs": 8, "seq_len": 256, "gen_len": 256, "batch_size": 8, "num_batches": 8}


def _small_calibration(module) -> list[str]:
    """The record's own GPTQ calibration-data generators (`generate_autoregressive_calib(model, device,
    num_seqs=64, seq_len=2048, ...)`: 64 x 2048 sampled tokens, hard-coded in the call) get at most
    CALIB_LIMITS: the calibration data changes the quantised values, not the artifact format or the load
    path under test. Returns the wrapped names."""
    import functools
    import inspect

    wrapped = []
    for name, fn in list(vars(module).items()):
        if not (inspect.isfunction(fn) and "calib" in name.lower() and "gen" in name.lower()):
            continue
        sig = inspect.signature(fn)

        def small(*args, __fn=fn, __sig=sig, **kwargs):
            bound = __sig.bind(*args, **kwargs)
            bound.apply_defaults()
            for key, cap in CALIB_LIMITS.items():
                if isinstance(bound.arguments.get(key), int):
                    bound.arguments[key] = min(bound.arguments[key], cap)
            return __fn(*bound.args, **bound.kwargs)

        setattr(module, name, functools.wraps(fn)(small))
        wrapped.append(name)
    return wrapped


class _Phases:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.times: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self.t, 2)
        self.t = now


def one(script: Path, out: Path) -> dict:
    """Runs inside the subprocess: build, randomise, serialise (theirs), load (ours), compare."""
    ph = _Phases()
    import torch
    import torch.nn.functional as F

    from harness.evaluate.adapter import SubmissionAdapter, accepts_reduction
    from harness.evaluate.checks import flip_test

    if not os.environ.get("GA_COVERAGE_COMPILE"):
        _no_compile()
    ph.mark("import_torch")
    rec: dict = {"record": script.parent.name, "script": script.name, "phases": ph.times}
    t0 = time.time()
    dev = os.environ.get("GA_DEVICE", "cuda")
    kind = "cuda" if dev.startswith("cuda") else "cpu"   # bf16 autocast as the records run (CPU too)
    ad = SubmissionAdapter(script, dev)
    rec["via"] = ("hook" if ad.hook else "deserialize" if callable(getattr(ad.module, "deserialize", None))
                  else "main-slice")
    small = _small_calibration(ad.module)
    if small:
        rec["small_calibration"] = small
    ph.mark("import_record")
    torch.manual_seed(0)
    model = ad.build_model()
    ph.mark("build")
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
    ph.mark("randomise")
    art = _serialize(ad, model, out, rec)
    if art is None:
        return rec
    rec["artifact_bytes"] = art.stat().st_size
    ph.mark("serialize")
    torch.manual_seed(123)  # a different fresh init: a load that did nothing is caught below
    loaded = ad.load_artifact(art)
    loaded.eval()
    ph.mark("load")
    sd = loaded.state_dict()
    errs = []
    for k, v in orig.items():
        if k in sd and v.numel() > 1 and v.norm() > 0:
            errs.append(((sd[k].detach().float().cpu() - v).norm() / v.norm()).item())
    rec["weight_relerr_median"] = sorted(errs)[len(errs) // 2] if errs else None
    V = ad.vocab_size
    L = min(int(ad.eval_settings()["seq_len"]), int(os.environ.get("GA_COVERAGE_LEN", "1024")))
    x = torch.randint(0, V, (2, L), generator=torch.Generator().manual_seed(2)).to(dev)
    y = torch.randint(0, V, (2, L), generator=torch.Generator().manual_seed(3)).to(dev)
    with torch.no_grad(), torch.autocast(kind, dtype=torch.bfloat16):
        logits = ad.logits(loaded, x)
        ours = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1)).item()
        if accepts_reduction(loaded):   # its own per-token NLL (a mean loss may add terms, e.g. a z-loss)
            per_token = loaded(x, y, reduction="none")
            own = float((per_token[0] if isinstance(per_token, tuple) else per_token).float().mean())
            rec["own_loss"] = "mean of forward(x, y, reduction='none')"
        else:
            own = loaded(x, y)
            own = float(own[0] if isinstance(own, tuple) else own)
    rec.update(loss_ours=ours, loss_own=own, diff=abs(ours - own), logits_shape=list(logits.shape))
    ph.mark("forward")
    sc = ad.scorer(loaded)
    rec["head_slice"] = sc.head_slice
    with torch.autocast(kind, dtype=torch.bfloat16):
        ft = flip_test(lambda t: ad.logits(loaded, t), x[:, :min(L, 128)], V, tol=2e-2)
    rec["flip"] = {"passed": ft.passed, "max_diff": ft.max_diff}
    ph.mark("checks")
    rel = rec["weight_relerr_median"]
    rec["ok"] = bool(rec["diff"] <= 2e-3 * max(1.0, abs(own)) and rel is not None and rel < 0.5
                     and logits.size(-1) >= V)
    if not rec["ok"]:
        rec["reason"] = (f"loss mismatch ours={ours:.5f} own={own:.5f}" if rec["diff"] > 2e-3 * max(1, abs(own))
                         else f"weights not loaded (median rel err {rel})" if rel is None or rel >= 0.5
                         else f"logits have {logits.size(-1)} < vocab {V} columns")
    rec["seconds"] = round(time.time() - t0, 2)
    return rec


def _serialize(ad, model, out: Path, rec: dict) -> Path | None:
    """The record's own serialize. Where its own linear algebra fails (GPTQ's Cholesky of a Hessian that is
    not positive-definite: random weights, a few calibration tokens), retry once with CALIB_RETRY; if that
    fails too, `rec` says so as an environment limitation (the artifact was never written, so the load path
    was not tested; not an adapter failure) and None is returned."""
    try:
        return ad.serialize(model, out)
    except Exception as exc:  # noqa: BLE001 - only the record's own numerical failures are handled here
        if not _own_linalg_failure(exc):
            raise
        first = exc
    saved = dict(CALIB_LIMITS)
    CALIB_LIMITS.update(CALIB_RETRY)
    try:
        art = ad.serialize(model, out)
        rec["calibration_retry"] = f"first serialize failed ({_where(first)}: {first}); passed with {CALIB_RETRY}"
        return art
    except Exception as exc:  # noqa: BLE001
        if not _own_linalg_failure(exc):
            raise
        rec.update(ok=False, reason=f"environment limitation: the record's own {_where(exc)} failed on random "
                                    f"weights and a cut-down calibration (also with {CALIB_RETRY}): "
                                    f"{type(exc).__name__}: {str(exc)[:200]}; not an adapter failure (no "
                                    "artifact was written, so its load was not tested)")
        return None
    finally:
        CALIB_LIMITS.clear()
        CALIB_LIMITS.update(saved)


def _own_linalg_failure(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.linalg.LinAlgError)


def _where(exc: BaseException) -> str:
    """`function (file:line)` of the innermost frame of `exc` (the record's code for its own failures)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "code"
    f = frames[-1]
    return f"{f.name} ({Path(f.filename).name}:{f.lineno})"


# ----------------------------------------------------------------------------- the driver

REASON_CLASSES = (("timeout", r"^timeout"), ("not reached (budget)", r"^not reached"),
                  ("no training script", r"^no training script"),
                  ("environment limitation", r"^environment limitation"),
                  ("needs an adapter", r"needs an adapter"), ("missing module", r"missing module|No module named"),
                  ("needs Python 3.12", r"Python >= 3.12"), ("loss mismatch", r"^loss mismatch"),
                  ("weights not loaded", r"^weights not loaded"), ("crashed", r"^crashed"))


def reason_class(reason: str) -> str:
    for name, pat in REASON_CLASSES:
        if re.search(pat, reason):
            return name
    return "error: " + _exc_name(reason)


def _exc_name(reason: str) -> str:
    m = re.search(r"\b([A-Z][A-Za-z]*(Error|Exception|Interrupt))\b", reason)
    return m.group(1) if m else reason[:40]


def reasons_table(results: list[dict]) -> str:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if not r["ok"]:
            groups[reason_class(r.get("reason", ""))].append(r["record"])
    lines = [f"{'reason':28} {'n':>3}  records"]
    for name, recs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"{name:28} {len(recs):>3}  " + ", ".join(sorted(recs)))
    return "\n".join(lines)


def _slots(gpus: int, jobs: int) -> queue.Queue:
    """GPU ids, each `jobs` times, interleaved so that consecutive starts go to different GPUs."""
    q: queue.Queue = queue.Queue()
    for _ in range(jobs):
        for g in range(max(gpus, 1)):
            q.put(g if gpus else None)
    return q


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", type=Path, nargs="?")
    ap.add_argument("--out", type=Path, default=Path("out/coverage.jsonl"))
    ap.add_argument("--tokenizers", type=Path, default=ROOT / "local" / "tokenizers")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per record")
    ap.add_argument("--gpus", type=int, default=0, help="spread records over GPUs 0..N-1 (CUDA_VISIBLE_DEVICES)")
    ap.add_argument("--jobs", type=int, default=4, help="records at once per GPU (all at once without --gpus)")
    ap.add_argument("--budget", type=float, default=0, help="start no record after this many seconds")
    ap.add_argument("--only", default="", help="substring filter on record names")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        sys.path.insert(0, str(ROOT))
        from harness.evaluate.fastcodec import fast_compressors

        try:
            with fast_compressors():
                rec = one(a.one, Path(tempfile.mkdtemp(prefix="cov-")))
        except BaseException as exc:  # noqa: BLE001 - report every failure as a reason
            import traceback

            tb = traceback.extract_tb(exc.__traceback__)
            rec = {"record": a.one.parent.name, "script": a.one.name, "ok": False,
                   "reason": f"{type(exc).__name__}: {str(exc)[:400]}",
                   "where": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in tb[-8:]]}
        print("COVERAGE " + json.dumps(rec), flush=True)
        return 0
    if a.records is None or not a.records.is_dir():
        ap.error("give the folder that holds the records folders")
    start = time.time()
    fake = Path(tempfile.mkdtemp(prefix="ga-fake-"))
    make_fake_data(fake, a.tokenizers)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("")
    folders = [p for p in a.records.iterdir() if p.is_dir() and a.only in p.name]
    # biggest scripts first: they are the slow ones, and must not be the tail
    folders.sort(key=lambda p: -(script_of(p).stat().st_size if script_of(p) else 0))
    slots = _slots(a.gpus, a.jobs)
    workers = a.jobs * max(a.gpus, 1)
    threads = str(max(1, (os.cpu_count() or 2) // workers))
    env = dict(os.environ, DATA_DIR=str(fake / "data") + "/", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
        PATH=os.pathsep.join([str(fake / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        **SMALL_ENV)

    def run_one(folder: Path) -> dict:
        script = script_of(folder)
        if script is None:
            return {"record": folder.name, "ok": False, "reason": "no training script"}
        if a.budget and time.time() - start > a.budget:
            return {"record": folder.name, "ok": False, "reason": f"not reached in the {a.budget:.0f} s budget"}
        gpu = slots.get()
        t = time.time()
        try:
            e = env if gpu is None else dict(env, CUDA_VISIBLE_DEVICES=str(gpu))
            p = subprocess.run([sys.executable, __file__, "--one", str(script.resolve())], cwd=fake,
                               env=e, capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            return {"record": folder.name, "ok": False, "reason": f"timeout {a.timeout}s", "gpu": gpu}
        finally:
            slots.put(gpu)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("COVERAGE ")), None)
        rec = json.loads(line[9:]) if line else {"record": folder.name, "ok": False,
                                                 "reason": "crashed: " + p.stderr[-300:]}
        rec.update(gpu=gpu, wall=round(time.time() - t, 1))
        return rec

    from concurrent.futures import ThreadPoolExecutor, as_completed

    results = []
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(run_one, f) for f in folders]
        for fut in as_completed(futures):
            rec = fut.result()
            results.append(rec)
            extra = f"  {rec.get('wall', '')}s" if rec["ok"] else "  " + rec["reason"][:200]
            print(("PASS " if rec["ok"] else "FAIL ") + rec["record"] + extra, flush=True)
            with a.out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
    with_code = [r for r in results if r.get("reason") != "no training script"]
    npass = sum(r["ok"] for r in results)
    print(reasons_table(results))
    print(f"coverage: {npass}/{len(with_code)} records with code pass ({npass}/{len(results)} folders) "
          f"in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
