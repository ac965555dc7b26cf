"""The kernel file is stable-ABI only: it compiles on its own with upstream main's flag
``-DTORCH_TARGET_VERSION=0x020b000000000000`` (torch 2.11), under which ``<ATen/ATen.h>`` and
``<torch/library.h>`` refuse to compile. Upstream's 0.21.0 file is the control: it must fail.
"""
from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch.utils.cpp_extension as cpp

from conftest import PATCHED, SUMMARY
from tvdcn import paths, series

pytestmark = [pytest.mark.prefix, pytest.mark.fast, pytest.mark.pr]

KERNEL = Path("torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp")
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
