#!/usr/bin/env bash
# Run the verification suite (builds the variants first if needed; an unchanged build is reused).
# Extra arguments go to pytest, e.g. scripts/test.sh -k threads
source "$(dirname "$0")/env.sh"
"$PY" -m tvdcn build ${TVDCN_PATCHED:+--variant baseline --variant "$TVDCN_PATCHED"}
cd "$ROOT"
exec "$PY" -m pytest tests "$@"
