# Sourced by the scripts: make the project's virtual environment (.venv) and the system tools the
# build uses, once; later calls only check a stamp. No project logic lives here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TVDCN_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
stamp="$VENV/.tvdcn-requirements"
want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$PY" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[env] creating $VENV (Python 3.11, pinned requirements.txt)" >&2
  py311="$(command -v python3.11 || true)"
  [ -n "$py311" ] || { echo "[env] python3.11 is required" >&2; exit 1; }
  "$py311" -m venv "$VENV"
  "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt" 2> >(grep -v "is ignored: it is neither" >&2)
  echo "$want" > "$stamp"
fi
# ccache lets the variants share compiled objects; optional, installed from Debian when possible.
if ! command -v ccache >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
   && [ -z "${TVDCN_NO_CCACHE:-}" ]; then
  echo "[env] installing ccache (apt)" >&2
  { apt-get install -y -qq ccache >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ccache >/dev/null 2>&1; }; } \
    || echo "[env] could not install ccache; building without it" >&2
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
