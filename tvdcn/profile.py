"""Where a training step's time goes, kernel by kernel: ``python -m tvdcn.profile``.

The op's internal passes are invisible to ``torch.profiler`` (one op call, and its GEMMs go
through the C shim), so this samples the process with Linux ``perf record`` while it repeats
one training step (forward + backward of all five inputs) of a benchmark config, and sorts the
samples by the function they fall in: the backward's offset/mask pass, its input-gradient pass
(col2im), the im2col it redoes for the weight gradient, the forward's sampling, the GEMMs (MKL
or OpenBLAS, forward and backward together), the kernel's page faults and zeroing, and the rest
(the Python loop, autograd, allocation). Python's start-up is not sampled (``--delay``).

Each share times the step's median gives milliseconds per pass. Any variant runs, a standalone
kernel (``sa:<name>``, tvdcn.standalone) included; one process per (config, threads). The labels
fit the series' kernel file (upstream's forward im2col would be counted as the weight-grad one).

``--counters V1,V2``: what a change saves where step times are too noisy to show it. For each
variant, processes making 1 + ``--steps`` A and 1 + B training steps run under ``perf stat``
(page faults, user and system CPU time), interleaved over ``--runs`` rounds; the difference of
the two, divided by B - A, is the cost of one step without the process's start-up. User and
system time are the kernel's tick-based accounting: read them for steps of tens of ms or more.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import variant
from .log import Failure, info

# (label, substrings of the symbol or shared object): the first that matches wins.
CATEGORIES = [
    ("offset+mask grads", ("compute_grad_offset_and_mask", "col2im_coord")),
    ("input grad (col2im)", ("compute_grad_input", "deformable_col2im")),
    ("weight-grad im2col", ("deformable_im2col",)),
    ("forward sampling", ("deform_conv2d_forward_kernel", "bilinear_interpolate")),
    # The zero-bordered input copies (forward and backward), and older series' forward copy.
    ("padded copies", ("padded_copy", "copy_padded_channels_last")),
    ("GEMM", ("gemm", "mkl_blas", "openblas", "dnnl", "blas_thread")),
    ("kernel: page faults, zeroing", ("[k]",)),
]
OTHER = "other (Python, autograd, allocation, copies)"
LABELS = [c[0] for c in CATEGORIES] + [OTHER]

# A training step of config argv[1] at argv[2] threads, as step(); both scripts below start so.
SETUP = """
import os, sys, time, torch
from tvdcn import catalog, standalone
f = standalone.current_op()
torch.set_num_threads(int(sys.argv[2]))
c = catalog.config(sys.argv[1])
t = catalog.inputs(c, True)
g = torch.ones(c.batch, c.channels, c.size, c.size)
def step():
    f(t["input"], t["offset"], t["weight"], t["bias"], padding=1, mask=t["mask"]).backward(g)
"""
STEP = SETUP + """
step()
print("ready", flush=True)
times, end = [], time.perf_counter() + float(sys.argv[3])
while time.perf_counter() < end:
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
print("times", *times, flush=True)
"""


def require_perf(why: str) -> None:
    if shutil.which("perf") is None:
        raise Failure(f"perf (linux-tools) is not installed: {why}")


def categorize(report: str) -> dict[str, float]:
    """``perf report --sort dso,symbol`` lines -> share of samples per category."""
    shares = dict.fromkeys(LABELS, 0.0)
    for line in report.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line.split()[0]:
            continue
        pct = float(line.split()[0].rstrip("%"))
        label = next((lab for lab, keys in CATEGORIES if any(k in line for k in keys)), OTHER)
        shares[label] += pct / 100
    return shares


def profile(name: str, config: str, threads: int, seconds: float) -> dict:
    """One process of ``name`` repeating the step; returns its median time and the split."""
    require_perf("the split needs `perf record`")
    with tempfile.TemporaryDirectory(prefix="tvdcn-profile-") as tmp:
        data = Path(tmp) / "perf.data"
        # perf attaches once the step is warm (the process says so), for `seconds`; the process
        # goes on a little longer so that every sample falls in the loop.
        proc = subprocess.Popen([variant.python(name), "-c", STEP, config, str(threads), str(seconds + 1.5)],
                                env=variant.env(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "ready":
            proc.wait()
            raise Failure(f"the step of {name} {config}@{threads} failed:\n{proc.stderr.read()[-2000:]}")
        rec = subprocess.run(["perf", "record", "-q", "-F", "999", "-o", str(data), "-p", str(proc.pid), "--",
                              "sleep", str(seconds)], capture_output=True, text=True)
        out, err = proc.communicate()
        if rec.returncode != 0 or proc.returncode != 0:
            raise Failure(f"profiling {name} {config}@{threads} failed:\n{rec.stderr[-2000:]}{err[-2000:]}")
        times = [float(x) for ln in out.splitlines() if ln.startswith("times") for x in ln.split()[1:]]
        rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,symbol",
                              "-g", "none", "--stdio"], capture_output=True, text=True)
        if rep.returncode != 0:
            raise Failure(f"perf report failed:\n{rep.stderr[-2000:]}")
    return {"median_ms": 1e3 * statistics.median(times), "steps": len(times), "shares": categorize(rep.stdout)}


COUNT_STEPS = SETUP + """
for _ in range(1 + int(sys.argv[3])):
    step()
