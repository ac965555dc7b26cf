"""Building variants of the vendored tree, side by side, with caching.

A built variant (tvdcn.variant.Built) is a name and a commit of the vendored repository:
``baseline`` is ``pristine``, ``patched`` is the tip of the series, ``prefix-N`` has the first N
patches. Each has:

- its own git worktree under ``.work/build/<name>``, built in place by upstream's ``setup.py``
  (ninja), so a checkout that changes one file recompiles only what depends on it;
- an importable install under ``.work/variants/<name>/site`` (the wheel, unpacked) and a
  ``build.json`` recording what determined it (tree id, torch, Python, flags).

``NAME-asan`` and ``NAME-cov`` are NAME built with sanitizers or with gcov (``INSTRUMENTS``).
``NAME-lowered`` (and ``NAME-lowered-asan``, ``NAME-lowered-cov``) is NAME with test-only thresholds
rewritten into its worktree's copy of the kernel file after checkout (tvdcn.lowered).

An unchanged variant is never rebuilt. ccache, when present, is put in front of the compiler by
torch's cpp_extension; with ``CCACHE_BASEDIR`` the variants share objects for the files they have
in common, so the second variant of a fresh build costs a few compilations, not a full build.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import lowered, paths, series, variant
from .log import Failure, info
from .pin import Pin

# Everything but the C++ ops: codecs off, CPU only. Part of the cache key.
BUILD_ENV = {
    "TORCHVISION_USE_PNG": "0", "TORCHVISION_USE_JPEG": "0", "TORCHVISION_USE_WEBP": "0",
    "TORCHVISION_USE_NVJPEG": "0", "TORCHVISION_USE_VIDEO_CODEC": "0", "TORCHVISION_USE_FFMPEG": "0",
    "FORCE_CUDA": "0", "DEBUG": "0",
}
BUILDER_VERSION = 1  # bump when the way variants are built changes

# Instrumented variants: a variant name with the suffix "-KIND" is that variant compiled with
# INSTRUMENTS[KIND] = (CFLAGS, LDFLAGS) added; its local version label gets ".KIND". setuptools
# puts CFLAGS in place of Python's own compile flags (-DNDEBUG -g -fwrapv -O3 -Wall), so these
# builds also compile without -DNDEBUG; LDFLAGS is appended to the link's flags.
#
# "asan": AddressSanitizer + UndefinedBehaviorSanitizer, float-cast-overflow included (gcc's
# -fsanitize=undefined leaves it out, and this op converts sampling positions to int), every
# finding fatal. Python needs the ASan runtime preloaded (see tvdcn.variant.env).
SANITIZE_FLAGS = ("-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all "
                  "-fno-omit-frame-pointer -g -O1")
# "cov": gcc's gcov instrumentation (tvdcn.coverage). Every process that loads the extension adds
# its counts, at exit, to .gcda files beside the objects in the variant's build tree. -O0 because
# at -O3 inlining, if-conversion and loop transformations merge, move or delete the code of
# source lines, so line and branch counts no longer map onto the source as written. Atomic
# counters because the kernels run on several threads: plain increments race and leave wrong,
# even negative, counts (gcc bug 68080), which gcovr refuses.
COVERAGE_CFLAGS = "--coverage -fprofile-update=atomic -O0"
COVERAGE_LDFLAGS = "--coverage"
COVERAGE_SUFFIX = "-cov"
INSTRUMENTS = {"asan": (SANITIZE_FLAGS, SANITIZE_FLAGS), "cov": (COVERAGE_CFLAGS, COVERAGE_LDFLAGS)}
assert tuple(INSTRUMENTS) == variant.INSTRUMENTS


@dataclass
class Build:
    """One variant's build: its name (tvdcn.variant), commit of the series and instrumentation."""
    name: str
    commit: str
    instrument: str | None = None  # a key of INSTRUMENTS, or None
    lowered: bool = False          # thresholds lowered (tvdcn.lowered)

    @property
    def sanitize(self) -> bool:
        return self.instrument == "asan"

    @property
    def site(self) -> Path:
        return paths.VARIANTS / self.name / "site"

    @property
    def record(self) -> Path:
        return paths.VARIANTS / self.name / "build.json"

    @property
    def worktree(self) -> Path:
        return paths.BUILDS / self.name


def check_names(wanted: list[str]) -> list[variant.Built]:
    """The variants named in ``wanted``, each one this module builds, or a Failure saying which are."""
    out = []
    for name in wanted:
        v = variant.parse(name) if variant.BUILT.fullmatch(name) else None
        if not isinstance(v, variant.Built):
            raise Failure(f"unknown variant {name!r} (baseline, patched or prefix-N, each optionally -lowered, "
                          "then -asan or -cov)")
        out.append(v)
    return out


def variants_for(prefixes: list[str], wanted: list[str]) -> list[Build]:
    """The builds of variants named in ``wanted`` (baseline, patched, prefix-N, each optionally
    -lowered, then -asan or -cov: tvdcn.variant), each with its commit of the series."""
    out = []
    for v in check_names(wanted):
        if v.prefix is not None and v.prefix >= len(prefixes):
            raise Failure(f"{v.base}: the series has only {len(prefixes) - 1} patches")
        n = {"baseline": 0, "patched": len(prefixes) - 1}.get(v.base, v.prefix)
        out.append(Build(v.name, prefixes[n], v.instrument, v.lowered))
    return out


def _torch_version() -> str:
    import torch

    return torch.__version__


