"""Issue 24: does computing the backward's columns channels last change their bits?

The tip computes a tile's columns as W^T G: rows (channel, tap), columns pixels. A channels-last
col2im wants them as (pixel, tap, channel). That is G^T W', where W' is the weight with its
columns permuted to (tap, channel). Each element is then the same dot product over the output
channels, but BLAS may order or split that sum differently for the transposed problem. This
script compares the two layouts bit for bit, and also mm_out into a transposed view. With this
torch's MKL, float32 agreed everywhere and float64 nowhere (dgemm orders the transposed problem's
sums differently).

  .venv/bin/python results/2026-12-01/gemm-layout-bits.py
"""
import json

import torch

SHAPES = [  # (channels * taps of a tile, output channels per group, images * pixels of a block)
    (2304, 256, 4096), (576, 64, 1024), (1152, 128, 10000), (2304, 256, 64), (144, 64, 1024), (252, 8, 32768),
    (144, 8, 32768), (36, 8, 32768)]
torch.manual_seed(0)
rows = []
for dtype in (torch.float32, torch.float64):
  for threads in (1, 2):
    torch.set_num_threads(threads)
    for m, k, n in SHAPES:
        w, g = torch.randn(k, m, dtype=dtype), torch.randn(k, n, dtype=dtype)
        tip = torch.mm(w.t(), g)
        swapped = torch.mm(g.t(), w).t()
        into_view = torch.empty(n, m, dtype=dtype).t()
        torch.mm(w.t(), g, out=into_view)
        rows.append({"dtype": str(dtype), "threads": threads, "m_k_n": [m, k, n], "swapped_equal": torch.equal(tip, swapped),
                     "out_view_equal": torch.equal(tip, into_view)})
print(json.dumps({"torch": torch.__version__, "blas": torch.backends.mkl.is_available() and "MKL" or "other",
                  "rows": rows}, indent=1))
