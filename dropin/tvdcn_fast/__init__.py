"""Faster, hardened CPU kernels for ``torchvision.ops.deform_conv2d``, for the torchvision you have.

``import tvdcn_fast`` routes the CPU kernels of ``torchvision::deform_conv2d`` and
``torchvision::_deform_conv2d_backward`` to this package's, after checking that the installed
torchvision declares these ops with the schemas the kernels implement. Nothing else of
torchvision changes: its Python checks, autograd formula, fake (meta) kernels and other devices
stay its own. ``disable()`` puts torchvision's own kernels back; ``enable()`` routes again.

The kernels are those of the tvdcn patch series (https://github.com/pytorch/vision's
``torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp`` with the series applied), compiled against
the libtorch stable ABI of torch 2.11, so one binary runs with every torch >= 2.11.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torchvision  # noqa: F401  (registers the torchvision:: ops this package routes)

__all__ = ["enable", "disable", "is_enabled", "SchemaMismatch", "OPS"]

OPS = ("deform_conv2d", "_deform_conv2d_backward")
NAMESPACE = "tvdcn_fast"


class SchemaMismatch(RuntimeError):
    """The installed torchvision declares the ops differently: the kernels do not fit, none is routed."""


def _load() -> None:
    libs = sorted(Path(__file__).parent.glob("_C*.so"))
    if not libs:
        raise ImportError(f"tvdcn_fast: no compiled library next to {__file__}; reinstall the wheel")
    torch.ops.load_library(str(libs[0]))


_load()
_routing: torch.library.Library | None = None


def _schema(ns: str, op: str) -> str:
    packet = getattr(getattr(torch.ops, ns), op, None)
    if packet is None:
        raise SchemaMismatch(f"torchvision {torchvision.__version__} has no operator {ns}::{op}; "
                             f"its C++ ops may have failed to load (see the warning from 'import torchvision')")
    return str(packet.default._schema).removeprefix(f"{ns}::")


def check_schemas() -> None:
    """Raise ``SchemaMismatch`` unless torchvision's two ops have exactly the schemas implemented here."""
    for op in OPS:
        theirs, ours = _schema("torchvision", op), _schema(NAMESPACE, op)
        if theirs != ours:
            raise SchemaMismatch(
                f"torchvision {torchvision.__version__} declares torchvision::{theirs}\n"
                f"tvdcn_fast implements                    {ours}\n"
                f"nothing was routed; torchvision's own kernels stay in use")


def enable() -> None:
    """Route torchvision's CPU ``deform_conv2d`` forward and backward to this package's kernels."""
    global _routing
    if _routing is not None:
        return
    check_schemas()
    lib = torch.library.Library("torchvision", "IMPL")
    try:
        with warnings.catch_warnings():
            # The dispatcher warns that a kernel is overridden: that is the point, and disable() undoes it.
            warnings.filterwarnings("ignore", message=".*Overriding a previously registered kernel.*")
            warnings.filterwarnings("ignore", message=".*[Ww]arning only once for all operators.*")
            for op in OPS:
                lib.impl(op, getattr(getattr(torch.ops, NAMESPACE), op).default, "CPU")
    except BaseException:
        lib._destroy()
        raise
    _routing = lib


def disable() -> None:
    """Put torchvision's own CPU kernels back (the dispatcher restores the ones registered before)."""
    global _routing
    if _routing is not None:
        _routing._destroy()
        _routing = None


def is_enabled() -> bool:
    return _routing is not None


if os.environ.get("TVDCN_FAST_DISABLE", "") in ("", "0"):
    enable()
