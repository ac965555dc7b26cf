import sys, time, torch
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/work/main/results/2026-12-02")
from tvdcn import standalone
import importlib
ci = importlib.import_module("coord-interleave")
op = standalone.load(standalone.ROOT / sys.argv[2])
torch.set_num_threads(int(sys.argv[3]))
b, c, s = {"s32-b8": (8, 64, 32), "s64-b1": (1, 256, 64), "c3-det": (2, 128, 100), "s32-b1": (1, 64, 32)}[sys.argv[4]]
a = ci._args(b, c, c, s)
t = time.time(); n = 0
while time.time() - t < float(sys.argv[1]):
    op._deform_conv2d_backward(*a); n += 1
print(sys.argv[2], n, (time.time() - t) / n * 1e3, "ms")
