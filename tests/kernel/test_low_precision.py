"""bfloat16 and float16 (patch 0009): computed in float32, rounded once.

For shapes of the grid, in the patched variant's own processes, at 1 and at 2 threads:
  * forward and all five gradients in bfloat16 / float16 are bit-identical to the float32 op's
    results on the same values (the low-precision inputs converted to float32), rounded to that
    dtype: every float32 property (reference agreement, thread counts) then carries over;
  * they agree with the independent float64 reference (tvdcn.reference) on the same values
    within the float32 tolerance plus the dtype's unit roundoff u (2^-8, 2^-11) of the largest
    magnitude, at each thread count; except grad_offset's elements whose sampling coordinate is
    an integer (frequent with offsets of 8 or 11 bits), where the derivative is one-sided and
    its side a convention, as for the suite's exact cases;
  * the low-precision results are bit-identical at 1 and 2 threads wherever the float32 ones are;
  * torch.library.opcheck passes in both dtypes.
Baseline has no bfloat16 kernels (and computed float16 in float16), so nothing is compared with
it here.
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
from tvdcn.reference import TOLERANCE, run_ref, sampling_positions
bits = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}
def kinks(c, off):
    # Offsets of few bits put sampling positions on integers, where the bilinear sample has a kink
    # and d/dy (d/dx) is one-sided, its side a convention: grad_offset's y (x) elements there.
    py, px = sampling_positions(off, (c.kh, c.kw), c.stride, c.pad, c.dil, torch.float64, torch.float32)
    return torch.stack([py == py.floor(), px == px.floor()], 3).view(off.shape)
out = []
for c in [c for c in grid() if c.batch in (1, 7, 33) and c.dtype == "float32"]:
    for dtype in (torch.bfloat16, torch.float16):
        name = str(dtype).removeprefix("torch.")
        low_in = {k: v.to(dtype) for k, v in make_inputs(c).items()}
        low = run(dataclasses.replace(c, dtype=name), low_in)
        f32 = run(c, {k: v.float() for k, v in low_in.items()})
        same = {k: torch.equal(low[k].view(bits[dtype]), f32[k].to(dtype).view(bits[dtype])) for k in low}
        # The reference in float64 on the same values, positions rounded to float32 as the kernel's.
        ref = run_ref(c, low_in)
        u = TOLERANCE[name] - TOLERANCE["float32"]
        keep = {k: torch.ones_like(ref[k], dtype=torch.bool) for k in low}
        if "grad_offset" in low:
            keep["grad_offset"] = ~kinks(c, low_in["offset"])
        err = {k: ((low[k].double() - ref[k])[keep[k]].abs().max() / max(1.0, ref[k].abs().max().item())).item()
               for k in low if keep[k].any() and not (k == "grad_offset" and c.values == "exact")}
        at_kinks = int((~keep["grad_offset"]).sum()) if "grad_offset" in low else 0
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
                    "ref_error_u": {k: e / u for k, e in err.items()}, "at_kinks": at_kinks,
                    "ref_ok": {k: e <= TOLERANCE[name] for k, e in err.items()},
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


@pytest.mark.parametrize("threads", (1, 2))
def test_low_precision_meets_the_reference(results, threads):
    bad = [(x["case"], x["dtype"], k, f"{x['ref_error_u'][k]:.3g} u") for x in results[threads]
           for k, ok in x["ref_ok"].items() if not ok]
    worst = max((e for x in results[threads] for e in x["ref_error_u"].values()), default=0.0)
    SUMMARY["bfloat16/float16 vs float64 reference (tensors)"].update(
        checked=sum(len(x["ref_ok"]) for x in results[threads]), failed=len(bad), worst_in_u=round(worst, 3),
        grad_offset_elements_at_kinks_left_out=sum(x["at_kinks"] for x in results[threads]))
    assert sum(len(x["ref_ok"]) for x in results[threads]) >= 100
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
