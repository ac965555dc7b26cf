"""Issue 22 (kernel size): 0039 with the offset/mask sums kept in grad_offset and grad_mask.

The 41-patch tip keeps the offset/mask pass's three sums in scratch (12 plan arrays per tile
instead of 9), loads them from grad_offset/grad_mask for a later channel tile of an offset group,
and stores them back at the end. Accumulating in the gradients themselves, zeroed by the group's
first channel tile, adds the same terms in the same order: the bits should not move. The rewritten
series (0039 amended, 0040 and 0041 cherry-picked on it) is a branch in a worktree, not `series`.

    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py build WORKTREE   # stage and compile it as "sums"
    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py build WORKTREE mutant  # ... every tile zeroes
    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py check [mutant]   # bits against the staged tip
    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py ab [THREADS]     # backward only, alternated

Not a patch: the variant is staged next to the tip's standalone copy ("patched").
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tvdcn import standalone

HERE = Path(__file__).parent
NAME = "sums"
# The check failing on purpose: every channel tile restarts the sums.
MUTANT = ("const bool first_tile = c_lo == g * c_per_offset_grp;", "const bool first_tile = true;")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), HERE.parent / "2026-12-01" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(worktree: str, mutant: str = "") -> None:
    text = (Path(worktree) / standalone.KERNEL).read_text()
    if mutant:
        assert text.count(MUTANT[0]) == 1
        text = text.replace(*MUTANT)
    print(standalone.build(dirs=[standalone.stage_text(NAME + mutant, text)]), flush=True)


def check(mutant: str = "") -> None:
    """Every backward result against the staged tip's, by bits: channel-blocks.py's check (1, 2
    and 3 threads; nine shapes with offset and weight groups, three with an offset group across
    channel tiles, two without mask, both float64; plain, with Inf and with NaN)."""
    _load("channel-blocks").check(NAME + mutant, ref="patched")


def ab(threads: str = "1") -> None:
    _load("col2im-rows").ab(f"patched,{NAME}", threads)


if __name__ == "__main__":
    {"build": build, "check": check, "ab": ab}[sys.argv[1]](*sys.argv[2:])
