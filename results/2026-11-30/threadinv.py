"""For each variant: does `out` (and each grad) depend on the thread count? And variant A vs B per thread."""
import sys, dataclasses, hashlib
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from tvdcn import cases, isolate
import torch
variants = sys.argv[1].split(","); threads = [int(t) for t in sys.argv[2].split(",")]
grid = [c for c in cases.grid() if c.dtype in ("float32", "float64")]
res = {}
for v in variants:
    for t in threads:
        res[(v, t)] = isolate.run_cases(v, t, grid)
def eq(a, b):
    return a.dtype == b.dtype and torch.equal(a.contiguous().view(-1).view(torch.uint8), b.contiguous().view(-1).view(torch.uint8))
for v in variants:
    for t in threads[1:]:
        d = {}
        for c in grid:
            x, y = res[(v, threads[0])][c.id], res[(v, t)][c.id]
            for k in x:
                if hasattr(x[k], "dtype") and not eq(x[k], y[k]):
                    d.setdefault(k, []).append(c.id)
        print(f"{v}: @{threads[0]} vs @{t}: " + (", ".join(f"{k}: {len(ids)} cases" for k, ids in d.items()) or "identical"), {k: ids[:3] for k, ids in d.items()})
for t in threads:
    a, b = variants[0], variants[-1]
    d = {}
    for c in grid:
        x, y = res[(a, t)][c.id], res[(b, t)][c.id]
        for k in x:
            if hasattr(x[k], "dtype") and not eq(x[k], y[k]):
                d.setdefault(k, []).append(c.id)
    print(f"{a} vs {b} @{t}: " + (", ".join(f"{k}: {len(ids)} of {len(grid)}" for k, ids in d.items()) or "identical"))
