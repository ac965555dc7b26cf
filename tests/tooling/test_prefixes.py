"""tvdcn.prefixes: a recorded run is resumed, prefix by prefix, only where nothing that decides the
result changed."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tvdcn import build as build_mod
from tvdcn import pin as pin_mod
from tvdcn import prefixes, series

pytestmark = [pytest.mark.tooling]


def fake_series(monkeypatch, trees: dict[int, str], fail: set[int] = frozenset()):
    """Three prefixes whose trees are ``trees``; returns the prefixes the suite ran, in order."""
    ran: list[int] = []
    commits = ["c0", "c1", "c2", "c3"]
    monkeypatch.setattr(pin_mod, "load", lambda: None)
    monkeypatch.setattr(series, "patch_files", lambda: [Path(f"000{k}-x.patch") for k in (1, 2, 3)])
    monkeypatch.setattr(prefixes, "key", lambda p, k, a: {"tree": trees[k], "pytest_args": a})
    monkeypatch.setattr(build_mod, "variants_for", lambda p, names: [])

    def suite(cmd, cwd):
        k = int(cmd[cmd.index("--patched") + 1].split("-")[1])
        ran.append(k)
        return subprocess.CompletedProcess(cmd, 1 if k in fail else 0)

    monkeypatch.setattr(prefixes.subprocess, "run", suite)
    return commits, ran


def test_a_recorded_pass_is_skipped_until_its_tree_changes(tmp_path, monkeypatch):
    record = tmp_path / "prefixes.json"
    trees = {1: "t1", 2: "t2", 3: "t3"}
    commits, ran = fake_series(monkeypatch, trees, fail={3})
    assert prefixes.run(commits, [], record) == 1
    assert ran == [1, 2, 3]
    ran.clear()
    # Passed ones are skipped; the failed one runs again (and passes now).
    commits, ran = fake_series(monkeypatch, trees)
    assert prefixes.run(commits, [], record) == 0
    assert ran == [3]
    # A patch below prefix 2 edited: its tree and prefix 3's change.
    commits, ran = fake_series(monkeypatch, {1: "t1", 2: "t2b", 3: "t3b"})
    assert prefixes.run(commits, [], record) == 0
    assert ran == [2, 3]
    # Other pytest arguments are another key; --fresh ignores the record.
    commits, ran = fake_series(monkeypatch, {1: "t1", 2: "t2b", 3: "t3b"})
    prefixes.run(commits, ["--threads", "1"], record)
    assert ran == [1, 2, 3]
    commits, ran = fake_series(monkeypatch, {1: "t1", 2: "t2b", 3: "t3b"})
    prefixes.run(commits, [], record, fresh=True)
    assert ran == [1, 2, 3]
