"""grad_weight of the grid's channel-tiled case (batch 8, 96 channels, 64x64, 2 weight groups, 3 offset
groups) at 1, 2 and 4 threads, torchvision 0.29.1's own kernel and then tvdcn_fast's, in the aarch64
stack's Python under emulation (after `python -m tvdcn aarch64`):

    PYTHONPATH=$PWD .work/stacks/aarch64-tv0.29/host-python results/2026-11-30/aarch64_thread_repro.py

Output of 2026-11-30 in aarch64-thread-repro.txt.
"""
import json, os, torch
from tvdcn.cases import Case, run
case = Case(batch=8, cin=96, cout=16, h=64, w=64, wgroups=2, ogroups=3)
out = {}
for fast in (False, True):
    if fast:
        import tvdcn_fast  # routes torchvision's CPU kernels
    g = {}
    for t in (1, 2, 4):
        torch.set_num_threads(t)
        g[t] = run(case)["grad_weight"]
    d = {t: (g[t] - g[1]).abs().max().item() for t in (2, 4)}
    out["tvdcn_fast" if fast else "torchvision"] = {"max|gw(t)-gw(1)|": d, "max|gw|": g[1].abs().max().item(),
                                                   "elements differing at 4": int((g[4] != g[1]).sum())}
print(json.dumps(out))
