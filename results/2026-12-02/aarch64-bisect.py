"""Which patch changed the aarch64 bits of one grid case (results/2026-12-01/aarch64-41.json)?

    python results/2026-12-02/aarch64-bisect.py build N [N ...]   # cross-compile prefix N's kernel
    python results/2026-12-02/aarch64-bisect.py check N [N ...]   # compare it with torchvision 0.29.1

Each prefix's kernel file and StableABICompat.h are staged as tvdcn.dropin stages the tip's, compiled
with tvdcn.aarch64's command (dropin/flags.py's flags, aarch64-linux-gnu-g++) and run in the
emulated root (tvdcn.aarch64, cached), where the case's output and gradients are compared bit for
bit with PyPI's torchvision 0.29.1 kernel in the same process, at 1, 2 and 4 threads.
"""
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

OUT = Path("/tmp/aarch64-bisect")
# An experiment's builds beside the plain ones: SUFFIX names them, EXTRA_FLAGS adds compiler flags,
# KERNEL replaces the prefix's kernel file with another one.
SUFFIX = os.environ.get("SUFFIX", "")
CASE = "Case(batch=2, cin=16, cout=8, h=24, w=24)"

CHECK = r"""
import sys, torch
sys.path[:0] = [{lib!r}, {repo!r}]
import tvdcn_fast
from tvdcn.cases import Case, make_inputs, run
case = eval({case!r})
inputs = make_inputs(case)
bad = 0
for n in (1, 2, 4):
    torch.set_num_threads(n)
    tvdcn_fast.disable(); ref = run(case, inputs)
    tvdcn_fast.enable(); ours = run(case, inputs)
    for k in ref:
        same = torch.equal(ref[k], ours[k])
        bad += not same
        if not same:
            d = (ref[k].double() - ours[k].double()).abs()
            print(f"  {{n}} thread(s) {{k}}: differs in {{int((d > 0).sum())}} of {{d.numel()}} elements, max {{d.max().item():.3g}}")
print(f"{{'differ' if bad else 'bit-identical'}} ({{bad}} tensors)")
"""


def commits() -> list[str]:
    from tvdcn import paths
    log = subprocess.run(["git", "-C", str(paths.SRC), "log", "--format=%H", "--reverse", "series"], capture_output=True,
                         text=True, check=True).stdout.split()
    return log  # log[0] is pristine, log[N] is prefix N


def build(n: int) -> None:
    from tvdcn import aarch64, dropin, paths
    c = commits()[n]
    tree = OUT / f"tree-{n}{SUFFIX}"
    for rel in (dropin.KERNEL, dropin.COMPAT):
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(subprocess.run(["git", "-C", str(paths.SRC), "show", f"{c}:{rel}"], capture_output=True,
                                        check=True).stdout)
    if os.environ.get("KERNEL"):
        (tree / dropin.KERNEL).write_bytes(Path(os.environ["KERNEL"]).read_bytes())
    src = OUT / f"src-{n}{SUFFIX}"
    dropin.stage(tree, src)
    torch_dir = aarch64.stack_torch(aarch64.STACK)
    cmd = aarch64.compile_command(src, torch_dir) + shlex.split(os.environ.get("EXTRA_FLAGS", ""))
    aarch64.compile_library(cmd, src, torch_dir, OUT / f"obj-{n}{SUFFIX}", src / "tvdcn_fast" / "_C.so")
    print(f"prefix {n}{SUFFIX} ({c[:10]}): {src / 'tvdcn_fast' / '_C.so'}")


def check(n: int) -> None:
    from tvdcn import aarch64
    stack = aarch64.STACK
    py = str(stack.base / "bin" / "python")
    code = CHECK.format(lib=str(OUT / f"src-{n}{SUFFIX}"), repo=str(REPO), case=CASE)
    r = subprocess.run([str(aarch64.runner()), py, "-c", code], capture_output=True, text=True)
    print(f"prefix {n}{SUFFIX}: " + (r.stdout.strip() if r.returncode == 0 else f"FAILED\n{r.stdout}{r.stderr[-3000:]}"),
          flush=True)


if __name__ == "__main__":
    what, ns = sys.argv[1], [int(a) for a in sys.argv[2:]]
    for n in ns:
        {"build": build, "check": check}[what](n)
