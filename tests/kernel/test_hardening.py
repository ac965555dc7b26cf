"""Bad input never crashes deform_conv2d: the semantics of non-finite and out-of-range sampling
positions, NaN data, exact border positions, and a clear error for every invalid argument.

Semantics under test (patch 0002): a sampling position that is NaN, +-Inf, or outside
(-1, H) x (-1, W) samples zero, and every gradient through it is zero, exactly as for a
finite position far outside the image (which upstream already handles).

Comparisons with upstream are by bit pattern, except for results whose rounding a patch declares
changed (conftest.matches_baseline: the same NaN positions, within twice the reference tolerance).

Every snippet runs in its own process: a crash is a failed case with its signal, not a dead run.
"""
from __future__ import annotations

import json
import re
import textwrap

import pytest
import torch

from conftest import BASELINE, PATCHED, SUMMARY, bits_equal, matches_baseline
from tvdcn import variant
from tvdcn.isolate import describe_failure, run_snippet

pytestmark = [pytest.mark.dropin, pytest.mark.sanitizer, pytest.mark.lowered]

# Computes forward + all gradients of a case whose offsets (and optionally input/mask) are
# altered by EDIT; saves the tensors to OUT.
RUN_CASE = """
import json, dataclasses
from tvdcn.cases import Case, make_inputs, run
case = Case(**json.loads({case!r}))
case = dataclasses.replace(case, stride=tuple(case.stride), pad=tuple(case.pad), dil=tuple(case.dil))
t = make_inputs(case)
g = torch.Generator().manual_seed(1234)
{edit}
res = run(case, t)
torch.save(res, {out!r})
print(json.dumps({{"ok": True}}))
"""


def compute(name: str, case: dict, edit: str, tmp_path, tag: str) -> dict[str, torch.Tensor]:
    out = tmp_path / f"{name}-{tag}.pt"
    r = run_snippet(name, RUN_CASE.format(case=json.dumps(case), edit=textwrap.dedent(edit), out=str(out)))
    assert r.returncode == 0, f"{name} {tag}: {describe_failure(r.returncode, r.stderr)}"
    return torch.load(out)


CASE = dict(batch=3, cin=4, cout=6, h=7, w=8, kh=3, kw=3, stride=[1, 1], pad=[1, 1], dil=[1, 1],
            wgroups=2, ogroups=2, mask=True, bias=True, dtype="float32")
CASES = {"float32": CASE, "float64-nomask": dict(CASE, dtype="float64", mask=False, ogroups=1)}
BAD = {"nan": "float('nan')", "+inf": "float('inf')", "-inf": "float('-inf')", "3e9": "3e9", "-3e9": "-3e9"}
# A random fifth of the offset entries get VALUE.
SET_OFFSETS = "sel = torch.rand(t['offset'].shape, generator=g) < 0.2\nt['offset'][sel] = {value}"


@pytest.mark.parametrize("case_name", CASES)
@pytest.mark.parametrize("bad", BAD)
def test_nonfinite_offsets_behave_like_far_outside(bad, case_name, tmp_path):
    case = CASES[case_name]
    got = compute(PATCHED, case, SET_OFFSETS.format(value=BAD[bad]), tmp_path, "bad")
    far = compute(PATCHED, case, SET_OFFSETS.format(value="-1e6"), tmp_path, "far")
    base_far = compute(BASELINE, case, SET_OFFSETS.format(value="-1e6"), tmp_path, "basefar")
    SUMMARY["non-finite offsets (cases)"]["checked"] += 1
    for k in got:
        assert torch.isfinite(got[k]).all(), f"{k} is not finite with {bad} offsets"
        assert bits_equal(got[k], far[k]), f"{k}: {bad} offsets differ from far-outside offsets"
        why = matches_baseline(k, far[k], base_far[k])
        assert why is None, f"{k}: far-outside offsets differ from upstream: {why}"


NAN_DATA = {
    "input": "t['input'][0, 1, 2:4, 3:5] = float('nan')",
    "mask": "t['mask'][1, 3, 1:3, 2] = float('nan')",
    "weight": "t['weight'][2, 0, 1, 1] = float('nan')",
    "inf-input": "t['input'][0, 0, 0, 0] = float('inf')",
}


