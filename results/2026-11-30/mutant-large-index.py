"""Issue 26: tests/kernel/test_large_index.py shown failing once on purpose.

Builds ``patched-mutants`` with two mutants (results/2026-11-30/mutants.py's machinery): with
TVDCN_MUTANT=wrap, ``needs_64bit_indexing`` always answers false, so both forwards run the int
instantiations; with TVDCN_MUTANT=row, the forward's bias loop computes a row's offset in the
output in int32_t. Then runs the test against it, without a mutant and with each. Run from the
repository root after scripts/build.sh:

  .venv/bin/python results/2026-11-30/mutant-large-index.py
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mutants  # noqa: E402

mutants.MUTANTS = {
    "wrap": ("the 64-bit switch: every call takes the int instantiations", [
        ("    if (t.numel() > std::numeric_limits<int>::max()) {",
         "    if (!mutant(\"wrap\") && t.numel() > std::numeric_limits<int>::max()) {")]),
    "row": ("the forward's bias loop: a row's offset in the output computed in int32_t", [
        ("scalar_t* row = out_ptr + out_offset + o * out_hw;",
         "scalar_t* row = out_ptr + out_offset + (mutant(\"row\") ? int64_t(int32_t(o * out_hw)) : o * out_hw);")]),
}

name = mutants.build_mutants("patched")
for m in (None, *mutants.MUTANTS):
    env = {k: v for k, v in os.environ.items() if k != "TVDCN_MUTANT"}
    if m:
        env["TVDCN_MUTANT"] = m
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kernel/test_large_index.py",
                        "--patched", name], cwd=mutants.REPO, env=env, capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    print(f"{m or 'control'}: exit {r.returncode}:", *[ln for ln in lines if "large index" in ln or "Error" in ln
                                                        or "assert" in ln][:4], lines[-1], sep="\n  ")