"""
COUNTERS = ("page-faults", "user_time", "system_time")


def count(name: str, config: str, threads: int, steps: int) -> dict[str, float]:
    """``perf stat`` counters of one process of ``name`` making 1 + ``steps`` training steps."""
    require_perf("--counters needs `perf stat`")
    r = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(COUNTERS), "--", variant.python(name), "-c",
                        COUNT_STEPS, config, str(threads), str(steps)],
                       env=variant.env(name), capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"{name} {config}@{threads} ({steps} steps) failed:\n{r.stderr[-2000:]}")
    vals = {}
    for ln in r.stderr.splitlines():
        f = ln.split(",")
        if len(f) > 2 and f[2] in COUNTERS and f[0].replace(".", "", 1).isdigit():
            vals[f[2]] = float(f[0])
    if set(vals) != set(COUNTERS):
        raise Failure(f"perf stat gave {sorted(vals)} of {list(COUNTERS)}:\n{r.stderr[-2000:]}")
    # user_time and system_time are in ns.
    return {"page_faults": vals["page-faults"], "user_ms": vals["user_time"] / 1e6,
            "system_ms": vals["system_time"] / 1e6}


def counters(names: list[str], config: str, threads: int, steps: tuple[int, int], runs: int) -> dict:
    """Per-step counters of each variant, one value per run (``runs`` interleaved rounds)."""
    per: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(runs):
        for n in (names if r % 2 == 0 else names[::-1]):
            lo, hi = count(n, config, threads, steps[0]), count(n, config, threads, steps[1])
            per[n].append({k: (hi[k] - lo[k]) / (steps[1] - steps[0]) for k in lo})
    return per


def counters_markdown(config: str, threads: int, per: dict) -> str:
    lines = ["| variant | page faults per step | user ms per step | system ms per step |", "|---|---|---|---|"]
    for n, runs in per.items():
        cells = []
        for k, fmt in (("page_faults", "{:,.0f}"), ("user_ms", "{:.0f}"), ("system_ms", "{:.0f}")):
            v = sorted(x[k] for x in runs)
            cells.append(f"{fmt.format(statistics.median(v))} ({fmt.format(v[0])} to {fmt.format(v[-1])})")
        lines.append(f"| {n} ({config} @{threads}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    head = "| config @ threads | step ms | " + " | ".join(LABELS) + " |"
    lines = [head, "|" + "---|" * (len(LABELS) + 2)]
    for r in rows:
        cells = [f"{r['median_ms'] * r['shares'][lab]:.1f} ({100 * r['shares'][lab]:.0f}%)" for lab in LABELS]
        lines.append(f"| {r['config']} @{r['threads']} | {r['median_ms']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tvdcn profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="patched", help="a variant, or sa:<name> for a standalone kernel")
    p.add_argument("--configs", default="s32-b1,s32-b8,s64-b1,c3-det")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--seconds", type=float, default=4.0, help="sampled seconds per (config, threads)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--counters", metavar="VARIANTS", default=None,
                   help="comma-separated variants: perf stat counters per step instead of the split")
    p.add_argument("--steps", default="1,6", help="with --counters: the two step counts A,B")
    p.add_argument("--runs", type=int, default=3, help="with --counters: interleaved rounds")
    a = p.parse_args(argv)
    if a.counters:
        return main_counters(a)
    try:
        variant.site(a.variant)
        rows = []
        t0 = time.monotonic()
        for config in a.configs.split(","):
            for threads in (int(x) for x in a.threads.split(",")):
                info(f"{a.variant}: {config} @ {threads} threads")
                rows.append({"config": config, "threads": threads, **profile(a.variant, config, threads, a.seconds)})
    except Failure as e:
        print(f"tvdcn.profile: error: {e}", file=sys.stderr)
        return 1
    print(f"Training step of {a.variant} ({variant.info(a.variant).get('version')}), split by `perf record` "
          f"samples, {a.seconds:g} s per row, {os.cpu_count()} cores; ms per step (share):\n")
    print(markdown(rows))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"variant": a.variant, "rows": rows,
                                      "wall_seconds": round(time.monotonic() - t0, 1)}, indent=2) + "\n")
    return 0


def main_counters(a: argparse.Namespace) -> int:
    names = a.counters.split(",")
    steps = tuple(int(x) for x in a.steps.split(","))
    if len(steps) != 2 or not 0 <= steps[0] < steps[1]:
        print("tvdcn.profile: error: --steps takes A,B with 0 <= A < B", file=sys.stderr)
        return 2
    out: dict = {"variants": names, "steps": steps, "runs": a.runs, "rows": []}
    try:
        for n in names:
            variant.site(n)
        for config in a.configs.split(","):
            for threads in (int(x) for x in a.threads.split(",")):
                info(f"counters: {config} @ {threads} threads")
                per = counters(names, config, threads, steps, a.runs)
                out["rows"].append({"config": config, "threads": threads, "per_step": per})
                print(counters_markdown(config, threads, per) + "\n", flush=True)
    except Failure as e:
        print(f"tvdcn.profile: error: {e}", file=sys.stderr)
        return 1
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
