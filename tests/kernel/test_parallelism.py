"""The parallel region really runs on more than one thread in the built extension.

Without this, the 1-vs-N equality checks would be vacuous: an extension whose parallel_for runs
serially (at::parallel_for compiled without OpenMP) is trivially thread-count invariant.

The probe runs forward calls whose cost is almost all im2col and reads how much CPU time each OS
thread of the process spent. The baseline variant, whose im2col is serial, is the control: on
it the same check must come out serial, or the check proves nothing.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import BASELINE, PATCHED, SUMMARY
from tvdcn import variant
from tvdcn.isolate import describe_failure

THREADS = 2
# A thread counts as "working" when it spent at least this share of the busiest thread's CPU
# time. An even split gives ~1.0; a serial im2col with a parallel thin GEMM gives ~0.1.
SHARE = 0.5


def probe(name: str, threads: int, mode: str = "forward") -> dict:
    r = subprocess.run([sys.executable, "-m", "tvdcn.threadprobe", "--threads", str(threads), "--mode", mode],
                       env=variant.env(name, extra={"OMP_WAIT_POLICY": "PASSIVE"}),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    return json.loads(r.stdout)


def working_threads(p: dict) -> int:
    busy = p["cpu_seconds_per_thread"]
    return sum(1 for t in busy if busy[0] > 0 and t >= SHARE * busy[0])


MODES = ["forward", "backward"]


@pytest.mark.parametrize("mode", MODES)
def test_patched_uses_all_threads(mode):
    p = probe(PATCHED, THREADS, mode)
    SUMMARY["parallelism probe (working threads)"][f"{PATCHED} {mode}"] = working_threads(p)
    assert working_threads(p) >= THREADS, f"{PATCHED} {mode} ran serially at {THREADS} threads: {p}"


@pytest.mark.parametrize("mode", MODES)
def test_control_serial_baseline_is_detected(mode):
    p = probe(BASELINE, THREADS, mode)
    SUMMARY["parallelism probe (working threads)"][f"{BASELINE} {mode} (control)"] = working_threads(p)
    assert working_threads(p) == 1, f"the probe does not tell serial sampling from parallel: {p}"


@pytest.mark.parametrize("mode", MODES)
def test_patched_honours_one_thread(mode):
    p = probe(PATCHED, 1, mode)
    assert working_threads(p) == 1, f"{PATCHED} used several threads with torch.set_num_threads(1): {p}"
