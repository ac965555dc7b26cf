"""Issue 24 / 22: why 0039 changed aarch64's bits, and forms of its loop that keep them.

0039's offset/mask pass keeps three sums in registers across a block of channels. gcc -O3
vectorizes that channel loop as an in-order reduction: the products are computed in vector
registers and then added lane by lane, so `sum += a * b` is no longer contracted into one fused
multiply-add as in the per-channel code (aarch64; x86-64's baseline has no FMA, so its bits do not
move). results/2026-12-02/aarch64-bisect.txt has the bisection and the -fno-tree-loop-vectorize check.

    python results/2026-12-02/coord-contract.py build        # the standalone variants below
    python results/2026-12-02/coord-contract.py kernel NAME  # the variant's kernel file, for aarch64-bisect.py
    python results/2026-12-02/coord-contract.py ab [THREADS] # backward only, alternated with the tip
    python -m tvdcn run patched -- results/2026-12-02/coord-contract.py mutants
        # channel-blocks.py's mutants of 0039/0040, on the rewritten tip (0040's col2im bound is now
        # group_channels()'s range)

Not a patch: variants of the staged tip ("patched", 41 patches), next to it.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tvdcn import paths, standalone

HERE = Path(__file__).parent

SUMS_IN = """        scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
"""
LOOP_SUMS = """          sy += m * wy * cv;
          const scalar_t wx = dy * (v4 - v3) + omy * (v2 - v1);
          sx += m * wx * cv;
          const scalar_t val =
              inside ? (a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4) : scalar_t(0);
          if (use_mask) {
            sm += cv * val;
          }
"""
SUMS_OUT = """        gy[e] = sy;
        gx[e] = sx;
        gm[e] = sm;
"""
HEAD = "void deformable_col2im_coord_tile("

VARIANTS = {
    # The experiment: the same code, the function not loop-vectorized (gcc only).
    "cc_novec": [(HEAD, '__attribute__((optimize("no-tree-loop-vectorize")))\n' + HEAD)],
    # The sums through memory: the block's column stores may alias them, so they are not kept
    # in registers and the loop is no reduction.
    "cc_mem": [(SUMS_IN, ""), (SUMS_OUT, ""),
               (LOOP_SUMS, LOOP_SUMS.replace("sy +=", "gy[e] +=").replace("sx +=", "gx[e] +=")
                .replace("sm +=", "gm[e] +="))],
}


def kernel(name: str, src: str) -> str:
    for old, new in VARIANTS[name]:
        if src.count(old) != 1:
            raise SystemExit(f"{name}: expected one {old!r}")
        src = src.replace(old, new)
    return src


def build() -> None:
    standalone.stage(["patched"])
    tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    dirs = [standalone.clone(standalone.ROOT / "patched", n, kernel(n, tip), prototype=n) for n in VARIANTS]
    print(standalone.build(dirs=[standalone.ROOT / "patched", *dirs]), flush=True)


def kernel_file(name: str) -> None:
    """Write the variant of the vendored tip's kernel file (torchvision's namespace) and print its path."""
    src = (paths.SRC / paths.KERNEL).read_text()
    out = Path("/tmp/aarch64-bisect") / f"{name}.cpp"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(kernel(name, src))
    print(out)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), HERE.parent / "2026-12-01" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ab(threads: str = "1") -> None:
    _load("col2im-rows").ab(",".join(["fuse", "patched", *VARIANTS]), threads)


def mutants() -> None:
    blocks = _load("channel-blocks")
    blocks.MUTANTS["mut_col2im_group"] = ("std::min(range.second, lo + kCol2imBlockChannels)",
                                          "std::min(c_end, lo + kCol2imBlockChannels)")
    blocks.mutants()


if __name__ == "__main__":
    {"build": build, "kernel": kernel_file, "ab": ab, "mutants": mutants}[sys.argv[1]](*sys.argv[2:])
