#!/usr/bin/env bash
# 1 GPU vs N GPUs (torchrun, NCCL) for `audit.py eval` on a real record: the record's own model with its own
# random init, written by the record's own serialise code, and a val shard built from the local Python stdlib
# text (`harness.data.build`). Runs sliding and `--ttt` at each process count and prints val_bpb, targets,
# bytes, the eval's wall time, the verdict, and the N-vs-1 differences.
#
#   scripts/gpu_eval_record_multi.sh RECORD_FOLDER TOKENIZER.model      # on a 2-GPU machine
#   NPROC=4 VAL_TOKENS=1000000 scripts/gpu_eval_record_multi.sh ...
#   DEVICE=cpu SEQ_LEN=128 VAL_TOKENS=4096 scripts/gpu_eval_record_multi.sh ...   # try it on the CPU (gloo)
#
# Env: NPROC (default 2), VAL_TOKENS (default 262144), DEVICE (cuda), SEQ_LEN (the record's unless set),
# OUT (default: a temporary folder; the reports, logs and TTT plots go there).
# Expect sliding to agree to ~1e-9 or better (the same windows, sums in another order). TTT averages the ranks'
# gradients, so it agrees to rounding: 1e-6 relative in fp32 on the CPU; bf16 on GPUs drifts further (2026-11-26,
# 2xH100, 03-23 sp1024 at 262k tokens: +1.2e-4 after 21 steps).
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n 2,12p "$0"; exit 2; }
RECORD=$1 TOKENIZER=$2
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
NPROC=${NPROC:-2} VAL_TOKENS=${VAL_TOKENS:-262144} DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$(mktemp -d /tmp/gpu_eval_record_multi_XXXX)}
WORK=$(mktemp -d /tmp/gpu_eval_record_work_XXXX)
mkdir -p "$OUT"
echo "record $RECORD | tokenizer $TOKENIZER | 1 vs $NPROC processes on $DEVICE | out $OUT"

"$PY" -m harness.data.build --tokenizer "$TOKENIZER" --out "$WORK/data" --val-tokens "$VAL_TOKENS" \
    --train-tokens 65536 > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
DATA=$(dirname "$(find "$WORK/data" -name 'fineweb_val_000000.bin' | head -1)")
ARTIFACT=$("$PY" -W ignore - "$RECORD" "$WORK/art" <<'EOF'
import sys
from pathlib import Path

import torch

from harness.evaluate.adapter import SubmissionAdapter

record = Path(sys.argv[1])
adapter = SubmissionAdapter(record / "train_gpt.py" if record.is_dir() else record, "cpu")
torch.manual_seed(0)
print(adapter.serialize(adapter.build_model(), Path(sys.argv[2])))
EOF
) || exit 1
echo "artifact $ARTIFACT ($(stat -c %s "$ARTIFACT") bytes), val shard in $DATA"

run() {   # tag gpus [options...]
  local tag=$1 gpus=$2; shift 2
  "$PY" -W ignore audit.py eval "$RECORD" --artifact "$ARTIFACT" --data "$DATA" --tokenizer "$TOKENIZER" \
      --device "$DEVICE" --gpus "$gpus" ${SEQ_LEN:+--seq-len "$SEQ_LEN"} --format json -o "$OUT/$tag.json" "$@" \
      > "$OUT/$tag.log" 2>&1
  echo "$tag: audit.py exit $?"
}
run sliding_1 1
run "sliding_$NPROC" "$NPROC"
run ttt_1 1 --ttt --plot "$OUT/ttt_1.png"
run "ttt_$NPROC" "$NPROC" --ttt
"$PY" - "$OUT" "$NPROC" <<'EOF'
import json
import sys
from pathlib import Path

out, n = Path(sys.argv[1]), sys.argv[2]
for mode in ("sliding", "ttt"):
    rows = {}
    for procs in ("1", n):
        path = out / f"{mode}_{procs}.json"
        try:
            sub = json.loads(path.read_text())["submissions"][0]
            rep = sub["measured"]["reproduced"]
        except (OSError, ValueError, KeyError, IndexError) as exc:
            print(f"{mode} x{procs}: no report ({type(exc).__name__}); see {path.with_suffix('.log')}")
            continue
        rows[procs] = rep
        print(f"{mode} x{procs}: verdict {sub['verdict']} val_bpb {rep['val_bpb']:.8f} targets {rep['tokens']} "
              f"bytes {rep['bytes']} eval {rep['seconds']:.2f} s on {rep['hardware']}")
    if len(rows) == 2:
        one, many = rows["1"], rows[n]
        print(f"{mode}: x{n} - x1 = {many['val_bpb'] - one['val_bpb']:+.2e} BPB, same targets "
              f"{many['tokens'] == one['tokens']}, same bytes {many['bytes'] == one['bytes']}, "
              f"speed {one['seconds'] / many['seconds']:.2f}x")
EOF
rm -rf "$WORK"
