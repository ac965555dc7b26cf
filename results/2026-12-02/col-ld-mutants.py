"""Patch 0041 (padded column rows): the grid's two new cases against its mutants.

Stages the 42-patch tip's kernel (the vendored tree's file) as "tip42", and two mutants reading the
padded buffer at its unpadded width: col2im (m1) and the offset/mask pass (m2). Each runs the grid
cases whose column rows are a multiple of 4 KB without channel tiles, compared with baseline by
bits at 1 and 2 threads (`out` differs as patch 0018 declares).

    PYTHONPATH=. .venv/bin/python results/2026-12-02/col-ld-mutants.py > results/2026-12-02/col-ld-mutants.txt
"""
import sys

from tvdcn import cases, isolate, paths, standalone

sys.path.insert(0, str(paths.REPO / "tests"))
from conftest import bits_equal  # noqa: E402

GRAD_INPUT = "const int64_t num_tasks = num_blocks * bands;\n  const int64_t col_ld = columns.stride(0);"
COORD = "const int64_t num_tasks = parallel_imgs * n_groups * n_tiles;\n  const int64_t col_ld = columns.stride(0);"
VARIANTS = {"tip42": None, "tip42-m1": GRAD_INPUT, "tip42-m2": COORD}


def stage(name: str, mutate: str | None) -> None:
    text = (paths.REPO / ".work/src/torchvision" / standalone.KERNEL).read_text()
    if mutate:
        assert text.count(mutate) == 1
        text = text.replace(mutate, mutate.replace("columns.stride(0)", "columns.size(1)"))
    standalone.build(dirs=[standalone.stage_text(name, text)])


def main() -> None:
    for name, mutate in VARIANTS.items():
        stage(name, mutate)
    grid = [c for c in cases.grid() if c.id.startswith(("b2-c8x8-32x32", "b1-c4x6-16x32"))]
    assert len(grid) == 2
    for v in VARIANTS:
        for t in (1, 2):
            ra, rb = isolate.run_cases("baseline", t, grid), isolate.run_cases(f"sa:{v}", t, grid)
            for c in grid:
                diff = [k for k in ra[c.id] if hasattr(ra[c.id][k], "dtype") and not bits_equal(ra[c.id][k], rb[c.id][k])]
                print(v, t, c.id, "differs: " + ", ".join(diff) if diff else "same", flush=True)


if __name__ == "__main__":
    main()
