"""Adds this directory's patch files (0043-0046, exported by `scripts/tvdcn export` from a tree
with them applied) to a checkout's patches/ and patches/series. The checkout must hold the
42-patch series.

    python results/2026-12-02/cl-series/install.py [CHECKOUT]      # default: the current directory
    git apply results/2026-12-02/cl-series/tooling.diff             # the tooling that goes with them
"""
import shutil
import sys
from pathlib import Path

here = Path(__file__).parent
root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
series = root / "patches" / "series"
lines = [line for line in series.read_text().splitlines() if line.strip()]
files = sorted(here.glob("00[0-9][0-9]-*.patch"))
if int(files[0].name[:4]) != len(lines) + 1:
    raise SystemExit(f"{root}: its series has {len(lines)} patches; these start at {files[0].name[:4]}")
for f in files:
    shutil.copy(f, root / "patches" / f.name)
    lines.append(f.name)
series.write_text("\n".join(lines) + "\n")
print("\n".join(lines[-len(files):]))
