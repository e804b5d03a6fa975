#!/usr/bin/env bash
# `audit.py trace` INSIDE THE SANDBOX on two real legal-TTT records (one packed, one plain) and on the libcst
# codemod's illegal variant of the packed one, on one GPU (device machine), minimal settings through the
# records' own environment variables.
#
#   bash scripts/gpu_trace.sh prepare   (here, once: needs PG_REPO=/path/to/parameter-golf and libcst)
#       copies the two records folders to local/I/records/ and writes the illegal variant
#       local/I/records/2026-04-06_SP8192_QK5_LegalTTT_1.0828_train_first (python -m harness.trace.codemod)
#   bash scripts/gpu_trace.sh           (device: carry local/I/records and local/F/data; runs as root, which
#       the sandbox needs) traces the three folders; GA_DEVICE=cpu runs the same on CPU (--gpus 0): the
#       records stop at their CUDA requirement, which still checks the layout (binds, data, tokenizer, report)
#
# Each trace: no network, private /tmp, scrubbed env, golfaudit source read-only, data read-only, budget
# $EACH s. Writes per folder to $OUT (default out/trace): JSON report, PNG timeline, stderr (the sandbox's
# limits line), the traced console log; the runs' work folders are under $WORK (default /tmp/golf-trace).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RECS=local/I/records
P0406=2026-04-06_SP8192_QK5_LegalTTT_1.0828
PLORA=2026-03-17_LoRA_TTT

if [ "${1:-}" = prepare ]; then
  : "${PG_REPO:?set PG_REPO to a clone of openai/parameter-golf}"
  mkdir -p "$RECS"
  for name in $P0406 $PLORA; do
    rm -rf "${RECS:?}/$name"
    cp -r "$PG_REPO/records/track_10min_16mb/$name" "$RECS/$name" || exit 1
  done
  rm -rf "${RECS:?}/${P0406}_train_first"
  $PY -m harness.trace.codemod "$RECS/$P0406" "$RECS/${P0406}_train_first" || exit 1
  du -sh "$RECS" local/F/data
  exit 0
fi

OUT=${OUT:-out/trace}
WORK=${WORK:-/tmp/golf-trace}
D=$PWD/local/F/data
GPUS=1
[ "${GA_DEVICE:-cuda}" = cpu ] && GPUS=0
mkdir -p "$OUT"
rm -rf "$WORK"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
  $PY -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"
  uname -r; unshare --version; id -u; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
COMMON=(--no-static --format json --gpus "$GPUS" --tokens "${TOKENS:-8192}" --budget "${EACH:-150}"
        --env TRAIN_BATCH_TOKENS=65536 --env VAL_BATCH_SIZE=65536 --env VAL_BATCH_TOKENS=65536)

trace() {  # name data-folder [options...]
  local name=$1 data=$2; shift 2
  local t0=$SECONDS
  $PY audit.py trace "$RECS/$name" --data "$data" --plot "$OUT/$name.png" --workdir "$WORK/$name" \
      --output "$OUT/$name.json" "${COMMON[@]}" "$@" 2> "$OUT/$name.stderr.txt"
  echo "$name: exit $? in $((SECONDS - t0)) s"
  cp "$WORK/$name/console.log" "$OUT/$name.console.log" 2>/dev/null
  tail -c 1500 "$OUT/$name.stderr.txt"
  $PY - "$OUT/$name.json" <<'PYEOF'
import json, sys
try:
    sub = json.load(open(sys.argv[1]))["submissions"][0]
except (OSError, ValueError, KeyError, IndexError) as exc:
    sys.exit(f"  no report: {exc}")
print("  verdict:", sub["verdict"], "|", json.dumps(sub["measured"].get("trace")))
box = sub["measured"].get("sandbox")
if isinstance(box, dict):
    print("  sandbox: exit", box["exit_code"], "wall", box["wall_s"], "s, killed_for", box["killed_for"],
          "| namespaces:", ", ".join(box["isolation"]["namespaces"]), "| limits:", "; ".join(box["isolation"]["limits"]))
for f in sub["findings"]:
    print("  ", f["rule"], f["severity"], f["message"][:400])
PYEOF
}

# DATA_DIR comes from the sandbox (/data/, with datasets/ and tokenizers/ of local/F/data bound read-only)
R0406=(--env GPTQ_CALIBRATION_BATCHES=1 --env COMPRESSOR=lzma --env TTT_CHUNK_TOKENS=2048 --env TTT_EPOCHS=1)
trace $P0406 "$D/datasets/fineweb10B_sp8192" "${R0406[@]}"
if [ -d "$RECS/${P0406}_train_first" ]; then
  trace "${P0406}_train_first" "$D/datasets/fineweb10B_sp8192" "${R0406[@]}"
else
  echo "no $RECS/${P0406}_train_first: run 'bash scripts/gpu_trace.sh prepare' first"
fi
trace $PLORA "$D/datasets/fineweb10B_sp1024" --tokenizer "$D/tokenizers/fineweb_1024_bpe.model" \
  --env TTT_BATCH_SIZE=16
