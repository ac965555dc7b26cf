"""The drop-in wheel and the suite's stock-stack checks on aarch64, under emulation:
``python -m tvdcn aarch64``.

No ARM machine is needed. On this (x86-64, Debian, root) machine the command, each step done once
and cached under ``$TVDCN_CACHE/aarch64`` (a fresh clone reuses it):

1. installs what it needs from Debian (qemu-user-static, debootstrap, the aarch64 cross g++) and
   registers qemu-aarch64 in binfmt_misc (mounting it first) with the F flag, so that an arm64
   executable runs directly, inside a chroot too;
2. makes an arm64 Debian 12 root (``debootstrap --variant=minbase`` with python3 and its venv);
3. installs PyPI's aarch64 torch 2.14.1 and torchvision 0.29.1 (downloaded and unpacked by the
   host's pip for that platform, which is much faster than pip under emulation) into a base
   environment inside the root: the stack ``aarch64-tv0.29`` (tvdcn.variant.EMULATED);
4. cross-compiles the drop-in's library with aarch64-linux-gnu-g++, against that torch's headers
   and libraries, with the flags of the native build (dropin/flags.py) and packages it as
   ``tvdcn_fast-...-cp310-abi3-manylinux_2_28_aarch64.whl`` (checked by tvdcn.manylinux);
5. pip-installs that wheel, with the root's own pip, into a fresh environment beside the base, and
   runs the chosen checks (CHECKS) with the stack as the suite's variants (``--baseline
   aarch64-tv0.29 --patched aarch64-tv0.29+fast``). Every variant process is the root's
   Python under qemu, started by a script (runner()) that enters a private mount namespace, binds
   the host's /proc, /sys, /dev, /tmp, the repository and the work directory at the same paths
   inside the root, and chroots there; the comparisons run in the host's pytest as for any stack.

Emulation makes timings meaningless and everything 10-50x slower: only correctness is checked.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from . import build as build_mod
from . import dropin, paths, series, variant
from . import pin as pin_mod
from .log import Failure, info

ARCH = "aarch64"
HOME = paths.CACHE / ARCH                     # cached: the root, the downloaded wheels
ROOT = HOME / "root"
WHEELS = HOME / "wheels"
WORK = paths.WORK / ARCH                      # per checkout: the runner script, the cross build
SUITE = "bookworm"                            # Debian 12: Python 3.11, glibc 2.36
ROOT_PYTHON = "3.11"
ROOT_PACKAGES = ["python3", "python3-venv", "python3-pip"]
MIRROR = os.environ.get("TVDCN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
STACK = variant.EMULATED["aarch64-tv0.29"]
# pip given one --platform takes only that tag: list every manylinux tag an aarch64 glibc 2.28
# system runs (PyPI's CUDA libraries for aarch64, which torch requires, are manylinux_2_27).
PLATFORMS = [f"manylinux_2_{v}_{ARCH}" for v in range(28, 16, -1)] + [f"manylinux2014_{ARCH}"]
HOST_TOOLS = {"qemu-aarch64-static": "qemu-user-static", "debootstrap": "debootstrap",
              "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu", "unshare": "util-linux", "readelf": "binutils"}
CXX = "aarch64-linux-gnu-g++"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# Debian's registration of qemu-aarch64 (qemu-user-static); F: the interpreter is opened now, so
# arm64 programs run inside a chroot that has no qemu of its own.
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
BINFMT_LINE = (r":qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:"
               r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:"
               r"/usr/bin/qemu-aarch64-static:F")

# The suite's checks run here, chosen for emulation (`dropin test` runs the `dropin` marker on the
# native stacks): the grid whole at 1, 2 and 4 threads (bits against the release's kernel,
# declared rounding, thread invariance, the float64 reference); of the hardening cases, whose every
# case is a process paying an emulated `import torch` (~30 s), the float32 case's non-finite and
# huge offsets, NaN input and weight, the border positions, four invalid calls and batch 0; no
# fuzzing; opcheck on a few configurations (--opcheck-configs). See docs/reference.md, "aarch64 under emulation".
THREAD_COUNTS = "1,2,4"
K = "tests/kernel/"
H = f"{K}test_hardening.py::"
CHECKS = [f"{K}test_dropin.py", f"{K}test_manylinux.py", f"{K}test_threads.py", f"{K}test_reference.py",
          *(f"{H}test_nonfinite_offsets_behave_like_far_outside[{bad}-float32]" for bad in ("nan", "+inf", "3e9")),
          *(f"{H}test_nan_data_matches_upstream[{where}]" for where in ("input", "weight")),
          *(f"{H}test_border_positions_match_upstream[{dtype}]" for dtype in ("float32", "float64")),
          *(f"{H}test_invalid_argument_raises_clear_error[{name}]"
            for name in ("complex-input", "offset-channels", "huge-padding", "backward-grad-out-dtype")),
          f"{H}test_valid_empty_shapes_work_forward_and_backward[batch-0]",
          f"{K}test_opcheck.py"]
OPCHECK_CONFIGS = "6"  # --opcheck-configs


def host_path(p: Path) -> Path:
    """The host's path of ``p``, a path inside the root."""
    return ROOT / p.relative_to("/")


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise Failure(f"{what} failed (exit {r.returncode}): {shlex.join(cmd)}\n{(r.stdout + r.stderr)[-3000:]}")
    return r


