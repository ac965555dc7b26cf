"""The kernel file is stable-ABI only: it compiles on its own with upstream main's flag
``-DTORCH_TARGET_VERSION=0x020b000000000000`` (torch 2.11), under which ``<ATen/ATen.h>`` and
``<torch/library.h>`` refuse to compile. Upstream's 0.21.0 file is the control: it must fail.
And the helpers of ``StableABICompat.h`` it calls have the signatures of main's helpers of the
same names, so that the series applies onto main's own port (``apply --skip 1``) with its calls
meaning the same there.
"""
from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch.utils.cpp_extension as cpp

from conftest import PATCHED, SUMMARY
from tvdcn import paths, series

pytestmark = [pytest.mark.prefix, pytest.mark.fast, pytest.mark.pr]

KERNEL = Path("torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp")
# The function types of the helpers main's StableABICompat.h and its stable ports define (read
# from main through the search tool, 2026-12-01): mm_out takes the output last, as the schema does.
MAIN_HELPERS = {
    "mm_out": "void (*)(const Tensor&, const Tensor&, Tensor&)",
    "addmm_": "Tensor (*)(const Tensor&, const Tensor&, const Tensor&, double, double)",
}
TARGET = "-DTORCH_TARGET_VERSION=0x020b000000000000"


def compile_alone(src: Path, out: Path) -> subprocess.CompletedProcess:
    includes = [f"-I{p}" for p in cpp.include_paths()] + [f"-I{sysconfig.get_paths()['include']}"]
    cmd = ["c++", "-std=c++17", "-fPIC", "-O1", "-Wall", "-Werror", TARGET, *includes, "-c", str(src), "-o", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_kernel_compiles_with_stable_abi_target(tmp_path):
    # Every prefix too: the port comes first, and every later patch stays stable-ABI only.
    r = compile_alone(paths.BUILDS / PATCHED / KERNEL, tmp_path / "k.o")
    SUMMARY["stable-ABI compile (TORCH_TARGET_VERSION=2.11)"]["ok" if r.returncode == 0 else "failed"] += 1
    assert r.returncode == 0, r.stderr[-4000:]
    assert (tmp_path / "k.o").stat().st_size > 0


def test_upstream_kernel_does_not_compile_with_stable_abi_target(tmp_path):
    # Control: the flag really excludes ATen (else the test above proves nothing). Upstream's own
    # file, whatever the baseline variant is (a prefix of the series already has the port).
    src = tmp_path / KERNEL.name
    src.write_text(series.git("show", f"pristine:{KERNEL}"))
    r = compile_alone(src, tmp_path / "k.o")
    assert r.returncode != 0
    assert "should not be included when either TORCH_STABLE_ONLY or TORCH_TARGET_VERSION" in r.stderr, r.stderr[-2000:]


def test_helpers_have_mains_signatures(tmp_path):
    header = paths.BUILDS / PATCHED / paths.COMPAT
    present = [name for name in MAIN_HELPERS if re.search(rf"\b{name}\(", header.read_text())]
    assert "addmm_" in present  # from the port on
    checks = "".join(
        f"static_assert(std::is_same_v<decltype(&vision::ops::stable_helpers::{name}), {MAIN_HELPERS[name]}>, "
        f"\"{name} differs from main's\");\n" for name in present)
    src = tmp_path / "helpers.cpp"
    src.write_text(f'#include "{header}"\n#include <type_traits>\nusing torch::stable::Tensor;\n{checks}')
    r = compile_alone(src, tmp_path / "h.o")
    assert r.returncode == 0, r.stderr[-4000:]
