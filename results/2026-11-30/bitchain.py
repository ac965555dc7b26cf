"""Digests of every result of the grid (+ low-precision extras) per variant and thread count;
consecutive variants compared. Usage: bitchain.py v1,v2,... threads"""
import sys, dataclasses, hashlib, json
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from tvdcn import cases, isolate
variants = sys.argv[1].split(","); threads = [int(t) for t in sys.argv[2].split(",")]
grid = cases.grid()
grid += [dataclasses.replace(c, dtype=d) for c in grid[:40:5] for d in ("bfloat16", "float16")]
def digest(r):
    if not isinstance(r, dict):
        return {"error": str(r)[:300]}
    out = {}
    for k, v in r.items():
        if hasattr(v, "dtype"):
            out[k] = hashlib.sha256(v.contiguous().view(-1).view(__import__("torch").uint8).numpy().tobytes()).hexdigest()[:16] + str(v.dtype)
    return out
res = {}
for v in variants:
    for t in threads:
        rr = isolate.run_cases(v, t, grid)
        res[(v, t)] = {c.id: digest(rr[c.id]) for c in grid}
        print(f"{v} @{t}: done", flush=True)
for a, b in zip(variants, variants[1:]):
    for t in threads:
        da, db = res[(a, t)], res[(b, t)]
        diff = [(cid, k) for cid in da for k in set(da[cid]) | set(db[cid]) if da[cid].get(k) != db[cid].get(k)]
        kinds = sorted({k for _, k in diff})
        print(f"{a} -> {b} @{t}: {len(diff)} of {sum(len(x) for x in da.values())} differ {kinds} {[d for d in diff if 'float16' not in d[0]][:6]}")
