"""MKL rounding against operand alignment: the same (2 x N) @ (N x 1) product, the second operand at storage offsets 0..3 rows of a buffer; counts the trials whose results differ. 2026-11-30, AMD EPYC, torch 2.13.0+cpu: 654 of 2000."""
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
diff = 0; tot = 0
for trial in range(2000):
    N = int(torch.randint(2, 40, ()))
    A = torch.randn(2, N, dtype=torch.float64)
    B = torch.randn(1, N, dtype=torch.float64)
    outs = []
    for off in range(4):
        buf = torch.zeros(4, N, dtype=torch.float64); buf[off] = B[0]
        b = buf[off:off+1]
        C = torch.zeros(2, 1, dtype=torch.float64)
        C.addmm_(A, b.t())
        outs.append(C)
    tot += 1
    if any(not torch.equal(outs[0], o) for o in outs[1:]):
        diff += 1
print(f"{diff} of {tot} trials: addmm_ (n=1) result depends on the operand's storage offset")
