"""The drop-in wheel (``tvdcn-fast``) and the stock torch/torchvision stacks it is tested with.

The wheel is built from ``dropin/`` plus two files of the *patched* variant's tree, copied at build
time (no copy is kept in the repository): the kernel file, with its one registration line moved
from the ``torchvision`` namespace to ``tvdcn_fast``, and ``StableABICompat.h``. It is compiled
against the stable ABI of torch 2.11 and uses no Python C API, so one wheel serves every
torch >= 2.11 and every CPython >= 3.10 on a platform.

A *stack* is a pair of stock PyPI releases, ``torch`` and the ``torchvision`` built for it. Its
packages are installed once into a base environment in the shared cache
(``$TVDCN_CACHE/stacks``); every test run then makes a fresh virtual environment that sees the
base's packages (a ``.pth`` file) and installs the wheel into it with pip, as a user would. The
stack is then two variants for the suite (see tvdcn.variant): ``tv0.26`` (torchvision's own
kernels) and ``tv0.26+fast`` (the same process after ``import tvdcn_fast``).

A stack of another architecture (``aarch64-tv0.29``) lives inside an emulated Debian root
(tvdcn.aarch64): its base environment is installed there, its fresh environment sits at the same
path inside and outside the root, and its interpreter is a script that runs the root's Python
under qemu-user. The suite takes it as variants like any other.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .log import Failure, info

KERNEL = Path("torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp")
COMPAT = Path("torchvision/csrc/ops/StableABICompat.h")
REGISTRATION = "STABLE_TORCH_LIBRARY_IMPL(torchvision, CPU, m)"
SOURCE = paths.REPO / "dropin"
WORK = paths.WORK / "dropin"
DIST = paths.DIST / "dropin"
STACK_ENVS = paths.WORK / "stacks"          # fresh per run: a venv + .pth to the cached base + the wheel
STACK_BASES = paths.CACHE / "stacks"        # cached: torch + torchvision (+ pytest, numpy) from PyPI
BUILDER_VERSION = 2
HOST_ARCH = platform.machine()


@dataclass(frozen=True)
class Stack:
    name: str
    torch: str
    torchvision: str
    python: str = "3.11"
    # Results whose rounding this torchvision's own kernel changed from upstream 0.21 (which the
    # drop-in keeps, bar the series' declared changes): name -> what was measured. The suite
    # compares these with the drop-in's within twice the reference tolerance instead of by bits.
    differs: tuple[tuple[str, str], ...] = ()
    arch: str = HOST_ARCH

    @property
    def emulated(self) -> bool:
        return self.arch != HOST_ARCH

    @property
    def base(self) -> Path:
        """The base environment, as the stack's own Python sees it: inside the root when emulated
        (tvdcn.aarch64.host_path gives the path here)."""
        name = f"torch{self.torch}-tv{self.torchvision}-py{self.python}"
        return Path("/opt/tvdcn/stacks") / name if self.emulated else STACK_BASES / name

    @property
    def env(self) -> Path:
        return STACK_ENVS / self.name

    @property
    def interpreter(self) -> Path:
        # Emulated: a script that runs the environment's Python inside the root (tvdcn.aarch64).
        return self.env / ("host-python" if self.emulated else "bin/python")

    def run(self) -> list[str]:
        """What to put before a command (paths as inside the root) to run it in the stack's system."""
        if not self.emulated:
            return []
        from . import aarch64

        return [str(aarch64.runner())]


TV029_GRAD_WEIGHT = (
    "grad_weight", "torchvision 0.29's stable-ABI kernel sums grad_weight over blocks of 32 images in another "
                   "order: it differs from 0.21's (and 0.26's, 0.28's) by up to 1.7e-7 of its magnitude, only "
                   "for batches above 32")

# The releases people run: each torchvision with the torch its wheel requires. 0.26 and 0.28 ship
# the legacy ATen extension (_C.so), 0.29 only the stable-ABI one (_C_stable.so).
STACKS = {s.name: s for s in (
    Stack("tv0.26", "2.11.0", "0.26.0"),
    Stack("tv0.28", "2.13.0", "0.28.0"),
    Stack("tv0.29", "2.14.1", "0.29.1", differs=(TV029_GRAD_WEIGHT,)),
)}
# Stacks of another architecture, run under emulation by `python -m tvdcn aarch64` (tvdcn.aarch64)
# rather than by `dropin test`: Debian 12's Python 3.11 in an arm64 root, PyPI's aarch64 wheels.
EMULATED = {s.name: s for s in (
    Stack("aarch64-tv0.29", "2.14.1", "0.29.1", arch="aarch64", differs=(
        (TV029_GRAD_WEIGHT[0], TV029_GRAD_WEIGHT[1] + "; and with this torch's BLAS (NVPL), the weight GEMM "
                                                      "in channel tiles (patch 0026, layers whose columns exceed "
                                                      "32 MiB) rounds otherwise than the whole GEMM, seen at batch "
                                                      "8, 96 channels, 64x64 (results/2026-11-30/"
                                                      "aarch64-fp-contract.txt)"),)),
)}
FAST_SUFFIX = "+fast"


