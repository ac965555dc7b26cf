"""The drop-in wheels carry a manylinux_2_28 tag and keep within it (tvdcn.manylinux): their library
links PyTorch's libraries without bundling them, and needs nothing else beyond the system libraries
and the glibc / libstdc++ symbol versions manylinux_2_28 allows. Checks every wheel built in this
work directory (x86-64: `python -m tvdcn dropin build`; aarch64: `python -m tvdcn aarch64`).

Select with ``-m manylinux``.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tvdcn import manylinux, variant
from tvdcn.log import Failure

pytestmark = pytest.mark.manylinux


def _wheel(arch: str) -> Path:
    try:
        return Path(variant.dropin_wheel(arch)["wheel"])
    except Failure as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_wheel_is_tagged_manylinux_2_28_and_fits_it(arch):
    wheel = _wheel(arch)
    assert wheel.name.endswith(f"-cp310-abi3-manylinux_2_28_{arch}.whl"), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        tags = [ln for ln in z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode().splitlines()
                if ln.startswith("Tag:")]
    assert tags == [f"Tag: cp310-abi3-manylinux_2_28_{arch}"], tags
    libs = [n for n in names if n.endswith(".so") or ".so." in n]
    assert libs == ["tvdcn_fast/_C.so"], libs  # PyTorch's libraries are not bundled
    report = manylinux.audit_wheel(wheel)["libraries"]["tvdcn_fast/_C.so"]
    assert report["arch"] == arch
    assert set(report["needed"]) & manylinux.TORCH_LIBS, report["needed"]
    assert report["problems"] == [], report


def test_audit_names_what_a_newer_glibc_would_need(tmp_path):
    # The check itself: a library reading glibc 2.32's __libc_single_threaded (what libstdc++'s
    # headers do on a newer glibc without dropin/flags.py's redirection) is refused.
    src = tmp_path / "t.c"
    src.write_text("#include <sys/single_threaded.h>\nint f(void) { return __libc_single_threaded; }\n")
    lib = tmp_path / "libt.so"
    import subprocess

    r = subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(lib)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no compiler or glibc < 2.32 here: {r.stderr[-300:]}")
    assert manylinux.audit(lib) == ["needs GLIBC_2.32 from libc.so.6: newer than manylinux_2_28's GLIBC_2.28"]
