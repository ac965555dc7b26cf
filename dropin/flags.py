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
    # Contract a*b+c into fused multiply-adds where gcc may, as torchvision's own release builds do
    # (gcc's default for C++; said here so no compiler or default changes it). x86-64's baseline
    # ISA has no FMA: the code there is the same with =off. On aarch64 it is what makes the
    # gradients bit-identical to torchvision 0.29.1's aarch64 kernel; with =off every gradient
    # differs from it (results/2026-11-30/aarch64-fp-contract.txt, docs/reference.md).
    "-ffp-contract=fast",
    # Within manylinux_2_28's glibc when built on a newer one (csrc/glibc_compat.h).
    "-include", os.path.join(HERE, "csrc", "glibc_compat.h"),
]
SOURCES = ["csrc/ops/cpu/deform_conv2d_kernel.cpp", "csrc/register.cpp", "csrc/glibc_compat.cpp"]
