#!/usr/bin/env bash
# Build an AddressSanitizer + UBSan variant (default patched-asan; --variant baseline-asan for
# upstream itself) and run the sanitizer tests under it. Other arguments go to pytest.
source "$(dirname "$0")/env.sh"
exec "$PY" -m tvdcn sanitize "$@"
