"""A variant's kernel file compiled alone, as its own extension in its own op namespace.

For a machine that has torch but not our torchvision builds (the many-core device box, torch
2.11 there): the thread sweep runs there with the very kernel files of the variants built here.

* ``stage`` (here, after ``scripts/build.sh``): for each variant, copy its
  ``deform_conv2d_kernel.cpp`` (and ``StableABICompat.h`` where the variant has it) to
  ``.work/standalone/<variant>/``, with its registration moved from the ``torchvision``
  namespace to ``tvdcn_sa_<variant>``, and write ``register.cpp`` declaring torchvision's two
  schemas there (through the stable ABI for a stable-ABI kernel, through ``torch/library.h`` for
  upstream's ATen one).
* ``build`` (there): compile every staged variant at once with ``torch.utils.cpp_extension.load``,
  with torchvision's optimization flags (CPython's ``-O3 -DNDEBUG -fwrapv``, ``-g0``), a
  stable-ABI kernel with ``TORCH_TARGET_VERSION`` = torch 2.11 as upstream main builds it.
* The benchmark then takes ``sa:<variant>`` like any variant (tvdcn.variant), and ``op()`` in
  its process is a ``deform_conv2d`` with torchvision's
  Python signature over the compiled forward and backward (an ``autograd.Function`` with
  torchvision's formula: one backward call returns all five gradients).

Usage: ``python -m tvdcn standalone stage baseline,prefix-12,patched`` here;
``python -m tvdcn standalone build`` there, then ``python -m tvdcn.bench --variants
sa:baseline,sa:patched ...`` (needs only torch).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from . import paths, variant
from .log import Failure, info
from .paths import COMPAT, KERNEL  # the two files of a tree the drop-in wheel takes too

ROOT = paths.STANDALONE
PREFIX = variant.STANDALONE_PREFIX
SCHEMAS = (
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
    "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
    "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, "
    "Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, "
    "SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) "
    "-> (Tensor, Tensor, Tensor, Tensor, Tensor)",
)
# The registration line of each kind of kernel file, and how its namespace is declared.
KINDS = {
    "stable": ("STABLE_TORCH_LIBRARY_IMPL(torchvision, CPU, m)", "#include <torch/csrc/stable/library.h>",
               "STABLE_TORCH_LIBRARY"),
    "aten": ("TORCH_LIBRARY_IMPL(torchvision, CPU, m)", "#include <torch/library.h>", "TORCH_LIBRARY"),
}
FLAGS = ["-O3", "-DNDEBUG", "-fwrapv", "-g0"]
TARGET = "-DTORCH_TARGET_VERSION=0x020b000000000000"


def namespace(variant: str) -> str:
    return "tvdcn_sa_" + re.sub(r"\W", "_", variant)


def _kind(text: str) -> str:
    """Which of KINDS a kernel file is, by its registration line."""
    return "stable" if KINDS["stable"][0] in text else "aten"


def _register_as(text: str, line: str, ns: str) -> str:
    """Kernel file ``text`` registered under ``ns``: its registration block (``line``), and the
    qualified op names some impl() calls in it spell out."""
    return text.replace(line, line.replace("torchvision", ns)).replace('"torchvision::', f'"{ns}::')


def stage_text(name: str, text: str, like: str = "patched", root: Path = ROOT) -> Path:
    """Stage ``text``, a kernel file as a tree holds it (registered under ``torchvision``), as the
    variant ``name``: a copy of the staged ``like`` with that file, in ``name``'s own namespace (an
    experiment's edited kernel). Returns its directory, for ``build(dirs=[...])``."""
    kind = _kind(text)
    text = _register_as(text, KINDS[kind][0], namespace(like))
    return clone(root / like, name, text, prototype=name)


