#!/usr/bin/env bash
# Run the verification suite (builds the variants first if needed; an unchanged build is reused).
# Extra arguments go to pytest, e.g. scripts/test.sh -k threads; given test files or directories,
# only those run, e.g. scripts/test.sh tests/test_threads.py
source "$(dirname "$0")/env.sh"
"$PY" -m tvdcn build ${TVDCN_PATCHED:+--variant baseline --variant "$TVDCN_PATCHED"}
cd "$ROOT"
# No test paths given: pytest.ini's testpaths (tests/); paths given: only those.
exec "$PY" -m pytest "$@"
