"""Runs inside a variant's process: on how many threads does deform_conv2d's own work run?

``python -m tvdcn.threadprobe --threads N [--mode forward|backward]`` prints JSON with the CPU
time each OS thread of the process spent during repeated calls on a shape whose cost is almost
all sampling (one output channel, so the GEMMs are thin): im2col in the forward; in the backward
mostly the col2im kernels (grad_offset/grad_mask, then grad_input), the im2col for grad_weight
being a minor part. Per-thread CPU time comes
from /proc/self/task/*/stat, so this counts where the work ran, not how fast it was.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def thread_cpu_ticks() -> dict[int, int]:
    ticks = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--seconds", type=float, default=1.5)
    p.add_argument("--mode", choices=["forward", "backward"], default="forward")
    a = p.parse_args()
    import time

    import torch
    from torchvision.ops import deform_conv2d

    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 64, 64, 64, generator=g)
    off = torch.rand(1, 18, 64, 64, generator=g) * 4 - 2
    mask = torch.rand(1, 9, 64, 64, generator=g)
    w = torch.rand(1, 64, 3, 3, generator=g)
    backward = a.mode == "backward"
    for t in (x, off, mask, w):
        t.requires_grad_(backward)

    def call() -> None:
        y = deform_conv2d(x, off, w, padding=1, mask=mask)
        if backward:
            y.backward(torch.ones_like(y))

    call()  # warm-up: thread pools exist from here on
    before = thread_cpu_ticks()
    t0, calls = time.monotonic(), 0
    while time.monotonic() - t0 < a.seconds:
        call()
        calls += 1
    after = thread_cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    busy = sorted(((after[t] - before.get(t, 0)) / hz for t in after), reverse=True)
    print(json.dumps({"threads": a.threads, "mode": a.mode, "calls": calls, "cpu_seconds_per_thread": busy}))


if __name__ == "__main__":
    main()
