"""Side-by-side benchmark of variants: ``scripts/bench.sh``.

Each variant runs in its own process (they register the same ops); processes are interleaved
round by round (ABAB..., the order alternating), so drift of the machine hits both alike.
Within a process ``torch.utils.benchmark.Timer.blocked_autorange`` measures each config at each
thread count of the sweep (``--threads 1,2,16``).

Timed beside the variants, in the first variant's processes, on the same inputs:
  * the floor (float32 only): a dense ``conv2d`` of the same shape (same input, weight and bias,
    no offsets), the same pass (forward, or forward + backward), checked to agree with the variant's op run
    with zero offsets and mask 1 (which is that convolution);
  * the peers (``--peers onnxruntime,openvino``, forward only): ONNX Runtime's ``DeformConv``
    and OpenVINO's ``deformable_convolution`` (tvdcn.peers), each checked to agree with the
    variant's output first (largest difference relative to the output's largest magnitude);
  * for the end-to-end config ``resnet50-dcn`` (a ResNet-50 whose 3x3 convolutions in stages
    c3-c5 are DCNv2 blocks, inference, batch 1, 512x512), the plain ResNet-50 as the floor.

Also, each in fresh processes: ``--memory`` (how much one call -- a forward, or in train mode a
forward + backward -- grows the process's peak RSS beyond what it returns; one process per case)
and ``--profile`` (torch.profiler split of one forward at one thread:
GEMM / layout copies / the rest, which is the sampling).

Reported: median over all measured blocks, the spread (min-max of the per-round medians), the
speedup of each variant over the first, each variant's ratio to the floor and to the best peer,
all from the same run. Output: JSON, and the markdown tables (and with ``--plot`` a PNG of the
sweep) that tvdcn.benchreport makes from it. The configs and their inputs: tvdcn.catalog.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import benchreport, catalog, paths, series, standalone, variant
from .log import Failure, info


MODES = ("forward", "train")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", default="baseline,patched", help="comma-separated; the first is the reference")
    p.add_argument("--configs", default=",".join(c.name for c in catalog.CONFIGS if c.timed),
                   help=f"comma-separated, of {', '.join(c.name for c in catalog.CONFIGS)} and {catalog.MODEL} (end to end)")
    p.add_argument("--mode", choices=[*MODES, "both"], default="forward",
                   help="forward (no grad) or train (forward + backward of all inputs)")
    p.add_argument("--rounds", type=int, default=5, help="processes per variant, interleaved")
    p.add_argument("--threads", default=None,
                   help="thread counts to sweep, comma-separated (default: all cores)")
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds per config per process")
    p.add_argument("--json", type=Path, default=paths.REPO / "bench-results" / "bench.json")
    p.add_argument("--no-floor", action="store_true", help="do not time the dense conv2d floor")
    p.add_argument("--peers", default="", help="comma-separated: onnxruntime,openvino (forward only; "
                   "optional dependencies, requirements-bench.txt)")
    p.add_argument("--memory", action="store_true",
                   help="also measure each variant's peak memory growth of one call per config and mode")
    p.add_argument("--profile", action="store_true",
                   help="also split one forward per config at one thread: GEMM / layout / sampling")
    p.add_argument("--dtypes", default="float32",
                   help="comma-separated: float32,bfloat16,float16 (cases in another dtype than float32 "
                        "are named case:dtype; a variant without kernels for it shows -)")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of the thread sweep (matplotlib)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)


def _worker(args: argparse.Namespace) -> int:
    """In a variant's process: time every config at every thread count, print JSON."""
    import torch

    out: dict[str, Any] = {"env": {"torch": torch.__version__, "parallel_info": torch.__config__.parallel_info()},
                           "results": {}, "agreement": {}, "peers": {}}
    if args.worker == "memory":
        out["memory"] = {name: _memory(catalog.config(name), args.mode == "train") for name in args.configs.split(",")}
    elif args.worker == "profile":
        out["profile"] = {name: _profile(catalog.config(name)) for name in args.configs.split(",")}
    else:
        _time_all(args, out)
    print(json.dumps(out))
    return 0


