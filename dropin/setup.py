"""Build of the tvdcn-fast wheel. Run by ``python -m tvdcn dropin build`` on a staged copy of this
directory to which the kernel file and StableABICompat.h of the patched tree have been added.

One binary for every torch >= 2.11 and every CPython >= 3.10: the kernel uses only the libtorch
stable ABI (compiled with TORCH_TARGET_VERSION = torch 2.11) and no Python C API (py_limited_api,
no torch_python), and is loaded with torch.ops.load_library.

Environment:
  TVDCN_FAST_VERSION   the version (required)
  TVDCN_FAST_PLAT      the platform tag, e.g. manylinux_2_28_x86_64 (default: the build machine's);
                       the library links only libtorch's libraries (not bundled: the wheel requires
                       torch) and glibc/libstdc++ within that tag (tvdcn.manylinux checks it)
  TVDCN_FAST_PREBUILT  a compiled _C.so to package instead of compiling here (tvdcn.aarch64
                       cross-compiles one with flags.py's flags)
"""
import os
import shutil

from setuptools import Distribution, setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

from flags import CXX_FLAGS, SOURCES

PREBUILT = os.environ.get("TVDCN_FAST_PREBUILT")


class BinaryDistribution(Distribution):
    """A prebuilt library is still a platform wheel (abi3), never a pure one."""

    def has_ext_modules(self):
        return True


if PREBUILT:
    shutil.copy2(PREBUILT, os.path.join("tvdcn_fast", "_C.so"))
    build = dict(package_data={"tvdcn_fast": ["_C.so"]}, distclass=BinaryDistribution)
else:
    build = dict(
        ext_modules=[CppExtension("tvdcn_fast._C", SOURCES, extra_compile_args={"cxx": CXX_FLAGS},
                                  py_limited_api=True)],  # torchvision's own flags, plus flags.py's
        cmdclass={"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)},
    )
wheel_options = {"py_limited_api": "cp310"}
if os.environ.get("TVDCN_FAST_PLAT"):
    wheel_options["plat_name"] = os.environ["TVDCN_FAST_PLAT"]

setup(
    name="tvdcn-fast",
    version=os.environ["TVDCN_FAST_VERSION"],
    description="Faster, hardened CPU kernels for torchvision.ops.deform_conv2d, for any torchvision "
                "built on torch >= 2.11",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    packages=["tvdcn_fast"],
    options={"bdist_wheel": wheel_options},
    python_requires=">=3.10",
    install_requires=["torch>=2.11"],
    **build,
)
