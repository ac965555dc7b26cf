"""Property-based fuzzing (hypothesis) over every argument of deform_conv2d.

For each generated configuration, in long-lived worker processes (one per variant and thread
count; a crash fails that example and the next one gets a new process):
  * patched is bit-identical to baseline at 1 and at 2 threads, except results whose rounding a
    patch declares changed (``Rounding-changed:`` trailer), which must not depend on the thread
    count at all;
  * patched adds no thread-count dependence that baseline does not have;
  * patched agrees with the independent float64 reference (tvdcn.reference).

Budget and seed: pytest options --fuzz-examples (default 2000), --fuzz-seed (default 0). Soak mode:
scripts/test.sh tests/kernel/test_fuzz.py --fuzz-examples 50000
"""
from __future__ import annotations


import pytest

# Collected without hypothesis too (the device machine has none; requirements.txt pins it here).
pytest.importorskip("hypothesis", reason="hypothesis is not installed (requirements.txt pins it)")
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from conftest import (BASELINE, FUZZ_EXAMPLES, FUZZ_SEED, PATCHED, SUMMARY, declared, differing, thread_dependent,
                      undeclared_differences)
from tvdcn import isolate
from tvdcn.cases import Case, make_inputs
from tvdcn.reference import mismatches, run_ref

pytestmark = [pytest.mark.pr, pytest.mark.dropin, pytest.mark.sanitizer, pytest.mark.lowered]

EXAMPLES, SEED = FUZZ_EXAMPLES, FUZZ_SEED
ARGS = ("input", "offset", "weight", "mask", "bias")


@st.composite
def cases(draw) -> Case:
    # One example in four is wide: up to 64 channels (16 per offset group) on images of at most
    # 6x6, so that channel tiles, several tiles per group and one-channel groups come up at the
    # cost of a small case (most of them only under a -lowered build's thresholds).
    wide = draw(st.integers(0, 3)) == 0
    og = draw(st.integers(1, 4))
    cin = og * draw(st.integers(1, 16 if wide else 3))
    # Weight groups: any divisor of the input channels (one per channel included).
    wg = draw(st.sampled_from([d for d in range(1, cin + 1) if cin % d == 0]))
    cout = wg * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 5)), draw(st.integers(1, 5))        # stride larger than the kernel too
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # Input as small as the dilated kernel allows (output size 1, kernels larger than the input).
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), max(6 if wide else 12, dh * (kh - 1) + 1 - 2 * ph)))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), max(6 if wide else 12, dw * (kw - 1) + 1 - 2 * pw)))
    batch = draw(st.sampled_from([0, 1, 2, 3, 5, 7, 13, 31, 32, 33, 34, 64, 65]))
    mask = draw(st.booleans())
    return Case(batch=batch, cin=cin, cout=cout, h=h, w=w, kh=kh, kw=kw, stride=(sh, sw), pad=(ph, pw),
                dil=(dh, dw), wgroups=wg, ogroups=og, mask=mask, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from(["float32", "float64"])),
                values=draw(st.sampled_from(["normal", "normal", "normal", "exact"])),
                layout=draw(st.sampled_from(["contiguous", "noncontig", "channels_last", "expanded"])),
                requires=tuple(a for a in ARGS if draw(st.booleans())),
                seed=draw(st.integers(0, 2**16)))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    s = {(n, t): isolate.Server(n, t, tmp) for n in (PATCHED, BASELINE) for t in (1, 2)}
    yield s
    for v in s.values():
        v.close()


def _ok(res, who):
    if isinstance(res, (isolate.CaseCrash, isolate.CaseError)):
        pytest.fail(f"{who}: {res}")
    return res


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(case=cases())
def test_fuzz_properties(servers, case):
    counts = SUMMARY[f"fuzz (seed {SEED}, budget {EXAMPLES})"]
    counts["examples"] += 1
    r = {k: _ok(srv.run(case), f"{k[0]} at {k[1]} threads, {case.id}") for k, srv in servers.items()}
    for t in (1, 2):
        diff = undeclared_differences(r[(PATCHED, t)], r[(BASELINE, t)], case)
        assert not diff, f"{PATCHED} != {BASELINE} at {t} threads in {diff}: {case}"
    pat_varies = set(differing(r[(PATCHED, 1)], r[(PATCHED, 2)])) - thread_dependent(case).keys()
    new = pat_varies - set(differing(r[(BASELINE, 1)], r[(BASELINE, 2)]))
    assert not new, f"{PATCHED} varies with the thread count in {new}, {BASELINE} does not: {case}"
    varies = [k for k in pat_varies if k in declared(case)]
    assert not varies, f"{PATCHED}: {varies} (rounding declared changed) vary with the thread count: {case}"
    ref = run_ref(case, make_inputs(case))
    for t in (2, 1) if thread_dependent(case) else (2,):
        bad = mismatches(case, r[(PATCHED, t)], ref)
        assert not bad, f"disagrees with the reference at {t} threads: {bad}: {case}"
    counts["passed all properties"] += 1
