"""Issue 24: wall time of each phase of the tip's backward, at 1 and 2 threads.

Stages the tip's kernel (standalone `patched`) with timers around the five phases of
backward_gradients(): the col2im plan, the columns' GEMM (mm_out), col2im, the offset/mask pass
(with its padded copy of the input) and the weight gradient's GEMM (addmm_). The variant
`phases` prints their sums over a call to stderr when PH is set. Not a patch.

    PYTHONPATH=. .venv/bin/python results/2026-12-02/backward-phases.py build
    PYTHONPATH=. .venv/bin/python results/2026-12-02/backward-phases.py run 1,2 s32-b8,s32-b1,c3-det
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tvdcn import standalone

HERE = Path(__file__).parent


def _edits(src: str) -> str:
    def rep(old: str, new: str) -> None:
        nonlocal src
        if src.count(old) != 1:
            raise SystemExit(f"expected one {old!r}")
        src = src.replace(old, new)

    rep("#include <vector>\n", "#include <vector>\n#include <chrono>\n#include <cstdio>\n#include <cstdlib>\n")
    rep("std::tuple<Tensor, Tensor, Tensor, Tensor> backward_gradients(",
        "static double ph_acc[5];\nstatic double ph_now() {\n  return std::chrono::duration<double, std::milli>("
        "std::chrono::steady_clock::now().time_since_epoch()).count();\n}\n"
        "std::tuple<Tensor, Tensor, Tensor, Tensor> backward_gradients(")
    rep("    compute_col2im_plan(\n        geo, offset_elt, mask_elt, use_64bit, plan_idx, plan_flags, plan_mw);\n",
        "    double t0 = ph_now();\n    compute_col2im_plan(\n        geo, offset_elt, mask_elt, use_64bit, plan_idx, "
        "plan_flags, plan_mw);\n    ph_acc[0] += ph_now() - t0;\n")
    rep("        // mm_out writes every element of the tile.\n", "        double t1 = ph_now();\n")
    rep("        compute_grad_input(\n            geo,\n            columns_tile,",
        "        double t2 = ph_now();\n        ph_acc[1] += t2 - t1;\n        compute_grad_input(\n            geo,\n"
        "            columns_tile,")
    rep("        compute_grad_offset_and_mask(\n            geo,\n            columns_tile,",
        "        double t3 = ph_now();\n        ph_acc[2] += t3 - t2;\n        compute_grad_offset_and_mask(\n"
        "            geo,\n            columns_tile,")
    rep("        stable_helpers::addmm_(\n            torch::stable::narrow(\n                grad_weight_g,",
        "        double t4 = ph_now();\n        ph_acc[3] += t4 - t3;\n        stable_helpers::addmm_(\n"
        "            torch::stable::narrow(\n                grad_weight_g,")
    rep("            torch::stable::transpose(columns_tile, 1, 0));\n      }\n",
        "            torch::stable::transpose(columns_tile, 1, 0));\n        ph_acc[4] += ph_now() - t4;\n      }\n")
    rep("  return std::make_tuple(grad_input, grad_weight, grad_offset, grad_mask);\n}\n\n// Checks",
        "  if (std::getenv(\"PH\")) {\n    std::fprintf(stderr, \"PH %.3f %.3f %.3f %.3f %.3f\\n\", ph_acc[0], ph_acc[1], "
        "ph_acc[2], ph_acc[3], ph_acc[4]);\n  }\n  for (double& a : ph_acc) {\n    a = 0;\n  }\n"
        "  return std::make_tuple(grad_input, grad_weight, grad_offset, grad_mask);\n}\n\n// Checks")
    return src


def build() -> None:
    standalone.stage(["patched"])
    tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    d = standalone.clone(standalone.ROOT / "patched", "phases", _edits(tip), prototype="phases")
    print(standalone.build(dirs=[d]), flush=True)


CONFIGS = {"s32-b1": (1, 64, 32), "s32-b8": (8, 64, 32), "s64-b1": (1, 256, 64), "c3-det": (2, 128, 100)}
NAMES = ("plan", "mm_out", "col2im", "offset/mask", "addmm_")


def _one(threads: str, cfg: str, calls: str = "7") -> None:
    """In its own process: `calls` backward calls of the config (the first two not reported)."""
    import time

    import torch

    spec = importlib.util.spec_from_file_location("ci", HERE / "coord-interleave.py")
    ci = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ci)
    op = ci.load_ops(["phases"])["phases"]
    torch.set_num_threads(int(threads))
    b, c, s = CONFIGS[cfg]
    a = ci._args(b, c, c, s)
    for i in range(int(calls)):
        if i >= 2:
            os.environ["PH"] = "1"
        t = time.perf_counter()
        op._deform_conv2d_backward(*a)
        if i >= 2:
            print(f"TOTAL {(time.perf_counter() - t) * 1e3:.3f}", file=sys.stderr, flush=True)


def run(threads: str = "1,2", configs: str = "s32-b8,s32-b1,c3-det") -> None:
    """Median of five calls per phase, one process per (config, threads)."""
    import statistics

    print(f"| config @threads | backward | {' | '.join(NAMES)} | rest |")
    print("|---|---|" + "---|" * (len(NAMES) + 1))
    for cfg in configs.split(","):
        for t in threads.split(","):
            r = subprocess.run([sys.executable, __file__, "_one", t, cfg], capture_output=True, text=True,
                               env=dict(os.environ, PYTHONPATH=str(HERE.parents[1])))
            ph = [list(map(float, ln.split()[1:])) for ln in r.stderr.splitlines() if ln.startswith("PH ")]
            tot = [float(ln.split()[1]) for ln in r.stderr.splitlines() if ln.startswith("TOTAL ")]
            if not ph:
                raise SystemExit(r.stderr[-2000:])
            med = [statistics.median(col) for col in zip(*ph)]
            total = statistics.median(tot)
            cells = " | ".join(f"{v:.1f}" for v in med)
            print(f"| {cfg}@{t} | {total:.1f} | {cells} | {total - sum(med):.1f} |", flush=True)


if __name__ == "__main__":
    {"build": build, "run": run, "_one": _one}[sys.argv[1]](*sys.argv[2:])
