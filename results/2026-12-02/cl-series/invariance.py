"""Is a variant's every result the same at 1 and N threads on the suite's grid (tvdcn.cases.grid)?

    PYTHONPATH=. .venv/bin/python results/2026-12-02/cl-series/invariance.py sa:clc 2,3,4,8
"""
import sys

import torch

from tvdcn import cases, isolate

name, threads = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
grid = cases.grid()
one = isolate.run_cases(name, 1, grid)
for t in threads:
    many = isolate.run_cases(name, t, grid)
    varies = {}
    for c in grid:
        a, b = one.get(c.id), many.get(c.id)
        if not isinstance(a, dict) or not isinstance(b, dict):
            varies[c.id] = "no result"
            continue
        d = [k for k in a if not (a[k].shape == b[k].shape and torch.equal(a[k].nan_to_num(1e30, 1e31, -1e31),
                                                                      b[k].nan_to_num(1e30, 1e31, -1e31))
                                  and torch.equal(a[k].isnan(), b[k].isnan()))]
        if d:
            varies[c.id] = d
    print(f"{name}: 1 vs {t} threads: {len(varies)} of {len(grid)} cases differ", flush=True)
    for cid, d in varies.items():
        print("  ", cid, d, flush=True)
