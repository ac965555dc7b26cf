"""Line and branch coverage of the kernel file under chosen suite tests.

``python -m tvdcn coverage [--variant patched] [--json PATH] [TESTS / pytest args]`` builds the
variant's gcov build (``<variant>-cov``, see tvdcn.build.INSTRUMENTS), deletes the counts of
earlier runs, runs ``python -m pytest`` on the tests with ``--patched <variant>-cov`` (the
baseline stays the plain ``baseline`` build), and reports with gcovr, for
``torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp`` only: line and branch coverage, the
uncovered lines grouped by function, and the template instantiations never called. The JSON
summary (default ``bench-results/coverage.json``) names the tree it was measured on: the figures
belong to that tip and that selection of tests.

``--variant`` repeated (``--variant patched --variant patched-lowered``) runs the tests against
each variant's -cov build in turn and merges their counts line by line (gcovr tracefiles): a line
or branch is covered when either build ran it. A ``-lowered`` build's kernel file differs from the
real one only inside lines (tvdcn.lowered), so its line numbers are the real file's. The summary
keeps each variant's own figures too.

Counted per source line: a line (and each of its branches) is covered when any template
instantiation of it ran (gcovr ``--merge-lines``). Branches are gcc's; those only exception
handling takes and those on lines without code of their own are left out
(``--exclude-throw-branches``, ``--exclude-unreachable-branches``): with them in, every call that
may throw adds branches no test can sensibly take, and the figure says little about the kernel.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import build as build_mod
from . import paths, pin as pin_mod, series
from .log import Failure, info

KERNEL = str(paths.KERNEL)
# Fast and meaningful: the grid at every thread count, bad input, fuzzing, the reference, and
# bfloat16/float16 (the only tests that take the kernels' compute-in-float32 path).
DEFAULT_TESTS = [f"tests/kernel/test_{t}.py" for t in ("threads", "hardening", "fuzz", "reference", "low_precision", "faults")]
GCOVR_OPTIONS = ["--merge-lines", "--exclude-throw-branches", "--exclude-unreachable-branches"]


def ranges(lines: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7'."""
    out: list[str] = []
    for n in sorted(lines):
        if out and int(out[-1].rsplit("-", 1)[-1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def summarize(report: dict) -> dict:
    """From gcovr's raw JSON report (one entry per line per template instantiation): the lines no
    instantiation ran, grouped by the function they are in, and the instantiations never called."""
    (f,) = [f for f in report["files"] if f["file"].endswith(KERNEL)]
    hits: dict[int, int] = {}
    func_of: dict[int, str] = {}
    for ln in f["lines"]:
        if ln.get("gcovr/excluded") or ln.get("gcovr/noncode"):
            continue
        n = ln["line_number"]
        hits[n] = hits.get(n, 0) + ln["count"]
        func_of.setdefault(n, ln.get("function_name", "?"))
    uncovered = sorted(n for n, c in hits.items() if c == 0)
    by_function: dict[str, list[int]] = {}
    for n in uncovered:
        by_function.setdefault(function_name(func_of[n]), []).append(n)
    never = sorted({function_name(fn["demangled_name"], templates=True) for fn in f.get("functions", [])
                    if fn.get("execution_count", 0) == 0})
    return {"uncovered_lines": uncovered, "uncovered_by_function": by_function, "never_called": never}


def function_name(name: str, templates: bool = False) -> str:
    """A demangled name, short: no namespaces, parameter lists or return type; with ``templates``
    its template arguments and a lambda as ``enclosing::lambda<its arguments>``, else a lambda as
    the function it is in."""
    name = name.replace("(anonymous namespace)::", "").replace("vision::ops::", "")
    while True:
        shorter = re.sub(r"\([^()]*\)", "", name)
        if not templates:
            shorter = re.sub(r"<[^<>]*>", "", shorter)
        if shorter == name:
            break
        name = shorter
    name = re.sub(r"(::\{lambda#\d+\}::operator(<[^<>]*>)?( const)?)+",
                  lambda m: "::lambda" + "".join(re.findall(r"operator(<[^<>]*>)", m.group(0))), name)
    if templates:
        return re.sub(r"^\w+ (?=\w)", "", name)  # without the return type
    return name.removesuffix(" const").split(" ")[-1].split("::lambda")[0]


def gcovr(worktree: Path, objects: Path, raw: Path, summary: Path) -> str:
    """Run gcovr on the kernel file's counts: its raw JSON report to ``raw``, its JSON summary to
    ``summary``; return its text reports, lines then branches, each with what is missing."""
    base = [sys.executable, "-m", "gcovr", "--root", str(worktree), "--filter", re.escape(str(worktree / KERNEL)),
            *GCOVR_OPTIONS]
    text = []
    for extra in (["--txt-metric", "line", "--txt", "-", "--json", str(raw), "--json-summary", str(summary)],
                  ["--txt-metric", "branch", "--txt", "-"]):
        r = subprocess.run([*base, *extra, str(objects)], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"gcovr failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        text.append(r.stdout.rstrip())
    return "\n".join(text)


def without_line_checksums(report: dict) -> dict:
    """A gcovr JSON report without its per-line source checksums (``gcovr/md5``). gcovr refuses to
    merge a line whose text differs between reports, which the lines a -lowered build rewrites do
    (tvdcn.lowered: the same line numbers, other constants); merged, they take the first report's."""
    for f in report.get("files", []):
        for ln in f.get("lines", []):
            ln.pop("gcovr/md5", None)
    return report


def merge(worktree: Path, tracefiles: list[Path], raw: Path, summary: Path) -> str:
    """gcovr over several runs' raw JSON reports (tracefiles), merged line by line; as gcovr()."""
    for t in tracefiles[1:]:
        t.write_text(json.dumps(without_line_checksums(json.loads(t.read_text()))))
    base = [sys.executable, "-m", "gcovr", "--root", str(worktree), *GCOVR_OPTIONS,
            *(x for t in tracefiles for x in ("--add-tracefile", str(t)))]
    text = []
    for extra in (["--txt-metric", "line", "--txt", "-", "--json", str(raw), "--json-summary", str(summary)],
                  ["--txt-metric", "branch", "--txt", "-"]):
        r = subprocess.run([*base, *extra], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"gcovr (merging {len(tracefiles)} runs) failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        text.append(r.stdout.rstrip())
    return "\n".join(text)


def figures(summary: dict) -> dict:
    """Line, branch and instantiation figures of the kernel file from a gcovr JSON summary."""
    (fs,) = [f for f in summary["files"] if f["filename"].endswith(KERNEL)]
    return {"lines": {"covered": fs["line_covered"], "total": fs["line_total"], "percent": fs["line_percent"]},
            "branches": {"covered": fs["branch_covered"], "total": fs["branch_total"],
                         "percent": fs["branch_percent"]},
            "instantiations": {"called": fs["function_covered"], "total": fs["function_total"],
                               "percent": fs["function_percent"]}}


def measure(pin, prefixes: list[str], variant_name: str, pytest_args: list[str], tmp: Path) -> dict:
    """Build ``<variant>-cov``, run the tests against it, and return its figures, with its raw
    gcovr report kept in ``tmp`` for merging."""
    t0 = time.monotonic()
    name = variant_name.removesuffix(build_mod.COVERAGE_SUFFIX) + build_mod.COVERAGE_SUFFIX
    base, v = build_mod.variants_for(prefixes, ["baseline", name])
    for x in (base, v):
        build_mod.build(pin, x, prefixes.index(x.commit))
    record = json.loads(v.record.read_text())
    objects = v.worktree / "build"
    old = list(objects.rglob("*.gcda"))
    for g in old:
        g.unlink()
    t_build = time.monotonic() - t0
    info(f"{name} ready ({t_build:.0f}s; {len(old)} old .gcda files deleted)")
    # 300 fuzz examples, as the sanitizer run: coverage saturates long before 2,000 (a later
    # --fuzz-examples among the arguments wins).
    cmd = [sys.executable, "-m", "pytest", "-q", "--patched", name, "--fuzz-examples", "300", *pytest_args]
    info(" ".join(cmd[1:]))
    t1 = time.monotonic()
    rc = subprocess.run(cmd, cwd=paths.REPO).returncode
    t_tests = time.monotonic() - t1
    if not any(objects.glob("**/" + KERNEL.replace(".cpp", ".gcda"))):
        raise Failure(f"no counts for {KERNEL} were written under {objects}: did the tests run {name}?")
    full, summ = tmp / f"{name}.json", tmp / f"{name}-summary.json"
    text = gcovr(v.worktree, objects, full, summ)
    return {"variant": name, "commit": record["commit"], "tree": record["key"]["tree"],
            "version": record["version"], "pytest_exit": rc, "pytest_args": cmd[3:],
            **({"lowered": record["lowered"]["thresholds"]} if record.get("lowered") else {}),
            **figures(json.loads(summ.read_text())), **summarize(json.loads(full.read_text())),
            "seconds": {"build": round(t_build), "tests": round(t_tests)},
            "_text": text, "_raw": full, "_worktree": v.worktree}


def main(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gcovr") is None:
        raise Failure("gcovr is not installed in this environment: pip install -r requirements.txt")
    pin = pin_mod.load()
    variants = list(dict.fromkeys(args.variant or ["patched"]))
    build_mod.check_names([v.removesuffix(build_mod.COVERAGE_SUFFIX) + build_mod.COVERAGE_SUFFIX for v in variants])
    prefixes = series.prepare(args.source, force=args.force)
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else list(args.pytest_args)
    if not any(a.endswith(".py") or "::" in a or Path(a).is_dir() for a in pytest_args):
        pytest_args = DEFAULT_TESTS + pytest_args

    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(pin, prefixes, v, pytest_args, Path(tmp)) for v in variants]
        if len(runs) == 1:
            text, merged = runs[0]["_text"], runs[0]
        else:
            trees = {r["tree"] for r in runs}
            if len(trees) != 1:
                raise Failure(f"cannot merge the counts of different trees: {', '.join(v for v in variants)}")
            full, summ = Path(tmp) / "merged.json", Path(tmp) / "merged-summary.json"
            text = merge(runs[0]["_worktree"], [r["_raw"] for r in runs], full, summ)
            merged = {**figures(json.loads(summ.read_text())), **summarize(json.loads(full.read_text()))}
    rc = max(r["pytest_exit"] for r in runs)
    first = runs[0]
    out = {
        "file": KERNEL, "variant": " + ".join(r["variant"] for r in runs), "commit": first["commit"],
        "tree": first["tree"], "version": first["version"], "tests": pytest_args, "pytest_exit": rc,
        "pytest_args": first["pytest_args"],
        "gcovr": importlib.metadata.version("gcovr"), "gcovr_options": GCOVR_OPTIONS,
        **{k: merged[k] for k in ("lines", "branches", "instantiations", "uncovered_lines", "uncovered_by_function",
                                  "never_called")},
        "seconds": {k: sum(r["seconds"][k] for r in runs) for k in ("build", "tests")},
        "date": time.strftime("%Y-%m-%d"),
    }
    if len(runs) > 1:
        out["runs"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs]
    dest = Path(args.json) if args.json else paths.REPO / "bench-results" / "coverage.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")

    fs = {"line_covered": out["lines"]["covered"], "line_total": out["lines"]["total"],
          "line_percent": out["lines"]["percent"], "branch_covered": out["branches"]["covered"],
          "branch_total": out["branches"]["total"], "branch_percent": out["branches"]["percent"],
          "function_covered": out["instantiations"]["called"], "function_total": out["instantiations"]["total"],
          "function_percent": out["instantiations"]["percent"]}
    detail = {k: out[k] for k in ("uncovered_by_function", "never_called")}
    t_tests, t_build = out["seconds"]["tests"], out["seconds"]["build"]
    record = {"version": first["version"]}
    print(text.rstrip())
    if len(runs) > 1:
        print("\nEach run alone:")
        for r in runs:
            print(f"  {r['variant']}: lines {r['lines']['covered']}/{r['lines']['total']} ({r['lines']['percent']}%), "
                  f"branches {r['branches']['covered']}/{r['branches']['total']} ({r['branches']['percent']}%), "
                  f"pytest {'passed' if r['pytest_exit'] == 0 else 'exit %d' % r['pytest_exit']}")
    print(f"\nCoverage of {KERNEL} ({record['version']}, tree {out['tree'][:12]}) under: {' '.join(pytest_args)}")
    if len(runs) > 1:
        print(f"  against {out['variant']}, counts merged line by line")
    print("  with pytest " + " ".join(out["pytest_args"]))
    print(f"  lines     {fs['line_covered']}/{fs['line_total']} ({fs['line_percent']}%)")
    print(f"  branches  {fs['branch_covered']}/{fs['branch_total']} ({fs['branch_percent']}%), "
          "throw and unreachable branches excluded")
    print(f"  functions {fs['function_covered']}/{fs['function_total']} called ({fs['function_percent']}%; "
          "each template instantiation and lambda counts)")
    print("  uncovered lines by function:")
    for fn, lines in detail["uncovered_by_function"].items():
        print(f"    {fn}: {ranges(lines)}")
    print("  never called: " + "; ".join(detail["never_called"]))
    print(f"  pytest: {'passed' if rc == 0 else f'exit {rc}'}; tests {t_tests:.0f}s, build {t_build:.0f}s")
    print(f"  JSON: {dest}")
    return rc
