"""The drop-in's library for aarch64 built with -ffp-contract=off and =fast, each against
torchvision 0.29.1's own aarch64 kernel (PyPI's wheel), under emulation, at 1 thread: per result,
in how many of the grid's 56 cases the bits are equal. Needs the stack prepared by
`python -m tvdcn aarch64` (root, base, wheels).

    TVDCN_WORK=... python results/2026-11-30/aarch64_fp_contract.py [off,fast] > results/2026-11-30/aarch64-fp-contract.txt

Results other than `out` (whose rounding the series declares changed) are listed case by case
where they differ.
"""
import sys
from collections import Counter

import torch

from tvdcn import aarch64, cases, dropin, isolate


def bits_equal(a, b):
    it = {torch.float32: torch.int32, torch.float64: torch.int64}[a.dtype]
    return a.shape == b.shape and torch.equal(a.contiguous().view(it), b.contiguous().view(it))


grid = cases.grid()
stack = aarch64.STACK
base = isolate.run_cases(stack.name, 1, grid)
print(f"grid of {len(grid)} cases, 1 thread, {stack.name} (torch {stack.torch}, torchvision {stack.torchvision}, "
      f"aarch64 under qemu-user, CPU {aarch64.QEMU_CPU})")
for contract in (sys.argv[1] if len(sys.argv) > 1 else "off,fast").split(","):
    wheel = aarch64.build_wheel(stack, contract)
    dropin.prepare(stack, wheel)
    fast = isolate.run_cases(stack.name + dropin.FAST_SUFFIX, 1, grid)
    equal, differ = Counter(), Counter()
    examples: dict[str, list[str]] = {}
    for c in grid:
        for k, v in base[c.id].items():
            if bits_equal(v, fast[c.id][k]):
                equal[k] += 1
            else:
                differ[k] += 1
                examples.setdefault(k, []).append(c.id)
    print(f"\n-ffp-contract={contract}: {wheel.name}")
    for k in base[grid[0].id]:
        print(f"  {k:<12} bits equal in {equal[k]:>2} cases, differ in {differ[k]:>2}"
              + (f" (e.g. {examples[k][0]})" if k in examples else ""))
    for k, ids in examples.items():
        if k != "out":
            print(f"  {k} differs in: {', '.join(ids)}")
    sys.stdout.flush()
