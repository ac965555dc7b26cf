"""Where things live.

``.work/`` (ignored by git) holds everything generated for this checkout: the vendored tree,
the variant build trees, the installed variants and the wheel. The download and compiler caches
are shared across checkouts (a CI clone reuses what the developer's checkout fetched/compiled)
under ``$TVDCN_CACHE`` (default ``~/.cache/tvdcn``).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PATCHES = REPO / "patches"
SERIES_FILE = PATCHES / "series"
PIN_FILE = REPO / "vendor" / "torchvision.toml"

WORK = Path(os.environ.get("TVDCN_WORK", REPO / ".work"))
SRC = WORK / "src" / "torchvision"          # the series repository (pristine + one commit per patch)
BUILDS = WORK / "build"                     # one git worktree per variant, built in place
VARIANTS = WORK / "variants"                # one importable install per variant
DIST = WORK / "dist"                        # wheels
DROPIN_DIST = DIST / "dropin"               # the drop-in wheel and its build record (tvdcn.dropin)
STACK_ENVS = WORK / "stacks"                # stock stacks, fresh per run: a venv + .pth to the cached base + the wheel
STANDALONE = WORK / "standalone"            # kernel files staged and compiled alone (tvdcn.standalone)

CACHE = Path(os.environ.get("TVDCN_CACHE", Path.home() / ".cache" / "tvdcn"))
DOWNLOADS = CACHE / "downloads"
CCACHE_DIR = CACHE / "ccache"
STACK_BASES = CACHE / "stacks"              # stock stacks, cached: torch + torchvision (+ pytest, numpy) from PyPI

# The two files of a torchvision tree that the drop-in wheel and the standalone kernels take.
KERNEL = Path("torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp")
COMPAT = Path("torchvision/csrc/ops/StableABICompat.h")
