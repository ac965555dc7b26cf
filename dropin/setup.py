"""Build of the tvdcn-fast wheel. Run by ``python -m tvdcn dropin build`` on a staged copy of this
directory to which the kernel file and StableABICompat.h of the patched tree have been added.

One binary for every torch >= 2.11 and every CPython >= 3.10: the kernel uses only the libtorch
stable ABI (compiled with TORCH_TARGET_VERSION = torch 2.11) and no Python C API (py_limited_api,
no torch_python), and is loaded with torch.ops.load_library.
"""
import os

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

TARGET = "-DTORCH_TARGET_VERSION=0x020b000000000000"  # torch 2.11, the oldest torch it runs with

setup(
    name="tvdcn-fast",
    version=os.environ["TVDCN_FAST_VERSION"],
    description="Faster, hardened CPU kernels for torchvision.ops.deform_conv2d, for any torchvision "
                "built on torch >= 2.11",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    packages=["tvdcn_fast"],
    ext_modules=[
        CppExtension(
            "tvdcn_fast._C",
            ["csrc/ops/cpu/deform_conv2d_kernel.cpp", "csrc/register.cpp"],
            extra_compile_args={"cxx": ["-g0", TARGET]},  # torchvision's own flags, plus the target
            py_limited_api=True,
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
    python_requires=">=3.10",
    install_requires=["torch>=2.11"],
)
