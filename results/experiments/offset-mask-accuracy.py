# Accuracy of the offset/mask gradients against a float64 run of the same kernel (stop 20):
# grad_offset and grad_mask of two standalone builds (tvdcn.standalone; "exp" with the experiment
# applied, "patched" the series) in float32, compared with the series in float64.
# Run: .venv/bin/python results/experiments/offset-mask-accuracy.py after staging and building both.
from pathlib import Path
import torch
WORK = Path(__file__).resolve().parents[2] / ".work" / "standalone"
torch.ops.load_library(str(WORK / "exp" / "build" / "tvdcn_sa_exp.so"))
torch.ops.load_library(str(WORK / "patched" / "build" / "tvdcn_sa_patched.so"))
def bwd(ns, x, w, off, m, b, go):
    return getattr(torch.ops, ns)._deform_conv2d_backward(go, x, w, off, m, b, 1, 1, 1, 1, 1, 1, 1, 1, True)
for (B, C, H, smooth) in [(2, 64, 32, False), (2, 64, 32, True), (1, 256, 32, True)]:
    g = torch.Generator().manual_seed(0)
    if smooth:  # a smooth image: neighbouring pixels close, so corner differences are small
        x = torch.nn.functional.interpolate(torch.randn(B, C, H // 8, H // 8, generator=g, dtype=torch.float64), size=(H, H), mode="bilinear")
    else:
        x = torch.randn(B, C, H, H, generator=g, dtype=torch.float64)
    w = torch.randn(C, C, 3, 3, generator=g, dtype=torch.float64) / (3 * C ** 0.5)
    off = torch.randn(B, 18, H, H, generator=g, dtype=torch.float64) * 2
    m = torch.rand(B, 9, H, H, generator=g, dtype=torch.float64)
    b = torch.zeros(C, dtype=torch.float64)
    go = torch.randn(B, C, H, H, generator=g, dtype=torch.float64)
    ref = bwd("tvdcn_sa_patched", x, w, off, m, b, go)
    f = lambda t: t.float()
    old = bwd("tvdcn_sa_patched", f(x), f(w), f(off), f(m), f(b), f(go))
    new = bwd("tvdcn_sa_exp", f(x), f(w), f(off), f(m), f(b), f(go))
    for i, name in ((2, "grad_offset"), (3, "grad_mask")):
        r = ref[i]; scale = r.abs().max().item()
        eo = (old[i].double() - r).abs(); en = (new[i].double() - r).abs()
        print(f"B{B} C{C} {H}x{H} {'smooth' if smooth else 'noise'} {name}: max err / max|ref|: old {eo.max().item()/scale:.2e} new {en.max().item()/scale:.2e}; "
              f"median rel err old {(eo / r.abs().clamp_min(1e-30)).median().item():.2e} new {(en / r.abs().clamp_min(1e-30)).median().item():.2e}")