def ensure_host_tools() -> None:
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Failure(f"missing {', '.join(missing)}: install them (Debian packages) and run again")
    info(f"installing {', '.join(missing)} from Debian")
    _run(["apt-get", "update", "-qq"], "apt-get update")
    _run(["apt-get", "install", "-y", "-qq", *missing], "apt-get install",
         env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def ensure_binfmt() -> None:
    """qemu-aarch64 registered in binfmt_misc with the F flag (mounting binfmt_misc if needed)."""
    if not (BINFMT / "register").exists():
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], "mounting binfmt_misc (needs root)")
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists():
        line = BINFMT_CONF.read_text().strip() if BINFMT_CONF.exists() else BINFMT_LINE
        (BINFMT / "register").write_text(line)
        info(f"registered qemu-aarch64 in {BINFMT}")
    text = entry.read_text()
    flags = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("flags:")), "")
    if "enabled" not in text.splitlines()[0] or "F" not in flags:
        raise Failure(f"{entry} is not an enabled registration with the F flag:\n{text}\n"
                      f"remove it (echo -1 > {entry}) and run again")


def ensure_root() -> None:
    """The arm64 Debian root with its Python, made once with debootstrap (a few minutes)."""
    marker = ROOT / "tvdcn-root.json"
    if marker.exists():
        return
    tmp = HOME / "root.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    HOME.mkdir(parents=True, exist_ok=True)
    info(f"making an arm64 Debian {SUITE} root in {ROOT} (debootstrap, second stage under emulation; once)")
    _run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={','.join(ROOT_PACKAGES)}", SUITE,
          str(tmp), MIRROR], "debootstrap")
    shutil.rmtree(ROOT, ignore_errors=True)
    tmp.rename(ROOT)
    marker.write_text(json.dumps({"suite": SUITE, "mirror": MIRROR, "packages": ROOT_PACKAGES}) + "\n")


# The emulated CPU: an Arm Neoverse N1 (AWS Graviton2, Ampere Altra), a common Arm server core
# (ARMv8.2, no SVE). QEMU_CPU set by the caller wins.
QEMU_CPU = "neoverse-n1"
MIDR = "0x00000000413fd0c1"  # Neoverse N1 r3p1's MIDR_EL1

RUNNER = """#!/bin/sh
# Generated by tvdcn.aarch64: runs "$@" (paths as inside the root) in the arm64 root {root}
# under qemu-user (binfmt_misc; CPU {cpu}), in a private mount namespace where the host's /proc,
# /dev, /tmp and the directories below are bound at the same paths; starts in the current
# directory. /sys is the root's own small tree (fake_sys()), not the host's.
export QEMU_CPU="${{QEMU_CPU:-{cpu}}}"
exec unshare --mount --propagation private /bin/sh -c '
set -e
root=$1; shift
for d in /proc /dev /tmp {binds}; do mkdir -p "$root$d"; mount --rbind "$d" "$root$d"; done
cwd=$PWD
exec chroot "$root" /bin/sh -c "cd \\"\\$0\\" 2>/dev/null || cd /; exec \\"\\$@\\"" "$cwd" "$@"
' sh {root} "$@"
"""


