"""Stages the kernel file of a worktree (default /work/cl-wt) as a standalone variant NAME.

    PYTHONPATH=. .venv/bin/python results/2026-12-02/cl-series/stage.py NAME [WORKTREE]
"""
import sys
from pathlib import Path

from tvdcn import standalone

name = sys.argv[1]
tree = Path(sys.argv[2] if len(sys.argv) > 2 else "/work/cl-wt")
if not (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).exists():
    standalone.stage(["patched"])
text = (tree / "torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp").read_text()
d = standalone.stage_text(name, text)
print(standalone.build(dirs=[d]), flush=True)
