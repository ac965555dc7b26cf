"""An im2col buffer of more than 2^31 elements gives the right result (patch 0006's int64 path).

Forward of 64 input channels, 3x3 kernel, one 1960x1960 image: the column buffer has
576 x 3,841,600 = 2,212,761,600 elements (> 2^31 - 1), 8.9 GB in float32, so the kernels index
with int64. The size is chosen so that the offset of a row of the buffer itself passes 2^31
(row 63 * 9 = 567 starts at element 567 * 3,841,600 = 2,178,187,200): with 32-bit index
arithmetic that offset wraps negative. The reference is the same convolution split into two halves of the input channels
(deform_conv2d is linear in them; each half's buffer is under 2^31), summed. All values are
dyadic (input k/8, offsets multiples of 1/2, mask in {0, 1/2, 1}, weight k/8), so every product
and sum is exact in float32 and the two computations must agree bit for bit, whatever their
summation order. About 11 GB of memory at peak and a minute on 2 cores.
"""
from __future__ import annotations

import json

import pytest

from conftest import PATCHED, SUMMARY
from tvdcn.isolate import describe_failure, run_snippet

pytestmark = [pytest.mark.slow]

CODE = """
import json
from torchvision.ops import deform_conv2d
C, S = 64, 1960
g = torch.Generator().manual_seed(0)
def dy(shape, lo, hi, den):
    return (torch.randint(lo, hi + 1, shape, generator=g, dtype=torch.int8).float() / den)
x = dy((1, C, S, S), -8, 8, 8)
off = dy((1, 18, S, S), -8, 8, 2)
m = dy((1, 9, S, S), 0, 2, 2)
w = dy((1, C, 3, 3), -8, 8, 8)
cols = C * 9 * S * S
with torch.no_grad():
    ref = deform_conv2d(x[:, :32], off, w[:, :32], padding=1, mask=m)
    ref += deform_conv2d(x[:, 32:], off, w[:, 32:], padding=1, mask=m)
    out = deform_conv2d(x, off, w, padding=1, mask=m)
print(json.dumps({"columns": cols, "equal": bool(torch.equal(out, ref)),
                  "mismatches": int((out != ref).sum()), "nonzero": int((ref != 0).sum())}))
"""


def _mem_available_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def test_im2col_buffer_over_2_31_elements():
    if _mem_available_gb() < 14:
        pytest.skip(f"needs ~14 GB of free memory, {_mem_available_gb():.1f} GB available")
    r = run_snippet(PATCHED, CODE, timeout=1200)
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    SUMMARY["large index (columns > 2^31)"].update(res)
    assert res["columns"] > 2**31 - 1
    assert res["nonzero"] > 0
    assert res["equal"], res
