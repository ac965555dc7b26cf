"""The compiler flags of the tvdcn-fast library, beyond Python's own CFLAGS and torch's extension
defines: read by setup.py (the native build) and by tvdcn.aarch64 (the cross-compiled aarch64
build), so both architectures compile the kernel alike.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CXX_FLAGS = [
    "-g0",
    # The libtorch stable ABI of torch 2.11, the oldest torch the wheel runs with.
    "-DTORCH_TARGET_VERSION=0x020b000000000000",
    # No contraction of a*b+c into a fused multiply-add. x86-64's baseline ISA has no FMA, so gcc
    # never contracts there (the x86-64 code is the same with and without this flag), but aarch64
    # gcc contracts by default, which rounds differently (docs/reference.md, "aarch64").
    "-ffp-contract=off",
    # Within manylinux_2_28's glibc when built on a newer one (csrc/glibc_compat.h).
    "-include", os.path.join(HERE, "csrc", "glibc_compat.h"),
]
SOURCES = ["csrc/ops/cpu/deform_conv2d_kernel.cpp", "csrc/register.cpp", "csrc/glibc_compat.cpp"]
