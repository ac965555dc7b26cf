"""Strict bit comparison of two variants over the grid (+extra cases) at several thread counts."""
import sys, dataclasses
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from tvdcn import cases, isolate
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"))
from conftest import bits_equal
a, b = sys.argv[1], sys.argv[2]
threads = [int(t) for t in sys.argv[3].split(",")] if len(sys.argv) > 3 else [1, 2, 3, 4, 8]
grid = cases.grid()
extra = [dataclasses.replace(c, dtype=d) for c in grid[:40:5] for d in ("bfloat16", "float16")]
grid += extra
bad = 0; n = 0
for t in threads:
    ra = isolate.run_cases(a, t, grid); rb = isolate.run_cases(b, t, grid)
    for c in grid:
        x, y = ra[c.id], rb[c.id]
        if not isinstance(x, dict) or not isinstance(y, dict):
            print("ERR", t, c.id, type(x), type(y), str(x)[:200], str(y)[:200]); bad += 1; continue
        for k in x:
            n += 1
            if hasattr(x[k], "dtype") and not bits_equal(x[k], y[k]):
                print("DIFF", t, c.id, k); bad += 1
    print(f"threads {t}: done", flush=True)
print(f"{n} tensors compared, {bad} differ")