def fake_sys() -> None:
    """The root's /sys: the CPU list and each CPU's MIDR_EL1, which oneDNN's xbyak_aarch64 reads
    when torch is imported (with the host's x86 /sys it finds none and the import segfaults)."""
    cpus = ROOT / "sys" / "devices" / "system" / "cpu"
    n = os.cpu_count() or 1
    for f in ("online", "possible", "present"):
        (cpus / f).parent.mkdir(parents=True, exist_ok=True)
        (cpus / f).write_text(f"0-{n - 1}\n" if n > 1 else "0\n")
    for i in range(n):
        midr = cpus / f"cpu{i}" / "regs" / "identification" / "midr_el1"
        midr.parent.mkdir(parents=True, exist_ok=True)
        midr.write_text(MIDR + "\n")


def runner() -> Path:
    """The script that runs a command inside the root (written for this checkout's directories)."""
    work = paths.WORK.resolve()
    binds = [str(paths.REPO)] + ([] if work.is_relative_to(paths.REPO) else [str(work)])
    text = RUNNER.format(root=shlex.quote(str(ROOT)), binds=" ".join(shlex.quote(b) for b in binds), cpu=QEMU_CPU)
    script = WORK / "run-in-root"
    fake_sys()
    if not script.exists() or script.read_text() != text:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(text)
        script.chmod(0o755)
    return script


def write_interpreter(stack: variant.Stack) -> None:
    """The stack's interpreter: its environment's Python, run inside the root."""
    stack.interpreter.write_text(f"#!/bin/sh\nexec {shlex.quote(str(runner()))} "
                                 f"{shlex.quote(str(stack.env / 'bin' / 'python'))} \"$@\"\n")
    stack.interpreter.chmod(0o755)


def _host_pip(*args: str) -> None:
    _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], f"pip {args[0]}")


def ensure_base(stack: variant.Stack) -> Path:
    """The stack's base environment inside the root (made once): stock torch + torchvision from PyPI."""
    base = host_path(stack.base)
    marker = base / "tvdcn-stack.json"
    if marker.exists():
        return stack.base
    ensure_root()
    requirements = [f"torch==={stack.torch}", f"torchvision==={stack.torchvision}", "numpy", "pytest", "expecttest"]
    target = [f"--platform={p}" for p in PLATFORMS] + ["--only-binary=:all:", f"--python-version={stack.python}",
                                                       "--implementation=cp"]
    info(f"{stack.name}: downloading PyPI's aarch64 wheels of {', '.join(requirements)} into {WHEELS} (once; "
         f"torch's aarch64 wheels carry CUDA: about 3 GB)")
    WHEELS.mkdir(parents=True, exist_ok=True)
    _host_pip("download", *target, "--find-links", str(WHEELS), "-d", str(WHEELS), *requirements)
    shutil.rmtree(base, ignore_errors=True)
    _run([str(runner()), "/usr/bin/python3", "-m", "venv", "--without-pip", str(stack.base)], "venv in the root")
    site = base / "lib" / f"python{stack.python}" / "site-packages"
    info(f"{stack.name}: installing them into {base}")
    _host_pip("install", *target, "--no-index", "--find-links", str(WHEELS), "--target", str(site), *requirements)
    marker.write_text(json.dumps({"torch": stack.torch, "torchvision": stack.torchvision}) + "\n")
    return stack.base


# --- the cross-compiled wheel ---------------------------------------------------------------------

def _flags(src: Path) -> tuple[list[str], list[str]]:
    """dropin/flags.py's flags and sources, its paths those of the staged copy ``src``."""
    ns: dict = {"__file__": str(src / "flags.py")}
    exec((dropin.SOURCE / "flags.py").read_text(), ns)
    return ns["CXX_FLAGS"], ns["SOURCES"]


