"""The kernel's tuning constants, each measured against neighbouring values on this machine.

Every constant of the patched kernel that decides a tile, a chunk or a split of work (``TUNABLES``)
is either derived (from ATen's grain or upstream's choice: ``DERIVED``) or justified here: the tip's
kernel file is compiled alone (tvdcn.standalone) once as it is and once per alternative value, with
that one line rewritten (the exact text must occur once, as for tvdcn.lowered), and each constant's
variants are benchmarked side by side in one run (tvdcn.bench: own processes, interleaved), in the
mode and on the configs where it decides something, beside a control (the tip's kernel staged a
second time: an A/A pair). The report gives each alternative's time as a ratio to the tip's value,
per config and thread count, with whether the two ranges overlap, the control's ratio first.

A constant is justified on a machine when no alternative is faster beyond noise (than the tip and
the control) on any config; where one is, the report says so and the constant needs revisiting (or
a derivation).

  python -m tvdcn tuning stage                  # here, after scripts/build.sh: stage every variant
  python -m tvdcn tuning run --json F.json      # here or on a machine with only torch: build, bench

``run`` needs only torch (and a compiler): stage here, carry ``.work/standalone`` to another
machine, run there; the JSON records the CPU, so figures from two machines sit side by side.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths, standalone
from .log import Failure, info


@dataclass(frozen=True)
class Tunable:
    name: str           # the constant as the kernel spells it (or what the line decides)
    text: str           # its line in the kernel file, exactly (must occur once)
    value: str          # the value's text in that line (unique in it)
    alternatives: tuple[str, ...]  # values to try in its place
    mode: str           # the bench mode where it decides something: forward, train or both
    configs: str        # the tvdcn.catalog configs where it decides something
    decides: str        # what it decides, for the report


FORWARD = "s32-b1,s32-b8,s64-b1,c4-det,c3-det"
TRAIN = "s32-b1,s32-b8,s64-b1,c3-det"

TUNABLES: tuple[Tunable, ...] = (
    Tunable("kTileBytes", "constexpr int64_t kTileBytes = 1 << 20;", "= 1 << 20;", ("= 1 << 18;", "= 1 << 22;"),
            "forward", FORWARD, "forward tile: the bytes of a task's columns and plan"),
    Tunable("kMinTasks", "constexpr int64_t kMinTasks = 16;", "= 16;", ("= 4;", "= 64;"),
            "forward", FORWARD, "forward tile: at most this fraction of the call's pixels"),
    Tunable("forward tile floor", "tile = std::clamp<int64_t>(tile / 16 * 16, 64, kPlanPixels);", " 64,",
            (" 32,", " 128,"), "forward", FORWARD, "forward tile: the fewest pixels (the GEMM's N)"),
    Tunable("kPlanPixels", "constexpr int64_t kPlanPixels = 256;", "= 256;", ("= 128;", "= 512;"),
            "both", TRAIN, "forward tile ceiling; the backward im2col's plan tile"),
    Tunable("kChunkBytes", "constexpr int64_t kChunkBytes = 32 << 20;", "= 32 << 20;", ("= 8 << 20;", "= 128 << 20;"),
            "forward", "s64-b4,c3-det,s64-b32", "forward: padded input images per chunk"),
    Tunable("kCoordTilePixels", "constexpr int64_t kCoordTilePixels = 128;", "= 128;", ("= 64;", "= 256;"),
            "train", TRAIN, "offset/mask gradient tile"),
    Tunable("kBackwardTileBytes", "constexpr int64_t kBackwardTileBytes = int64_t(32) << 20;", "= int64_t(32) << 20;",
            ("= int64_t(8) << 20;", "= int64_t(128) << 20;"), "train", "s64-b1,s64-b4,c3-det",
            "backward: the column buffer's size (channel tiles)"),
    Tunable("kBackwardTileMinChannels", "constexpr int64_t kBackwardTileMinChannels = 16;", "= 16;", ("= 4;", "= 64;"),
            "train", "s64-b32", "backward: the fewest channels per tile (s64-b32's 4.7 MB channels)"),
    Tunable("kGemmTasks", "constexpr int64_t kGemmTasks = 8;", "= 8;", ("= 4;", "= 16;"),
            "train", TRAIN, "backward GEMMs: tasks per GEMM (a shape-only split)"),
    Tunable("kGemmMinRows", "constexpr int64_t kGemmMinRows = 256;", "= 256;", ("= 128;", "= 512;"),
            "train", TRAIN, "backward columns GEMM: the fewest pixels per task"),
    Tunable("kGemmMaxRows", "constexpr int64_t kGemmMaxRows = 1024;", "= 1024;", ("= 512;", "= 2048;"),
            "train", TRAIN, "backward columns GEMM: the most pixels per task"),
    Tunable("kGemmMinCols", "constexpr int64_t kGemmMinCols = 64;", "= 64;", ("= 32;", "= 128;"),
            "train", TRAIN, "weight gradient GEMM: the fewest columns per task"),
    Tunable("kGemmMaxCols", "constexpr int64_t kGemmMaxCols = 512;", "= 512;", ("= 256;", "= 1024;"),
            "train", TRAIN, "weight gradient GEMM: the most columns per task"),
    Tunable("kPrefetchEntries", "constexpr int64_t kPrefetchEntries = 4;", "= 4;", ("= 2;", "= 8;"),
            "train", TRAIN, "channels-last passes: plan entries prefetched ahead"),
)

# Constants not swept, and why they need no figures.
DERIVED = {
    "kSamplesPerChunk": "ATen's GRAIN_SIZE (32768), the grain its own elementwise loops use",
    "kMaxParallelImgs": "upstream's (32), unchanged: it decides the backward's blocks, hence its GEMMs' shapes "
                        "and rounding",
    "kIntMax": "INT_MAX: the argument check's bound for int position arithmetic, not a tuning choice",
    "kCol2imBlockChannels": "col2im's copy of the tile gradient into the planes: channels per run, a cache line "
                            "of float32",
}
# How the kernel declares a named integer constant; each must be in TUNABLES or DERIVED.
CONSTANT = r"(?:constexpr|const) int64_t (k[A-Z]\w*) ="

BASE = "patched"
# The tip's kernel staged again under its own name and benchmarked beside every constant's values:
# an A/A pair whose ratio is the noise of that run (on a machine whose noise outlasts a round, the
# tip's copy can come out slower than identical code).
CONTROL = f"{BASE}__control"


def number(value: str) -> int:
    """The value a constant's text spells (``= int64_t(32) << 20;``, `` 64,``)."""
    return int(eval(value.replace("int64_t", "").strip(" ,=;"), {"__builtins__": {}}))


