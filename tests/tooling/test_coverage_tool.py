"""The coverage tooling (tvdcn.coverage, the "-cov" variants of tvdcn.build), without a coverage
build: names, flags, cache keys, version labels, the command line, the report's grouping, and the
merge of two runs (of a tiny C file) whose lines differ in text."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tvdcn import __main__ as cli
from tvdcn import build, coverage, pin, series

pytestmark = [pytest.mark.tooling]

PREFIXES = ["c0", "c1", "c2", "c3"]


def test_cov_variant_names_parse():
    v, p, b = build.variants_for(PREFIXES, ["patched-cov", "prefix-2-cov", "baseline-cov"])
    assert (v.name, v.commit, v.instrument, v.sanitize) == ("patched-cov", "c3", "cov", False)
    assert (p.name, p.commit, p.instrument) == ("prefix-2-cov", "c2", "cov")
    assert (b.commit, b.instrument) == ("c0", "cov")
    a, plain = build.variants_for(PREFIXES, ["patched-asan", "patched"])
    assert (a.instrument, a.sanitize, plain.instrument, plain.sanitize) == ("asan", True, None, False)


def test_cov_flags_key_and_label(monkeypatch):
    cflags, ldflags = build.INSTRUMENTS["cov"]
    assert "--coverage" in cflags.split() and "-O0" in cflags.split() and ldflags.split() == ["--coverage"]
    monkeypatch.setattr(series, "git", lambda *a, **k: "ab" * 20)
    plain, asan, cov = build.variants_for(PREFIXES, ["patched", "patched-asan", "patched-cov"])
    keys = [build._key(v) for v in (plain, asan, cov)]
    # plain and -asan keys keep their old shape (builds made before -cov existed stay valid)
    assert "instrument" not in keys[0] and "instrument" not in keys[1]
    assert keys[0]["sanitize"] is None and keys[1]["sanitize"] == build.SANITIZE_FLAGS
    assert keys[2]["sanitize"] is None and keys[2]["instrument"] == ["cov", cflags, ldflags]
    assert len({str(sorted(k.items())) for k in keys}) == 3
    labels = [build.local_version(pin.load(), v, 3, "ab" * 20) for v in (plain, asan, cov)]
    assert [lb.split("+")[1] for lb in labels] == ["dcn3.gabababab", "dcn3.asan.gabababab", "dcn3.cov.gabababab"]


def test_coverage_command_line(monkeypatch):
    seen = []
    monkeypatch.setattr(coverage, "main", lambda args: seen.append(args) or 0)
    assert cli.main(["coverage", "--variant", "prefix-3", "tests/kernel/test_threads.py", "-k", "a and not b"]) == 0
    assert cli.main(["coverage", "--", "-x"]) == 0
    assert cli.main(["coverage", "--variant", "patched", "--variant", "patched-lowered", "tests/kernel/test_fuzz.py"]) == 0
    assert seen[0].variant == ["prefix-3"] and seen[0].pytest_args == ["tests/kernel/test_threads.py", "-k", "a and not b"]
    assert seen[1].variant is None and seen[1].pytest_args == ["--", "-x"]  # coverage.main: patched
    assert seen[2].variant == ["patched", "patched-lowered"] and seen[2].pytest_args == ["tests/kernel/test_fuzz.py"]


def test_report_groups_uncovered_lines_by_function():
    def line(n, count, fn):
        return {"line_number": n, "count": count, "function_name": fn}

    ns = "vision::ops::(anonymous namespace)::"
    tile = ns + "deformable_im2col_tile<{}, false>(int, float const*)"
    outer = ns + "deformable_im2col(torch::stable::Tensor const&, long)"
    lam = outer + "::{lambda()#1}::operator()() const::{lambda(auto:1)#1}::operator()<long>(long) const"
    report = {"files": [{"file": coverage.KERNEL, "lines": [
        line(10, 5, tile.format("float, int")), line(11, 0, tile.format("float, int")),
        line(11, 2, tile.format("float, long")),  # another instantiation ran line 11
        line(12, 0, tile.format("float, int")), line(14, 0, tile.format("float, long")),
        line(20, 0, "void " + outer), line(21, 0, lam), line(22, 1, lam),
    ], "functions": [{"demangled_name": "void " + tile.format("float, long"), "execution_count": 0},
                     {"demangled_name": "auto " + lam, "execution_count": 0},
                     {"demangled_name": "void " + outer, "execution_count": 3}]}]}
    s = coverage.summarize(report)
    assert s["uncovered_lines"] == [12, 14, 20, 21]
    assert s["uncovered_by_function"] == {"deformable_im2col_tile": [12, 14], "deformable_im2col": [20, 21]}
    assert s["never_called"] == ["deformable_im2col::lambda<long>", "deformable_im2col_tile<float, long, false>"]
    assert coverage.ranges([3, 1, 2, 7, 9, 10]) == "1-3, 7, 9-10"


def test_merge_takes_counts_of_a_build_whose_lines_differ_in_text(tmp_path):
    # A -lowered build's kernel has the real file's line numbers with other constants on a few
    # lines; gcovr refuses to merge lines whose text (checksum) differs unless merge() drops them.
    import shutil
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    reports = []
    for name, bound in (("plain", 5), ("lowered", 2)):
        src = tmp_path / name
        src.mkdir()
        (src / "k.c").write_text(f"int f(int x) {{\n  if (x > {bound})\n    return 1;\n  return 0;\n}}\n"
                                 "int main(void) { return f(3) * 0; }\n")
        subprocess.run(["gcc", "--coverage", "-O0", "k.c", "-o", "k"], cwd=src, check=True)
        subprocess.run(["./k"], cwd=src, check=True)
        reports.append(tmp_path / f"{name}.json")
        subprocess.run([sys.executable, "-m", "gcovr", "--root", str(src), "--json", str(reports[-1])],
                       cwd=src, check=True, capture_output=True)
    raw, summary = tmp_path / "merged.json", tmp_path / "summary.json"
    coverage.merge(tmp_path / "plain", reports, raw, summary)
    (f,) = json.loads(raw.read_text())["files"]
    counts = {ln["line_number"]: ln["count"] for ln in f["lines"]}
    assert counts[3] == 1 and counts[4] == 1, counts  # `return 1` only the lowered build ran
