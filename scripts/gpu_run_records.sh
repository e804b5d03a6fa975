#!/usr/bin/env bash
# End-to-end sandboxed runs of two real records on one GPU with a reduced budget (device machine).
#
#   local/F/records/<name>   copies of records folders (never committed)
#   local/F/data             shards built by `python -m harness.data.build` from the Python stdlib text
#   local/F/tok              the SentencePiece models;  local/F/whl: brotli, zstandard, python-minifier wheels
#
# Writes, per record, the JSON report, the kept console log and the stderr summary to $OUT (or out/gpu).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
PY=${PY:-python3}
LOCAL=${LOCAL:-local/F}
RECORDS=${*:-baseline varlen}
if [[ " $RECORDS " == *" varlen "* || " $RECORDS " == *" parres "* ]] && ls "$LOCAL"/whl/*.whl >/dev/null 2>&1; then   # brotli, pyminify for 04-10
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /opt/golf-site \
      "$LOCAL"/whl/*.whl && export PYTHONPATH=/opt/golf-site
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"
  uname -r; unshare --version; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

run_record() {   # name tokenizer [audit.py run options...]
  local name=$1 tok=$2; shift 2
  rm -rf "/tmp/golf/$name"
  $PY audit.py run "$LOCAL/records/$name" --data "$LOCAL/data" --tokenizer "$LOCAL/tok/$tok" --gpus 1 \
      --workdir "/tmp/golf/$name" --format json --output "$OUT/$name.json" "$@" 2> "$OUT/$name.summary.txt"
  echo "$name: audit.py exit $?"
  cat "$OUT/$name.summary.txt"
  cp "/tmp/golf/$name/console.log" "$OUT/$name.console.log" 2>/dev/null
}

# Budgets are phase-aware wall clock from the payload's start (imports and torch.compile included): the end of
# training must show by --train-budget, the final score by --eval-budget after it; training itself is capped
# by MAX_WALLCLOCK_SECONDS=30 through the script's own timer.
for record in $RECORDS; do
  case $record in
    baseline) run_record 2026-03-17_NaiveBaseline fineweb_1024_bpe.model --train-budget 120 --eval-budget 25 \
                  --grace 3 --env MAX_WALLCLOCK_SECONDS=30 ;;
    parres)   run_record 2026-04-08_SP8192_ParallelResid_ScoreFirstTTT fineweb_8192_bpe.model --train-budget 240 \
                  --eval-budget 240 --grace 10 --env MAX_WALLCLOCK_SECONDS=30 ;;
    varlen)   run_record 2026-04-10_VarLenAttn fineweb_8192_bpe.model --train-budget 240 --eval-budget 180 \
                  --grace 10 --env MAX_WALLCLOCK_SECONDS=30 ;;
    *) echo "unknown record key $record (baseline, parres, varlen)" ;;
  esac
done
