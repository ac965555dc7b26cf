#!/usr/bin/env bash
# Build an AddressSanitizer + UndefinedBehaviorSanitizer variant (default: patched-asan; e.g.
# TVDCN_SANITIZE_VARIANT=baseline-asan for upstream itself) and run the grid, the hardening
# cases, the reference checks and the fuzzing under it. Any sanitizer finding aborts the case's
# process, which fails that case and prints the report. A CI matrix job (about 15-20 minutes).
# Extra arguments go to pytest; TVDCN_FUZZ_EXAMPLES sets the fuzzing budget (default here 300).
source "$(dirname "$0")/env.sh"
variant="${TVDCN_SANITIZE_VARIANT:-patched-asan}"
"$PY" -m tvdcn build --variant baseline --variant "$variant"
cd "$ROOT"
export TVDCN_PATCHED="$variant" TVDCN_FUZZ_EXAMPLES="${TVDCN_FUZZ_EXAMPLES:-300}"
exec "$PY" -m pytest -q tests/test_threads.py tests/test_uninitialized.py tests/test_hardening.py \
  tests/test_reference.py tests/test_fuzz.py tests/test_upstream.py "$@"
