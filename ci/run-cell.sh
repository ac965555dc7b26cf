#!/usr/bin/env bash
# Run one cell of the CI matrix locally, exactly as the workflow does:
#   ci/run-cell.sh test | sanitize | sanitize-upstream | prefixes | fuzz-soak | bench
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  test)              scripts/test.sh ;;
  sanitize)          scripts/sanitize.sh ;;
  sanitize-upstream) TVDCN_SANITIZE_VARIANT=baseline-asan scripts/sanitize.sh -k "not test_invalid" ;;
  prefixes)          scripts/test-prefixes.sh ;;
  fuzz-soak)         TVDCN_FUZZ_EXAMPLES="${TVDCN_FUZZ_EXAMPLES:-50000}" scripts/test.sh tests/test_fuzz.py ;;
  bench)             scripts/bench.sh --mode both ;;
  *) echo "usage: $0 test|sanitize|sanitize-upstream|prefixes|fuzz-soak|bench" >&2; exit 2 ;;
esac
