"""Side-by-side benchmark of variants: ``scripts/bench.sh``.

Each variant runs in its own process (they register the same ops); processes are interleaved
round by round (ABAB..., the order alternating), so drift of the machine hits both alike.
Within a process ``torch.utils.benchmark.Timer.blocked_autorange`` measures each config.
The floor -- a dense ``conv2d`` of the same shape (same input, weight and bias, no offsets), the
same pass (forward, or forward + backward) -- is timed in the first variant's processes.
Reported: median over all measured blocks, the spread (min-max of the per-round medians), the
speedup baseline/other and each variant's ratio to the floor, all from the same run. Output: a
markdown table and JSON.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths, variant
from .log import info


@dataclass(frozen=True)
class Config:
    name: str
    batch: int
    channels: int
    size: int


CONFIGS = [
    Config("s32-b1", 1, 64, 32), Config("s32-b4", 4, 64, 32), Config("s32-b8", 8, 64, 32),
    Config("s64-b1", 1, 256, 64), Config("s64-b4", 4, 256, 64),
]
MODES = ("forward", "train")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", default="baseline,patched", help="comma-separated; the first is the reference")
    p.add_argument("--configs", default=",".join(c.name for c in CONFIGS))
    p.add_argument("--mode", choices=[*MODES, "both"], default="forward",
                   help="forward (no grad) or train (forward + backward of all inputs)")
    p.add_argument("--rounds", type=int, default=5, help="processes per variant, interleaved")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: all cores)")
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds per config per process")
    p.add_argument("--json", type=Path, default=paths.REPO / "bench-results" / "bench.json")
    p.add_argument("--no-floor", action="store_true", help="do not time the dense conv2d floor")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)


def _inputs(c: Config, train: bool) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    t = {
        "input": torch.rand(c.batch, c.channels, c.size, c.size, generator=g),
        "offset": torch.rand(c.batch, 18, c.size, c.size, generator=g) * 4 - 2,
        "mask": torch.rand(c.batch, 9, c.size, c.size, generator=g),
        "weight": torch.rand(c.channels, c.channels, 3, 3, generator=g) / (3 * c.channels),
        "bias": torch.rand(c.channels, generator=g),
    }
    if train:
        for v in t.values():
            v.requires_grad_()
    return t


def _worker(args: argparse.Namespace) -> int:
    """In a variant's process: time every config, print JSON."""
    import torch
    import torch.utils.benchmark as tb
    from torchvision.ops import deform_conv2d

    if args.threads:
        torch.set_num_threads(args.threads)
    out = {"env": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                   "parallel_info": torch.__config__.parallel_info()}, "results": {}}
    for mode in ([*MODES] if args.mode == "both" else [args.mode]):
        for name in args.configs.split(","):
            c = next(c for c in CONFIGS if c.name == name)
            t = _inputs(c, mode == "train")
            stmt = "y = f(i, o, w, b, padding=1, mask=m)"
            if mode == "train":
                stmt += "; y.backward(g)"
                t["grad_out"] = torch.ones(c.batch, c.channels, c.size, c.size)
            ctx = torch.no_grad() if mode == "forward" else torch.enable_grad()
            glob = {"f": deform_conv2d, "conv2d": torch.nn.functional.conv2d, "i": t["input"], "o": t["offset"],
                    "w": t["weight"], "b": t["bias"], "m": t["mask"], "g": t.get("grad_out")}
            stmts = {f"{mode}/{c.name}": stmt}
            if args.floor:
                stmts[f"floor:{mode}/{c.name}"] = stmt.replace("f(i, o, w, b, padding=1, mask=m)",
                                                               "conv2d(i, w, b, padding=1)")
            for key, st in stmts.items():
                with ctx:
                    timer = tb.Timer(st, globals=glob, label=mode, sub_label=c.name,
                                     num_threads=torch.get_num_threads())
                    timer.timeit(1)  # warm-up
                    m = timer.blocked_autorange(min_run_time=args.min_run_time)
                out["results"][key] = m.times
    print(json.dumps(out))
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(args: argparse.Namespace) -> int:
    if args.worker:
        return _worker(args)
    names = args.variants.split(",")
    for n in names:
        variant.site(n)  # fails early with "run scripts/build.sh"
    times: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    round_medians: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    env: dict[str, Any] = {}
    t0 = time.monotonic()
    for r in range(args.rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            info(f"round {r + 1}/{args.rounds}: {n}")
            cmd = [sys.executable, "-m", "tvdcn", "bench", "--worker", "--configs", args.configs,
                   "--mode", args.mode, "--min-run-time", str(args.min_run_time)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            if n == names[0] and not args.no_floor:
                cmd += ["--floor"]
            p = subprocess.run(cmd, env=variant.env(n), capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"benchmark worker for {n} failed:\n{p.stderr[-3000:]}")
            res = json.loads(p.stdout.strip().splitlines()[-1])
            env = res["env"]
            for key, ts in res["results"].items():
                who, key = ("conv2d", key.split(":", 1)[1]) if key.startswith("floor:") else (n, key)
                times.setdefault(who, {}).setdefault(key, []).extend(ts)
                round_medians.setdefault(who, {}).setdefault(key, []).append(statistics.median(ts))
    ref = names[0]
    floor = "conv2d" in times
    rows = []
    for key in times[ref]:
        row: dict[str, Any] = {"case": key}
        for n in names:
            row[n] = {"median_ms": 1e3 * statistics.median(times[n][key]),
                      "min_ms": 1e3 * min(round_medians[n][key]), "max_ms": 1e3 * max(round_medians[n][key]),
                      "blocks": len(times[n][key])}
        for n in names[1:]:
            row[f"speedup_{n}"] = row[ref]["median_ms"] / row[n]["median_ms"]
        if floor:
            row["conv2d"] = {"median_ms": 1e3 * statistics.median(times["conv2d"][key]),
                             "min_ms": 1e3 * min(round_medians["conv2d"][key]),
                             "max_ms": 1e3 * max(round_medians["conv2d"][key]), "blocks": len(times["conv2d"][key])}
            for n in names:
                row[f"over_conv2d_{n}"] = row[n]["median_ms"] / row["conv2d"]["median_ms"]
        rows.append(row)
    meta = {"cpu": _cpu_model(), "cores": __import__("os").cpu_count(), "python": platform.python_version(),
            "torch": env.get("torch"), "threads": env.get("threads"), "rounds": args.rounds,
            "min_run_time": args.min_run_time, "mode": args.mode, "dtype": "float32",
            "kernel": "3x3, stride 1, padding 1, with mask and bias",
            "variants": {n: variant.info(n).get("version") for n in names},
            "wall_seconds": round(time.monotonic() - t0, 1)}
    print(f"## Environment\n\n- CPU: {meta['cpu']} ({meta['cores']} cores), Python {meta['python']}, "
          f"torch {meta['torch']}, {meta['threads']} threads")
    print("- variants: " + ", ".join(f"{n} = torchvision {v}" for n, v in meta["variants"].items()))
    print(f"- {meta['mode']}, float32, {meta['kernel']}; {args.rounds} interleaved processes per variant")
    print("\n<details><summary>torch.__config__.parallel_info()</summary>\n\n```\n"
          + env.get("parallel_info", "").strip() + "\n```\n</details>\n")
    print(markdown(rows, names, floor))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "env": env, "rows": rows}, indent=2) + "\n")
    info(f"wrote {args.json}")
    return 0


def markdown(rows: list[dict[str, Any]], names: list[str], floor: bool = False) -> str:
    """A table ready for a PR body: median (min-max of per-round medians), speedups, and the
    last variant's time over the dense conv2d floor's."""
    cols = names + (["conv2d"] if floor else [])
    head = ["case"] + [f"{n} ms" for n in cols] + [f"speedup {n}" for n in names[1:]]
    head += [f"{names[-1]} / conv2d"] if floor else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["case"]]
        cells += [f"{r[n]['median_ms']:.2f} ({r[n]['min_ms']:.2f}–{r[n]['max_ms']:.2f})" for n in cols]
        cells += [f"{r[f'speedup_{n}']:.2f}x" for n in names[1:]]
        cells += [f"{r[f'over_conv2d_{names[-1]}']:.1f}x"] if floor else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