def compile_command(src: Path, torch_dir: Path, fp_contract: str | None = None) -> list[str]:
    """The native build's compile flags (setuptools: Python's CFLAGS and CCSHARED; torch's
    extension defines; dropin/flags.py), for the cross compiler against ``torch_dir``."""
    cxx_flags, _ = _flags(src)
    if fp_contract is not None:  # an experiment: another contraction than flags.py's
        cxx_flags = [f for f in cxx_flags if not f.startswith("-ffp-contract")] + [f"-ffp-contract={fp_contract}"]
    return [CXX, *shlex.split(sysconfig.get_config_var("CFLAGS")), sysconfig.get_config_var("CCSHARED"),
            f"-I{torch_dir / 'include'}", f"-I{torch_dir / 'include/torch/csrc/api/include'}", *cxx_flags,
            "-DTORCH_API_INCLUDE_EXTENSION_H", "-DPy_LIMITED_API=0x030A0000", "-DTORCH_EXTENSION_NAME=_C",
            "-std=c++20"]


def stack_torch(stack: variant.Stack) -> Path:
    """The host path of the stack's base torch package: its headers and libraries."""
    return host_path(stack.base) / "lib" / f"python{stack.python}" / "site-packages" / "torch"


def compile_library(cmd: list[str], src: Path, torch_dir: Path, obj_dir: Path, lib: Path) -> None:
    """Compile the staged copy ``src``'s sources with ``cmd`` (compile_command's) into ``obj_dir``
    and link them against ``torch_dir``'s libraries into ``lib``."""
    _, sources = _flags(src)
    objs = []
    for s in sources:
        obj = obj_dir / (Path(s).stem + ".o")
        obj.parent.mkdir(parents=True, exist_ok=True)
        _run([*cmd, "-c", str(src / s), "-o", str(obj)], f"compiling {s} for {ARCH}")
        objs.append(str(obj))
    _run([CXX, *shlex.split(sysconfig.get_config_var("CFLAGS")), "-shared", *objs, f"-L{torch_dir / 'lib'}",
          "-lc10", "-ltorch", "-ltorch_cpu", "-o", str(lib)], f"linking the {ARCH} library")


def build_wheel(stack: variant.Stack, fp_contract: str | None = None) -> Path:
    """Cross-compile the drop-in for aarch64 from the patched tree (as tvdcn.dropin stages it) and
    package it with dropin/setup.py; reused while its sources, flags, compiler and the native wheel
    (its version and series commit) are unchanged."""
    rec = variant.dropin_wheel()  # the native wheel of the same sources: its version, commit, declarations
    tree = paths.BUILDS / "patched"
    torch_dir = stack_torch(stack)
    src = WORK / "src"
    cmd = compile_command(src, torch_dir, fp_contract)
    compiler = _run([CXX, "--version"], "the cross compiler").stdout.splitlines()[0]
    key = {"sources": dropin.sources_sha(tree), "command": cmd, "compiler": compiler,
           "torch": stack.torch, "version": rec["version"], "commit": rec["commit"],
           "builder": dropin.BUILDER_VERSION}
    dist = variant.dropin_dist(ARCH)
    stamp = dist / "build.json"
    if stamp.exists():
        old = json.loads(stamp.read_text())
        if old.get("key") == key and Path(old["wheel"]).exists():
            return Path(old["wheel"])
    dropin.stage(tree, src)
    info(f"cross-compiling the drop-in for {ARCH} ({compiler})")
    lib = WORK / "_C.so"
    compile_library(cmd, src, torch_dir, WORK / "obj", lib)
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    env = dict(os.environ, TVDCN_FAST_VERSION=rec["version"], TVDCN_FAST_PLAT=dropin.plat_tag(ARCH),
               TVDCN_FAST_PREBUILT=str(lib))
    _run([sys.executable, "setup.py", "bdist_wheel", "-d", str(dist)], f"packaging the {ARCH} wheel", cwd=src,
         env=env)
    wheels = list(dist.glob("*.whl"))
    if len(wheels) != 1:
        raise Failure(f"expected one wheel in {dist}, found {wheels}")
    dropin.check_tag(wheels[0])
    stamp.write_text(json.dumps({"key": key, "wheel": str(wheels[0]), "version": rec["version"],
                                 **{k: rec[k] for k in ("commit", "n_patches", "declared", "thread_dependent")}},
                                indent=2) + "\n")
    info(f"{ARCH} drop-in wheel: {wheels[0]}")
    return wheels[0]


