"""The CI definition: ci/workflow.yml is what ci/matrix.toml generates, parses as YAML, and its jobs
are exactly the matrix's cells, each run by the local command; the matrix covers every torch and
every Python it promises."""
from __future__ import annotations

import subprocess
import sys

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is not installed (requirements.txt pins it)")

from tvdcn import ci, paths

pytestmark = [pytest.mark.tooling]


def test_workflow_is_generated_from_the_matrix():
    assert ci.WORKFLOW.read_text() == ci.workflow(ci.load()), \
        "ci/workflow.yml is stale: python3 -m tvdcn.ci workflow > ci/workflow.yml"


def test_workflow_parses_and_runs_each_cell_by_the_local_command():
    wf = yaml.safe_load(ci.WORKFLOW.read_text())
    job = wf["jobs"]["cell"]
    include = job["strategy"]["matrix"]["include"]
    cells = ci.load()
    assert [(i["name"], i["python"]) for i in include] == [(c.name, c.python) for c in cells]
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert "ci/run-cell.sh ${{ matrix.name }}" in runs
    assert job["timeout-minutes"] <= 90


def test_every_torch_and_python_appears():
    cells = ci.load()
    assert {c.torch.rsplit(".", 1)[0] for c in cells} >= {"2.11", "2.12", "2.13", "2.14"}
    assert {c.python for c in cells} >= {"3.10", "3.11", "3.12", "3.13"}
    assert {c.level for c in cells if c.pinned} >= {"full", "sanitizers", "prefixes", "bench"}


def test_local_runner_knows_every_cell():
    listed = subprocess.run(["bash", str(paths.REPO / "ci" / "run-cell.sh")], capture_output=True, text=True,
                            check=True).stdout.split("\n")
    assert [ln.split()[0] for ln in listed if ln.strip()] == [c.name for c in ci.load()]
    env = subprocess.run([sys.executable, "-m", "tvdcn.ci", "env", "py3.10-torch2.11.0-fast"], cwd=paths.REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "TVDCN_PYTHON=3.10" in env and "TVDCN_TORCH=2.11.0" in env and ".venv-py3.10-torch2.11.0" in env


def test_ci_script_calls_the_readme_test_command_only():
    lines = [ln for ln in (paths.REPO / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[-1] == "exec scripts/test.sh"


def test_aarch64_cell_is_slow_and_only_it():
    cells = ci.load()
    assert [c.name for c in cells if c.slow] == ["py3.11-torch2.13.0-aarch64"]
    assert "slow: true" in next(ln for ln in ci.WORKFLOW.read_text().splitlines() if "aarch64" in ln)
    steps = [s for s in yaml.safe_load(ci.WORKFLOW.read_text())["jobs"]["cell"]["steps"]
             if "run-cell" in s.get("run", "")]
    assert [s["if"] for s in steps] == ["${{ !matrix.slow }}", "${{ matrix.slow && (github.event_name == 'schedule' || "
                                                               "github.event_name == 'workflow_dispatch') }}"]
