"""The benchmark's report is a function of its JSON: ``pr-body --reuse`` renders a PR body from an
earlier run's results, and must print what that run printed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tvdcn import benchreport, paths

pytestmark = [pytest.mark.tooling]


def test_report_from_the_json_is_what_the_run_printed(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "tvdcn.bench", "--variants", "baseline,patched", "--configs", "tiny",
                        "--mode", "both", "--threads", "1", "--rounds", "1", "--min-run-time", "0.05",
                        "--json", str(out)], cwd=paths.REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = r.stdout.rstrip("\n")
    assert "| forward/tiny@1 |" in printed and "| train/tiny@1 |" in printed
    assert benchreport.report(json.loads(out.read_text())) == printed