def shown(value: str) -> str:
    """A value's text without its context (``= 1 << 20;`` -> ``1 << 20``)."""
    return value.strip(" =;,")


def tag(t: Tunable, value: str) -> str:
    """The staged variant's name for ``t`` set to ``value``."""
    return f"{BASE}__{''.join(ch for ch in t.name if ch.isalnum())}_{number(value)}"


def variants(t: Tunable) -> list[str]:
    return [BASE, CONTROL] + [tag(t, v) for v in t.alternatives]


def stage(root: Path = standalone.ROOT) -> None:
    """Stage the tip's kernel file (tvdcn.standalone) and one copy per alternative value."""
    standalone.stage([BASE], root)
    src = root / BASE
    kernel = (src / "cpu" / paths.KERNEL.name).read_text()
    standalone.clone(src, CONTROL, kernel, tuning={"control": "the tip's kernel as it is"})
    for t in TUNABLES:
        if kernel.count(t.text) != 1 or t.text.count(t.value) != 1:
            raise Failure(f"tuning: `{t.text}` must occur once in the kernel file (with `{t.value}`); "
                          f"the kernel changed, update tvdcn.tuning.TUNABLES")
        for value in t.alternatives:
            standalone.clone(src, tag(t, value), kernel.replace(t.text, t.text.replace(t.value, value)),
                             tuning={t.name: value})
    info(f"staged {BASE}, its control and {sum(len(t.alternatives) for t in TUNABLES)} alternatives in {root}")


