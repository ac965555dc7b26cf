"""The patched op agrees with the independent float64 reference (tvdcn.reference), forward and
all five gradients, over the grid, within the tolerances justified in tvdcn/reference.py."""
from __future__ import annotations

import pytest

from conftest import GRID, PATCHED, SUMMARY, result
from tvdcn.cases import make_inputs
from tvdcn.reference import mismatches, run_ref

pytestmark = [pytest.mark.pr, pytest.mark.dropin, pytest.mark.sanitizer]


@pytest.mark.parametrize("case", GRID, ids=[c.id for c in GRID])
def test_matches_reference(runs, case):
    got = result(runs.get(PATCHED, 2), case)
    bad = mismatches(case, got, run_ref(case, make_inputs(case)))
    SUMMARY["reference agreement (grid cases)"]["failed" if bad else "passed"] += 1
    assert not bad, bad
