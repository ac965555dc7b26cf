#!/usr/bin/env bash
# The thread sweep on a many-core machine that has torch and a C++ compiler but not this repo's
# builds (the lent device box). Prepare here, after scripts/build.sh:
#   .venv/bin/python -m tvdcn.standalone stage baseline,prefix-12,prefix-13,patched
#   .venv/bin/python -m tvdcn.standalone devtools      # pytest + ninja for a machine without them
# and send the checkout with .work/standalone and .work/devpy. There, this script compiles the
# staged kernel files (tvdcn.standalone), checks patched against baseline bit for bit at 1 and all
# threads (the tests marked `device`: tests/kernel/test_threads.py), and times them side by side
# (tvdcn.bench). Everything it prints goes to $OUT (default bench-results/device/), step by step,
# so a cut-off run keeps what it finished. CONFIGS and THREADS override the benchmark's sets.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-results/device}
mkdir -p "$OUT"
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for c in python3 python; do "$c" -c "import torch" 2>/dev/null && PY=$c && break; done
fi
if [ -d .work/devpy ]; then
    export PATH="$PWD/.work/devpy/bin:$PATH"
    "$PY" -c "import pytest" 2>/dev/null || export PYTHONPATH="$PWD/.work/devpy"
fi
ALL=$(nproc)
CONFIGS=${CONFIGS:-s32-b1,s32-b8,s64-b1,c3-det}
THREADS=${THREADS:-1,$ALL}
step() {  # step NAME COMMAND...: run it, its output to $OUT/NAME.txt and to the terminal, timed
    local name=$1 t0=$SECONDS
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.txt" | tail -n 40
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s"
}
step env sh -c "'$PY' -c 'import sys, torch; print(sys.version); print(torch.__version__); print(torch.__config__.parallel_info())'; lscpu | head -20"
step build "$PY" -m tvdcn.standalone build
B="$PY -m tvdcn.bench --min-run-time 0.5"
step train $B --variants sa:baseline,sa:prefix-12,sa:prefix-13,sa:patched --configs "$CONFIGS" --mode train \
    --threads "$THREADS" --rounds 2 --json "$OUT/train.json"
# The files that need packages the device lacks (hypothesis, yaml) skip themselves at collection.
step bits "$PY" -m pytest -q -m device --baseline sa:baseline --patched sa:patched --threads "1,$ALL"
SWEEP=1,2,4,8,$ALL
[ "$ALL" -le 2 ] && SWEEP=1,2
step sweep $B --variants sa:patched --configs "$CONFIGS" --mode train --threads "$SWEEP" --rounds 1 \
    --json "$OUT/sweep.json"
PEERS=""
"$PY" -c "import onnx, onnxruntime" 2>/dev/null && PEERS=onnxruntime
step forward $B --variants sa:baseline,sa:patched --configs "$CONFIGS" --mode forward --threads "$THREADS" \
    --rounds 2 --peers "$PEERS" --json "$OUT/forward.json"
