#!/usr/bin/env bash
# Fetch + verify torchvision, apply patches/, build the baseline and patched variants (+ the wheel).
# Options: see `scripts/build.sh --help` (TVDCN_SOURCE=/path/to/vision uses your own checkout).
source "$(dirname "$0")/env.sh"
exec "$PY" -m tvdcn build "$@"