def stage(variants: list[str], root: Path = ROOT) -> None:
    """Copy each built variant's kernel sources to ``root/<variant>/``, registration renamed."""
    from . import series

    for v in variants:
        tree = paths.BUILDS / v
        if not (tree / KERNEL).exists():
            raise Failure(f"variant {v!r} has no build tree at {tree}: run scripts/build.sh (--variant {v})")
        text = (tree / KERNEL).read_text()
        kind = _kind(text)
        line, include, macro = KINDS[kind]
        if len(re.findall(r"^" + re.escape(line), text, re.M)) != 1:
            raise Failure(f"{tree / KERNEL}: expected one '{line}' line to rename")
        ns = namespace(v)
        dest = root / v
        shutil.rmtree(dest, ignore_errors=True)
        (dest / "cpu").mkdir(parents=True)
        (dest / "cpu" / KERNEL.name).write_text(_register_as(text, line, ns))
        if (tree / COMPAT).exists():
            shutil.copy2(tree / COMPAT, dest / COMPAT.name)
        defs = "".join(f'  m.def("{s}");\n' for s in SCHEMAS)
        (dest / "register.cpp").write_text(f"// Generated by tvdcn.standalone: torchvision's schemas in {ns}.\n"
                                           f"{include}\n\n{macro}({ns}, m) {{\n{defs}}}\n")
        # What the suite needs to know of the variant where the vendored tree is absent: the
        # results whose rounding its patches declare changed (tvdcn.series).
        commit = json.loads((paths.VARIANTS / v / "build.json").read_text())["commit"]
        meta = {"variant": v, "namespace": ns, "kind": kind, "commit": commit,
                "declared": series.declared_rounding(commit), "thread_dependent": series.thread_dependent(commit)}
        (dest / "standalone.json").write_text(json.dumps(meta, indent=1) + "\n")
        info(f"staged {v} ({kind} kernel) in {dest} as {ns}::")


def clone(src: Path, name: str, kernel: str | None = None, **meta: Any) -> Path:
    """Copy the staged variant ``src`` (without its build) to ``src.parent/name``, registered under
    its own namespace; ``kernel``, if given, replaces its kernel file's text (written with the new
    namespace too), and ``meta`` joins its standalone.json. Returns the new directory."""
    dst = src.parent / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build"))
    old, new = namespace(src.name), namespace(name)
    for f in (dst / "cpu" / KERNEL.name, dst / "register.cpp"):
        text = kernel if kernel is not None and f.name == KERNEL.name else f.read_text()
        f.write_text(text.replace(old, new))
    record = json.loads((dst / "standalone.json").read_text())
    record.update(variant=name, namespace=new, **meta)
    (dst / "standalone.json").write_text(json.dumps(record, indent=1) + "\n")
    return dst


def _build_one(d: Path) -> Path:
    """Compile ``d`` (a staged variant) into ``d/build``; return the library."""
    import torch.utils.cpp_extension as cpp

    meta = json.loads((d / "standalone.json").read_text())
    flags = FLAGS + ([TARGET] if meta["kind"] == "stable" else [])
    out = d / "build"
    shutil.rmtree(out, ignore_errors=True)  # never reuse objects built against another torch
    out.mkdir()
    cpp.load(meta["namespace"], [str(d / "cpu" / KERNEL.name), str(d / "register.cpp")], extra_cflags=flags,
             build_directory=str(out), is_python_module=False, verbose=False)
    return out / f"{meta['namespace']}.so"


def build(root: Path = ROOT, dirs: list[Path] | None = None) -> list[Path]:
    """Compile the staged variants ``dirs`` (default: every one under ``root``), each in its own
    process, all at once."""
    dirs = dirs or sorted(p.parent for p in root.glob("*/standalone.json"))
    if not dirs:
        raise Failure(f"nothing staged under {root}: python -m tvdcn.standalone stage VARIANTS")
    t0 = time.monotonic()
    # ninja from the interpreter's environment (the venv's, as tvdcn.build uses), else from PATH.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    procs = [(d, subprocess.Popen([sys.executable, "-m", "tvdcn.standalone", "build-one", str(d)], env=env,
                                  cwd=paths.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
             for d in dirs]
    failed = []
    for d, p in procs:
        log = p.communicate()[0]
        if p.returncode != 0:
            failed.append(f"{d.name}:\n{log[-4000:]}")
    if failed:
        raise Failure("standalone build failed for " + "\n".join(failed))
    info(f"built {', '.join(d.name for d in dirs)} in {time.monotonic() - t0:.0f}s")
    return [d / "build" / f"{namespace(d.name)}.so" for d in dirs]


