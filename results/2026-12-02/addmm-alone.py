"""Issue 24: s32-b8's weight-gradient GEMM (addmm_ of 64x8192 by a strided 8192x576 view) alone, at 1 and 2
threads, warm and after touching 64 MB (two runs were made: mm.py then mm2.py parts, best of 10-15 calls).
    .venv/bin/python results/2026-12-02/addmm-alone.py
"""
import time

import torch
torch.manual_seed(0)
A = torch.randn(64, 8192)
cols = torch.randn(576, 8208)[:, :8192]
B = cols.t()
out = torch.zeros(64, 576)
junk = torch.randn(16 << 20)
for t in (1, 2, 1, 2):
    torch.set_num_threads(t)
    for flush in (False, True):
        b = 1e9
        for _ in range(10):
            if flush:
                junk.add_(1.0)
                cols.mul_(1.0)
            s = time.perf_counter(); out.addmm_(A, B); b = min(b, time.perf_counter() - s)
        print(t, "flush" if flush else "warm", round(b * 1e3, 2))