def run(args: argparse.Namespace) -> int:
    from . import bench

    chosen = [t for t in TUNABLES if not args.only or t.name in args.only.split(",")]
    dirs = list(dict.fromkeys(standalone.ROOT / v for t in chosen for v in variants(t)))
    for i in range(0, len(dirs), args.jobs):  # standalone.build compiles its list at once
        standalone.build(dirs=dirs[i:i + args.jobs])
    out: dict[str, Any] = {"derived": DERIVED, "constants": []}
    tmp = args.json.with_suffix(".parts")
    tmp.mkdir(parents=True, exist_ok=True)
    for t in chosen:
        info(f"{t.name}: {shown(t.value)} against {', '.join(map(shown, t.alternatives))} ({t.mode}; {t.configs})")
        bp = argparse.ArgumentParser()
        bench.add_arguments(bp)
        part = tmp / f"{tag(t, t.value)}.json"
        bargs = bp.parse_args(["--variants", ",".join("sa:" + v for v in variants(t)), "--configs", t.configs,
                               "--mode", t.mode, "--threads", args.threads, "--rounds", str(args.rounds),
                               "--min-run-time", str(args.min_run_time), "--no-floor", "--json", str(part)])
        t0 = time.monotonic()
        bench.main(bargs)
        res = json.loads(part.read_text())
        out.setdefault("meta", res["meta"])
        out.setdefault("env", res["env"])
        out["constants"].append({"name": t.name, "value": t.value, "alternatives": dict(zip(t.alternatives, variants(t)[2:])),
                                 "control": CONTROL, "decides": t.decides, "mode": t.mode, "rows": res["rows"],
                                 "wall_seconds": round(time.monotonic() - t0, 1)})
    for k in ("variants", "mode", "wall_seconds", "peers", "peer_agreement"):
        out["meta"].pop(k, None)  # per constant, or of the first part only
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print(report(out))
    info(f"wrote {args.json}")
    return 0


def report(result: dict[str, Any]) -> str:
    """Markdown: per constant, each alternative's median time over the tip value's, per case; `~`
    marks overlapping min-max ranges (no difference beyond noise). A run with a control (the tip
    staged twice) shows its ratio first: the noise of that run."""
    meta = result["meta"]
    lines = [f"Tuning constants on {meta['cpu']} ({meta['cores']} cores), torch {meta['torch']}, "
             f"{meta['rounds']} rounds, threads {meta['threads']}: time with the alternative / time with the "
             "tip's value (`~`: ranges overlap; `<1`: the alternative is faster)", ""]
    for c in result["constants"]:
        base = "sa:" + BASE
        columns = ({"control": c["control"]} if "control" in c else {}) | {shown(k): v for k, v in c["alternatives"].items()}
        lines += [f"**{c['name']} = {shown(c['value'])}** ({c['decides']})", "",
                  "| case | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for row in c["rows"]:
            cells = []
            for v in columns.values():
                a, b = row["sa:" + v], row[base]
                overlap = a["min_ms"] <= b["max_ms"] and b["min_ms"] <= a["max_ms"]
                cells.append(f"{a['median_ms'] / b['median_ms']:.2f}{' ~' if overlap else ''}")
            lines.append(f"| {row['case']} ({row[base]['median_ms']:.1f} ms) | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Not swept (derived): " + "; ".join(f"{k}: {v}" for k, v in result["derived"].items())]
    return "\n".join(lines)


def faster_alternatives(result: dict[str, Any], margin: float = 0.0) -> list[str]:
    """The (constant, value, case) where an alternative is faster beyond noise: its max below the
    tip value's min, and its median at least ``margin`` (a fraction) below; in a run with a control,
    below the control's as well."""
    found = []
    for c in result["constants"]:
        for value, v in c["alternatives"].items():
            for row in c["rows"]:
                a = row["sa:" + v]
                refs = [row["sa:" + BASE]] + ([row["sa:" + c["control"]]] if "control" in c else [])
                if all(a["max_ms"] < r["min_ms"] and a["median_ms"] < (1 - margin) * r["median_ms"] for r in refs):
                    b = refs[0]
                    found.append(f"{c['name']} = {shown(value)} on {row['case']}: {a['median_ms']:.2f} vs "
                                 f"{b['median_ms']:.2f} ms ({1 - a['median_ms'] / b['median_ms']:.0%} faster)")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tvdcn tuning", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("stage", help="stage the tip's kernel file and one copy per alternative value")
    r = sub.add_parser("run", help="build the staged copies and benchmark each constant's alternatives")
    r.add_argument("--only", default="", help="comma-separated constant names (default: all)")
    r.add_argument("--threads", default="1,2")
    r.add_argument("--jobs", type=int, default=2, help="compiles at once (default: %(default)s)")
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--min-run-time", type=float, default=0.3)
    r.add_argument("--json", type=Path, default=paths.REPO / "bench-results" / "tuning.json")
    rp = sub.add_parser("report", help="print the tables of a run's JSON")
    rp.add_argument("json", type=Path)
    args = p.parse_args(argv)
    if args.action == "stage":
        stage()
        return 0
    if args.action == "report":
        result = json.loads(args.json.read_text())
        print(report(result))
        for line in faster_alternatives(result):
            print("faster beyond noise:", line)
        return 0
    return run(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"tvdcn.tuning: error: {e}", file=sys.stderr)
        sys.exit(1)
