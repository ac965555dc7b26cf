"""Every element of every buffer the series allocates with at::empty is written.

In deterministic mode with ``fill_uninitialized_memory``, at::empty returns NaN-filled memory;
an element the kernel forgets to write (or a GEMM that reads its uninitialized output with a
non-zero beta) turns up as NaN or as a changed bit.
"""
from __future__ import annotations

import pytest
import torch

from conftest import GRID, PATCHED, SUMMARY, differing, result

pytestmark = [pytest.mark.prefix, pytest.mark.fast, pytest.mark.pr, pytest.mark.sanitizer, pytest.mark.lowered]

THREADS = 2


@pytest.mark.parametrize("case", GRID, ids=[c.id for c in GRID])
def test_empty_buffers_fully_written(runs, case):
    filled = result(runs.get(PATCHED, THREADS, fill=True), case)
    normal = result(runs.get(PATCHED, THREADS), case)
    nan = [k for k, t in filled.items() if torch.isnan(t).any()]
    diff = differing(filled, normal)
    SUMMARY["uninitialized-memory check (cases)"]["failed" if nan or diff else "passed"] += 1
    assert not nan, f"NaN (uninitialized memory) reached {nan}"
    assert not diff, f"results change when empty buffers are NaN-filled: {diff}"
