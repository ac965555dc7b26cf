"""Variants: what a variant name means, parsed once, and how a process runs one.

A variant is one of three kinds (``parse(name)`` returns the typed object):

- ``Built``: ``baseline`` (pristine upstream), ``patched`` (the series), ``prefix-N`` (its first
  N patches), each optionally ``-lowered`` (test-only thresholds: tvdcn.lowered), then optionally
  ``-asan`` (sanitizers) or ``-cov`` (gcov), built by tvdcn.build into
  ``.work/variants/<name>/site``; any other folder there is a built variant too.
- ``Stock``: a stock torch + torchvision release from PyPI (``tv0.26``, ``tv0.28``, ``tv0.29``:
  ``STACKS``) in its own virtual environment, and ``tv0.26+fast``: the same with the drop-in wheel
  imported (tvdcn.dropin builds the wheel and prepares the environments). A stack of another
  architecture (``aarch64-tv0.29``: ``EMULATED``) lives in an emulated Debian root (tvdcn.aarch64
  prepares it): its interpreter is a script that runs the root's Python under qemu-user.
- ``Standalone``: ``sa:<variant>``, that variant's kernel file compiled alone (tvdcn.standalone).

Each gives its interpreter (``python``), its install (``site``), what it is (``info``) and the
environment of a process that imports it (``env``). Built variants all register the same
``torchvision::`` ops, so they never share a process: each run gets ``PYTHONPATH`` pointing at
that variant's install and nothing else of torchvision. The module-level functions take a name.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths
from .log import Failure

INSTRUMENTS = ("asan", "cov")  # the suffixes of instrumented builds (compiler flags: tvdcn.build)
LOWERED = "lowered"  # the suffix of a build with lowered thresholds (before an instrument's: tvdcn.lowered)
FAST_SUFFIX = "+fast"
STANDALONE_PREFIX = "sa:"
HOST_ARCH = platform.machine()


@dataclass(frozen=True)
class Stack:
    """A stock torch + torchvision release, as a user runs it."""
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
        """The cached environment with torch and torchvision installed (tvdcn.dropin.ensure_base), as
        the stack's own Python sees it: inside the root when emulated (tvdcn.aarch64.ensure_base)."""
        name = f"torch{self.torch}-tv{self.torchvision}-py{self.python}"
        return Path("/opt/tvdcn/stacks") / name if self.emulated else paths.STACK_BASES / name

    @property
    def env(self) -> Path:
        """The fresh environment a run uses: the base, plus the drop-in wheel (tvdcn.dropin.prepare)."""
        return paths.STACK_ENVS / self.name

    @property
    def interpreter(self) -> Path:
        # Emulated: a script that runs the environment's Python inside the root (tvdcn.aarch64).
        return self.env / ("host-python" if self.emulated else "bin/python")

    @property
    def prepare_command(self) -> str:
        """What makes this stack's environment."""
        return f"python -m tvdcn {self.arch}" if self.emulated else f"python -m tvdcn dropin prepare {self.name}"

    @property
    def record(self) -> Path:
        """What tvdcn.dropin.prepare found installed there (JSON)."""
        return self.env / "tvdcn-stack.json"


# The releases people run: each torchvision with the torch its wheel requires. 0.26 and 0.28 ship
# the legacy ATen extension (_C.so), 0.29 only the stable-ABI one (_C_stable.so).
TV029_GRAD_WEIGHT = (
    "grad_weight", "torchvision 0.29's stable-ABI kernel sums grad_weight over blocks of 32 images in another "
                   "order: it differs from 0.21's (and 0.26's, 0.28's) by up to 1.7e-7 of its magnitude, only "
                   "for batches above 32")
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
                                                      "in channel tiles (patch 0028, layers whose columns exceed "
                                                      "32 MiB) rounds otherwise than the whole GEMM, seen at batch "
                                                      "8, 96 channels, 64x64 (results/2026-11-30/"
                                                      "aarch64-fp-contract.txt)"),)),
)}


def dropin_dist(arch: str = HOST_ARCH) -> Path:
    """Where the drop-in wheel for ``arch`` and its build record go (another architecture's: tvdcn.aarch64)."""
    return paths.DROPIN_DIST if arch == HOST_ARCH else paths.DIST / f"dropin-{arch}"


