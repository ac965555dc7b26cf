"""Upstream's own TestDeformConv (CPU cases, its generated opcheck tests included), from the
vendored tree, against each variant in its own process. The baseline run is the control."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import BASELINE, PATCHED, SUMMARY
from tvdcn import paths, variant

# Test-name prefixes that torch.testing._internal.optests.generate_opcheck_tests adds.
OPCHECK_PREFIXES = ("test_schema__", "test_autograd_registration__", "test_faketensor__", "test_aot_dispatch_dynamic__")


@pytest.mark.parametrize("name", [PATCHED, BASELINE])
def test_upstream_TestDeformConv(name, tmp_path):
    tests = paths.BUILDS / name / "test"
    junit = tmp_path / "junit.xml"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "test_ops.py", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         "-k", "TestDeformConv and not cuda and not mps"],
        cwd=tests, env=variant.env(name), capture_output=True, text=True, timeout=1800)
    cases = ET.parse(junit).getroot().iter("testcase") if junit.exists() else []
    outcome = {"passed": 0, "failed": 0, "skipped": 0, "opcheck": 0}
    for tc in cases:
        kind = "failed" if tc.find("failure") is not None or tc.find("error") is not None else \
            "skipped" if tc.find("skipped") is not None else "passed"
        outcome[kind] += 1
        if kind == "passed" and tc.get("name", "").startswith(OPCHECK_PREFIXES):
            outcome["opcheck"] += 1
    SUMMARY[f"upstream TestDeformConv on {name}"].update(outcome)
    assert r.returncode == 0, f"upstream TestDeformConv failed on {name}:\n{r.stdout[-5000:]}\n{r.stderr[-2000:]}"
    assert outcome["passed"] > 0 and outcome["failed"] == 0, outcome
    assert outcome["opcheck"] > 0, f"no generated opcheck test ran: {outcome}"
