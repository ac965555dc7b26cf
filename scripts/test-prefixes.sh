#!/usr/bin/env bash
# Build every prefix of patches/series (prefix-1 .. prefix-N) and run the fast checks on each,
# so the stack stays bisectable. Extra arguments go to pytest.
source "$(dirname "$0")/env.sh"
exec "$PY" -m tvdcn prefixes -- "$@"
