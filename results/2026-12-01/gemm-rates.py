"""Issue 24: one GEMM of s64-b1's size (256 x 2304 @ 2304 x 4096) through torch.mm (MKL), as a 1x1
convolution (ATen's choice of path) and the dense 3x3 layer, at 1 and 2 threads; then
aten::mkldnn_convolution (oneDNN) called directly, compared bit for bit across 1-8 threads.

  .venv/bin/python results/2026-12-01/gemm-rates.py
"""
import time, torch
def ms(f, n=15):
    f(), f()
    t0 = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter() - t0) / n * 1e3
flop = 2 * 256 * 2304 * 4096
a, b, out = torch.randn(256, 2304), torch.randn(2304, 4096), torch.empty(256, 4096)
bt = b.t().contiguous().t()
x, w = torch.randn(1, 256, 64, 64), torch.randn(256, 256, 3, 3)
x1 = torch.randn(1, 2304, 64, 64); w1 = torch.randn(256, 2304, 1, 1)
x1cl = x1.contiguous(memory_format=torch.channels_last)
for th in (1, 2):
    torch.set_num_threads(th)
    for name, f in (("mm", lambda: torch.mm(a, b, out=out)),
                    ("mm b^T-layout", lambda: torch.mm(a, bt, out=out)),
                    ("conv1x1 nchw", lambda: torch.nn.functional.conv2d(x1, w1)),
                    ("conv1x1 cl", lambda: torch.nn.functional.conv2d(x1cl, w1)),
                    ("conv3x3 dense", lambda: torch.nn.functional.conv2d(x, w, padding=1))):
        t = ms(f); print(f"{th}t {name}: {t:.2f} ms {flop/t/1e6:.0f} GFLOP/s", flush=True)

x1 = torch.randn(1, 2304, 1, 4096).contiguous(memory_format=torch.channels_last); w1 = torch.randn(256, 2304, 1, 1)
ref = None
for th in (1, 2, 3, 4, 8):
    torch.set_num_threads(th)
    f = lambda: torch.ops.aten.mkldnn_convolution(x1, w1, None, [0,0],[1,1],[1,1],1)
    y = f()
    if ref is None: ref = y
    t = ms(f, 8 if th > 2 else 15)
    print(f"{th}t mkldnn_convolution 1x1 cl: {t:.2f} ms {flop/t/1e6:.0f} GFLOP/s; bit-equal to 1t: {torch.equal(y, ref)}; out strides {y.stride()}", flush=True)
    t = ms(lambda: torch.mm(a, b, out=out), 8 if th > 2 else 15); print(f"{th}t mm {t:.2f} ms {flop/t/1e6:.0f}")
