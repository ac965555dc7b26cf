"""Thread-count properties, by bit pattern (never allclose).

(a) patched at N threads is bit-identical to baseline at N threads, for every N: the series
    changes no numerics, except the results whose rounding a patch declares changed
    (``Rounding-changed:`` trailer, see tvdcn.series; ``grad_input[split]`` declares it only for
    the cases in that scope, tvdcn.cases.SCOPES); those
(d) do not depend on the thread count at all, and agree with the reference (test_reference).
(b) wherever baseline gives the same bits at 1 and N threads, so does patched: the series adds
    no thread-count dependence. Baseline itself is not always invariant (its GEMM changes the
    reduction with the thread count); how often is reported, not hidden. A prefix of the series
    may declare a result thread-dependent as upstream's is (``Thread-dependent:`` trailer, a GEMM
    whose threading is the BLAS's; a later patch's ``Thread-invariant:`` ends it): (b) and (d)
    then leave that result out, and test_reference still holds it to the reference.
(c) on "exact" cases (dyadic values, every sum exact in float64) no reduction order can matter,
    so both variants must be invariant outright: this keeps (b) from being vacuous; and
(e) patched equals baseline there bit for bit in every result, declared changed or not: a
    declaration excuses rounding, and exact sums have none. It is what holds the results a build
    with lowered thresholds declares (tvdcn.lowered), and 0028's ``[split]`` ones on the exact
    split case, to baseline's bits.
"""
from __future__ import annotations

import pytest

from conftest import (BASELINE, GRID, PATCHED, SUMMARY, THREADS, declared, differing, result, thread_dependent,
                      undeclared_differences)

IDS = [c.id for c in GRID]
pytestmark = [pytest.mark.prefix, pytest.mark.fast, pytest.mark.pr, pytest.mark.dropin, pytest.mark.sanitizer,
              pytest.mark.device, pytest.mark.lowered]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", GRID, ids=IDS)
def test_patched_bit_identical_to_baseline(runs, case, threads):
    got = result(runs.get(PATCHED, threads), case)
    want = result(runs.get(BASELINE, threads), case)
    diff = undeclared_differences(got, want, case)
    counts = SUMMARY["patched == baseline (bits), per case and thread count"]
    counts["failed" if diff else "passed"] += 1
    for k in set(differing(got, want)) - set(diff):
        if k in declared(case):
            SUMMARY["declared rounding changes (tensors differing from baseline)"][k] += 1
    assert not diff, f"{PATCHED} differs from {BASELINE} at {threads} threads in {diff}"


@pytest.mark.parametrize("threads", THREADS[1:])
@pytest.mark.parametrize("case", GRID, ids=IDS)
def test_declared_rounding_changes_are_thread_invariant(runs, case, threads):
    one, many = result(runs.get(PATCHED, 1), case), result(runs.get(PATCHED, threads), case)
    varies = [k for k in differing(one, many) if k in declared(case) and k not in thread_dependent(case)]
    SUMMARY["declared rounding changes: 1 vs N threads"]["varies" if varies else "invariant"] += 1
    assert not varies, f"{PATCHED}: {varies} (rounding declared changed) differ between 1 and {threads} threads"


@pytest.mark.parametrize("threads", THREADS[1:])
@pytest.mark.parametrize("case", GRID, ids=IDS)
def test_no_new_thread_dependence(runs, case, threads):
    base1, baseN = result(runs.get(BASELINE, 1), case), result(runs.get(BASELINE, threads), case)
    pat1, patN = result(runs.get(PATCHED, 1), case), result(runs.get(PATCHED, threads), case)
    base_varies = set(differing(base1, baseN))
    pat_varies = set(differing(pat1, patN))
    counts = SUMMARY["1 vs N threads (tensors)"]
    counts["compared"] += len(base1)
    counts["baseline varies (GEMM)"] += len(base_varies)
    counts["patched varies"] += len(pat_varies)
    counts["patched varies, declared thread-dependent"] += len(pat_varies & thread_dependent(case).keys())
    new = pat_varies - base_varies - thread_dependent(case).keys()
    assert not new, f"{PATCHED} varies between 1 and {threads} threads in {sorted(new)}, {BASELINE} does not"


EXACT = [c for c in GRID if c.values == "exact"]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", EXACT, ids=[c.id for c in EXACT])
def test_exact_cases_bit_identical_to_baseline(runs, case, threads):
    diff = differing(result(runs.get(PATCHED, threads), case), result(runs.get(BASELINE, threads), case))
    SUMMARY["exact cases: patched == baseline (bits, every result, declared or not)"]["failed" if diff else "passed"] += 1
    assert not diff, f"{PATCHED} differs from {BASELINE} at {threads} threads on exact arithmetic in {diff}"


@pytest.mark.parametrize("threads", THREADS[1:])
@pytest.mark.parametrize("variant", [BASELINE, PATCHED])
@pytest.mark.parametrize("case", EXACT, ids=[c.id for c in EXACT])
def test_exact_cases_are_thread_invariant(runs, case, variant, threads):
    diff = differing(result(runs.get(variant, 1), case), result(runs.get(variant, threads), case))
    assert not diff, f"{variant}: exact arithmetic yet 1 vs {threads} threads differ in {diff}"
