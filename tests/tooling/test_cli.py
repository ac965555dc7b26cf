"""The command line (``python -m tvdcn``): what each suite command builds and which tests it
selects, with the building and the pytest run replaced by recorders (nothing is built or run)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tvdcn import __main__ as cli
from tvdcn import paths, variant

pytestmark = [pytest.mark.tooling]


@pytest.fixture
def recorded(monkeypatch):
    seen: dict[str, list] = {"build": [], "pytest": []}
    monkeypatch.setattr(cli, "cmd_build", lambda args: seen["build"].append(args.variant) or 0)
    monkeypatch.setattr(cli, "run_suite", lambda *args: seen["pytest"].append(list(args)) or 0)
    for k in ("TVDCN_PATCHED", "TVDCN_BASELINE"):
        monkeypatch.delenv(k, raising=False)
    return seen


def test_test_builds_what_it_compares_and_passes_the_rest_to_pytest(recorded):
    assert cli.main(["test", "--patched", "prefix-3", "-m", "prefix", "tests/kernel/test_threads.py", "-k", "b1"]) == 0
    assert recorded["build"] == [["baseline", "prefix-3"]]
    assert recorded["pytest"] == [["--patched", "prefix-3", "-m", "prefix", "tests/kernel/test_threads.py", "-k", "b1"]]
    assert cli.main(["test"]) == 0
    assert recorded["build"][-1] == ["baseline", "patched"] and recorded["pytest"][-1] == []


def test_test_builds_nothing_for_stacks_and_standalone_kernels(recorded):
    assert cli.main(["test", "--baseline", "sa:baseline", "--patched", "sa:patched"]) == 0
    assert cli.main(["test", "--baseline", "tv0.29", "--patched", "tv0.29+fast", "-m", "dropin"]) == 0
    assert recorded["build"] == []
    assert recorded["pytest"][1] == ["--patched", "tv0.29+fast", "--baseline", "tv0.29", "-m", "dropin"]


def test_sanitize_selects_the_sanitizer_tests(recorded):
    assert cli.main(["sanitize", "--variant", "baseline-asan", "--fuzz-examples", "50"]) == 0
    assert recorded["build"] == [["baseline", "baseline-asan"]]
    assert recorded["pytest"] == [["-q", "-m", "sanitizer", "--patched", "baseline-asan", "--fuzz-examples", "300",
                                   "--fuzz-examples", "50"]]


def test_mistakes_are_one_line_errors(recorded, monkeypatch, capsys):
    assert cli.main(["test", "--patched", "pached"]) == 1
    monkeypatch.setenv("TVDCN_PATCHED", "prefix-3")
    assert cli.main(["test"]) == 1
    assert recorded == {"build": [], "pytest": []}
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("tvdcn: error: unknown variant 'pached': baseline, patched")
    assert err[1] == "tvdcn: error: unset TVDCN_PATCHED: the variants are options now (--patched, --baseline)"
    with pytest.raises(SystemExit):
        cli.main(["export", "stray"])


def test_help_lists_every_command():
    r = subprocess.run([sys.executable, "-m", "tvdcn", "--help"], cwd=paths.REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for cmd in ("build", "test", "sanitize", "prefixes", "export", "run", "bench", "profile", "standalone", "apply",
                "pr-body", "dropin", "coverage", "aarch64", "ci"):
        assert f"\n    {cmd} " in r.stdout or f"\n    {cmd}\n" in r.stdout, cmd
    assert "worker" not in r.stdout and "threadprobe" not in r.stdout


def test_a_variant_name_is_parsed_once_into_its_kind():
    assert variant.parse("prefix-12-asan") == variant.Built("prefix-12-asan", base="prefix-12", instrument="asan")
    assert variant.parse("prefix-12-asan").prefix == 12
    assert variant.parse("tv0.28+fast") == variant.Stock("tv0.28+fast", stack=variant.STACKS["tv0.28"], fast=True)
    assert variant.parse("sa:prefix-3") == variant.Standalone("sa:prefix-3", of="prefix-3")
    assert variant.parse("patched") is variant.parse("patched")


def _stock_stack_tests(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/kernel/test_dropin.py",
                           "-k", "stock_stack", *options], cwd=paths.REPO, capture_output=True, text=True)


def test_the_suite_runs_the_dropin_on_the_newest_stack_and_on_all_when_asked():
    default, every = _stock_stack_tests(), _stock_stack_tests("--stacks", "all")
    assert default.returncode == every.returncode == 0, default.stdout[-2000:] + every.stdout[-2000:]
    newest = max(variant.STACKS, key=lambda n: tuple(int(p) for p in variant.STACKS[n].torch.split(".")))
    assert f"on_stock_stack[{newest}]" in default.stdout
    assert default.stdout.count("on_stock_stack[") == 1, default.stdout
    assert every.stdout.count("on_stock_stack[") == len(variant.STACKS) > 1, every.stdout
    wrong = _stock_stack_tests("--stacks", "tv0.27")
    assert wrong.returncode != 0 and "--stacks 'tv0.27'" in wrong.stderr, wrong.stderr[-2000:]