def dropin_wheel(arch: str = HOST_ARCH) -> dict[str, Any]:
    """The record of the last drop-in wheel build for ``arch`` (tvdcn.dropin.build_wheel,
    tvdcn.aarch64.build_wheel): wheel, version, commit, n_patches and the series' declarations at
    that commit (``declared``, ``thread_dependent``; see tvdcn.series)."""
    stamp = dropin_dist(arch) / "build.json"
    if not stamp.exists():
        how = "python -m tvdcn dropin build" if arch == HOST_ARCH else f"python -m tvdcn {arch}"
        raise Failure(f"the drop-in wheel for {arch} is not built: {how}")
    return json.loads(stamp.read_text())


@dataclass(frozen=True)
class Variant:
    name: str

    def python(self) -> str:
        """The interpreter that runs this variant."""
        return sys.executable

    def site(self) -> Path:
        """Where this variant is installed; fails, saying what to run, where it is not."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """What it is: ``version``, ``commit``, ``n_patches``, ``sanitize`` and kind-specific keys."""
        raise NotImplementedError

    def _importable(self, e: dict[str, str]) -> None:
        """Make this variant (and the tvdcn package) importable in the environment ``e``."""
        raise NotImplementedError

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a process that imports this variant (and the tvdcn package)."""
        e = dict(os.environ)
        self._importable(e)
        e["TVDCN_VARIANT"] = self.name  # for current() in that process
        if self.info().get("sanitize"):
            # The extension is instrumented, python is not: preload the runtimes. Leak checking is
            # off (python's own allocations at exit are not the op's); every finding aborts.
            runtimes = [subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True,
                                       check=True).stdout.strip() for lib in ("libasan.so", "libubsan.so")]
            e["LD_PRELOAD"] = " ".join(runtimes)
            e["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:halt_on_error=1:verify_asan_link_order=0"
            e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        e.update(extra or {})
        return e


@dataclass(frozen=True, kw_only=True)
class Built(Variant):
    """A variant tvdcn.build makes from the vendored tree."""
    base: str | None = None         # baseline, patched or prefix-N; None: another folder under .work/variants
    instrument: str | None = None   # one of INSTRUMENTS, or None
    lowered: bool = False           # built with lowered thresholds (tvdcn.lowered)

    @property
    def prefix(self) -> int | None:
        """N for ``prefix-N``, else None."""
        return int(self.base.removeprefix("prefix-")) if self.base and self.base.startswith("prefix-") else None

    def site(self) -> Path:
        s = paths.VARIANTS / self.name / "site"
        if not (s / "torchvision").is_dir():
            raise Failure(f"variant {self.name!r} is not built: run scripts/build.sh")
        return s

    def info(self) -> dict[str, Any]:
        record = paths.VARIANTS / self.name / "build.json"
        if not record.exists():
            raise Failure(f"variant {self.name!r} is not built: run scripts/build.sh")
        return json.loads(record.read_text())

    def _importable(self, e: dict[str, str]) -> None:
        e["PYTHONPATH"] = os.pathsep.join([str(self.site()), str(paths.REPO)])


@dataclass(frozen=True, kw_only=True)
class Stock(Variant):
    """A stock stack; with ``fast``, the drop-in wheel routes torchvision's CPU kernels to its own."""
    stack: Stack
    fast: bool = False

    def python(self) -> str:
        if not self.stack.interpreter.exists():
            raise Failure(f"stack {self.stack.name} is not prepared: {self.stack.prepare_command}")
        return str(self.stack.interpreter)

    def site(self) -> Path:
        self.python()  # fails with what to run when the stack is not prepared
        return self.stack.env

    def info(self) -> dict[str, Any]:
        """Its versions and, for the drop-in, the series commit of the wheel's kernel."""
        s = self.stack
        if not s.record.exists():
            raise Failure(f"stack {s.name} is not prepared: {s.prepare_command}")
        d = json.loads(s.record.read_text())
        if self.fast:
            # The wheel's record carries the series' declarations at its commit (as a standalone
            # kernel's does): the suite reads them there, not from whatever the vendored tree holds now.
            w = dropin_wheel(s.arch)
            if "thread_dependent" not in w:
                raise Failure(f"the drop-in wheel's record predates the declarations it carries: {s.prepare_command}")
            return {"version": f"{s.torchvision} + tvdcn-fast {w['version']} (torch {s.torch})",
                    "commit": w["commit"], "n_patches": w["n_patches"], "sanitize": False,
                    "declared": w["declared"], "thread_dependent": w["thread_dependent"], **d}
        from . import series

        # Stock torchvision's CPU kernel is upstream's (ported to the stable ABI in 0.29, still the
        # same arithmetic); the suite holds it to that: against it only declared rounding changes may show.
        return {"version": f"{s.torchvision} (torch {s.torch})",
                "commit": series.git("rev-parse", "pristine"), "n_patches": 0, "sanitize": False,
                "differs": dict(s.differs), **d}

    def _importable(self, e: dict[str, str]) -> None:
        # The stack's packages come from its own environment; tvdcn (the repo) is all we add.
        # For "+fast" the tvdcn package imports tvdcn_fast, which routes torchvision's kernels.
        self.site()
        e["PYTHONPATH"] = str(paths.REPO)
        e.pop("TVDCN_DROPIN", None)
        if self.fast:
            e["TVDCN_DROPIN"] = "1"


@dataclass(frozen=True, kw_only=True)
class Standalone(Variant):
    """The kernel file of built variant ``of``, compiled alone in its own op namespace."""
    of: str

    @property
    def dir(self) -> Path:
        """Where tvdcn.standalone stages it (and builds it, in ``build/``)."""
        return paths.STANDALONE / self.of

    def site(self) -> Path:
        if not any(self.dir.glob("build/*.so")):
            raise Failure(f"standalone variant {self.name!r} is not built: python -m tvdcn standalone build")
        return self.dir

    def info(self) -> dict[str, Any]:
        record = self.dir / "standalone.json"
        if not record.exists():
            raise Failure(f"standalone variant {self.name!r} is not staged: python -m tvdcn standalone stage {self.of}")
        meta = json.loads(record.read_text())
        return {**meta, "version": f"{meta['variant']} kernel file, standalone ({meta['namespace']})"}

    def _importable(self, e: dict[str, str]) -> None:
        # Torch as installed; the kernels come from the compiled kernel file (tvdcn.standalone.op,
        # which finds it through current()).
        self.site()
        e["PYTHONPATH"] = str(paths.REPO)


BUILT = re.compile(r"(baseline|patched|prefix-\d+)(-" + LOWERED + r")?(?:-(" + "|".join(INSTRUMENTS) + r"))?")



def stacks(names: list[str]) -> list[Stack]:
    """The stock stacks called ``names`` (every one when empty); an unknown name is a Failure."""
    names = names or list(STACKS)
    unknown = [n for n in names if n not in STACKS]
    if unknown:
        raise Failure(f"unknown stack(s) {unknown}: one of {', '.join(STACKS)}")
    return [STACKS[n] for n in names]

@functools.lru_cache(maxsize=None)
def parse(name: str) -> Variant:
    """The variant ``name`` names; a name of no kind fails with the kinds there are."""
    if name.startswith(STANDALONE_PREFIX) and len(name) > len(STANDALONE_PREFIX):
        return Standalone(name, of=name[len(STANDALONE_PREFIX):])
    stack = name.removesuffix(FAST_SUFFIX)
    if stack in STACKS or stack in EMULATED:
        return Stock(name, stack={**STACKS, **EMULATED}[stack], fast=name != stack)
    if m := BUILT.fullmatch(name):
        return Built(name, base=m.group(1), instrument=m.group(3), lowered=bool(m.group(2)))
    if re.fullmatch(r"[\w.+-]+", name) and (paths.VARIANTS / name).is_dir():
        return Built(name)
    raise Failure(f"unknown variant {name!r}: baseline, patched or prefix-N (each optionally -lowered, then "
                  f"-asan or -cov), "
                  f"a stock stack ({', '.join([*STACKS, *EMULATED])}, each optionally {FAST_SUFFIX}), sa:<variant>, "
                  f"or a folder under {paths.VARIANTS}")


def current() -> Variant | None:
    """In a process that ``env()`` made, its variant (``TVDCN_VARIANT``); None in any other."""
    name = os.environ.get("TVDCN_VARIANT")
    return parse(name) if name else None


def python(name: str) -> str:
    return parse(name).python()


def site(name: str) -> Path:
    return parse(name).site()


def info(name: str) -> dict[str, Any]:
    return parse(name).info()


def env(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return parse(name).env(extra)


def command(name: str, argv: list[str]) -> list[str]:
    """The command that runs ``python ARGV`` with variant ``name`` (and puts its environment in ours)."""
    os.environ.update(env(name))
    if argv and argv[0] == "--":
        argv = argv[1:]
    return [python(name), *argv]
