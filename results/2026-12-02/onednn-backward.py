"""Issue 24: could the backward's two GEMMs go through oneDNN, as the forward's did in
results/2026-12-01/onednn-gemm.py? Per config, with the op's own operand sizes:

- grad_columns (K x N) = Wᵀ (K x M) · grad_out (M x N): torch.mm (MKL, what the kernel calls) against
  the same product as a 1x1 convolution of grad_out (B, M, 1, hw) by Wᵀ (K, M, 1, 1) through
  aten::mkldnn_convolution, in NCHW (its output is (B, K, hw), image-major; the kernel's columns
  are (K, B, hw)) and in channels-last (output (B, hw, K): channels-last columns);
- grad_weight (M x K) = grad_out (M x N) · columnsᵀ (N x K): torch.mm against aten::convolution_backward
  of that 1x1 convolution with only the weight gradient asked for (ATen picks the backend),
  in NCHW and in channels-last;

K = 9 x channels, M = output channels, N = images x pixels. For each: best of n calls alternated in
one process (a ratio, not a figure: it may run beside other jobs), GFLOP/s, and whether the result
is bit-identical at 1, 2, 3 and 4 threads.

  [TIMED=1] .venv/bin/python results/2026-12-02/onednn-backward.py
"""
import os
import time

import torch

CONFIGS = {"s32-b1": (1, 64, 32), "s32-b8": (8, 64, 32), "s64-b1": (1, 256, 64), "c3-det": (2, 128, 100)}
THREADS = (1, 2, 3, 4)
# Timed thread counts; TIMED=1 for one only (beside another job, 2-thread times mean nothing).
SPEED_THREADS = tuple(int(t) for t in os.environ.get("TIMED", "1,2").split(","))


def best(fns, n):
    t = {k: 1e9 for k in fns}
    for _ in range(n):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            t[k] = min(t[k], time.perf_counter() - t0)
    return t


def invariant(f):
    ref = None
    for th in THREADS:
        torch.set_num_threads(th)
        y = f()
        if ref is None:
            ref = y
        elif not torch.equal(y, ref):
            return f"differs at {th} threads"
    return "same bits at 1-4 threads"


for cfg, (b, c, s) in CONFIGS.items():
    torch.manual_seed(0)
    hw, k, m = s * s, 9 * c, c
    n = b * hw
    flop = 2 * k * m * n
    g = torch.randn(b, m, 1, hw)
    w = torch.randn(m, k)
    g2d = g.permute(1, 0, 2, 3).reshape(m, n).contiguous()  # the kernel's (M, images x pixels)
    wt = w.t().contiguous()
    wt4 = wt.view(k, m, 1, 1)
    cols = torch.randn(b, k, 1, hw)
    cols2d = cols.permute(1, 0, 2, 3).reshape(k, n).contiguous()
    cols_cl = cols.contiguous(memory_format=torch.channels_last)
    g_cl = g.contiguous(memory_format=torch.channels_last)
    w4 = w.view(m, k, 1, 1)
    gc = {"mm": lambda: torch.mm(wt, g2d),
          "mkldnn conv": lambda: torch.ops.aten.mkldnn_convolution(g, wt4, None, [0, 0], [1, 1], [1, 1], 1),
          "mkldnn conv cl": lambda: torch.ops.aten.mkldnn_convolution(g_cl, wt4, None, [0, 0], [1, 1], [1, 1], 1)}
    gw = {"mm": lambda: torch.mm(g2d, cols2d.t()),
          "conv bwd nchw": lambda: torch.ops.aten.convolution_backward(
              g, cols, w4, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [False, True, False])[1],
          "conv bwd cl": lambda: torch.ops.aten.convolution_backward(
              g_cl, cols_cl, w4, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [False, True, False])[1]}
    # Same product, up to rounding.
    ref_c = gc["mm"]().view(k, b, hw).permute(1, 0, 2)
    for name in ("mkldnn conv", "mkldnn conv cl"):
        assert torch.allclose(gc[name]().reshape(b, k, hw), ref_c, rtol=1e-3, atol=1e-2)
    for name in ("conv bwd nchw", "conv bwd cl"):
        assert torch.allclose(gw[name]().view(m, k), gw["mm"](), rtol=1e-3, atol=1e-1)
    reps = 12 if flop < 2e9 else 5
    for th in SPEED_THREADS:
        torch.set_num_threads(th)
        for what, fns in (("grad_columns", gc), ("grad_weight", gw)):
            t = best(fns, reps)
            print(f"{cfg} {what} @{th}: " + ", ".join(
                f"{k_} {v * 1e3:.2f} ms ({flop / v / 1e9:.0f} GFLOP/s, {t['mm'] / v:.2f}x mm)" for k_, v in t.items()),
                flush=True)
    for what, fns in (("grad_columns", gc), ("grad_weight", gw)):
        print(f"{cfg} {what}: " + "; ".join(f"{k_} {invariant(f)}" for k_, f in fns.items()), flush=True)
