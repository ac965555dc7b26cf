"""Upstream's own TestDeformConv (CPU cases, its generated opcheck tests included), from the
vendored tree, against each variant in its own process. The baseline run (pristine tests on
pristine upstream) is the control.

The series adds tests to upstream's test/test_ops.py for the behaviour its fixes change. Each
of those new test functions must fail on unpatched upstream (or the test proves nothing about
the fix): ``test_new_upstream_tests_fail_on_baseline`` runs the patched tree's test file
against the baseline build, one new test function per process (several crash upstream).

The speed patches add tests too, that reach their new code paths (tiles, chunks of images,
channel tiles) and compare with a float64 reference. Upstream computes those shapes correctly,
so these must *pass* on unpatched upstream, which also checks their reference:
``test_path_tests_pass_on_baseline``.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import BASELINE, PATCHED, SUMMARY
from tvdcn import paths, variant

pytestmark = [pytest.mark.prefix, pytest.mark.fast, pytest.mark.pr, pytest.mark.sanitizer]

# Test-name prefixes that torch.testing._internal.optests.generate_opcheck_tests adds.
OPCHECK_PREFIXES = ("test_schema__", "test_autograd_registration__", "test_faketensor__", "test_aot_dispatch_dynamic__")
SELECT = "TestDeformConv and not cuda and not mps"


def run_upstream(name: str, tests: Path, select: str, junit: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """pytest on ``tests/test_ops.py`` with variant ``name`` importable."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "test_ops.py", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
             "-k", select], cwd=tests, env=variant.env(name), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, -9, str(e.stdout or ""), f"timed out after {timeout}s")


def outcomes(junit: Path) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "skipped": 0, "opcheck": 0}
    for tc in (ET.parse(junit).getroot().iter("testcase") if junit.exists() else []):
        kind = "failed" if tc.find("failure") is not None or tc.find("error") is not None else \
            "skipped" if tc.find("skipped") is not None else "passed"
        out[kind] += 1
        if kind == "passed" and tc.get("name", "").startswith(OPCHECK_PREFIXES):
            out["opcheck"] += 1
    return out


def skip_reasons(junit: Path) -> str:
    """The skip messages recorded in a junit file, joined."""
    return "; ".join(sorted({sk.get("message", "") for sk in ET.parse(junit).getroot().iter("skipped")}))


@pytest.mark.parametrize("name", [PATCHED, BASELINE])
def test_upstream_TestDeformConv(name, tmp_path):
    junit = tmp_path / "junit.xml"
    r = run_upstream(name, paths.BUILDS / name / "test", SELECT, junit)
    outcome = outcomes(junit)
    SUMMARY[f"upstream TestDeformConv on {name}"].update(outcome)
    assert r.returncode == 0, f"upstream TestDeformConv failed on {name}:\n{r.stdout[-5000:]}\n{r.stderr[-2000:]}"
    assert outcome["passed"] > 0 and outcome["failed"] == 0, outcome
    assert outcome["opcheck"] > 0, f"no generated opcheck test ran: {outcome}"


def deform_conv_tests(test_file: Path) -> set[str]:
    """Names of the test methods of class TestDeformConv in an upstream test file."""
    tree = ast.parse(test_file.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "TestDeformConv":
            return {f.name for f in node.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")}
    raise AssertionError(f"no class TestDeformConv in {test_file}")


def new_tests() -> list[str]:
    ours = paths.BUILDS / PATCHED / "test" / "test_ops.py"
    theirs = paths.BUILDS / BASELINE / "test" / "test_ops.py"
    if not ours.exists() or not theirs.exists():
        return []
    return sorted(deform_conv_tests(ours) - deform_conv_tests(theirs))


# New tests that reach the speed patches' code paths rather than test a fix (see the docstring).
PATH_TESTS = {"test_float64_reference_cpu", "test_forward_contexts_cpu"}
ADDED = new_tests()
NEW = [t for t in ADDED if t not in PATH_TESTS]
# New tests whose baseline run takes minutes (a 2^31-element forward).
SLOW_TESTS = {"test_forward_columns_over_2_31_elements"}
PATHS = [t for t in ADDED if t in PATH_TESTS]


def test_series_adds_upstream_tests():
    # The fixes in the series carry their tests in upstream's own suite.
    if PATCHED != "patched":
        pytest.skip(f"{PATCHED} is a prefix: not every fix need be in it yet")
    assert NEW, "the series adds no test to upstream's TestDeformConv"


def on_baseline(test: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict[str, int], Path]:
    """Run one test function of the patched tree's test file against the baseline build."""
    if test == "(none)":
        pytest.skip("this prefix adds no such test")
    junit = tmp_path / "junit.xml"
    r = run_upstream(BASELINE, paths.BUILDS / PATCHED / "test", f"TestDeformConv and {test}", junit)
    return r, outcomes(junit), junit


@pytest.mark.parametrize("test", [pytest.param(t, marks=pytest.mark.slow) if t in SLOW_TESTS else t
                                  for t in NEW] or ["(none)"])
def test_new_upstream_tests_fail_on_baseline(test, tmp_path):
    r, outcome, junit = on_baseline(test, tmp_path)
    crashed = r.returncode < 0 or (r.returncode not in (0, 1) and not junit.exists())
    if not crashed and outcome["skipped"] and not outcome["passed"] + outcome["failed"]:
        # The upstream test's own condition skipped it (test_forward_columns_over_2_31_elements needs
        # 14 GB of free memory): whether it fails on baseline is not known on this machine.
        SUMMARY["new upstream tests on baseline"]["skipped by their own condition"] += 1
        pytest.skip(f"{test} skipped itself on baseline here: {skip_reasons(junit)}")
    SUMMARY["new upstream tests on baseline"]["crashed" if crashed else "failed" if outcome["failed"] else
                                               "did not fail"] += 1
    assert "no tests ran" not in r.stdout and (crashed or outcome["passed"] + outcome["failed"] > 0), r.stdout[-2000:]
    assert r.returncode != 0, f"{test} passes on unpatched upstream: it does not test the fix ({outcome})"


@pytest.mark.parametrize("test", PATHS or ["(none)"])
def test_path_tests_pass_on_baseline(test, tmp_path):
    r, outcome, _ = on_baseline(test, tmp_path)
    SUMMARY["path tests on baseline"]["passed" if r.returncode == 0 else "failed"] += 1
    assert r.returncode == 0 and outcome["passed"] > 0 and not outcome["failed"], \
        f"{test} fails on unpatched upstream ({outcome}):\n{r.stdout[-3000:]}"
