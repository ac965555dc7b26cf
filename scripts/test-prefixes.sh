#!/usr/bin/env bash
# Build every prefix of patches/series and run the prefix tests on each. Arguments go to pytest.
source "$(dirname "$0")/env.sh"
exec "$PY" -m tvdcn prefixes -- "$@"
