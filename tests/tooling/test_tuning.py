"""tvdcn.tuning without benchmarking: its table must match the tip's kernel file (each constant's line
once, its value once in that line), name every constant the kernel declares, and rewrite only the
line it names when staging."""
from __future__ import annotations

import re

import pytest

from tvdcn import catalog, tuning

from test_lowered import tip_kernel  # the series tip's kernel file (skips without the vendored tree)

pytestmark = [pytest.mark.tooling]


def test_every_tunable_line_occurs_once_with_its_value_once():
    text = tip_kernel()
    for t in tuning.TUNABLES:
        assert text.count(t.text) == 1, t.name
        assert t.text.count(t.value) == 1, t.name
        values = [tuning.number(v) for v in (t.value, *t.alternatives)]
        assert len(set(values)) == len(values), t.name
        assert t.mode in ("forward", "train", "both")
        for c in t.configs.split(","):
            catalog.config(c)


def test_every_named_constant_of_the_kernel_is_swept_or_derived():
    declared = set(re.findall(tuning.CONSTANT, tip_kernel()))
    covered = {t.name for t in tuning.TUNABLES} | set(tuning.DERIVED)
    assert declared - covered == set(), "a new constant needs a TUNABLES entry or a DERIVED reason"
    assert {t.name for t in tuning.TUNABLES if t.name.startswith("k")} | set(tuning.DERIVED) <= declared


def timing(median, lo, hi):
    """One variant's timing in a bench row."""
    return {"median_ms": median, "min_ms": lo, "max_ms": hi}


@pytest.fixture
def staged(tmp_path, monkeypatch):
    """tuning.stage into tmp_path, with the tip's kernel file standing in for a staged variant."""
    text = tip_kernel()

    def fake_stage(variants, root):
        d = root / tuning.BASE
        (d / "cpu").mkdir(parents=True)
        ns = tuning.standalone.namespace(tuning.BASE)
        (d / "cpu" / tuning.paths.KERNEL.name).write_text(text + f"\n// {ns}\n")
        (d / "register.cpp").write_text(f"// {ns}\n")
        (d / "standalone.json").write_text('{"variant": "patched", "namespace": "%s"}' % ns)

    monkeypatch.setattr(tuning.standalone, "stage", fake_stage)
    tuning.stage(tmp_path)
    return tmp_path


def test_stage_rewrites_one_line_per_alternative(staged):
    tmp_path = staged
    base = (tmp_path / tuning.BASE / "cpu" / tuning.paths.KERNEL.name).read_text().splitlines()
    for t in tuning.TUNABLES:
        for v in t.alternatives:
            d = tmp_path / tuning.tag(t, v)
            lines = (d / "cpu" / tuning.paths.KERNEL.name).read_text().splitlines()
            changed = [(a, b) for a, b in zip(base, lines) if a != b]
            assert len(lines) == len(base) and len(changed) == 2, (t.name, v)
            (old, new), (_, registration) = changed
            assert t.text in old and new == old.replace(t.value, v), (t.name, v)
            assert tuning.standalone.namespace(d.name) in registration
            assert tuning.standalone.namespace(d.name) in (d / "register.cpp").read_text()


def test_report_marks_overlap_and_lists_only_alternatives_faster_beyond_noise():
    base, a, b = "sa:" + tuning.BASE, "sa:patched__kX_1", "sa:patched__kX_4"
    result = {
        "meta": {"cpu": "cpu", "cores": 2, "torch": "t", "rounds": 3, "threads": "1,2"},
        "derived": {},
        "constants": [{"name": "kX", "value": "= 2;", "decides": "x", "alternatives": {"= 1;": a[3:], "= 4;": b[3:]},
                       "rows": [{"case": "forward/s@1", base: timing(10, 9.8, 10.2), a: timing(9, 8.9, 9.1), b: timing(9.9, 9.7, 10.1)},
                                {"case": "forward/s@2", base: timing(5, 4.9, 5.1), a: timing(6, 5.9, 6.1), b: timing(5, 4.8, 5.2)}]}],
    }
    text = tuning.report(result)
    assert "| forward/s@1 (10.0 ms) | 0.90 | 0.99 ~ |" in text
    assert "| forward/s@2 (5.0 ms) | 1.20 | 1.00 ~ |" in text
    assert tuning.faster_alternatives(result) == ["kX = 1 on forward/s@1: 9.00 vs 10.00 ms (10% faster)"]
    assert tuning.faster_alternatives(result, margin=0.2) == []


def test_an_alternative_must_beat_the_control_as_well():
    """The control is the tip's kernel staged again under another name (an A/A pair): on a machine
    whose noise outlasts a round, the tip's own copy can come out slower than identical code, and
    an alternative faster than the tip is then faster beyond noise only if it beats the control."""
    base, ctl, a = "sa:" + tuning.BASE, "sa:" + tuning.CONTROL, "sa:patched__kX_1"
    result = {
        "meta": {"cpu": "cpu", "cores": 2, "torch": "t", "rounds": 3, "threads": "1,2"},
        "derived": {},
        "constants": [{"name": "kX", "value": "= 2;", "decides": "x", "alternatives": {"= 1;": a[3:]},
                       "control": ctl[3:],
                       "rows": [{"case": "train/s@1", base: timing(10, 9.8, 10.2), ctl: timing(10, 9.9, 10.1), a: timing(9, 8.9, 9.1)},
                                {"case": "train/s@2", base: timing(10, 9.8, 10.2), ctl: timing(7, 6.9, 7.1), a: timing(7, 6.8, 7.2)}]}],
    }
    text = tuning.report(result)
    assert "| case | control | 1 |" in text
    assert "| train/s@1 (10.0 ms) | 1.00 ~ | 0.90 |" in text
    assert "| train/s@2 (10.0 ms) | 0.70 | 0.70 |" in text
    assert tuning.faster_alternatives(result) == ["kX = 1 on train/s@1: 9.00 vs 10.00 ms (10% faster)"]


def test_stage_adds_the_control_as_the_tip_under_its_own_name(staged):
    tmp_path = staged
    name = tuning.paths.KERNEL.name
    base = (tmp_path / tuning.BASE / "cpu" / name).read_text()
    control = (tmp_path / tuning.CONTROL / "cpu" / name).read_text()
    ns, ns_control = (tuning.standalone.namespace(n) for n in (tuning.BASE, tuning.CONTROL))
    assert control == base.replace(ns, ns_control) and ns_control in control
    assert all(tuning.CONTROL in tuning.variants(t) for t in tuning.TUNABLES)
