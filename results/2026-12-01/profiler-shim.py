"""Which of the kernel's GEMM helpers go through the dispatcher: the profiler records an op only when
it is dispatched. The backward calls mm_out (torch_call_dispatcher) and addmm_ (the addmm.out C shim)
once per group and channel tile; the forward calls addmm_ only (0036).

Usage: PYTHONPATH=.work/variants/patched/site .venv/bin/python results/2026-12-01/profiler-shim.py
"""
import torch
from torchvision.ops import deform_conv2d

torch.manual_seed(0)
x = torch.randn(2, 8, 16, 16, requires_grad=True)
w = torch.randn(8, 8, 3, 3, requires_grad=True)
off = torch.randn(2, 18, 14, 14, requires_grad=True)
with torch.profiler.profile() as p:
    deform_conv2d(x, off, w).sum().backward()
print(sorted({e.name for e in p.events() if "mm" in e.name or "deform" in e.name}))
