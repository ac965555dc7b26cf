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


def test_a_build_of_another_series_state_is_refused(tmp_path, monkeypatch):
    # bench times whatever is installed under a variant's name; after the series is edited or
    # renumbered, an old prefix-N build would be timed as patch N. stale() compares the tree the
    # build was made from with the series' commit for that name.
    from tvdcn import bench, series, variant
    commits = series.git("rev-list", "--reverse", "pristine..series").split()
    monkeypatch.setattr(paths, "VARIANTS", tmp_path)

    def built(name, commit):
        (tmp_path / name).mkdir()
        tree = series.git("rev-parse", f"{commit}^{{tree}}")
        (tmp_path / name / "build.json").write_text(json.dumps({"key": {"tree": tree}}))

    built("prefix-2", commits[1])
    built("prefix-3", commits[1])
    built("patched", commits[-1])
    assert bench.stale("prefix-2") is None and bench.stale("patched") is None
    assert "not from the series' patch 3" in bench.stale("prefix-3")
    assert bench.stale("baseline") is None and variant.parse("prefix-3").prefix == 3
