"""The suite's reading of the series' bookkeeping trailers (tvdcn.series): which results a prefix
declares changed in rounding, and which it declares thread-dependent, fold over the patches."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tvdcn import cases, series
from tvdcn.log import Failure
from tvdcn.paths import KERNEL

RESULTS = ("out", "grad_input", "grad_offset", "grad_weight", "grad_mask", "grad_bias")

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


def test_scoped_declarations_parse():
    assert series.scoped("out") == ("out", None)
    assert series.scoped("grad_input[split]") == ("grad_input", "split")
    for bad in ("grad_input[", "grad input", "out[split][x]"):
        with pytest.raises(Failure, match="optionally with a"):
            series.scoped(bad)
    # Every name the series declares parses, and every scope it uses is one the suite knows.
    tip = commits()[-1]
    for key in [*series.declared_rounding(tip), *series.thread_dependent(tip)]:
        name, scope = series.scoped(key)
        assert name in RESULTS and scope in (None, *cases.SCOPES), key


def test_split_scope_follows_the_kernels_bound():
    # cases.backward_split restates the kernel's test; its two constants must be the kernel's.
    kernel = series.git("show", f"series:{KERNEL}")
    assert f"kBackwardTileBytes = int64_t({cases.BACKWARD_TILE_BYTES >> 20}) << 20;" in kernel
    assert f"kMaxParallelImgs = {cases.MAX_PARALLEL_IMGS};" in kernel
    split = {c.id for c in cases.grid() if cases.backward_split(c)}
    assert split == {"b8-c96x16-64x64-k3x3-s11-p11-d11-g2o3-mask-bias-float32",
                     "b2-c20x8-128x128-k3x3-s11-p11-d11-g1o1-bias-float64",
                     "b64-c32x4-32x32-k3x3-s11-p11-d11-g1o4-mask-bias-float64-exact",
                     "b1-c17x6-256x256-k3x3-s11-p11-d11-g1o1-mask-bias-float32"}, split
    # At the bound itself the columns still fit: 16384 channels x 16x32 pixels x 4 bytes (rows of
    # 2 KB, not padded).
    at = cases.Case(batch=1, cin=16384, cout=4, h=16, w=32, kh=1, kw=1, pad=(0, 0))
    assert not cases.backward_split(at) and cases.backward_split(dataclasses.replace(at, cin=16385))
    assert not cases.backward_split(dataclasses.replace(at, batch=0))
    # Rows of a multiple of 4 KB count their padding line: 256 channels x 32 images x 32x32 pixels
    # x 4 bytes is the bound unpadded, beyond it padded.
    padded = cases.Case(batch=32, cin=256, cout=4, h=32, w=32, kh=1, kw=1, pad=(0, 0))
    assert cases.backward_split(padded) and not cases.backward_split(dataclasses.replace(padded, cin=255))


def test_a_reused_build_records_the_commit_it_stands_for(tmp_path, monkeypatch):
    # Editing a patch's message (its trailers) leaves the tree, so the build is reused; its record
    # must then name the new commit, whose declarations the suite reads (conftest.declared).
    from tvdcn import build, paths
    monkeypatch.setattr(paths, "VARIANTS", tmp_path)
    monkeypatch.setattr(build, "_key", lambda v: {"tree": "same"})
    cs = commits()
    (v,) = build.variants_for(["pristine", *cs], ["patched"])
    v.site.mkdir(parents=True)
    v.record.write_text(json.dumps({"key": {"tree": "same"}, "commit": cs[-2], "n_patches": len(cs) - 1,
                                    "wheel": "w.whl"}))
    assert build.build(None, v, len(cs)) == (Path("w.whl"), True)
    rec = json.loads(v.record.read_text())
    assert (rec["commit"], rec["n_patches"], rec["key"]) == (cs[-1], len(cs), {"tree": "same"})
