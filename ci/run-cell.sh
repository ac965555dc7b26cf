#!/usr/bin/env bash
# Run one cell of the CI matrix (ci/matrix.toml) on this machine, exactly as the workflow's job does.
#   ci/run-cell.sh            list the cells
#   ci/run-cell.sh NAME       run one, e.g. ci/run-cell.sh py3.13-torch2.14.1-fast
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(command -v python3.11 || command -v python3)"
[ -n "${1:-}" ] || exec "$py" -m tvdcn.ci list
exec "$py" -m tvdcn.ci run "$1"
