"""Issue 26 finding: the backward's channel tiles (patch 0026) change bits that the series does
not declare, at the default thresholds, where a tile is narrow.

Part 1 (torch only): the columns of a tile are a block of rows of W^T x G; is that block, computed
alone into a buffer as the kernel does (torch.mm into a narrowed buffer), bit-identical to the
same rows of the whole product? Part 2 (run once per variant, `scripts/tvdcn run VARIANT --
results/2026-11-30/tile-rounding.py`): digests of forward + all gradients of a shape whose default
tiling is [0, 16), [16, 17) (17 channels, 256x256, batch 1: 2.25 MiB of columns per channel), at
1 and 2 threads; compare the two variants' output lines.
"""
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

if not os.environ.get("TVDCN_VARIANT"):
    torch.manual_seed(0)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for cin, cout, imgs, hw, tile in [(4, 6, 7, 56, 3), (4, 6, 33, 56, 3), (17, 6, 1, 65536, 16)]:
            kk = 9
            W = torch.rand(cout, cin * kk) * 2 - 1
            G = torch.rand(cout, imgs * hw) * 2 - 1
            full = torch.empty(cin * kk, imgs * hw)
            torch.mm(W.t(), G, out=full)
            buf = torch.empty(tile * kk, imgs * hw)
            same = []
            for c0 in range(0, cin, tile):
                c1 = min(c0 + tile, cin)
                t = buf.narrow(0, 0, (c1 - c0) * kk)
                torch.mm(W.narrow(1, c0 * kk, (c1 - c0) * kk).t(), G, out=t)
                same.append(f"[{c0},{c1}) {'same' if torch.equal(t, full[c0 * kk:c1 * kk]) else 'DIFFERS'}")
            print(f"{threads} thread(s), W^T {cin * kk}x{cout} x G {cout}x{imgs * hw}, tiles of {tile} channels: "
                  + ", ".join(same))
    sys.exit(0)

from tvdcn.cases import Case, make_inputs, run  # noqa: E402

for threads in (1, 2):
    torch.set_num_threads(threads)
    c = Case(batch=1, cin=17, cout=6, h=256, w=256)
    r = run(c, make_inputs(c))
    print(json.dumps({"variant": os.environ["TVDCN_VARIANT"], "case": c.id, "threads": threads,
                      **{k: hashlib.sha1(v.contiguous().view(torch.int32).numpy().tobytes()).hexdigest()[:12]
                         for k, v in r.items()}}))
