import torch, time
torch.set_num_threads(1)
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return round(b * 1e3, 1)
for (O, CK, P) in ((256, 2043, 4096), (256, 2016, 4096), (256, 2304, 4096), (128, 432, 20000)):
    W = torch.randn(O, CK); G = torch.randn(O, P)
    cols = torch.empty(CK, P); colsT = torch.empty(P, CK); gw = torch.zeros(O, CK)
    r = {}
    r["tip mm_out (CK,P)=W^T G"] = best(lambda: torch.mm(W.t(), G, out=cols))
    r["cl mm (P,CK)=G^T W"] = best(lambda: torch.mm(G.t(), W, out=colsT))
    r["cl mm chunks 256"] = best(lambda: [torch.mm(G[:, a:a+256].t(), W, out=colsT[a:a+256]) for a in range(0, P, 256)])
    r["tip addmm gw += G cols^T"] = best(lambda: gw.addmm_(G, cols.t()))
    r["cl addmm gw += G colsT"] = best(lambda: gw.addmm_(G, colsT))
    r["cl addmm blocks 128"] = best(lambda: [gw[:, a:a+128].addmm_(G, colsT[:, a:a+128]) for a in range(0, CK, 128)])
    print((O, CK, P), r, flush=True)
