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
stack is then two variants for the suite (tvdcn.variant, which also lists the stacks): ``tv0.26``
(torchvision's own kernels) and ``tv0.26+fast`` (the same process after ``import tvdcn_fast``).

The wheel is tagged ``manylinux_2_28_<arch>`` and checked to keep within it (tvdcn.manylinux). A
stack of another architecture (``aarch64-tv0.29``) is prepared by tvdcn.aarch64, which
cross-compiles the wheel with the same flags (dropin/flags.py) and uses the helpers here with
every command run inside its emulated root (``run``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from . import manylinux, paths, series, variant
from .log import Failure, info
from .paths import COMPAT, KERNEL
from .variant import HOST_ARCH, Stack

REGISTRATION = "STABLE_TORCH_LIBRARY_IMPL(torchvision, CPU, m)"
SOURCE = paths.REPO / "dropin"
WORK = paths.WORK / "dropin"
DIST = variant.dropin_dist(HOST_ARCH)
BUILDER_VERSION = 3


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


def sources_sha(tree: Path) -> str:
    """The hash of what the wheel is made of: the tree's kernel file and StableABICompat.h, and dropin/."""
    return _sha(tree / KERNEL, tree / COMPAT, *sorted(p for p in SOURCE.rglob("*") if p.is_file()
                                                      and "__pycache__" not in p.parts))


def record(rec: dict) -> dict:
    """What a wheel's build record says of the series, from the variant record ``rec`` it was built
    from: its commit, its number of patches and the declarations the suite reads at that commit
    (Rounding-changed, Thread-dependent: tvdcn.series), so a stack run never reads them from a
    vendored tree that has moved on since."""
    return {"commit": rec["commit"], "n_patches": rec["n_patches"],
            "declared": series.declared_rounding(rec["commit"]),
            "thread_dependent": series.thread_dependent(rec["commit"])}


def build_wheel(variant_name: str = "patched") -> Path:
    """Build (or reuse) the tvdcn-fast wheel from the kernel of ``variant_name`` (built first).
    Reused while its sources, torch, Python and the series commit are unchanged: a commit that
    changes only a patch's message (its trailers) or adds a patch elsewhere still rebuilds it, so
    its version and record name the series it was built from."""
    import torch

    rec = variant.info(variant_name)
    tree = paths.BUILDS / variant_name
    key = {"sources": sources_sha(tree), "torch": torch.__version__, "python": sysconfig.get_python_version(),
           "platform": sysconfig.get_platform(), "commit": rec["commit"], "builder": BUILDER_VERSION}
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
    stamp.write_text(json.dumps({"key": key, "wheel": str(wheels[0]), "version": version, **record(rec)},
                                indent=2) + "\n")
    info(f"drop-in wheel: {wheels[0]}")
    return wheels[0]


def plat_tag(arch: str) -> str:
    return f"{manylinux.TAG}_{arch}"


def check_tag(wheel: Path) -> None:
    """Fail unless every library in ``wheel`` keeps within its manylinux tag (tvdcn.manylinux)."""
    report = manylinux.audit_wheel(wheel)
    problems = [f"{lib}: {p}" for lib, r in report["libraries"].items() for p in r["problems"]]
    if problems:
        raise Failure(f"{wheel.name} does not fit its {manylinux.TAG} tag:\n  " + "\n  ".join(problems))


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


def purelib(python: Path | str, run: list[str] = ()) -> str:
    return subprocess.run([*run, str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def install_beside(env: Path, python: str, packages: str, wheel: Path, run: list[str] = ()) -> Path:
    """A new virtual environment ``env`` (made by ``python``) that sees the installed packages in
    directory ``packages`` (a .pth file) and has ``wheel`` pip-installed, as a user installs it.
    ``run`` prefixes every command (an emulated stack's runner, tvdcn.aarch64: then ``env`` and
    ``wheel`` are at the same paths inside its root). Returns its interpreter."""
    shutil.rmtree(env, ignore_errors=True)
    env.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*run, python, "-m", "venv", str(env)], check=True)
    interpreter = env / "bin" / "python"
    Path(purelib(interpreter, run), "_tvdcn_packages.pth").write_text(packages + "\n")
    # Python 3.11's venv seeds an old setuptools that would hide the one beside torch (torch >= 2.14
    # requires setuptools >= 77); Python 3.12+ seeds none.
    _pip(interpreter, "uninstall", "-y", "setuptools", run=run)
    # No index: the wheel's requirements (torch) must be met by the packages it is installed beside.
    _pip(interpreter, "install", "--no-index", str(wheel), run=run)
    return interpreter


def prepare(stack: Stack, wheel: Path) -> Path:
    """A fresh virtual environment with the stack's packages and the wheel pip-installed into it."""
    if stack.emulated:
        raise Failure(f"stack {stack.name} runs under emulation: {stack.prepare_command}")
    base = ensure_base(stack)
    install_beside(stack.env, _python(stack.python), purelib(base / "bin" / "python"), wheel)
    return write_record(stack, wheel)


def write_record(stack: Stack, wheel: Path) -> Path:
    """Check that torch and torchvision import in the stack's prepared environment and record what
    is installed there (Stack.record); its interpreter."""
    versions = subprocess.run([str(stack.interpreter), "-c",
                               "import torch, torchvision; print(torch.__version__, torchvision.__version__)"],
                              capture_output=True, text=True)
    if versions.returncode != 0:
        raise Failure(f"{stack.name}: torch/torchvision do not import in {stack.env}:\n{versions.stderr[-2000:]}")
    stack.record.write_text(json.dumps({
        "stack": stack.name, "torch": stack.torch, "torchvision": stack.torchvision,
        "imports": versions.stdout.split(), "wheel": wheel.name}) + "\n")
    return stack.interpreter