def _time_all(args: argparse.Namespace, out: dict[str, Any]) -> None:
    import torch
    import torch.utils.benchmark as tb
    deform_conv2d = standalone.current_op()

    def timeit(stmt: str, glob: dict[str, Any], ctx: Any, key: str, threads: int) -> None:
        with ctx:
            timer = tb.Timer(stmt, globals=glob, num_threads=threads)
            timer.timeit(1)  # warm-up
            out["results"][key] = timer.blocked_autorange(min_run_time=args.min_run_time).times

    peers = [p for p in args.peers.split(",") if p] if args.floor else []
    if peers:
        from . import peers as peer_mod
        out["peers"] = {p: peer_mod.version(p) for p in peers}
    for threads in [int(x) for x in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for mode in ([*MODES] if args.mode == "both" else [args.mode]):
            for name in args.configs.split(","):
                key = f"{mode}/{name}@{threads}"
                if name == catalog.MODEL:
                    if mode != "forward":
                        continue
                    x = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
                    models = {key: catalog.resnet50_dcn(True)}
                    if args.floor:
                        models[f"floor:{key}"] = catalog.resnet50_dcn(False)
                    for k, m in models.items():
                        timeit("m(x)", {"m": m, "x": x}, torch.no_grad(), k, threads)
                    continue
                c = catalog.config(name)
                for dtype in args.dtypes.split(","):
                    dkey = key if dtype == "float32" else f"{mode}/{name}:{dtype}@{threads}"
                    t = catalog.inputs(c, mode == "train", dtype)
                    stmt = "y = f(i, o, w, b, padding=1, mask=m)"
                    if mode == "train":
                        stmt += "; y.backward(g)"
                        t["grad_out"] = torch.ones(c.batch, c.channels, c.size, c.size, dtype=t["input"].dtype)
                    ctx = torch.no_grad() if mode == "forward" else torch.enable_grad()
                    glob = {"f": deform_conv2d, "conv2d": torch.nn.functional.conv2d, "i": t["input"],
                            "o": t["offset"], "w": t["weight"], "b": t["bias"], "m": t["mask"],
                            "g": t.get("grad_out")}
                    if args.floor and dtype == "float32":
                        timeit(stmt.replace("f(i, o, w, b, padding=1, mask=m)", "conv2d(i, w, b, padding=1)"),
                               glob, ctx, f"floor:{dkey}", threads)
                    try:
                        with ctx:
                            deform_conv2d(t["input"], t["offset"], t["weight"], t["bias"], padding=1, mask=t["mask"])
                    except (RuntimeError, NotImplementedError):
                        if dtype == "float32":
                            raise
                        continue  # this variant has no kernels for dtype
                    timeit(stmt, glob, ctx, dkey, threads)
                    if args.floor and mode == "forward" and dtype == "float32":
                        # The floor is the op with zero offsets and mask 1.
                        with torch.no_grad():
                            a = deform_conv2d(t["input"], torch.zeros_like(t["offset"]), t["weight"], t["bias"],
                                              padding=1, mask=torch.ones_like(t["mask"]))
                            f = torch.nn.functional.conv2d(t["input"], t["weight"], t["bias"], padding=1)
                        out["agreement"][f"conv2d:{key}"] = ((a - f).abs().max() / f.abs().max()).item()
                t = catalog.inputs(c, False)
                if mode == "forward" and peers:
                    from . import peers as peer_mod
                    with torch.no_grad():
                        want = deform_conv2d(t["input"], t["offset"], t["weight"], t["bias"], padding=1,
                                             mask=t["mask"])
                    arrays = {k: v.detach().numpy() for k, v in t.items() if k != "grad_out"}
                    for p in peers:
                        run = peer_mod.make(p, arrays, threads)
                        got = torch.from_numpy(run().copy())
                        out["agreement"][f"{p}:{key}"] = ((got - want).abs().max() / want.abs().max()).item()
                        timeit("run()", {"run": run}, torch.no_grad(), f"peer:{p}:{key}", threads)


def _memory(c: catalog.Config, train: bool) -> dict[str, float]:
    """Peak RSS growth of one forward call, or with ``train`` one training step (forward +
    backward of all five inputs), beyond what it returns (the output; in train mode the five
    gradients too), in MiB. Run once per process: ``ru_maxrss`` is the process's peak so far,
    which before the call is the inputs."""
    import resource

    import torch
    deform_conv2d = standalone.current_op()

    t = catalog.inputs(c, train)
    g = torch.ones(c.batch, c.channels, c.size, c.size) if train else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.enable_grad() if train else torch.no_grad():
        y = deform_conv2d(t["input"], t["offset"], t["weight"], t["bias"], padding=1, mask=t["mask"])
        if train:
            y.backward(g)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    returned = [y] + ([v.grad for v in t.values()] if train else [])
    out_mib = sum(r.numel() * r.element_size() for r in returned) / 2**20
    return {"output_mib": out_mib, "growth_mib": (peak - before) / 1024, "extra_mib": (peak - before) / 1024 - out_mib}


def _profile(c: catalog.Config) -> dict[str, float]:
    """Where one forward at one thread goes: the GEMM work (``mm`` of C_out x 9*C_in by a
    cache-hot 9*C_in x 128 tile, timed alone and scaled to the B*H*W columns: the op's own GEMMs
    go through the C shim, which the profiler does not see), the layout copies the profiler sees
    inside the op (padding, contiguous copies, the old forward's output transpose and bias add),
    and the rest: the sampling (im2col), and whatever the op's GEMMs lose against that floor."""
    import torch
    import torch.utils.benchmark as tb
    from torch.profiler import ProfilerActivity, profile
    deform_conv2d = standalone.current_op()

    torch.set_num_threads(1)
    t = catalog.inputs(c, False)
    run = lambda: deform_conv2d(t["input"], t["offset"], t["weight"], t["bias"], padding=1, mask=t["mask"])  # noqa: E731
    with torch.no_grad():
        total = tb.Timer("run()", globals={"run": run}).blocked_autorange(min_run_time=1.0).median
        w = t["weight"].reshape(c.channels, -1)
        pixels = c.batch * c.size * c.size
        tile = min(128, pixels)
        cols = torch.rand(w.shape[1], tile)
        gemm = tb.Timer("torch.mm(w, cols)", globals={"torch": torch, "w": w, "cols": cols}).blocked_autorange(
            min_run_time=1.0).median * pixels / tile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                run()
    ev = {e.key: e for e in prof.key_averages()}
    op = ev["torchvision::deform_conv2d"].cpu_time_total
    layout = sum(e.self_cpu_time_total for k, e in ev.items() if k in (
        "aten::constant_pad_nd", "aten::copy_", "aten::add", "aten::fill_", "aten::zero_")) / op
    return {"total_ms": 1e3 * total, "gemm": gemm / total, "layout": layout,
            "sampling_and_rest": 1 - gemm / total - layout}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _run_worker(n: str, args: argparse.Namespace, what: str, floor: bool = False) -> dict[str, Any]:
    configs = args.configs if what == "time" else ",".join(c for c in args.configs.split(",") if c != catalog.MODEL)
    cmd = [variant.python(n), "-m", "tvdcn.bench", "--worker", what, "--configs", configs, "--dtypes", args.dtypes,
           "--mode", args.mode, "--min-run-time", str(args.min_run_time), "--threads", args.threads]
    if floor:
        cmd += ["--floor", "--peers", args.peers]
    p = subprocess.run(cmd, env=variant.env(n), capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"benchmark worker for {n} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def stale(name: str) -> str | None:
    """Why a built ``patched`` or ``prefix-N`` variant is not of the vendored series as it stands
    (after the series was edited or renumbered), or None."""
    v = variant.parse(name)
    if not isinstance(v, variant.Built) or (v.base != "patched" and v.prefix is None) or not paths.SRC.is_dir():
        return None
    commits = series.git("rev-list", "--reverse", "pristine..series").split()
    if v.prefix is not None and not 0 < v.prefix <= len(commits):
        return f"variant {name!r}: the series has {len(commits)} patches"
    want = commits[-1] if v.prefix is None else commits[v.prefix - 1]
    tree = series.git("rev-parse", f"{want}^{{tree}}")
    have = str(v.info().get("key", {}).get("tree"))
    if have == tree:
        return None
    what = "tip" if v.prefix is None else f"patch {v.prefix}"
    return (f"variant {name!r} was built from tree {have[:12]}, not from the series' {what} (tree {tree[:12]}): "
            f"run python -m tvdcn build --variant {name}")


def main(args: argparse.Namespace) -> int:
    if args.worker:
        return _worker(args)
    names = args.variants.split(",")
    for n in names:
        variant.site(n)  # fails early with "run scripts/build.sh"
        if why := stale(n):
            raise Failure(why)
    args.threads = args.threads or str(os.cpu_count())
    for c in args.configs.split(","):
        if c != catalog.MODEL:
            catalog.config(c)
    peers = [p for p in args.peers.split(",") if p]
    if peers:
        from . import peers as peer_mod
        for p in peers:
            if p not in peer_mod.PEERS:
                raise Failure(f"unknown peer {p!r}: one of {', '.join(peer_mod.PEERS)}")
            why = peer_mod.available(p)
            if why:
                raise Failure(why)
    times: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    round_medians: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    env: dict[str, Any] = {}
    agreement: dict[str, float] = {}
    peer_versions: dict[str, str] = {}
    t0 = time.monotonic()
    for r in range(args.rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            info(f"round {r + 1}/{args.rounds}: {n}")
            res = _run_worker(n, args, "time", floor=n == names[0] and not args.no_floor)
            env = res["env"]
            agreement.update(res["agreement"])
            peer_versions.update(res["peers"])
            for key, ts in res["results"].items():
                if key.startswith("floor:"):
                    who, key = "conv2d", key.split(":", 1)[1]
                elif key.startswith("peer:"):
                    _, who, key = key.split(":", 2)
                else:
                    who = n
                times.setdefault(who, {}).setdefault(key, []).extend(ts)
                round_medians.setdefault(who, {}).setdefault(key, []).append(statistics.median(ts))
    for k, v in agreement.items():
        if not v <= 1e-4:
            raise SystemExit(f"{k.split(':')[0]} disagrees with {names[0]} on {k.split(':', 1)[1]}: "
                             f"largest difference {v:.3g} of the output's magnitude")
    rows = []
    others = [w for w in times if w not in names]
    keys = list(dict.fromkeys(k for n in names for k in times.get(n, {})))
    for key in keys:
        row: dict[str, Any] = {"case": key}
        for w in names + others:
            if key in times.get(w, {}):
                row[w] = {"median_ms": 1e3 * statistics.median(times[w][key]),
                          "min_ms": 1e3 * min(round_medians[w][key]), "max_ms": 1e3 * max(round_medians[w][key]),
                          "blocks": len(times[w][key])}
        for n in names[1:]:
            if n in row and names[0] in row:
                row[f"speedup_{n}"] = row[names[0]]["median_ms"] / row[n]["median_ms"]
        if "conv2d" in row:
            for n in names:
                if n in row:
                    row[f"over_conv2d_{n}"] = row[n]["median_ms"] / row["conv2d"]["median_ms"]
        present = [p for p in peers if p in row]
        if present:
            best = min(row[p]["median_ms"] for p in present)
            for n in names:
                if n in row:
                    row[f"over_best_peer_{n}"] = row[n]["median_ms"] / best
        rows.append(row)
    extra: dict[str, Any] = {}
    if args.memory:
        # One process per (mode, config): a process's peak RSS only grows.
        modes = [*MODES] if args.mode == "both" else [args.mode]
        extra["memory"] = {n: {f"{m}/{c}": _run_worker(n, argparse.Namespace(**{**vars(args), "mode": m, "configs": c}),
                                                       "memory")["memory"][c]
                               for m in modes for c in args.configs.split(",") if c != catalog.MODEL} for n in names}
    if args.profile:
        extra["profile"] = {n: _run_worker(n, args, "profile")["profile"] for n in names}
    meta = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": env.get("torch"), "threads": args.threads, "rounds": args.rounds,
            "min_run_time": args.min_run_time, "mode": args.mode, "dtype": "float32",
            "kernel": "3x3, stride 1, padding 1, with mask and bias",
            "variants": {n: variant.info(n).get("version") for n in names}, "peers": peer_versions,
            "peer_agreement": agreement, "wall_seconds": round(time.monotonic() - t0, 1)}
    result = {"meta": meta, "env": env, "rows": rows, **extra}
    print(benchreport.report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    info(f"wrote {args.json}")
    if args.plot:
        benchreport.plot(rows, names, peers, args.plot)
        info(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    # ``python -m tvdcn.bench``: the same as ``python -m tvdcn bench`` without the build machinery's
    # imports, for a machine that has only torch (the workers run this way too).
    _p = argparse.ArgumentParser(prog="python -m tvdcn.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(_p)
    try:
        sys.exit(main(_p.parse_args()))
    except Failure as e:
        print(f"tvdcn.bench: error: {e}", file=sys.stderr)
        sys.exit(1)
