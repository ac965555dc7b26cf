"""bfloat16 and float16 (patch 0009): computed in float32, rounded once.

For shapes of the grid, in the patched variant's own processes, at 1 and at 2 threads:
  * forward and all five gradients in bfloat16 / float16 are bit-identical to the float32 op's
    results on the same values (the low-precision inputs converted to float32), rounded to that
    dtype: every float32 property (reference agreement, thread counts) then carries over;
  * the low-precision results are bit-identical at 1 and 2 threads wherever the float32 ones are;
  * torch.library.opcheck passes in both dtypes.
Baseline has no bfloat16 kernels (and computed float16 in float16), so nothing is compared with
it here; upstream-style tolerance tests against float64 are in the patched tree's test_ops.py.
"""
from __future__ import annotations

import json

import pytest

from conftest import PATCHED, SUMMARY
from tvdcn.isolate import describe_failure, run_snippet

CODE = """
import json, dataclasses
import torchvision  # registers the ops
from tvdcn.cases import grid, make_inputs, run
bits = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}
out = []
for c in [c for c in grid() if c.batch in (1, 7, 33) and c.dtype == "float32"]:
    for dtype in (torch.bfloat16, torch.float16):
        low_in = {k: v.to(dtype) for k, v in make_inputs(c).items()}
        low = run(dataclasses.replace(c, dtype=str(dtype).removeprefix("torch.")), low_in)
        f32 = run(c, {k: v.float() for k, v in low_in.items()})
        same = {k: torch.equal(low[k].view(bits[dtype]), f32[k].to(dtype).view(bits[dtype])) for k in low}
        args = (low_in["input"].requires_grad_(), low_in["weight"].requires_grad_(),
                low_in["offset"].requires_grad_(),
                (low_in["mask"] if c.mask else torch.zeros(c.batch, 1, dtype=dtype)).requires_grad_(),
                (low_in["bias"] if c.bias else torch.zeros(c.cout, dtype=dtype)).requires_grad_(),
                *c.stride, *c.pad, *c.dil, c.wgroups, c.ogroups, c.mask)
        try:
            oc = torch.library.opcheck(torch.ops.torchvision.deform_conv2d.default, args)
            oc = all(v == "SUCCESS" for v in oc.values())
        except Exception as e:
            oc = f"{type(e).__name__}: {e}"[:500]
        out.append({"case": c.id, "dtype": str(dtype), "same": same, "opcheck": oc,
                    "low": {k: v.view(bits[dtype]).tolist() for k, v in low.items()},
                    "f32": {k: v.view(torch.int32).tolist() for k, v in f32.items()}})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results() -> dict[int, list[dict]]:
    res = {}
    for threads in (1, 2):
        r = run_snippet(PATCHED, CODE, threads=threads, timeout=1800)
        assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
        res[threads] = json.loads(r.stdout.strip().splitlines()[-1])
    return res


@pytest.mark.parametrize("threads", (1, 2))
def test_low_precision_is_float32_rounded_once(results, threads):
    bad = [(x["case"], x["dtype"], k) for x in results[threads] for k, ok in x["same"].items() if not ok]
    SUMMARY["bfloat16/float16 == float32 rounded once (tensors)"].update(
        checked=sum(len(x["same"]) for x in results[threads]), differ=len(bad))
    assert len(results[threads]) >= 20
    assert not bad, bad[:5]


def test_low_precision_thread_invariant_where_float32_is(results):
    new = []
    for a, b in zip(results[1], results[2]):
        for k in a["low"]:
            if a["f32"][k] == b["f32"][k] and a["low"][k] != b["low"][k]:
                new.append((a["case"], a["dtype"], k))
    SUMMARY["bfloat16/float16 1 vs 2 threads"]["new thread dependence"] = len(new)
    assert not new, new[:5]


def test_low_precision_opcheck(results):
    bad = [(x["case"], x["dtype"], x["opcheck"]) for x in results[2] if x["opcheck"] is not True]
    SUMMARY["bfloat16/float16 opcheck (configs)"].update(passed=len(results[2]) - len(bad), failed=len(bad))
    assert not bad, bad[:3]
