"""The standalone kernels (tvdcn.standalone) that the many-core thread sweep runs.

Figures measured on another machine with a variant's kernel file compiled alone stand for that
variant only if the compiled file computes what the variant computes: bit for bit, forward and
all five gradients, through the Python wrapper and autograd formula of ``standalone.op``. Checked
here for the series' kernel (stable ABI) and upstream's (ATen, whose registration spells out the
op names), each against its own variant, on a subset of the grid at 1 and 2 threads.
"""
from __future__ import annotations

import pytest

from conftest import BASELINE, GRID, PATCHED, differing, result
from tvdcn import isolate, standalone, variant

pytestmark = [pytest.mark.tooling]

# One case per shape family of the grid (groups, offset groups, strides, dilations, no mask or
# bias, float64, 1x1 kernels), at the batch that spans two 32-image blocks, plus the multi-chunk ones.
CASES = [c for c in GRID if c.batch == 33 and c.values != "exact"] + [c for c in GRID if c.h == 24]


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    names = [PATCHED, BASELINE]
    if not all(isinstance(variant.parse(n), variant.Built) for n in names):
        pytest.skip("compares the vendored tree's variants with their kernel files compiled alone")
    standalone.stage(names)
    standalone.build(dirs=[standalone.ROOT / n for n in names])
    return {n: standalone.PREFIX + n for n in names}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("which", ["patched", "baseline"])
def test_standalone_kernel_is_bit_identical_to_its_variant(built, which, threads):
    name = PATCHED if which == "patched" else BASELINE
    got = isolate.run_cases(built[name], threads, CASES)
    want = isolate.run_cases(name, threads, CASES)
    bad = {}
    for case in CASES:
        diff = differing(result(got, case), result(want, case))
        if diff:
            bad[case.id] = diff
    assert not bad, f"{built[name]} differs from {name} at {threads} threads: {bad}"


def test_stage_text_registers_an_edited_kernel_under_its_own_name(tmp_path):
    # An experiment stages its edited kernel file next to a staged variant: the copy must register
    # under its own namespace, or loading it beside the original would clash.
    like = tmp_path / "patched"
    (like / "cpu").mkdir(parents=True)
    ns = standalone.namespace("patched")
    (like / "cpu" / standalone.KERNEL.name).write_text(f"STABLE_TORCH_LIBRARY_IMPL({ns}, CPU, m) {{}}\n")
    (like / "register.cpp").write_text(f"STABLE_TORCH_LIBRARY({ns}, m) {{}}\n")
    (like / "standalone.json").write_text('{"variant": "patched", "namespace": "%s", "kind": "stable"}' % ns)
    line = standalone.KINDS["stable"][0]
    d = standalone.stage_text("exp", f"// edited\n{line} {{ m.impl(\"torchvision::x\", f); }}\n", root=tmp_path)
    new = standalone.namespace("exp")
    kernel = (d / "cpu" / standalone.KERNEL.name).read_text()
    assert kernel.startswith("// edited") and f"STABLE_TORCH_LIBRARY_IMPL({new}, CPU, m)" in kernel
    assert f'"{new}::x"' in kernel and "torchvision" not in kernel
    assert new in (d / "register.cpp").read_text() and '"variant": "exp"' in (d / "standalone.json").read_text()

