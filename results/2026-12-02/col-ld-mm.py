"""Issue 24: torch.mm (MKL) into an output whose rows are a multiple of 4 KB, and whether a padded
row stride changes its bits. Timing part: s32-b8's weight^T x grad_out, medians of 21 calls; bits part:
outputs at several row strides against a contiguous one.

    .venv/bin/python results/2026-12-02/col-ld-mm.py time|bits
"""
import sys


def time_():
    import torch, time
    def t(f, n=21):
        v=[]
        for _ in range(n):
            s=time.perf_counter(); f(); v.append(time.perf_counter()-s)
        v.sort(); return v[0]*1e3, v[n//2]*1e3
    for th in (1,2):
        torch.set_num_threads(th)
        M,K,N=576,64,8192
        W=torch.randn(K,M); A=W.t(); B=torch.randn(K,N); G=torch.randn(K,N)
        for pad in (0,16,32,0,16):
            buf=torch.empty(M,N+pad); out=buf[:, :N]
            gw=torch.empty(K,M)
            r1=t(lambda: torch.mm(A,B,out=out))
            r2=t(lambda: torch.mm(G,out.t(),out=gw))
            print(f"th{th} pad{pad}: grad_columns {r1[0]:.2f}/{r1[1]:.2f} ms, grad_weight {r2[0]:.2f}/{r2[1]:.2f} ms", flush=True)


def bits():
    import torch
    torch.manual_seed(0)
    for dt in (torch.float64, torch.float32):
      for (M,K,N) in [(144,16,243),(576,64,8192),(216,24,578),(144,16,256)]:
        W=torch.randn(K,M,dtype=dt); A=W.t(); B=torch.randn(K,N,dtype=dt)
        ref=torch.mm(A,B)
        line = 64//ref.element_size()
        res=[]
        for ld in (N, N+16, ((N+line-1)//line|1)*line, ((N+line-1)//line)*line, N+1):
            buf=torch.empty(M,ld,dtype=dt); out=buf[:,:N]
            torch.mm(A,B,out=out)
            res.append(f"ld{ld}:{'=' if torch.equal(out,ref) else 'DIFF'}")
        print(dt, M,K,N, *res)


if __name__ == "__main__":
    {"time": time_, "bits": bits}[sys.argv[1]]()
