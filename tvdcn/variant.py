"""Running Python against one built variant, in its own process.

Both variants register the same ``torchvision::`` ops, so they never share a process: each run
gets ``PYTHONPATH`` pointing at that variant's install and nothing else of torchvision.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from . import paths
from .log import Failure


def _stack(name: str):
    from . import dropin

    return dropin.parse_variant(name)


def _standalone(name: str) -> Path | None:
    from . import standalone

    return standalone.variant_dir(name)


def python(name: str) -> str:
    """The interpreter that runs variant ``name``: the stack's own for a stock stack (tvdcn.dropin)."""
    parsed = _stack(name)
    if parsed is None:
        return sys.executable
    stack, _ = parsed
    if not stack.interpreter.exists():
        raise Failure(f"stack {stack.name} is not prepared: python -m tvdcn dropin prepare {stack.name}")
    return str(stack.interpreter)


def site(name: str) -> Path:
    """The install directory of a built variant (a stack's virtual environment for a stack, the
    staged directory for a standalone kernel: tvdcn.standalone)."""
    sa = _standalone(name)
    if sa is not None:
        if not any(sa.glob("build/*.so")):
            raise Failure(f"standalone variant {name!r} is not built: python -m tvdcn.standalone build")
        return sa
    parsed = _stack(name)
    if parsed is not None:
        python(name)  # fails with what to run when the stack is not prepared
        return parsed[0].env
    s = paths.VARIANTS / name / "site"
    if not (s / "torchvision").is_dir():
        raise Failure(f"variant {name!r} is not built: run scripts/build.sh")
    return s


def info(name: str) -> dict:
    if _standalone(name) is not None:
        from . import standalone

        return standalone.info_of(name)
    if _stack(name) is not None:
        from . import dropin

        return dropin.stack_info(name)
    return json.loads((paths.VARIANTS / name / "build.json").read_text())


def env(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that imports variant ``name`` (and the tvdcn package)."""
    e = dict(os.environ)
    parsed = _stack(name)
    if _standalone(name) is not None:
        # Torch as installed; the kernels come from the compiled kernel file (tvdcn.standalone.op).
        e["PYTHONPATH"] = str(paths.REPO)
        e["TVDCN_STANDALONE"] = str(site(name))
    elif parsed is not None:
        # The stack's packages come from its own environment; tvdcn (the repo) is all we add.
        # For "+fast" the tvdcn package imports tvdcn_fast, which routes torchvision's kernels.
        site(name)
        e["PYTHONPATH"] = str(paths.REPO)
        e.pop("TVDCN_DROPIN", None)
        if parsed[1]:
            e["TVDCN_DROPIN"] = "1"
    else:
        e["PYTHONPATH"] = os.pathsep.join([str(site(name)), str(paths.REPO)])
    e["TVDCN_VARIANT"] = name
    if info(name).get("sanitize"):
        # The extension is instrumented, python is not: preload the runtimes. Leak checking is
        # off (python's own allocations at exit are not the op's); every finding aborts.
        runtimes = [subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True,
                                   check=True).stdout.strip() for lib in ("libasan.so", "libubsan.so")]
        e["LD_PRELOAD"] = " ".join(runtimes)
        e["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:halt_on_error=1:verify_asan_link_order=0"
        e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    e.update(extra or {})
    return e


def command(name: str, argv: list[str]) -> list[str]:
    os.environ.update(env(name))
    if argv and argv[0] == "--":
        argv = argv[1:]
    return [python(name), *argv]