# --- the command ------------------------------------------------------------------------------------

CONFIG = """
import json, platform, torch, torchvision
print(json.dumps({"machine": platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
                  "torchvision": torchvision.__version__, "config": torch.__config__.show(),
                  "parallel": torch.__config__.parallel_info()}))
"""


def prepare(stack: variant.Stack, wheel: Path) -> Path:
    """The stack's fresh environment (tvdcn.dropin.prepare's, made inside the root by the root's
    Python) and its interpreter script."""
    run = [str(runner())]
    base = ensure_base(stack)
    dropin.install_beside(stack.env, "/usr/bin/python3", dropin.purelib(base / "bin" / "python", run), wheel, run)
    write_interpreter(stack)
    return dropin.write_record(stack, wheel)


def stack_config(stack: variant.Stack) -> dict:
    r = _run([str(stack.interpreter), "-c", CONFIG], f"{stack.name}: torch's configuration")
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d["blas"] = ", ".join(re.findall(r"\b((?:BLAS|LAPACK)_INFO=[^,\s]+)", d["config"])) or "not named"
    return d


def main(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    ensure_host_tools()
    ensure_binfmt()
    ensure_root()
    prefixes = series.prepare(args.source, force=args.force)
    pin = pin_mod.load()
    for v in build_mod.variants_for(prefixes, ["patched"]):
        build_mod.build(pin, v, prefixes.index(v.commit))
    native = dropin.build_wheel("patched")
    ensure_base(STACK)
    wheel = build_wheel(STACK, args.fp_contract)
    prepare(STACK, wheel)
    t_ready = time.monotonic()
    config = stack_config(STACK)
    print(f"{STACK.name}: {config['machine']}, Python {config['python']}, torch {config['torch']}, torchvision "
          f"{config['torchvision']} (emulated); wheels: {native.name}, {wheel.name}")
    print(config["config"])
    summary = WORK / "summary.json"
    summary.unlink(missing_ok=True)
    # The suite's parameters: the stack as its variants; later pytest arguments win.
    options = ["--baseline", STACK.name, "--patched", STACK.name + variant.FAST_SUFFIX, "--threads", args.threads,
               "--opcheck-configs", OPCHECK_CONFIGS, "--summary-json", str(summary)]
    checks = [a for a in args.pytest_args if a != "--"] or CHECKS
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", *options, *checks], cwd=paths.REPO)
    t_end = time.monotonic()
    figures = json.loads(summary.read_text()) if summary.exists() else {}
    record = {"stack": STACK.name, "emulated": True, "wall_s": {"total": round(t_end - t0),
                                                               "prepare": round(t_ready - t0),
                                                               "checks": round(t_end - t_ready)},
              "wheels": {"x86_64": native.name, ARCH: wheel.name}, "fp_contract": args.fp_contract or "fast (flags.py)",
              "torch_config": {k: config[k] for k in ("machine", "python", "torch", "torchvision", "config",
                                                      "parallel", "blas")},
              "checks": checks, "pytest_exit": r.returncode, "suite": figures}
    out = Path(args.json) if args.json else paths.REPO / "bench-results" / f"{ARCH}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{ARCH}: {'passed' if r.returncode == 0 else f'FAILED (pytest exit {r.returncode})'} in "
          f"{t_end - t0:.0f}s ({t_ready - t0:.0f}s preparing, {t_end - t_ready:.0f}s checking); BLAS: "
          f"{config['blas']}; record: {out}")
    return r.returncode


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source")
    p.add_argument("--force", action="store_true")
    p.add_argument("--fp-contract", choices=["off", "fast", "on"],
                   help="compile with this -ffp-contract instead of dropin/flags.py's (an experiment)")
    p.add_argument("--threads", default=THREAD_COUNTS, metavar="N,N,...",
                   help="the thread counts of the grid's checks (default: %(default)s)")
    p.add_argument("--json", help="where the record goes (default: bench-results/aarch64.json)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER,
                   help="tests and pytest options instead of the default checks (put -- before them)")
