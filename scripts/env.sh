# Sourced by the scripts: make the project's virtual environment (.venv) and the system tools the
# build uses, once; later calls only check a stamp. No project logic lives here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TVDCN_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
# The Python and torch: TVDCN_PYTHON (e.g. 3.12) and TVDCN_TORCH (e.g. 2.14.1) pick others than
# the pin's (a CI matrix cell, ci/matrix.toml); by default python3.11, else the newest 3.10+ found.
# A pythonX.Y on PATH may be a pyenv shim that refuses to run (that version not selected), so a
# candidate counts only if it runs; pyenv's own installs are looked at next.
find_python() {
  local p
  for p in "$(command -v "python$1" 2>/dev/null)" "$(pyenv root 2>/dev/null)"/versions/"$1".*/bin/"python$1"; do
    if [ -n "$p" ] && [ -x "$p" ] && "$p" -c '' >/dev/null 2>&1; then echo "$p"; return 0; fi
  done
}
if [ -n "${TVDCN_PYTHON:-}" ]; then
  base_py="$(find_python "$TVDCN_PYTHON")"
  [ -n "$base_py" ] || { echo "[env] python$TVDCN_PYTHON (TVDCN_PYTHON) not found, or it does not run" >&2; exit 1; }
else
  base_py=""
  for v in 3.11 3.13 3.12 3.10; do base_py="$(find_python "$v")"; [ -z "$base_py" ] || break; done
  [ -n "$base_py" ] || { echo "[env] Python 3.10 or newer is required (python3.10 ... python3.13 on PATH)" >&2; exit 1; }
fi
# The requirements: requirements.txt, with TVDCN_TORCH's torch in place of the pin's.
reqs_text="$(sed "${TVDCN_TORCH:+s/^torch==.*/torch==$TVDCN_TORCH/}" "$ROOT/requirements.txt")"
stamp="$VENV/.tvdcn-requirements"
want="$(printf '%s\n' "$reqs_text" | sha256sum | cut -d' ' -f1) $("$base_py" -c 'import sys; print(sys.version.split()[0])')"
if [ ! -x "$PY" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[env] creating $VENV ($("$base_py" --version), ${TVDCN_TORCH:+torch $TVDCN_TORCH, }pinned requirements.txt)" >&2
  rm -rf "$VENV"
  "$base_py" -m venv "$VENV"
  printf '%s\n' "$reqs_text" > "$VENV/requirements.txt"
  "$PY" -m pip install -q --disable-pip-version-check -r "$VENV/requirements.txt" 2> >(grep -v "is ignored: it is neither" >&2)
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
