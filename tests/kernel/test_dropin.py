"""The drop-in wheel (tvdcn-fast, see tvdcn.dropin and dropin/) on stock torch/torchvision releases.

Run as part of the suite, this file builds the wheel and, for the stacks ``--stacks`` names (by
default the newest, torchvision 0.29.1 with torch 2.14.1; ``all`` adds 0.26 with torch 2.11 and 0.28
with 2.13), runs the suite's checks that apply to a stock
torchvision, in a fresh virtual environment with the wheel pip-installed into it:
``python -m tvdcn dropin test STACK``. That command runs this file too, with the stack as the
variants under test (``--baseline tv0.26 --patched tv0.26+fast``); then the checks below
are the drop-in's own: routing, switching back, the schema check, the wheel's tags.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

from conftest import BASELINE, PATCHED, STACKS, SUMMARY
from tvdcn import paths, variant
from tvdcn.isolate import describe_failure, run_snippet

pytestmark = [pytest.mark.dropin]

STACK = variant.parse(PATCHED)
ON_STACK = isinstance(STACK, variant.Stock) and STACK.fast and BASELINE == STACK.stack.name
needs_stack = pytest.mark.skipif(not ON_STACK, reason="run by `python -m tvdcn dropin test STACK`")


# --- from the suite: one run of the stack checks per stack ---------------------------------------

@pytest.mark.slow  # 11-15 minutes per stack on 2 cores
@pytest.mark.skipif(ON_STACK or isinstance(STACK, variant.Stock) or PATCHED != "patched",
                    reason="the drop-in is built from the whole series (variant patched)")
@pytest.mark.parametrize("stack", STACKS)
def test_wheel_passes_the_checks_on_stock_stack(stack):
    r = subprocess.run([sys.executable, "-m", "tvdcn", "dropin", "test", stack], cwd=paths.REPO,
                       capture_output=True, text=True, timeout=3600)
    tail = (r.stdout + r.stderr)[-6000:]
    SUMMARY["drop-in wheel on stock stacks"]["passed" if r.returncode == 0 else "failed"] += 1
    print(tail)
    assert r.returncode == 0, tail


# --- inside a stack run ----------------------------------------------------------------------------

@needs_stack
def test_wheel_is_one_binary_for_every_python_and_torch():
    wheel = variant.dropin_wheel(STACK.stack.arch)["wheel"]
    assert wheel.endswith(f"-cp310-abi3-manylinux_2_28_{STACK.stack.arch}.whl"), wheel
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: torch>=2.11" in meta.splitlines()


@needs_stack
def test_import_routes_both_ops_and_disable_restores_torchvision():
    # bfloat16 tells the kernels apart: torchvision's CPU kernels do not implement it, ours do
    # (computed in float32).
    code = textwrap.dedent("""
        import json, torch, torchvision
        from torchvision.ops import deform_conv2d
        import tvdcn_fast
        x, w, off, m = torch.rand(1, 2, 5, 5), torch.rand(3, 2, 3, 3), torch.rand(1, 18, 5, 5), torch.rand(1, 9, 5, 5)
        x, w, off, m = (t.bfloat16() for t in (x, w, off, m))
        def forward():
            try:
                return str(deform_conv2d(x, off, w, padding=1, mask=m).dtype)
            except Exception:
                return "raises"
        def backward():
            try:
                g = torch.ops.torchvision._deform_conv2d_backward(torch.ones(1, 3, 5, 5, dtype=x.dtype), x, w, off, m,
                                                                  torch.zeros(3, dtype=x.dtype), 1, 1, 1, 1, 1, 1, 1, 1, True)
                return str(g[1].dtype)
            except Exception:
                return "raises"
        res = {"enabled_on_import": tvdcn_fast.is_enabled(), "fwd": forward(), "bwd": backward()}
        tvdcn_fast.disable()
        res.update(enabled_after_disable=tvdcn_fast.is_enabled(), fwd_stock=forward(), bwd_stock=backward())
        tvdcn_fast.enable(); tvdcn_fast.enable()  # idempotent
        res.update(fwd_again=forward(), bwd_again=backward())
        print(json.dumps(res))
    """)
    r = run_snippet(PATCHED, code)
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res == {"enabled_on_import": True, "fwd": "torch.bfloat16", "bwd": "torch.bfloat16",
                   "enabled_after_disable": False, "fwd_stock": "raises", "bwd_stock": "raises",
                   "fwd_again": "torch.bfloat16", "bwd_again": "torch.bfloat16"}, res
    assert "Overriding a previously registered kernel" not in r.stderr, r.stderr[-2000:]


@needs_stack
def test_env_var_imports_without_routing():
    r = run_snippet(PATCHED, "import json, tvdcn_fast\nprint(json.dumps(tvdcn_fast.is_enabled()))",
                    extra_env={"TVDCN_FAST_DISABLE": "1"})
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    assert r.stdout.strip().splitlines()[-1] == "false"


# A torchvision whose ops have other schemas (torchvision < 0.8's deform_conv2d had no mask):
# a stand-in package that declares them so, first on the path.
OLD_TORCHVISION = '''
import torch
__version__ = "0.7.0-standin"
_lib = torch.library.Library("torchvision", "DEF")
_lib.define("deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor bias, int stride_h, int stride_w, "
            "int pad_h, int pad_w, int dilation_h, int dilation_w, int groups, int offset_groups) -> Tensor")
_lib.define("_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor bias, "
            "int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, int groups, "
            "int offset_groups) -> (Tensor, Tensor, Tensor, Tensor)")
'''


@needs_stack
def test_schema_mismatch_is_a_clear_error_and_routes_nothing(tmp_path):
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "__init__.py").write_text(OLD_TORCHVISION)
    code = textwrap.dedent("""
        import json, sys, torch
        try:
            import tvdcn_fast
            res = {"raised": None}
        except Exception as e:
            res = {"raised": type(e).__name__, "message": str(e)}
        res["cpu_kernel"] = torch._C._dispatch_has_kernel_for_dispatch_key("torchvision::deform_conv2d", "CPU")
        print(json.dumps(res))
    """)
    r = run_snippet(PATCHED, code, extra_env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{paths.REPO}", "TVDCN_DROPIN": "0"})
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["raised"] == "SchemaMismatch", res
    assert "0.7.0-standin declares torchvision::deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor bias" \
        in res["message"], res
    assert "nothing was routed" in res["message"]
    assert res["cpu_kernel"] is False, res


@needs_stack
def test_stack_is_the_one_asked_for():
    stack = STACK.stack
    r = run_snippet(BASELINE, "import json, platform, torch, torchvision, importlib.metadata as m\n"
                              "print(json.dumps([torch.__version__, torchvision.__version__, m.version('tvdcn-fast'), "
                              "platform.machine()]))")
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    torch_v, tv_v, fast_v, machine = json.loads(r.stdout.strip().splitlines()[-1])
    assert machine == stack.arch, machine
    assert torch_v.split("+")[0] == stack.torch and tv_v.split("+")[0] == stack.torchvision, (torch_v, tv_v)
    assert fast_v == variant.dropin_wheel(stack.arch)["version"]
