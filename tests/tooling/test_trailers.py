"""The suite's reading of the series' bookkeeping trailers (tvdcn.series): which results a prefix
declares changed in rounding, and which it declares thread-dependent, fold over the patches."""
from __future__ import annotations

import pytest

from tvdcn import series

pytestmark = pytest.mark.tooling


def commits() -> list[str]:
    return series.git("rev-list", "--reverse", "pristine..series").splitlines()


def test_thread_dependence_folds_over_the_series():
    # Each prefix's state from its own patches: a Thread-dependent: trailer adds, a later
    # Thread-invariant: removes. The tip holds the forward to invariance (the property the series
    # promises); a gradient its BLAS computes may stay declared, as upstream's do.
    state: set[str] = set()
    seen_dependent = False
    for c in commits():
        body = series.git("log", "-1", "--format=%B", c)
        for line in body.splitlines():
            key, _, value = line.partition(": ")
            names = {n.strip() for n in value.split(",") if n.strip()}
            if key == series.DEPENDENT_TRAILER:
                state |= names
                seen_dependent = True
            elif key == series.INVARIANT_TRAILER:
                state -= names
        assert set(series.thread_dependent(c)) == state, series.git("log", "-1", "--format=%s", c)
    assert seen_dependent, "no patch declares a result thread-dependent: nothing was folded"
    assert "out" not in state, "the tip leaves the forward thread-dependent"


def test_rounding_declared_from_the_first_patch_that_says_so():
    cs = commits()
    declared = series.declared_rounding(cs[-1])
    for name, subject in declared.items():
        first = next(c for c in cs if name in series.declared_rounding(c))
        assert series.git("log", "-1", "--format=%s", first) == subject
