"""Forwards past 2^31 elements, against the float64 reference, bit for bit.

The sampling kernels index with int64_t when any buffer they touch (input, its padded copy,
offset, mask, the column workspace, the output) has more than INT_MAX elements
(``needs_64bit_indexing``). Two shapes pass that bound, each at a few GB instead of the
hundreds a column buffer of that size took before the forward worked in tiles:

- the input (and so its padded copy): 2050 channels of 1024x1024, 2,149,580,800 elements, stride
  4, 2 output channels. Only input channels 0, 1, 2048 and 2049 have non-zero weights; the
  padded copy holds an image's channels side by side per position, so every sample of the lower
  rows lies past element 2^31 - 1, where an int index wraps. The reference runs on those four
  channels. About 18 GB at peak.
- the output: one input channel, 1024x1024, 2050 output channels: 2,149,580,800 elements.
  Output channels 0, 1, 2048 and 2049 are compared; the last two lie wholly past element
  2^31 - 1. The sampling kernels never index the output (the tile GEMM and the bias loop do, in
  int64_t), so this one checks those. About 10 GB at peak.

Every value is dyadic (input k/8, offsets multiples of 1/2, mask in {0, 1/2, 1}, weight and bias
k/8), so every product and sum is exact in float32 and the comparison is bit for bit.

A backward past 2^31 elements needs over 26 GB here (the input, its gradient and the padded copy
the offset gradient reads), more than this suite assumes; lowered builds (tvdcn.lowered) run the
int64_t instantiations of every pass on small tensors instead.
"""
from __future__ import annotations

import json

import pytest

from conftest import PATCHED, SUMMARY
from tvdcn.isolate import describe_failure, run_snippet

pytestmark = [pytest.mark.slow]

COMMON = """
import json
from torchvision.ops import deform_conv2d
from tvdcn.reference import deform_conv2d_ref
g = torch.Generator().manual_seed(0)
def dy(shape, lo, hi, den):
    return torch.empty(shape).random_(lo, hi + 1, generator=g).div_(den)
def compare(out, ref):
    return {"equal": bool(torch.equal(out, ref)), "mismatches": int((out != ref).sum()),
            "nonzero": int((ref != 0).sum())}
"""

INPUT = COMMON + """
C, S, O, SEL = 2050, 1024, 2, [0, 1, 2048, 2049]
x = dy((1, C, S, S), -8, 8, 8)
off = dy((1, 18, 256, 256), -8, 8, 2)
m = dy((1, 9, 256, 256), 0, 2, 2)
w = torch.zeros(O, C, 3, 3)
w[:, SEL] = dy((O, len(SEL), 3, 3), -8, 8, 8)
b = dy((O,), -8, 8, 8)
with torch.no_grad():
    out = deform_conv2d(x, off, w, b, stride=4, padding=1, mask=m)
    ref = deform_conv2d_ref(x[:, SEL].double(), off.double(), w[:, SEL].double(), b.double(), stride=(4, 4),
                            padding=(1, 1), mask=m.double()).float()
print(json.dumps({"elements": x.numel(), "all": compare(out, ref)}))
"""

OUTPUT = COMMON + """
C, S, O = 1, 1024, 2050
x = dy((1, C, S, S), -8, 8, 8)
off = dy((1, 18, S, S), -8, 8, 2)
m = dy((1, 9, S, S), 0, 2, 2)
w = dy((O, C, 3, 3), -8, 8, 8)
b = dy((O,), -8, 8, 8)
with torch.no_grad():
    out = deform_conv2d(x, off, w, b, padding=1, mask=m)
    res = {"elements": out.numel()}
    for name, sl in (("first", slice(0, 2)), ("last", slice(O - 2, O))):
        ref = deform_conv2d_ref(x.double(), off.double(), w[sl].double(), b[sl].double(), padding=(1, 1),
                                mask=m.double()).float()
        res[name] = compare(out[:, sl], ref)
print(json.dumps(res))
"""


def _mem_available_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def _run(code: str, need_gb: float, label: str) -> dict:
    if _mem_available_gb() < need_gb:
        pytest.skip(f"needs ~{need_gb:.0f} GB of free memory, {_mem_available_gb():.1f} GB available")
    r = run_snippet(PATCHED, code, timeout=1200)
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    SUMMARY[f"large index ({label} > 2^31 elements)"].update(
        {k: v["equal"] if isinstance(v, dict) else v for k, v in res.items()})
    assert res["elements"] > 2**31 - 1, res
    for part in (k for k in res if k != "elements"):
        assert res[part]["nonzero"] > 0, res
        assert res[part]["equal"], res
    return res


def test_forward_input_over_2_31_elements():
    _run(INPUT, 20, "input")


def test_forward_output_over_2_31_elements():
    _run(OUTPUT, 12, "output")
