"""The drop-in wheel's manylinux tag, and the check that its library keeps within it.

The wheel is tagged ``cp310-abi3-manylinux_2_28_<arch>`` the way torchvision's and torchaudio's
wheels are: it links PyTorch's libraries without bundling them (the wheel requires ``torch``,
whose own wheels are manylinux_2_28), and everything else it needs must be what the tag lets a
wheel assume of the system: the libraries and symbol versions of auditwheel's manylinux_2_28
policy (copied below from auditwheel 6.8.2's ``policy/manylinux-policy.json``; ``auditwheel
repair`` itself would graft libtorch into the wheel, which must not happen).

``audit(path)`` reads the shared object's dynamic section and version needs with ``readelf``
(binutils; it reads an ELF of any architecture) and returns the problems found, none when the
library fits the tag.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
import zipfile
from pathlib import Path

TAG = "manylinux_2_28"
# The libraries of PyTorch's own wheels (torch/lib), which the wheel's requirement on torch brings.
TORCH_LIBS = {"libc10.so", "libtorch.so", "libtorch_cpu.so"}
# auditwheel 6.8.2, manylinux_2_28: lib_whitelist, and the newest symbol version per namespace
# (the same for x86_64 and aarch64, but for GLIBC's oldest and FLOAT128, which x86_64 alone has).
SYSTEM_LIBS = {"libatomic.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libmvec.so.1", "libanl.so.1",
               "libdl.so.2", "librt.so.1", "libc.so.6", "libnsl.so.1", "libutil.so.1", "libpthread.so.0",
               "libX11.so.6", "libXext.so.6", "libXrender.so.1", "libICE.so.6", "libSM.so.6", "libGL.so.1",
               "libgobject-2.0.so.0", "libgthread-2.0.so.0", "libglib-2.0.so.0", "libresolv.so.2", "libexpat.so.1",
               "libz.so.1"}
NEWEST = {"GLIBC": "2.28", "GLIBCXX": "3.4.24", "CXXABI": "1.3.11", "GCC": "7.0.0", "LIBATOMIC": "1.2",
          "ZLIB": "1.2.9"}
EXTRA = {"CXXABI": {"TM_1", "FLOAT128"}}  # non-numeric versions in the policy
# The dynamic loader, which every executable of the architecture names (not a library a wheel adds).
LOADERS = {"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def _numbers(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def version_needs(path: Path) -> dict[str, list[str]]:
    """library -> the symbol versions the object needs from it (``readelf -V``'s version needs)."""
    out = subprocess.run(["readelf", "-V", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    needs: dict[str, list[str]] = {}
    current = None
    section = out.split("Version needs section", 1)
    for line in (section[1] if len(section) == 2 else "").splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            needs[current] = []
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and current is not None:
            needs[current].append(m.group(1))
    return needs


def audit(path: Path) -> list[str]:
    """What keeps the shared object at ``path`` from the manylinux_2_28 tag (empty: it fits)."""
    problems = []
    for lib in needed(path):
        if lib not in TORCH_LIBS | SYSTEM_LIBS | LOADERS:
            problems.append(f"needs {lib}, neither PyTorch's nor a {TAG} system library")
    for lib, versions in version_needs(path).items():
        for v in versions:
            ns, _, num = v.partition("_")
            if lib in TORCH_LIBS:
                continue
            if ns not in NEWEST:
                problems.append(f"needs {v} from {lib}: a namespace {TAG} does not allow")
            elif num in EXTRA.get(ns, ()):
                continue
            elif not re.fullmatch(r"[0-9.]+", num) or _numbers(num) > _numbers(NEWEST[ns]):
                problems.append(f"needs {v} from {lib}: newer than {TAG}'s {ns}_{NEWEST[ns]}")
    return problems


def arch_of(path: Path) -> str:
    out = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout
    machine = re.search(r"Machine:\s+(.*)", out).group(1)  # type: ignore[union-attr]
    return {"Advanced Micro Devices X86-64": "x86_64", "AArch64": "aarch64"}.get(machine.strip(), machine.strip())


def audit_wheel(wheel: Path) -> dict:
    """Every shared object in ``wheel``: its architecture, what it needs, and the problems found."""
    report: dict = {"wheel": wheel.name, "libraries": {}}
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory(prefix="tvdcn-audit-") as tmp:
        for name in z.namelist():
            if name.endswith(".so") or ".so." in name:
                path = Path(z.extract(name, tmp))
                report["libraries"][name] = {"arch": arch_of(path), "needed": needed(path),
                                             "version_needs": version_needs(path), "problems": audit(path)}
    return report