DEVTOOLS = paths.WORK / "devpy"


def devtools(dest: Path = DEVTOOLS) -> None:
    """pytest (pure Python) and this machine's ninja binary in ``dest``, for a machine that has
    torch and a compiler but neither of them (scripts/device-bench.sh puts them on its paths)."""
    ninja = shutil.which("ninja") or str(Path(sys.executable).parent / "ninja")
    if not Path(ninja).exists():
        raise Failure("no ninja here to copy: .venv/bin/pip install ninja")
    shutil.rmtree(dest, ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target",
                        str(dest), "--no-binary", "tomli", "pytest", "tomli", "exceptiongroup"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"pip install --target {dest} failed:\n{r.stderr[-3000:]}")
    (dest / "bin").mkdir(exist_ok=True)
    shutil.copy2(ninja, dest / "bin" / "ninja")
    info(f"pytest and ninja in {dest}")


def current_op() -> Callable[..., Any]:
    """The ``deform_conv2d`` of this process's variant: torchvision's, or in a ``sa:`` variant's
    process the standalone kernels' (``op()``)."""
    if isinstance(variant.current(), variant.Standalone):
        return op()
    from torchvision.ops import deform_conv2d

    return deform_conv2d


def load(d: Path) -> Any:
    """The op namespace (``torch.ops.<namespace>``) of the built standalone variant in directory
    ``d``, its library loaded into this process."""
    import torch

    meta = json.loads((d / "standalone.json").read_text())
    torch.ops.load_library(str(d / "build" / f"{meta['namespace']}.so"))
    return getattr(torch.ops, meta["namespace"])


@functools.lru_cache(maxsize=None)
def op() -> Callable[..., Any]:
    """In a ``sa:`` variant's process: ``deform_conv2d(input, offset, weight, bias=None, stride=1,
    padding=0, dilation=1, mask=None)`` over that variant's compiled kernels."""
    import torch

    v = variant.current()
    assert isinstance(v, variant.Standalone), v
    ops = load(v.dir)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731

    class DeformConv2d(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input, weight, offset, mask, bias, args):  # type: ignore[override]
            ctx.save_for_backward(input, weight, offset, mask, bias)
            ctx.args = args
            return ops.deform_conv2d(input, weight, offset, mask, bias, *args)

        @staticmethod
        def backward(ctx, grad):  # type: ignore[override]
            input, weight, offset, mask, bias = ctx.saved_tensors
            gi, gw, go, gm, gb = ops._deform_conv2d_backward(grad.contiguous(), input, weight, offset, mask, bias,
                                                             *ctx.args)
            return gi, gw, go, gm, gb, None

    def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
        use_mask = mask is not None
        if mask is None:
            mask = torch.zeros((input.shape[0], 1), dtype=input.dtype)
        if bias is None:
            bias = torch.zeros(weight.shape[0], dtype=input.dtype)
        (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
        offset_groups = offset.shape[1] // (2 * weight.shape[2] * weight.shape[3])
        args = (sh, sw, ph, pw, dh, dw, input.shape[1] // weight.shape[1], offset_groups, use_mask)
        return DeformConv2d.apply(input, weight, offset, mask, bias, args)

    return deform_conv2d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tvdcn standalone", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stage", help="copy built variants' kernel files to .work/standalone/")
    s.add_argument("variants", help="comma-separated, e.g. baseline,prefix-12,patched")
    sub.add_parser("build", help="compile every staged variant (in parallel)")
    sub.add_parser("devtools", help="pytest and ninja in .work/devpy, for a machine without them")
    one = sub.add_parser("build-one", help=argparse.SUPPRESS)
    one.add_argument("dir", type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "stage":
            stage(args.variants.split(","))
        elif args.cmd == "build":
            for lib in build():
                print(lib)
        elif args.cmd == "devtools":
            devtools()
        elif args.cmd == "build-one":
            _build_one(args.dir)
        return 0
    except Failure as e:
        print(f"tvdcn.standalone: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
