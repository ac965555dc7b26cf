"""Issue 24: is the peers' lead on an AVX-512 machine the instruction set? The tip's kernel file
compiled alone (tvdcn.standalone) twice: with torchvision's flags (baseline x86-64), and with
-march=x86-64-v4 added (AVX-512), as variants sa:patched and sa:patched_v4 for tvdcn.bench.

  .venv/bin/python results/2026-12-01/isa.py     # after scripts/build.sh; then:
  .venv/bin/python -m tvdcn.bench --variants sa:patched,sa:patched_v4 --configs ... --no-floor

A measurement only: -march=x86-64-v4 is not something torchvision's build can ship (one binary
for every x86-64 machine); it says how much the vectorizer gains, not how to get it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tvdcn import standalone  # noqa: E402

standalone.stage(["patched"])
src = standalone.ROOT / "patched"
dst = standalone.clone(src, "patched_v4")
print(standalone._build_one(src))
standalone.FLAGS = standalone.FLAGS + ["-march=x86-64-v4"]
print(standalone._build_one(dst))