def parse_variant(name: str) -> tuple[Stack, bool] | None:
    """``tv0.26`` -> (stack, False); ``tv0.26+fast`` -> (stack, True); anything else -> None."""
    base = name.removesuffix(FAST_SUFFIX)
    stacks = {**STACKS, **EMULATED}
    if base not in stacks:
        return None
    return stacks[base], name != base


def _sha(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def stage(tree: Path, dest: Path) -> None:
    """Copy dropin/ and the patched tree's kernel sources to ``dest``, registration renamed."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(SOURCE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    text = (tree / KERNEL).read_text()
    if text.count(REGISTRATION) != 1:
        raise Failure(f"{tree / KERNEL}: expected exactly one '{REGISTRATION}' line to rename; the kernel "
                      f"file's registration changed, update tvdcn/dropin.py")
    kernel = dest / "csrc" / "ops" / "cpu" / KERNEL.name
    kernel.parent.mkdir(parents=True)
    kernel.write_text(text.replace(REGISTRATION, "STABLE_TORCH_LIBRARY_IMPL(tvdcn_fast, CPU, m)"))
    shutil.copy2(tree / COMPAT, dest / "csrc" / "ops" / COMPAT.name)


def build_wheel(variant_name: str = "patched") -> Path:
    """Build (or reuse) the tvdcn-fast wheel from the kernel of ``variant_name`` (built first)."""
    import torch

    from . import variant

    rec = variant.info(variant_name)
    tree = paths.BUILDS / variant_name
    sources = [tree / KERNEL, tree / COMPAT, *sorted(p for p in SOURCE.rglob("*") if p.is_file()
                                                      and "__pycache__" not in p.parts)]
    key = {"sources": _sha(*sources), "torch": torch.__version__, "python": sysconfig.get_python_version(),
           "platform": sysconfig.get_platform(), "builder": BUILDER_VERSION}
    stamp = DIST / "build.json"
    if stamp.exists():
        old = json.loads(stamp.read_text())
        if old.get("key") == key and Path(old["wheel"]).exists():
            return Path(old["wheel"])
    version = f"1.0.0+dcn{rec['n_patches']}.g{key['sources'][:8]}"
    src = WORK / "src"
    stage(tree, src)
    shutil.rmtree(DIST, ignore_errors=True)
    DIST.mkdir(parents=True)
    log = WORK / "build.log"
    info(f"building the drop-in wheel tvdcn-fast {version} from {tree / KERNEL} (log: {log})")
    env = dict(os.environ, TVDCN_FAST_VERSION=version, TVDCN_FAST_PLAT=plat_tag(HOST_ARCH))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # ninja from the venv
    with open(log, "w") as f:
        r = subprocess.run([sys.executable, "setup.py", "bdist_wheel", "-d", str(DIST)], cwd=src, env=env,
                           stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = "".join(log.read_text().splitlines(True)[-40:])
        raise Failure(f"building the drop-in wheel failed (exit {r.returncode}); last lines of {log}:\n{tail}")
    wheels = list(DIST.glob("*.whl"))
    if len(wheels) != 1:
        raise Failure(f"expected one wheel in {DIST}, found {wheels}")
    check_tag(wheels[0])
    stamp.write_text(json.dumps({"key": key, "wheel": str(wheels[0]), "version": version,
                                 "commit": rec["commit"], "n_patches": rec["n_patches"]}, indent=2) + "\n")
    info(f"drop-in wheel: {wheels[0]}")
    return wheels[0]


def plat_tag(arch: str) -> str:
    from . import manylinux

    return f"{manylinux.TAG}_{arch}"


def check_tag(wheel: Path) -> None:
    """Fail unless every library in ``wheel`` keeps within its manylinux tag (tvdcn.manylinux)."""
    from . import manylinux

    report = manylinux.audit_wheel(wheel)
    problems = [f"{lib}: {p}" for lib, r in report["libraries"].items() for p in r["problems"]]
    if problems:
        raise Failure(f"{wheel.name} does not fit its {manylinux.TAG} tag:\n  " + "\n  ".join(problems))


def dist_dir(arch: str = HOST_ARCH) -> Path:
    """Where the wheel for ``arch`` is written (another architecture's: tvdcn.aarch64)."""
    return DIST if arch == HOST_ARCH else paths.DIST / f"dropin-{arch}"


def wheel_info(arch: str = HOST_ARCH) -> dict:
    stamp = dist_dir(arch) / "build.json"
    if not stamp.exists():
        how = "python -m tvdcn dropin build" if arch == HOST_ARCH else f"python -m tvdcn {arch}"
        raise Failure(f"the drop-in wheel for {arch} is not built: {how}")
    return json.loads(stamp.read_text())


def _python(version: str) -> str:
    exe = shutil.which(f"python{version}")
    if exe is None:
        raise Failure(f"python{version} not found; install it (e.g. with pyenv) or pick another --python")
    return exe


def _pip(python: Path | str, *args: str, run: list[str] = ()) -> None:
    r = subprocess.run([*run, str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"pip {' '.join(args)} failed:\n{r.stderr[-3000:]}")


def ensure_base(stack: Stack) -> Path:
    """The stack's cached base environment (created once): stock torch + torchvision from PyPI."""
    marker = stack.base / "tvdcn-stack.json"
    if marker.exists():
        return stack.base
    shutil.rmtree(stack.base, ignore_errors=True)
    info(f"{stack.name}: installing torch {stack.torch} + torchvision {stack.torchvision} (Python "
         f"{stack.python}) into {stack.base}, once; several GB for torch's CUDA-carrying builds")
    subprocess.run([_python(stack.python), "-m", "venv", str(stack.base)], check=True)
    # '===' (string equality) keeps pip off local builds such as 2.13.0+cpu, which the stock
    # torchvision wheels (linked against the CUDA-carrying builds' libraries) cannot load beside.
    _pip(stack.base / "bin" / "python", "install", f"torch==={stack.torch}",
         f"torchvision==={stack.torchvision}", "numpy", "pytest", "expecttest")
    marker.write_text(json.dumps({"torch": stack.torch, "torchvision": stack.torchvision}) + "\n")
    return stack.base


def _purelib(python: Path | str, run: list[str] = ()) -> str:
    return subprocess.run([*run, str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def install_beside(env: Path, python: str, packages: str, wheel: Path, run: list[str] = ()) -> Path:
    """A new virtual environment ``env`` (made by ``python``) that sees the installed packages in
    directory ``packages`` (a .pth file) and has ``wheel`` pip-installed, as a user installs it.
    ``run`` prefixes every command (an emulated stack's, see Stack.run: then ``env`` and ``wheel``
    are at the same paths inside its root). Returns its interpreter."""
    shutil.rmtree(env, ignore_errors=True)
    env.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*run, python, "-m", "venv", str(env)], check=True)
    interpreter = env / "bin" / "python"
    Path(_purelib(interpreter, run), "_tvdcn_packages.pth").write_text(packages + "\n")
    # Python 3.11's venv seeds an old setuptools that would hide the one beside torch (torch >= 2.14
    # requires setuptools >= 77); Python 3.12+ seeds none.
    _pip(interpreter, "uninstall", "-y", "setuptools", run=run)
    # No index: the wheel's requirements (torch) must be met by the packages it is installed beside.
    _pip(interpreter, "install", "--no-index", str(wheel), run=run)
    return interpreter


def prepare(stack: Stack, wheel: Path) -> Path:
    """A fresh virtual environment with the stack's packages and the wheel pip-installed into it."""
    if stack.emulated:
        from . import aarch64

        base = aarch64.ensure_base(stack)
        python = "/usr/bin/python3"  # the root's
    else:
        base, python = ensure_base(stack), _python(stack.python)
    install_beside(stack.env, python, _purelib(base / "bin" / "python", stack.run()), wheel, stack.run())
    if stack.emulated:
        aarch64.write_interpreter(stack)
    versions = subprocess.run([str(stack.interpreter), "-c",
                               "import torch, torchvision; print(torch.__version__, torchvision.__version__)"],
                              capture_output=True, text=True)
    if versions.returncode != 0:
        raise Failure(f"{stack.name}: torch/torchvision do not import in {stack.env}:\n{versions.stderr[-2000:]}")
    (stack.env / "tvdcn-stack.json").write_text(json.dumps({
        "stack": stack.name, "torch": stack.torch, "torchvision": stack.torchvision,
        "imports": versions.stdout.split(), "wheel": wheel.name}) + "\n")
    return stack.interpreter


def stack_info(name: str) -> dict:
    """variant.info() for a stack variant: its versions and, for the drop-in, the series commit."""
    parsed = parse_variant(name)
    assert parsed is not None
    stack, fast = parsed
    rec = stack.env / "tvdcn-stack.json"
    if not rec.exists():
        raise Failure(f"stack {stack.name} is not prepared: python -m tvdcn dropin prepare {stack.name}")
    d = json.loads(rec.read_text())
    from . import series

    if fast:
        w = wheel_info(stack.arch)
        return {"version": f"{stack.torchvision} + tvdcn-fast {w['version']} (torch {stack.torch})",
                "commit": w["commit"], "n_patches": w["n_patches"], "sanitize": False, **d}
    # Stock torchvision's CPU kernel is upstream's (ported to the stable ABI in 0.29, still the same
    # arithmetic); the suite holds it to that: against it only declared rounding changes may show.
    return {"version": f"{stack.torchvision} (torch {stack.torch})",
            "commit": series.git("rev-parse", "pristine"), "n_patches": 0, "sanitize": False,
            "differs": dict(stack.differs), **d}
