#!/usr/bin/env bash
# Build what the suite compares (an unchanged build is reused), then run it. Arguments go to pytest,
# e.g. scripts/test.sh -m prefix, scripts/test.sh tests/kernel/test_threads.py --patched prefix-3
source "$(dirname "$0")/env.sh"
exec "$PY" -m tvdcn test "$@"
