"""The lowered-thresholds build (tvdcn.lowered, the "-lowered" variants of tvdcn.build), without
building it: names, cache keys, version labels, and the rewrite of the series' kernel file, which
must find every constant exactly once and fail naming the one it did not."""
from __future__ import annotations

import pytest

from tvdcn import build, lowered, paths, pin, series, variant
from tvdcn.log import Failure

pytestmark = [pytest.mark.tooling]

PREFIXES = ["c0", "c1", "c2", "c3"]


def test_lowered_variant_names_parse():
    lo, cov, asan = build.variants_for(PREFIXES, ["patched-lowered", "patched-lowered-cov", "prefix-2-lowered-asan"])
    assert (lo.commit, lo.lowered, lo.instrument) == ("c3", True, None)
    assert (cov.lowered, cov.instrument, asan.lowered, asan.instrument, asan.commit) == (True, "cov", True, "asan", "c2")
    assert build.variants_for(PREFIXES, ["patched-cov"])[0].lowered is False
    assert variant.parse("patched-lowered-cov") == variant.Built("patched-lowered-cov", base="patched",
                                                                  instrument="cov", lowered=True)
    with pytest.raises(Failure, match="unknown variant"):
        build.check_names(["patched-cov-lowered"])  # the instrument comes last


def test_lowered_key_and_label(monkeypatch):
    monkeypatch.setattr(series, "git", lambda *a, **k: "ab" * 20)
    plain, lo, locov = build.variants_for(PREFIXES, ["patched", "patched-lowered", "patched-lowered-cov"])
    keys = [build._key(v) for v in (plain, lo, locov)]
    assert "lowered" not in keys[0]  # a plain build's key (and build) stays what it was
    assert keys[1]["lowered"] == keys[2]["lowered"] == lowered.record()  # a changed declaration rebuilds too
    assert keys[2]["instrument"][0] == "cov"
    labels = [build.local_version(pin.load(), v, 3, "ab" * 20).split("+")[1] for v in (plain, lo, locov)]
    assert labels == ["dcn3.gabababab", "dcn3.lowered.gabababab", "dcn3.lowered.cov.gabababab"]


def tip_kernel() -> str:
    if not (paths.SRC / ".git").exists():
        pytest.skip("the vendored tree is not prepared (scripts/build.sh)")
    return series.git("show", f"series:{paths.KERNEL.as_posix()}")


def test_every_threshold_is_rewritten_once_in_the_tip_kernel():
    text = tip_kernel()
    out = lowered.rewrite(text)
    assert out.count("\n") == text.count("\n")  # line numbers (and coverage) map onto the real file
    for what, old, new, _ in lowered.SUBSTITUTIONS:
        assert old not in out and out.count(new) == 1, what
    assert "std::numeric_limits<int>::max()" in out  # the argument checks' INT_MAX is not a threshold


@pytest.mark.parametrize("change", ["missing", "twice"])
def test_a_moved_threshold_fails_naming_it(change):
    text = tip_kernel()
    what, old, _, _ = lowered.SUBSTITUTIONS[-1]
    text = text.replace(old, "") if change == "missing" else text.replace(old, old + "\n" + old)
    with pytest.raises(Failure, match=f"{what}: expected .* exactly once .* found it {0 if change == 'missing' else 2} times"):
        lowered.rewrite(text)


def test_the_record_states_what_lowering_may_change():
    rec = lowered.record()
    assert [t["what"] for t in rec["thresholds"]] == [s[0] for s in lowered.SUBSTITUTIONS]
    # Only the results the channel tiles' GEMMs feed may round differently; the forward is already
    # declared by the series, grad_bias (and every result on the exact cases) stays bit-identical.
    assert set(rec["rounding_changed"]) == set(rec["thread_dependent"]) == {"grad_input", "grad_offset", "grad_mask",
                                                                           "grad_weight"}
