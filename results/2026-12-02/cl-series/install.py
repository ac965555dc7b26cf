"""Adds the four patch files of this directory to a checkout's patches/ as the next numbers, in the
export's form (zeroed From line, plain [PATCH]), and lists them in patches/series.

    python results/2026-12-02/cl-series/install.py [CHECKOUT]      # default: the current directory
    git apply results/2026-12-02/cl-series/tooling.diff             # the tooling that goes with them
"""
import re
import sys
from pathlib import Path

here = Path(__file__).parent
root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
series = root / "patches" / "series"
lines = [line for line in series.read_text().splitlines() if line.strip()]
for i, f in enumerate(sorted(here.glob("000[1-4]-*.patch")), len(lines) + 1):
    text = re.sub(r"^From [0-9a-f]{40} ", "From " + "0" * 40 + " ", f.read_text(), count=1)
    text = re.sub(r"^Subject: \[PATCH \d+/\d+\]", "Subject: [PATCH]", text, count=1, flags=re.M)
    name = f"{i:04d}-" + f.name.split("-", 1)[1]
    (root / "patches" / name).write_text(text)
    lines.append(name)
series.write_text("\n".join(lines) + "\n")
print("\n".join(lines[-4:]))
