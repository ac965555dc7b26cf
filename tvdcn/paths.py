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

CACHE = Path(os.environ.get("TVDCN_CACHE", Path.home() / ".cache" / "tvdcn"))
DOWNLOADS = CACHE / "downloads"
CCACHE_DIR = CACHE / "ccache"