@pytest.mark.parametrize("where", NAN_DATA)
def test_nan_data_matches_upstream(where, tmp_path):
    got = compute(PATCHED, CASE, NAN_DATA[where], tmp_path, "p")
    want = compute(BASELINE, CASE, NAN_DATA[where], tmp_path, "b")
    for k in got:
        why = matches_baseline(k, got[k], want[k])
        assert why is None, f"{k} differs from upstream with NaN/Inf in {where}: {why}"


# Offsets that put sampling positions exactly on -1, 0, H-1, H (rows) and -1, 0, W-1, W
# (columns), plus values a hair inside/outside; stride 1, padding 1, dilation 1, 3x3 kernel.
BORDER = """
import itertools
B, C, H, W, K = case.batch, case.cin, case.h, case.w, 3
oh, ow = case.out_hw()
og = case.ogroups
ys = torch.tensor([-1.0, 0.0, H - 1.0, float(H), -1.0 + 1e-6, H - 1e-6, -1.0 - 1e-6, 0.5])
xs = torch.tensor([-1.0, 0.0, W - 1.0, float(W), -1.0 + 1e-6, W - 1e-6, -1.0 - 1e-6, 0.5])
off = t['offset'].view(B, og, K * K, 2, oh, ow)
for i, j in itertools.product(range(K), range(K)):
    base_y = torch.arange(oh, dtype=torch.float64).view(oh, 1) - 1 + i
    base_x = torch.arange(ow, dtype=torch.float64).view(1, ow) - 1 + j
    ty = ys[torch.randint(0, len(ys), (B, og, oh, ow), generator=g)].double()
    tx = xs[torch.randint(0, len(xs), (B, og, oh, ow), generator=g)].double()
    off[:, :, i * K + j, 0] = (ty - base_y).to(off.dtype)
    off[:, :, i * K + j, 1] = (tx - base_x).to(off.dtype)
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_border_positions_match_upstream(dtype, tmp_path):
    case = dict(CASE, dtype=dtype)
    got = compute(PATCHED, case, BORDER, tmp_path, "p")
    want = compute(BASELINE, case, BORDER, tmp_path, "b")
    for k in got:
        assert torch.isfinite(got[k]).all(), k
        why = matches_baseline(k, got[k], want[k])
        assert why is None, f"{k} differs from upstream at border positions: {why}"


BACKWARD = "torch.ops.torchvision._deform_conv2d_backward"
# Invalid arguments: (name, code that calls the op, exception types, message pattern).
SETUP = """
import re, json
from torchvision.ops import deform_conv2d
x = torch.rand(2, 4, 6, 6); w = torch.rand(5, 4, 3, 3); off = torch.rand(2, 18, 6, 6); m = torch.rand(2, 9, 6, 6)
b = torch.rand(5)
op = torch.ops.torchvision.deform_conv2d
CPU = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
def call():
{body}
try:
    call()
    print(json.dumps({{"raised": None}}))
except Exception as e:
    print(json.dumps({{"raised": type(e).__name__, "message": str(e)}}))
