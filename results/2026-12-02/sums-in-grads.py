"""Issue 22 (kernel size): 0039 with the offset/mask sums kept in grad_offset and grad_mask.

The 41-patch tip keeps the offset/mask pass's three sums in scratch (12 plan arrays per tile
instead of 9), loads them from grad_offset/grad_mask for a later channel tile of an offset group,
and stores them back at the end. Accumulating in the gradients themselves, zeroed by the group's
first channel tile, adds the same terms in the same order: the bits should not move. The rewritten
series (0039 amended, 0040 and 0041 cherry-picked on it) is a branch in a worktree, not `series`.

    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py build WORKTREE   # stage and compile it as "sums"
    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py build WORKTREE mutant  # ... every tile zeroes
    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py check [mutant]   # bits against the staged tip
    PYTHONPATH=. .venv/bin/python results/2026-12-02/sums-in-grads.py ab [THREADS]     # backward only, alternated

Not a patch: the variant is staged next to the tip's standalone copy ("patched").
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tvdcn import standalone

HERE = Path(__file__).parent
NAME = "sums"
# The check failing on purpose: every channel tile restarts the sums.
MUTANT = ("const bool first_tile = c_lo == g * c_per_offset_grp;", "const bool first_tile = true;")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), HERE.parent / "2026-12-01" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(worktree: str, mutant: str = "") -> None:
    text = (Path(worktree) / standalone.KERNEL).read_text()
    if mutant:
        assert text.count(MUTANT[0]) == 1
        text = text.replace(*MUTANT)
    line = standalone.KINDS["stable"][0]
    ns = standalone.namespace("patched")
    text = text.replace(line, line.replace("torchvision", ns)).replace('"torchvision::', f'"{ns}::')
    d = standalone.clone(standalone.ROOT / "patched", NAME + mutant, text, prototype=NAME + mutant)
    print(standalone.build(dirs=[d]), flush=True)


def check(mutant: str = "") -> None:
    """Every backward result against the tip's, by bits, at 1, 2 and 3 threads: col2im-rows.py's
    shapes (two in channel tiles, one without mask, one float64), plain, with Inf and with NaN."""
    import torch

    rows = _load("col2im-rows")
    name = NAME + mutant
    ops = rows.load_ops(["patched", name])
    names_out = ["grad_input", "grad_weight", "grad_offset", "grad_mask", "grad_bias"]
    cases = bad = 0
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        for shape in rows.check_shapes():
            dtype = shape[-1]
            for poison in (None, "inf", "nan"):
                x, w, off, mask, bias, gout = rows.backward_inputs(*shape)
                if poison:
                    v = float(poison)
                    x.view(-1)[::97] = v
                    gout.view(-1)[5::211] = -v if poison == "inf" else v
                res = {n: op._deform_conv2d_backward(gout, x, w, off, mask, bias, 1, 1, 1, 1, 1, 1, shape[5],
                                                     shape[4], shape[6]) for n, op in ops.items()}
                as_int = torch.int32 if dtype == torch.float32 else torch.int64
                diff = [o for o, a, z in zip(names_out, res["patched"], res[name])
                        if not torch.equal(a.contiguous().view(as_int), z.contiguous().view(as_int))]
                cases += 1
                if diff:
                    bad += 1
                    print(threads, shape, poison, "differs:", diff, flush=True)
    print(f"{name} against patched: {bad} of {cases} backward calls differ in some bit", flush=True)


def ab(threads: str = "1") -> None:
    _load("col2im-rows").ab(f"patched,{NAME}", threads)


if __name__ == "__main__":
    {"build": build, "check": check, "ab": ab}[sys.argv[1]](*sys.argv[2:])
