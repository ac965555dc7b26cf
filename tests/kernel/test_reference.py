"""The patched op agrees with the independent float64 reference (tvdcn.reference), forward and
all five gradients, over the grid, within the tolerances justified in tvdcn/reference.py."""
from __future__ import annotations

import pytest

from conftest import GRID, PATCHED, SUMMARY, THREADS, result, thread_dependent
from tvdcn.cases import make_inputs
from tvdcn.reference import mismatches, run_ref

pytestmark = [pytest.mark.pr, pytest.mark.dropin, pytest.mark.sanitizer, pytest.mark.lowered]


@pytest.mark.parametrize("case", GRID, ids=[c.id for c in GRID])
def test_matches_reference(runs, case):
    ref = run_ref(case, make_inputs(case))
    # At 2 threads; also at 1 and every other thread count of the run where a result may depend on
    # the thread count (conftest.thread_dependent): the invariance checks leave it out.
    for threads in dict.fromkeys((2, 1, *THREADS)) if thread_dependent(case) else (2,):
        bad = mismatches(case, result(runs.get(PATCHED, threads), case), ref)
        SUMMARY["reference agreement (grid cases)"]["failed" if bad else "passed"] += 1
        assert not bad, f"at {threads} threads: {bad}"
