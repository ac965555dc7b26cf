"""Stages the kernel file of prefixes 42-50 of the vendored series as standalone variants
p42 ... p50 (each with its own StableABICompat.h), for the per-patch backward A/B:

    PYTHONPATH=. .venv/bin/python results/2026-12-02/cl2/stage-prefixes.py
    PYTHONPATH=. .venv/bin/python results/2026-12-02/cl-backward.py ab 1 p42,p43,p44,p45,p46,p47,p48,p49,p50 8

The run of 2026-12-02 (prefix-ab.txt) used the same kernel files under other names: t42 = p42,
n43 = p43, n44 = p44, n45 = p45, n46a = p46, n46b = p47, n46c = p48, n47 = p49, n48 = p50.
"""
from tvdcn import series, standalone
from tvdcn.paths import COMPAT, KERNEL

if not (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).exists():
    standalone.stage(["patched"])
dirs = []
for k in range(42, 51):
    commit = f"series~{50 - k}"
    d = standalone.stage_text(f"p{k}", series.git("show", f"{commit}:{KERNEL}") + "\n")
    (d / COMPAT.name).write_text(series.git("show", f"{commit}:{COMPAT}") + "\n")
    dirs.append(d)
print(standalone.build(dirs=dirs), flush=True)
