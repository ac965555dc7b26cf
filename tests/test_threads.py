"""Thread-count properties, by bit pattern (never allclose).

(a) patched at N threads is bit-identical to baseline at N threads, for every N: the series
    changes no numerics.
(b) wherever baseline gives the same bits at 1 and N threads, so does patched: the series adds
    no thread-count dependence. Baseline itself is not always invariant (its GEMM changes the
    reduction with the thread count); how often is reported, not hidden.
(c) on "exact" cases (dyadic values, every sum exact in float64) no reduction order can matter,
    so both variants must be invariant outright: this keeps (b) from being vacuous.
"""
from __future__ import annotations

import pytest

from conftest import BASELINE, GRID, PATCHED, SUMMARY, THREADS, differing, result

IDS = [c.id for c in GRID]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", GRID, ids=IDS)
def test_patched_bit_identical_to_baseline(runs, case, threads):
    got = result(runs.get(PATCHED, threads), case)
    want = result(runs.get(BASELINE, threads), case)
    diff = differing(got, want)
    SUMMARY["patched == baseline (bits), per case and thread count"]["failed" if diff else "passed"] += 1
    assert not diff, f"{PATCHED} differs from {BASELINE} at {threads} threads in {diff}"


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
    new = pat_varies - base_varies
    assert not new, f"{PATCHED} varies between 1 and {threads} threads in {sorted(new)}, {BASELINE} does not"


EXACT = [c for c in GRID if c.values == "exact"]


@pytest.mark.parametrize("threads", THREADS[1:])
@pytest.mark.parametrize("variant", [BASELINE, PATCHED])
@pytest.mark.parametrize("case", EXACT, ids=[c.id for c in EXACT])
def test_exact_cases_are_thread_invariant(runs, case, variant, threads):
    diff = differing(result(runs.get(variant, 1), case), result(runs.get(variant, threads), case))
    assert not diff, f"{variant}: exact arithmetic yet 1 vs {threads} threads differ in {diff}"
