"""Issue 24: the forward GEMM of s64-b1 (256 x 2304 @ 2304 x 4096, what the series' tiles add up
to) through torch.mm (MKL here), against dense conv2d of the same layer (oneDNN), 2 threads.

  .venv/bin/python results/2026-12-01/gemm-vs-conv.py
"""
import time

import torch

torch.set_num_threads(2)
a, b, out = torch.randn(256, 2304), torch.randn(2304, 4096), torch.empty(256, 4096)
x, w = torch.randn(1, 256, 64, 64), torch.randn(256, 256, 3, 3)


def ms(f, n=20):
    f(), f()
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n * 1e3


flop = 2 * 256 * 2304 * 4096
for name, f in (("torch.mm (the forward's GEMM)", lambda: torch.mm(a, b, out=out)),
                ("conv2d (the whole dense layer)", lambda: torch.nn.functional.conv2d(x, w, padding=1))):
    t = ms(f)
    print(f"{name}: {t:.2f} ms, {flop / t / 1e6:.0f} GFLOP/s")
print(torch.__config__.show().splitlines()[1:4])
