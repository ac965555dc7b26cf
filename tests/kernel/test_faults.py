"""A failed plan allocation or tile GEMM raises a clear error, and leaves the op working.

The kernel cannot throw inside a parallel region: a task that fails to allocate its plan (or whose
GEMM fails) sets a flag, the loop ends, and the error is raised after it. No valid call on a
machine with memory reaches those paths, so a -lowered build fails on request (tvdcn.lowered):
``TVDCN_FAIL_SCRATCH=N`` fails every plan allocation of N elements (0: all of them),
``TVDCN_FAIL_GEMM`` every tile GEMM of the forward and every GEMM task of the backward. Each case sets one in a fresh process, calls
the op, then unsets it and checks that the op gives the same bits as before the failure.

Only a -lowered build has those switches: against any other variant these tests are skipped.
"""
from __future__ import annotations

import json

import pytest

from conftest import PATCHED
from tvdcn import variant
from tvdcn.isolate import describe_failure, run_snippet

pytestmark = [pytest.mark.lowered]

LOWERED = getattr(variant.parse(PATCHED), "lowered", False)
needs_lowered = pytest.mark.skipif(not LOWERED, reason=f"{PATCHED} has no fault switches (a -lowered build has)")


CODE = """
import json, os
import torchvision  # registers the ops
x = torch.rand(2, 4, 6, 6, dtype=torch.float64); off = torch.randn(2, 18, 6, 6, dtype=x.dtype)
m = torch.rand(2, 9, 6, 6, dtype=x.dtype); go = torch.rand(2, {cout}, 6, 6, dtype=x.dtype)
w = torch.rand({cout}, 4 // {groups}, 3, 3, dtype=x.dtype); b = torch.rand({cout}, dtype=x.dtype)
args = (1, 1, 1, 1, 1, 1, {groups}, 1, True)
def call():
    if {backward}:
        return torch.ops.torchvision._deform_conv2d_backward(go, x, w, off, m, b, *args)
    return (torch.ops.torchvision.deform_conv2d(x, w, off, m, b, *args),)
before = call()
os.environ[{var!r}] = {value!r}
try:
    call()
    raised = None
except RuntimeError as e:
    raised = str(e)
del os.environ[{var!r}]
after = call()
same = all(torch.equal(p.view(torch.int64), q.view(torch.int64)) for p, q in zip(before, after))
print(json.dumps({{"raised": raised, "same_after": same}}))
"""

# name: (variable, value, backward, output channels, groups, function that must raise, message)
FAULTS = {
    "forward-plan": ("TVDCN_FAIL_SCRATCH", "0", False, 5, 1, "deform_conv2d_forward_kernel",
                     "out of memory allocating the im2col sampling plan"),
    # The lowered offset/mask tile: kk * kCoordTilePixels = 9 * 16 indices and flags.
    "offset-gradient-plan": ("TVDCN_FAIL_SCRATCH", "144", True, 5, 1, "compute_grad_offset_and_mask",
                             "out of memory allocating the offset gradient's plan"),
    "forward-gemm": ("TVDCN_FAIL_GEMM", "1", False, 5, 1, "deform_conv2d_forward_kernel",
                     "the GEMM of a tile failed"),
    "backward-gemm": ("TVDCN_FAIL_GEMM", "1", True, 5, 1, "run_gemm_tasks",
                      "a GEMM of the backward failed"),
}


def _run(var: str, value: str, backward: bool, cout: int, groups: int, threads: int) -> dict:
    code = CODE.format(var=var, value=value, backward=backward, cout=cout, groups=groups)
    r = run_snippet(PATCHED, code, threads=threads)
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_lowered
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_failure_raises_where_it_happened_and_the_op_works_after(fault, threads):
    var, value, backward, cout, groups, function, message = FAULTS[fault]
    res = _run(var, value, backward, cout, groups, threads)
    assert res["raised"] is not None, f"{var}={value} did not make the call fail"
    # The check's message starts with the function that raised it.
    assert res["raised"].startswith(function + ","), res["raised"]
    assert f"deform_conv2d: {message}" in res["raised"], res["raised"]
    assert res["same_after"], "the op's results changed after a failed call"


@needs_lowered
def test_one_output_channel_per_group_calls_no_gemm():
    # 4 groups of one output channel: the forward's tiles take small_tile_mm, so a failing GEMM
    # changes nothing.
    res = _run("TVDCN_FAIL_GEMM", "1", False, 4, 4, 2)
    assert res == {"raised": None, "same_after": True}
