"""Issue 24: is the backward slow on s32-b8 because its column rows alias in the caches?

The column buffer's rows are n_imgs * out_h * out_w floats: 32 KB for s32-b8 (8 x 32 x 32), 4 KB
for s32-b1, 16 KB for s64-b1, all multiples of 4 KB, so a column of the buffer (the GEMM's tile of
C; the passes reading one pixel down a block of channels) falls in one cache set. c3-det's rows
(2 x 100 x 100 floats) are not, a control. Variants of the 41-patch tip's kernel, staged next to
its standalone copy ("patched"), the backward timed alone:

    PYTHONPATH=. .venv/bin/python results/2026-12-02/col-ld.py pad PAD       # "ldPAD": rows + PAD elements
    PYTHONPATH=. .venv/bin/python results/2026-12-02/col-ld.py diff NAME     # col-ld/NAME.diff on the tip
    PYTHONPATH=. .venv/bin/python results/2026-12-02/col-ld.py ab NAMES THREADS
    PYTHONPATH=. .venv/bin/python results/2026-12-02/col-ld.py bits NAME     # every result vs the tip

col-ld/odd.diff pads every row to an odd number of cache lines; col-ld/pg.diff (what became patch
0041) only rows of a multiple of 4 KB, by one line. Not a patch: experiments. The diffs apply to
the 41-patch tip's kernel (series commit 6044ba6), which was the staged "patched" then; staging the
42-patch tip over it (tests/tooling/test_standalone.py does) makes `diff` fail to apply.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tvdcn import standalone

HERE = Path(__file__).parent

EDITS = [
    # the buffer: rows of ld = col_cols + PAD, viewed as col_cols wide
    ("""  const Tensor columns =
      torch::stable::new_empty(input_c, {buffer_channels * kk, col_cols});""",
     """  Tensor columns_buf =
      torch::stable::new_empty(input_c, {buffer_channels * kk, col_cols + PAD});
  const Tensor columns = torch::stable::narrow(columns_buf, 1, 0, col_cols);"""),
    # col2im: the row stride
    ("""  const int64_t col_channel = int64_t(kk) * batch_sz * out_hw;""",
     """  const int64_t col_ld = int64_t(batch_sz) * out_hw + PAD;
  const int64_t col_channel = int64_t(kk) * col_ld;"""),
    ("""        col + ((int64_t(c - c_begin) * kk + k) * batch_sz + b) * out_hw;""",
     """        col + (int64_t(c - c_begin) * kk + k) * col_ld + int64_t(b) * out_hw;"""),
    # offset/mask pass
    ("""  const index_t col_stride = batch_sz * out_hw;
  const index_t col_channel = kk * col_stride;""",
     """  const index_t col_stride = batch_sz * out_hw + PAD;
  const index_t col_channel = kk * col_stride;"""),
]


def diff(name: str) -> None:
    import subprocess
    import tempfile

    text = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    ns = standalone.namespace("patched")
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / standalone.KERNEL
        f.parent.mkdir(parents=True)
        f.write_text(text.replace(ns, "torchvision"))
        subprocess.run(["patch", "-p1", "-s", "-d", d, "-i", str(HERE / "col-ld" / f"{name}.diff")], check=True)
        text = f.read_text()
    print(standalone.build(dirs=[standalone.stage_text(name, text)]), flush=True)


def pad(pad: str) -> None:
    text = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    for a, b in EDITS:
        assert text.count(a) == 1, a
        text = text.replace(a, b.replace("PAD", pad))
    name = f"ld{pad}"
    d = standalone.clone(standalone.ROOT / "patched", name, text, prototype=name)
    print(standalone.build(dirs=[d]), flush=True)


def _ops(names):
    import torch

    ops = {}
    for n in names:
        torch.ops.load_library(str(standalone.ROOT / n / "build" / f"{standalone.namespace(n)}.so"))
        ops[n] = getattr(torch.ops, standalone.namespace(n))
    return ops


CONFIGS = {"s32-b1": (1, 64, 32), "s32-b8": (8, 64, 32), "s64-b1": (1, 256, 64), "c3-det": (2, 128, 100)}


def _inputs(b, c, s):
    import torch

    torch.manual_seed(0)
    return (torch.randn(b, c, s, s), torch.randn(b, c, s, s), torch.randn(c, c, 3, 3) / (3 * c),
            torch.rand(b, 18, s, s) * 4 - 2, torch.rand(b, 9, s, s), torch.randn(c))


def ab(names: str, threads: str = "1", configs: str = "s32-b1,s32-b8,s64-b1,c3-det") -> None:
    import torch

    ops = _ops(names.split(","))
    torch.set_num_threads(int(threads))
    for cfg in configs.split(","):
        gout, x, w, off, mask, bias = _inputs(*CONFIGS[cfg])
        best = {n: [] for n in ops}
        for _ in range(12 if CONFIGS[cfg][2] < 64 else 6):
            for n, op in ops.items():
                t = time.perf_counter()
                op._deform_conv2d_backward(gout, x, w, off, mask, bias, 1, 1, 1, 1, 1, 1, 1, 1, True)
                best[n].append(time.perf_counter() - t)
        med = {n: sorted(v)[len(v) // 2] * 1e3 for n, v in best.items()}
        base = med[next(iter(ops))]
        print(f"{cfg}@{threads}", " ".join(f"{n} {min(v) * 1e3:.1f}/{med[n]:.1f} ms ({base / med[n]:.2f}x)"
                                          for n, v in best.items()), flush=True)


def bits(name: str) -> None:
    import torch

    ops = _ops(["patched", name])
    # s32-b1/b8 and (2, 16, 64): rows of 4 KB multiples in both dtypes; (3, 16, 9), (2, 24, 17):
    # neither; (4, 8, 16): 4 KB in float32 only (1024 elements), 8 KB in float64.
    shapes = list(CONFIGS.values())[:2] + [(3, 16, 9), (2, 24, 17), (2, 16, 64), (4, 8, 16), (1, 256, 64)]
    for th in (1, 2, 3):
        torch.set_num_threads(th)
        for dtype in (torch.float32, torch.float64):
            for s in shapes:
                args = [t.to(dtype) for t in _inputs(*s)]
                r = [op._deform_conv2d_backward(*args, 1, 1, 1, 1, 1, 1, 1, 1, True) for op in ops.values()]
                diff = [i for i, (a, b) in enumerate(zip(*r)) if not torch.equal(a, b)]
                print(th, dtype, s, "same" if not diff else f"DIFF in results {diff}", flush=True)


if __name__ == "__main__":
    {"pad": pad, "diff": diff, "ab": ab, "bits": bits}[sys.argv[1]](*sys.argv[2:])
