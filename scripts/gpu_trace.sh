#!/usr/bin/env bash
# `audit.py trace` on two real TTT records on one GPU (device machine), minimal settings through their own
# environment variables. Needs (never committed, carried): local/I/records/<name> copies of the records
# folders, local/F/data (shards built by harness.data.build), local/F/tok (SentencePiece models).
# Writes JSON reports, PNG timelines and the traced console output to $OUT (default out/trace).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/trace}
mkdir -p "$OUT"
PY=${PY:-python3}
D=$PWD/local/F/data
$PY -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"
COMMON=(--no-static --format json --tokens "${TOKENS:-8192}" --timeout "${EACH:-130}"
        --env TRAIN_BATCH_TOKENS=65536 --env VAL_BATCH_SIZE=65536 --env VAL_BATCH_TOKENS=65536)

trace() {  # name data-folder [options...]
  local name=$1 data=$2; shift 2
  local t0=$SECONDS
  $PY audit.py trace "local/I/records/$name" --data "$data" --plot "$OUT/$name.png" \
      --output "$OUT/$name.json" "${COMMON[@]}" "$@" 2> "$OUT/$name.stderr.txt"
  echo "$name: exit $? in $((SECONDS - t0)) s"
  $PY - "$OUT/$name.json" <<'PYEOF'
import json, sys
sub = json.load(open(sys.argv[1]))["submissions"][0]
print("  verdict:", sub["verdict"], "|", json.dumps(sub["measured"].get("trace")))
for f in sub["findings"]:
    print("  ", f["rule"], f["severity"], f["message"][:400])
PYEOF
}

R0406=(--env DATA_DIR="$D" --env GPTQ_CALIBRATION_BATCHES=1 --env COMPRESSOR=lzma --env TTT_CHUNK_TOKENS=2048
       --env TTT_EPOCHS=1)
trace 2026-04-06_SP8192_QK5_LegalTTT_1.0828 "$D/datasets/fineweb10B_sp8192" "${R0406[@]}"
# the illegal variant made beforehand by: python -m harness.trace.codemod local/I/records/<name> local/I/records/<name>_train_first
if [ -d local/I/records/2026-04-06_SP8192_QK5_LegalTTT_1.0828_train_first ]; then
  trace 2026-04-06_SP8192_QK5_LegalTTT_1.0828_train_first "$D/datasets/fineweb10B_sp8192" "${R0406[@]}"
fi
trace 2026-03-17_LoRA_TTT "$D/datasets/fineweb10B_sp1024" --tokenizer "$D/tokenizers/fineweb_1024_bpe.model" \
  --env TTT_BATCH_SIZE=16