def _key(v: Build) -> dict:
    key = {
        "tree": series.git("rev-parse", f"{v.commit}^{{tree}}"),
        "torch": _torch_version(),
        "python": sysconfig.get_python_version(),
        "platform": sysconfig.get_platform(),
        "env": BUILD_ENV,
        "sanitize": SANITIZE_FLAGS if v.sanitize else None,
        "builder": BUILDER_VERSION,
    }
    if v.instrument not in (None, "asan"):
        # Only for the newer kinds, so the keys (and builds) of plain and -asan variants stay valid.
        key["instrument"] = [v.instrument, *INSTRUMENTS[v.instrument]]
    if v.lowered:
        # The thresholds and what the build declares (its record, read by the suite).
        key["lowered"] = lowered.record()
    return key


def local_version(pin: Pin, v: Build, n_patches: int, tree: str) -> str:
    """PEP 440 local version label: which variant and exactly which tree it was built from."""
    label = "upstream" if n_patches == 0 else f"dcn{n_patches}"
    kinds = (["lowered"] if v.lowered else []) + ([v.instrument] if v.instrument else [])
    return f"{pin.version}+{label}{''.join('.' + k for k in kinds)}.g{tree[:8]}"


def _checkout(v: Build) -> None:
    if (v.worktree / ".git").exists():
        series.git("checkout", "-q", "--detach", "-f", v.commit, cwd=v.worktree)
    else:
        v.worktree.parent.mkdir(parents=True, exist_ok=True)
        series.git("worktree", "prune")
        series.git("worktree", "add", "-q", "--detach", "-f", str(v.worktree), v.commit)


def _compiler_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(BUILD_ENV)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # ninja from the venv
    env.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
    if shutil.which("ccache", path=env["PATH"]):
        env.update(CCACHE_DIR=str(paths.CCACHE_DIR), CCACHE_BASEDIR=str(paths.BUILDS), CCACHE_NOHASHDIR="1",
                   CCACHE_MAXSIZE=env.get("CCACHE_MAXSIZE", "5G"))
    return env


def build(pin: Pin, v: Build, n_patches: int) -> tuple[Path | None, bool]:
    """Build one variant (unless its record says it is current). Returns (wheel, reused)."""
    key = _key(v)
    if v.record.exists() and v.site.exists():
        rec = json.loads(v.record.read_text())
        if rec.get("key") == key:
            if (rec.get("commit"), rec.get("n_patches")) != (v.commit, n_patches):
                # The same code from another commit (a patch's message edited): the suite reads
                # the series' declarations at the recorded commit, so it must be this one.
                rec.update(commit=v.commit, n_patches=n_patches)
                v.record.write_text(json.dumps(rec, indent=2) + "\n")
            return (Path(rec["wheel"]) if rec.get("wheel") else None), True
    _checkout(v)
    if v.lowered:
        # The checkout restored the file (git checkout -f); a failing substitution stops here.
        lowered.apply(v.worktree / paths.KERNEL)
    version = local_version(pin, v, n_patches, key["tree"])
    env = _compiler_env()
    if v.instrument:
        cflags, ldflags = INSTRUMENTS[v.instrument]
        env["CFLAGS"] = f"{env.get('CFLAGS', '')} {cflags}".strip()
        env["LDFLAGS"] = f"{env.get('LDFLAGS', '')} {ldflags}".strip()
    env["BUILD_VERSION"] = version
    env["PYTORCH_VERSION"] = key["torch"].split("+")[0]  # the wheel's torch requirement: the ABI it was built for
    dist = paths.VARIANTS / v.name / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    log_path = paths.VARIANTS / v.name / "build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ccache = "with ccache" if "CCACHE_DIR" in env else "without ccache (install it to share objects)"
    info(f"building {v.name} = torchvision {version} in {v.worktree} ({ccache}; log: {log_path})")
    cmd = [sys.executable, "setup.py", "bdist_wheel", "-d", str(dist)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=v.worktree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        assert proc.stdout is not None
        last = -1
        for line in proc.stdout:
            log.write(line)
            m = re.match(r"\[(\d+)/(\d+)\]", line)
            if m:
                done, total = int(m.group(1)), int(m.group(2))
                pct = 100 * done // total
                if pct // 10 != last // 10 or done == total:
                    info(f"  {v.name}: compiled {done}/{total}")
                    last = pct
        rc = proc.wait()
    if rc != 0:
        tail = "".join(log_path.read_text().splitlines(True)[-40:])
        raise Failure(f"building {v.name} failed (exit {rc}); last lines of {log_path}:\n{tail}")
    wheels = list(dist.glob("*.whl"))
    if len(wheels) != 1:
        raise Failure(f"expected one wheel in {dist}, found {wheels}")
    shutil.rmtree(v.site, ignore_errors=True)
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(v.site)
    v.record.write_text(json.dumps({"key": key, "commit": v.commit, "version": version, "wheel": str(wheels[0]),
                                    "n_patches": n_patches, "sanitize": v.sanitize, "instrument": v.instrument,
                                    **({"lowered": lowered.record()} if v.lowered else {})},
                                   indent=2) + "\n")
    return wheels[0], False


def publish_wheel(wheel: Path) -> Path:
    """Copy the patched wheel to ``.work/dist`` (the one users ``pip install``)."""
    paths.DIST.mkdir(parents=True, exist_ok=True)
    for old in paths.DIST.glob("*.whl"):
        if old.name != wheel.name:
            old.unlink()
    dest = paths.DIST / wheel.name
    shutil.copy2(wheel, dest)
    return dest