"""
INVALID = {
    "mask-3d": ("deform_conv2d(x, off, w, b, padding=1, mask=m[0])", r"mask to be a 4-D tensor"),
    "bias-length": ("deform_conv2d(x, off, w, torch.rand(4), padding=1, mask=m)", r"bias of length weight.shape\[0\] = 5, got 4"),
    "bias-2d": ("deform_conv2d(x, off, w, b.view(5, 1), padding=1, mask=m)", r"bias to be a 1-D tensor"),
    "zero-in-channels": ("deform_conv2d(torch.rand(2, 0, 6, 6), off, torch.rand(5, 0, 3, 3), padding=1)",
                         r"at least one input channel"),
    "zero-in-channels-op": ("op(torch.rand(2, 0, 6, 6), torch.rand(5, 0, 3, 3), off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                            r"at least one input channel"),
    "weight-float64": ("deform_conv2d(x, off, w.double(), b, padding=1, mask=m)", r"weight to have the same dtype as input \(Float\), got Double"),
    "offset-float64": ("deform_conv2d(x, off.double(), w, b, padding=1, mask=m)", r"offset to have the same dtype"),
    "mask-float64": ("deform_conv2d(x, off, w, b, padding=1, mask=m.double())", r"mask to have the same dtype"),
    "bias-float64": ("deform_conv2d(x, off, w, b.double(), padding=1, mask=m)", r"bias to have the same dtype"),
    "complex-input": ("op(*(t.to(torch.complex64) for t in (x, w, off, m, b)), 1, 1, 1, 1, 1, 1, 1, 1, True)",
                      r"float32, float64, float16 or bfloat16, got ComplexFloat"),
    "int-input": ("op(x.long(), w.long(), off.long(), m.long(), b.long(), 1, 1, 1, 1, 1, 1, 1, 1, True)", r"float32, float64, float16 or bfloat16, got Long"),
    "input-3d": ("deform_conv2d(x[0], off, w, b, padding=1, mask=m)", r"4-D"),
    "stride-0": ("op(x, w, off, m, b, 0, 1, 1, 1, 1, 1, 1, 1, True)", r"stride must be positive"),
    "stride-negative": ("deform_conv2d(x, off, w, b, stride=-1, padding=1, mask=m)", r"stride must be positive"),
    "padding-negative": ("op(x, w, off, m, b, 1, 1, -1, 1, 1, 1, 1, 1, True)", r"padding must be non-negative"),
    "dilation-0": ("op(x, w, off, m, b, 1, 1, 1, 1, 0, 1, 1, 1, True)", r"dilation must be positive"),
    "weight-groups-0": ("op(x, w, off, m, b, 1, 1, 1, 1, 1, 1, 0, 1, True)", r"groups .* must be\s+positive"),
    "offset-groups-0": ("op(x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 0, True)", r"groups .* must be\s+positive"),
    "groups-mismatch": ("op(x, w, off, m, b, 1, 1, 1, 1, 1, 1, 3, 1, True)", r"weight.shape\[1\] \* groups must equal"),
    "kernel-too-large": ("deform_conv2d(torch.rand(2, 4, 2, 2), torch.rand(2, 18, 1, 1), w, b)", r"larger than the padded input"),
    "kernel-too-large-stride": ("op(torch.rand(2, 4, 1, 1), w, torch.rand(2, 18, 1, 1), m, b, 3, 3, 0, 0, 1, 1, 1, 1, False)",
                                r"larger than the padded input"),
    "offset-spatial": ("deform_conv2d(x, off[:, :, :5], w, b, padding=1, mask=m)", r"offset.shape\[2:\] must be the output size"),
    "offset-batch": ("deform_conv2d(x, off[:1], w, b, padding=1, mask=m)", r"offset.shape\[0\] must be the batch size"),
    "offset-channels": ("op(x, w, off[:, :10], m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)", r"offset.shape\[1\] is not valid"),
    "mask-batch": ("deform_conv2d(x, off, w, b, padding=1, mask=m[:1])", r"mask.shape\[0\] must be the batch size"),
    "mask-spatial": ("deform_conv2d(x, off, w, b, padding=1, mask=m[..., :4])", r"mask.shape\[2:\] must be the output size"),
    "huge-padding": ("op(x, w, off, m, b, 1, 1, 2**40, 1, 1, 1, 1, 1, True)", r"larger than 2\^31 - 1"),
    "backward-grad-out-shape": ("torch.ops.torchvision._deform_conv2d_backward(torch.rand(2, 5, 5, 6), x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                                r"expected grad_out of shape \(2, 5, 6, 6\)"),
    "backward-grad-out-dtype": ("torch.ops.torchvision._deform_conv2d_backward(torch.rand(2, 5, 6, 6).double(), x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                                r"expected grad_out to be a CPU tensor of the input's dtype \(Float\), got Double"),
    "out-channels-not-divisible": ("op(x, torch.rand(5, 2, 3, 3), off, m, b, 1, 1, 1, 1, 1, 1, 2, 1, True)",
                                   r"weight.shape\[0\] \(5\) must be divisible by groups \(2\)"),
    "in-channels-not-divisible": ("op(x, w, torch.rand(2, 54, 6, 6), torch.rand(2, 27, 6, 6), b, 1, 1, 1, 1, 1, 1, 1, 3, True)",
                                  r"input.shape\[1\] \(4\) must be divisible by offset_groups \(3\)"),
    # The width (second) operand of each check on a pair, the height one valid (the cases above
    # make the first operand fail): each operand is its own test.
    "stride-w-0": ("op(x, w, off, m, b, 1, 0, 1, 1, 1, 1, 1, 1, True)", r"stride must be positive, got \(1, 0\)"),
    "padding-w-negative": ("op(x, w, off, m, b, 1, 1, 1, -1, 1, 1, 1, 1, True)", r"padding must be non-negative, got \(1, -1\)"),
    "dilation-w-0": ("op(x, w, off, m, b, 1, 1, 1, 1, 1, 0, 1, 1, True)", r"dilation must be positive, got \(1, 0\)"),
    "kernel-h-0": ("op(x, torch.rand(5, 4, 0, 3), off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)", r"a 0 x 3 kernel"),
    "kernel-w-0": ("op(x, torch.rand(5, 4, 3, 0), off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)", r"a 3 x 0 kernel"),
    "huge-padding-w": ("op(x, w, off, m, b, 1, 1, 1, 2**40, 1, 1, 1, 1, True)", r"larger than 2\^31 - 1"),
    "huge-dilation-h": ("op(x, w, off, m, b, 1, 1, 1, 1, 2**40, 1, 1, 1, True)", r"larger than 2\^31 - 1"),
    "huge-dilation-w": ("op(x, w, off, m, b, 1, 1, 1, 1, 1, 2**40, 1, 1, True)", r"larger than 2\^31 - 1"),
    "huge-dilated-kernel-h": ("op(x, w, off, m, b, 1, 1, 1, 1, 2**30, 1, 1, 1, True)", r"larger than 2\^31 - 1"),
    "huge-dilated-kernel-w": ("op(x, w, off, m, b, 1, 1, 1, 1, 1, 2**30, 1, 1, True)", r"larger than 2\^31 - 1"),
    "kernel-too-wide": ("op(torch.rand(2, 4, 6, 2), w, off, m, b, 1, 1, 0, 0, 1, 1, 1, 1, True)",
                        r"dilated kernel \(3 x 3\) is larger than the padded input \(6 x 2\)"),
    "offset-width": ("op(x, w, off[..., :5], m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)", r"offset.shape\[2:\] must be the output size"),
    "mask-channels": ("op(x, w, off, m[:, :5], b, 1, 1, 1, 1, 1, 1, 1, 1, True)", r"mask.shape\[1\] is not valid"),
    "mask-height": ("op(x, w, off, m[:, :, :4], b, 1, 1, 1, 1, 1, 1, 1, 1, True)", r"mask.shape\[2:\] must be the output size"),
    # A padding below 2^31 whose padded input is not.
    "huge-padded-h": ("op(x, w, off, m, b, 1, 1, 2**30, 1, 1, 1, 1, 1, True)", r"larger than 2\^31 - 1"),
    "huge-padded-w": ("op(x, w, off, m, b, 1, 1, 1, 2**30, 1, 1, 1, 1, True)", r"larger than 2\^31 - 1"),
    # Each size of grad_out in the backward, and its device.
    "backward-grad-out-3d": (f"{BACKWARD}(torch.rand(5, 6, 6), x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                             r"expected grad_out of shape \(2, 5, 6, 6\)"),
    "backward-grad-out-batch": (f"{BACKWARD}(torch.rand(1, 5, 6, 6), x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                                r"expected grad_out of shape \(2, 5, 6, 6\)"),
    "backward-grad-out-channels": (f"{BACKWARD}(torch.rand(2, 4, 6, 6), x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                                   r"expected grad_out of shape \(2, 5, 6, 6\)"),
    "backward-grad-out-width": (f"{BACKWARD}(torch.rand(2, 5, 6, 5), x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                                r"expected grad_out of shape \(2, 5, 6, 6\)"),
    # A tensor on another device reaches the CPU kernel only when a caller dispatches to it
    # directly (the dispatcher would pick that device's kernel): redispatch to the CPU key.
    "weight-meta": ("op.default.redispatch(CPU, x, w.to('meta'), off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)",
                    r"expected weight to be a CPU tensor"),
    "backward-grad-out-meta": (f"{BACKWARD}.default.redispatch(CPU, torch.rand(2, 5, 6, 6, device='meta'), x, w, off, m, b, "
                               "1, 1, 1, 1, 1, 1, 1, 1, True)", r"expected grad_out to be a CPU tensor"),
}


def _invalid(name: str, variant: str) -> dict:
    r = run_snippet(variant, SETUP.format(body="    " + INVALID[name][0]))
    assert r.returncode == 0, f"{variant}, instead of raising: {describe_failure(r.returncode, r.stderr)}"
    return json.loads(r.stdout.strip().splitlines()[-1])


# Under the drop-in (tvdcn.dropin: stock torchvision with its CPU kernels routed to the series'),
# torchvision's own Python wrapper still runs first, and for a few arguments fails there, before
# any kernel, with its own error (e.g. input-3d: "not enough values to unpack"). The drop-in
# cannot change that; such a case must then raise exactly what stock torchvision raises.
DROPIN = variant.parse(PATCHED)
# The drop-in routes torchvision's CPU entry to its own op through the dispatcher, so a redispatch
# to the CPU key with a meta tensor lands on that op's Meta key, which has no kernel: the
# dispatcher's own error, naming the op, instead of the kernel's device check.
REDISPATCHED = {"weight-meta", "backward-grad-out-meta"}
DROPIN_META = r"tvdcn_fast::\w+: attempted to run this operator with Meta tensors"


@pytest.mark.parametrize("name", INVALID)
def test_invalid_argument_raises_clear_error(name):
    body, pattern = INVALID[name]
    res = _invalid(name, PATCHED)
    clear = res["raised"] in ("RuntimeError", "ValueError") and re.search(pattern, res["message"])
    if isinstance(DROPIN, variant.Stock) and DROPIN.fast and name in REDISPATCHED:
        SUMMARY["invalid arguments (cases)"]["raised (drop-in: no Meta kernel)"] += 1
        assert res["raised"] == "NotImplementedError" and re.search(DROPIN_META, res["message"]), res
        return
    if isinstance(DROPIN, variant.Stock) and DROPIN.fast and not clear:
        stock = _invalid(name, BASELINE)
        SUMMARY["invalid arguments stopped by stock torchvision's Python wrapper (unchanged)"][name] += 1
        assert res == stock, f"the drop-in changed what torchvision's wrapper raises: {res} vs {stock}"
        return
    SUMMARY["invalid arguments (cases)"]["raised" if res["raised"] else "did not raise"] += 1
    assert res["raised"] in ("RuntimeError", "ValueError"), res
    assert re.search(pattern, res["message"]), f"unclear message: {res['message']!r}"


VALID_EMPTY = {
    "batch-0": ("deform_conv2d(x[:0], off[:0], w, b, padding=1, mask=m[:0])", [0, 5, 6, 6]),
    "out-channels-0": ("deform_conv2d(x, off, w[:0], b[:0], padding=1, mask=m)", [2, 0, 6, 6]),
}


EMPTY_CODE = """
import json
from torchvision.ops import deform_conv2d
x = torch.rand(2, 4, 6, 6); w = torch.rand(5, 4, 3, 3); off = torch.rand(2, 18, 6, 6); m = torch.rand(2, 9, 6, 6)
b = torch.rand(5)
for t_ in (x, w, off, m, b):
    t_.requires_grad_()
y = {expr}
y.sum().backward()
print(json.dumps({{"shape": list(y.shape), "grads_ok": all(t_.grad is not None and t_.grad.shape == t_.shape
                                                           for t_ in (x, w, off, m, b))}}))
"""


@pytest.mark.parametrize("name", VALID_EMPTY)
def test_valid_empty_shapes_work_forward_and_backward(name):
    expr, shape = VALID_EMPTY[name]
    r = run_snippet(PATCHED, EMPTY_CODE.format(expr=expr))
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res == {"shape": shape, "grads_ok": True}, res
