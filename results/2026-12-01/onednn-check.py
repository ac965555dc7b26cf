"""Issue 24 prototype check: error against the float64 op and thread invariance (1,2,3,4,8)."""
import torch
R = "/work/main/.work/standalone"
vs = ["patched", "proto_p35", "proto_dnn_r0", "proto_dnn_r1k", "proto_dnn_r4k", "proto_mm_r4k"]
for v in vs: torch.ops.load_library(f"{R}/{v}/build/tvdcn_sa_{v}.so")
def op(v): return getattr(torch.ops, f"tvdcn_sa_{v}").deform_conv2d
torch.manual_seed(0)
for (B, C, H, G) in ((1, 256, 64, 1), (2, 64, 32, 1), (3, 32, 17, 2), (40, 16, 9, 1)):
    x = torch.randn(B, C, H, H); w = torch.randn(C, C // G, 3, 3) / (3 * C) ** .5; b = torch.randn(C)
    off = torch.randn(B, 18, H, H) * 2; m = torch.rand(B, 9, H, H)
    args = (1, 1, 1, 1, 1, 1, G, 1, True)
    ref = op("patched")(x.double(), w.double(), off.double(), m.double(), b.double(), *args)
    for v in vs:
        outs = []
        for th in (1, 2, 3, 4, 8):
            torch.set_num_threads(th); outs.append(op(v)(x, w, off, m, b, *args))
        inv = all(torch.equal(outs[0], o) for o in outs[1:])
        err = (outs[0].double() - ref).abs().max().item()
        print(f"B{B} C{C} H{H} G{G} {v:15s} max|err| {err:.2e} thread-invariant {inv}")
