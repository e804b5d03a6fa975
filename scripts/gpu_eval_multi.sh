#!/usr/bin/env bash
# 1 GPU vs 2 GPUs (torchrun) for the reference sliding eval (and optionally score-first TTT) on a toy model:
# the same weights (seeded) and the same random tokens in both runs. Prints each run's val_bpb, tokens,
# bytes, the eval's wall time (slowest rank) and the whole torchrun wall time, then the BPB difference.
#
#   scripts/gpu_eval_multi.sh                 # sliding, 2M targets, seq_len 512, stride 64
#   N=4000000 TTT=1 scripts/gpu_eval_multi.sh # also score-first TTT (chunks of 16 sequences, 1 epoch)
#   NPROC=4 scripts/gpu_eval_multi.sh         # 1 vs 4 GPUs
#
# Env: N (targets), SEQ_LEN (<= 512, the toy's position table), STRIDE, BATCH (windows per forward), DIM,
# LAYERS, VOCAB, LAYOUT (single|style-a), COMPILE (1: torch.compile the scoring), TTT (1: also TTT),
# NPROC (ranks of the second run, default 2), DEVICE (cuda; cpu only to try the script on small sizes).
# Expect the 2-GPU sliding BPB to equal the 1-GPU one to ~1e-9 or better (same windows, sums in another
# order, bf16 autocast per window unchanged). TTT: a chunk holds 16 sequences (the records' 32768 / 2048)
# and batch_seqs is 32, so every rank count takes one step per epoch on equal shares and the rank-averaged
# gradient is the one-process mean: expect agreement to bf16/fp32 rounding. With more sequences per chunk
# than one batch the runs take different numbers of steps (as the records' would) and the BPB moves.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
NPROC=${NPROC:-2}
DRIVER=$(mktemp /tmp/gpu_eval_multi_XXXX.py)
OUTDIR=$(mktemp -d /tmp/gpu_eval_multi_XXXX)
trap 'rm -f "$DRIVER"' EXIT
cat > "$DRIVER" <<'EOF'
import json, os, sys, time
sys.path.insert(0, os.getcwd())
import numpy as np
import torch
from harness.evaluate import distributed as D
from harness.evaluate.sliding import sliding_eval
from harness.evaluate.toy import TinyGPT
from harness.evaluate.ttt import TTTConfig, ttt_eval

env = lambda k, d: type(d)(os.environ.get(k, d))
n, L, stride, batch = env("N", 2_000_000), env("SEQ_LEN", 512), env("STRIDE", 64), env("BATCH", 64)
vocab, dim, layers = env("VOCAB", 1024), env("DIM", 256), env("LAYERS", 4)
device = env("DEVICE", "cuda")
dist = D.from_env(device)
device = D.local_device(device)
rng = np.random.default_rng(1)
toks = rng.integers(0, vocab, n + 1).astype(np.uint16)
tbytes = rng.integers(1, 5, n).astype(np.int64)
torch.manual_seed(0)
model = TinyGPT(vocab=vocab, dim=dim, layers=layers, heads=max(dim // 64, 1)).to(device).eval()
out = {"world_size": 1 if dist is None else dist.world_size}
t0 = time.perf_counter()
r = sliding_eval(model, toks, tbytes, L, stride, batch, device, layout=env("LAYOUT", "single"),
                 compile=env("COMPILE", 0) == 1, dist=dist)
out["sliding"] = {"bpb": r.val_bpb, "tokens": r.tokens, "bytes": r.bytes, "eval_s": r.seconds,
                  "rescored": r.extra["rescored_positions"]}
if env("TTT", 0) == 1:
    # 16 sequences a chunk, as the records' 32768 / 2048: one step per epoch on 1, 2, 4 or 8 ranks
    cfg = TTTConfig(chunk_tokens=16 * L, epochs=env("EPOCHS", 1), lr=0.002, batch_seqs=32, train_seq_len=L)
    r = ttt_eval(model, model, model, toks, tbytes, cfg, L, stride, batch, device, dist=dist)
    out["ttt"] = {"bpb": r.val_bpb, "tokens": r.tokens, "bytes": r.bytes, "eval_s": r.seconds,
                  "steps": r.extra["ttt_steps"]}
if dist is None or dist.rank == 0:
    with open(os.path.join(os.environ["OUTDIR"], f"w{out['world_size']}.json"), "w") as f:
        json.dump(out, f)
D.shutdown()
EOF
run() {  # $1 = processes
  local t0 t1
  t0=$(date +%s.%N)
  OUTDIR="$OUTDIR" "$PY" -m torch.distributed.run --standalone --nproc_per_node="$1" "$DRIVER"
  t1=$(date +%s.%N)
  echo "$t0 $t1" > "$OUTDIR/wall$1"
}
run 1
run "$NPROC"
OUTDIR="$OUTDIR" NPROC="$NPROC" "$PY" - <<'EOF'
import json, os
d, k = os.environ["OUTDIR"], os.environ["NPROC"]
res = {w: json.load(open(f"{d}/w{w}.json")) for w in ("1", k)}
wall = {w: (lambda a, b: b - a)(*map(float, open(f"{d}/wall{w}").read().split())) for w in ("1", k)}
for kind in ("sliding", "ttt"):
    if kind not in res["1"]:
        continue
    for w in ("1", k):
        r = res[w][kind]
        print(f"{kind:8s} {w} GPU(s): val_bpb {r['bpb']:.12f} tokens {r['tokens']} bytes {r['bytes']} "
              f"eval {r['eval_s']:.2f}s (torchrun total {wall[w]:.1f}s)")
    a, b = res["1"][kind], res[k][kind]
    print(f"{kind:8s} diff {b['bpb'] - a['bpb']:+.3e}  same counts: "
          f"{(a['tokens'], a['bytes']) == (b['tokens'], b['bytes'])}  speed-up {a['eval_s'] / b['eval_s']:.2f}x")
EOF
