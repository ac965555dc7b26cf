#!/usr/bin/env bash
# Benchmark baseline vs patched side by side (each in its own process, interleaved).
# e.g. scripts/bench.sh --mode train --rounds 5 ; see scripts/bench.sh --help
source "$(dirname "$0")/env.sh"
exec "$PY" -m tvdcn bench "$@"
