"""The tvdcn command line: python -m tvdcn COMMAND (scripts/*.sh wrap it).

Which tests a command runs is a pytest marker (pytest.ini); the suite's parameters (--patched,
--baseline, --threads, --fuzz-examples) are pytest options (tests/conftest.py). Nothing here is
imported by another module: each command calls the module that does the work.
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

from . import build as build_mod
from . import paths, pin as pin_mod, series, variant
from .log import Failure


def prepare(args: argparse.Namespace) -> list[str]:
    """Fetch/verify upstream and apply the series; return the prefix commits."""
    return series.prepare(args.source, force=args.force)


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    pin = pin_mod.load()
    names = args.variant or ["baseline", "patched"]
    if args.prefix is not None:
        names = ["baseline", f"prefix-{args.prefix}"]
    build_mod.check_names(names)  # a mistyped name fails before anything is fetched or built
    prefixes = prepare(args)
    summary = []
    for v in build_mod.variants_for(prefixes, names):
        n = prefixes.index(v.commit)
        wheel, reused = build_mod.build(pin, v, n)
        if v.name == "patched" and wheel:
            wheel = build_mod.publish_wheel(wheel)
        summary.append((v, n, wheel, reused))
    print(f"\nSummary ({time.monotonic() - t0:.0f}s)")
    print(f"  upstream:    torchvision {pin.version} ({series.read_state().get('origin')})")
    print(f"  series:      {len(prefixes) - 1} patches from {paths.SERIES_FILE}")
    print(f"  torch:       {build_mod._torch_version()}, Python {sys.version.split()[0]}")
    for v, n, wheel, reused in summary:
        print(f"  {v.name:<12} {n} patches, {'reused (unchanged)' if reused else 'built'}: {v.site}")
        if v.name == "patched" and wheel:
            print(f"  {'wheel':<12} {wheel}")
    return 0


def run_suite(*args: str) -> int:
    """Run the suite (``python -m pytest ARGS`` in the repository); its exit status."""
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=paths.REPO).returncode


def _buildable(names: list[str]) -> list[str]:
    """The names among ``names`` that ``build`` makes (not stock stacks or standalone kernels)."""
    parsed = {n: variant.parse(n) for n in names}
    return [n for n, v in parsed.items() if isinstance(v, variant.Built) and v.base is not None]


def cmd_test(args: argparse.Namespace) -> int:
    """Build the variants the suite compares (unless built and unchanged), then run it: every
    argument but --patched/--baseline goes to pytest as is; given test files, only those run."""
    stale = [k for k in ("TVDCN_PATCHED", "TVDCN_BASELINE") if k in os.environ]
    if stale:
        raise Failure(f"unset {', '.join(stale)}: the variants are options now (--patched, --baseline)")
    suite = [*(["--patched", args.patched] if args.patched else []),
             *(["--baseline", args.baseline] if args.baseline else [])]
    names = _buildable([args.baseline or "baseline", args.patched or "patched"])
    if names:
        cmd_build(argparse.Namespace(source=None, force=False, variant=names, prefix=None))
    return run_suite(*suite, *args.pytest_args)


def cmd_sanitize(args: argparse.Namespace) -> int:
    """Build an AddressSanitizer + UBSan variant and run the ``sanitizer`` tests under it."""
    cmd_build(argparse.Namespace(source=None, force=False, variant=["baseline", args.variant], prefix=None))
    # Fewer fuzz examples than the suite's 2,000 (a later --fuzz-examples in the arguments wins).
    return run_suite("-q", "-m", "sanitizer", "--patched", args.variant, "--fuzz-examples", "300", *args.pytest_args)


def cmd_prefixes(args: argparse.Namespace) -> int:
    """Build every prefix of the series and run the prefix tests on it (tvdcn.prefixes)."""
    from . import prefixes

    return prefixes.main(args, prepare(args))


def cmd_export(args: argparse.Namespace) -> int:
    files = series.export()
    print("\n".join(f"  {f.relative_to(paths.REPO)}" for f in files))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return subprocess.call(variant.command(args.variant, args.argv))


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.main(args)


def cmd_dropin(args: argparse.Namespace) -> int:
    """Build the drop-in wheel from the patched variant; prepare stock stacks; test/bench it there."""
    from . import dropin

    stacks = variant.stacks(args.stacks)  # a mistyped stack fails before anything is built
    pin = pin_mod.load()
    prefixes = prepare(args)
    for v in build_mod.variants_for(prefixes, ["patched"]):
        build_mod.build(pin, v, prefixes.index(v.commit))
    wheel = dropin.build_wheel("patched")
    print(f"drop-in wheel: {wheel}")
    if args.action == "build":
        return 0
    rc = 0
    for stack in stacks:
        python = dropin.prepare(stack, wheel)
        print(f"{stack.name}: torch {stack.torch} + torchvision {stack.torchvision} + the wheel in {stack.env} "
              f"({python})")
        if args.action == "test":
            # The tests that apply to a stock stack (the others test the vendored tree itself), with
            # fewer thread counts and fuzz examples than the main suite's: the kernel is the one the
            # suite checked; this checks it inside that torch against that torchvision's kernel.
            # Options in --args come later, so they win.
            r = run_suite("-q", "-m", "dropin", "--baseline", stack.name, "--patched", stack.name + variant.FAST_SUFFIX,
                       "--threads", f"1,{max(2, os.cpu_count() or 1)}", "--fuzz-examples", "300", *args.pytest_args)
            print(f"{stack.name}: {'passed' if r == 0 else f'FAILED (pytest exit {r})'}")
            rc = rc or r
        elif args.action == "bench":
            from . import bench

            bp = argparse.ArgumentParser()
            bench.add_arguments(bp)
            bargs = bp.parse_args(
                ["--variants", f"{stack.name},{stack.name}{variant.FAST_SUFFIX}",
                 "--json", str(paths.REPO / "bench-results" / f"dropin-{stack.name}.json"), *args.pytest_args])
            rc = rc or bench.main(bargs)
    return rc


# Commands with a parser of their own: everything after the command's name goes to that module's main().
OWN_PARSER = {
    "profile": ("tvdcn.profile", "split a training step by pass with perf (--counters: page faults, CPU time)"),
    "standalone": ("tvdcn.standalone", "stage and compile a variant's kernel file alone (for a many-core machine)"),
    "ci": ("tvdcn.ci", "the CI matrix: list the cells, print the workflow, run one cell here"),
    "tuning": ("tvdcn.tuning", "benchmark each tuning constant of the kernel against neighbouring values"),
}


def _doc(module: str) -> str:
    return importlib.import_module(module).__doc__ or ""


def parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="python -m tvdcn", description=__doc__, formatter_class=raw)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help="fetch + verify upstream, apply patches/, build variants")
    b.add_argument("--source", help="a local torchvision checkout or tarball to use instead of the pin's sources")
    b.add_argument("--variant", action="append",
                   help="baseline, patched or prefix-N, each optionally -lowered, then -asan or -cov (repeatable)")
    b.add_argument("--prefix", type=int, help="build baseline and the first N patches (variant prefix-N)")
    b.add_argument("--force", action="store_true", help="discard unexported commits in the vendored tree")
    b.set_defaults(fn=cmd_build)
    t = sub.add_parser("test", help="build what the suite compares, then run it (other arguments go to pytest)",
                       description=cmd_test.__doc__, allow_abbrev=False)
    t.add_argument("--patched", help="the variant under test (default: patched)")
    t.add_argument("--baseline", help="the variant it is compared with (default: baseline)")
    t.set_defaults(fn=cmd_test, takes_pytest_args=True)
    sa = sub.add_parser("sanitize", help="build a sanitizer variant and run the sanitizer tests under it",
                        description=cmd_sanitize.__doc__, allow_abbrev=False)
    sa.add_argument("--variant", default="patched-asan",
                    help="the -asan variant (default: %(default)s; baseline-asan: upstream itself)")
    sa.set_defaults(fn=cmd_sanitize, takes_pytest_args=True)
    pf = sub.add_parser("prefixes", help="build each prefix of the series and run the prefix tests on it",
                        description=_doc("tvdcn.prefixes"), formatter_class=raw)
    pf.add_argument("--source")
    pf.add_argument("--force", action="store_true")
    pf.add_argument("--record", type=Path, metavar="FILE",
                    help="write each prefix's result to FILE; skip those it records as passed under the same key")
    pf.add_argument("--fresh", action="store_true", help="with --record: run every prefix again")
    pf.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    pf.set_defaults(fn=cmd_prefixes)
    e = sub.add_parser("export", help="write the vendored tree's commits back to patches/")
    e.set_defaults(fn=cmd_export)
    r = sub.add_parser("run", help="run python with one variant importable: run VARIANT -- ARGS")
    r.add_argument("variant")
    r.add_argument("argv", nargs=argparse.REMAINDER)
    r.set_defaults(fn=cmd_run)
    bb = sub.add_parser("bench", help="benchmark variants side by side")
    from . import bench

    bench.add_arguments(bb)
    bb.set_defaults(fn=cmd_bench)
    for name in ("profile", "standalone", "tuning"):
        sub.add_parser(name, help=OWN_PARSER[name][1], add_help=False)
    a = sub.add_parser("apply", help="apply the series onto a torchvision checkout with git am --3way",
                       description=_doc("tvdcn.apply"), formatter_class=raw)
    a.add_argument("path", help="a git checkout of torchvision (its HEAD is the base)")
    a.add_argument("--branch", default="deform-conv2d-cpu", help="the new branch (default: %(default)s)")
    a.add_argument("--skip", type=int, default=0, metavar="N",
                   help="leave out the first N patches (1: our stable-ABI port, which main has in its own form)")
    a.add_argument("--as-me", action="store_true",
                   help="author = the checkout's git identity, with its Signed-off-by on every commit")
    a.add_argument("--check", action="store_true", help="then build base and series there and run the prefix tests")
    a.set_defaults(fn=lambda args: importlib.import_module("tvdcn.apply").main(args))
    pr = sub.add_parser("pr-body", help="generate the PR body of one patch (benchmark vs parent, evidence, repro)",
                        description=_doc("tvdcn.prbody"), formatter_class=raw)
    pr.add_argument("patch", type=int, help="the patch's number in the series (2..N)")
    pr.add_argument("--skip-bench", action="store_true")
    pr.add_argument("--skip-checks", action="store_true")
    pr.add_argument("--reuse", action="store_true",
                    help="render from the last run's bench-results/pr-NNNN-*.json instead of running them again")
    pr.add_argument("--configs", default=importlib.import_module("tvdcn.prbody").CONFIGS,
                    help="benchmark configs (default: %(default)s)")
    pr.add_argument("--fuzz-examples", type=int, default=500, help="the checks' fuzzing budget (default: %(default)s)")
    pr.add_argument("-o", "--output", help="default: bench-results/pr-NNNN.md")
    pr.add_argument("--source")
    pr.add_argument("--force", action="store_true")
    pr.set_defaults(fn=lambda args: importlib.import_module("tvdcn.prbody").main(args))
    d = sub.add_parser("dropin", help="the drop-in wheel: build it; prepare, test or bench it on stock stacks",
                       description=cmd_dropin.__doc__)
    d.add_argument("action", choices=["build", "prepare", "test", "bench"])
    d.add_argument("stacks", nargs="*", help="stacks (default: all): tv0.26, tv0.28, tv0.29")
    d.add_argument("--source")
    d.add_argument("--force", action="store_true")
    d.add_argument("--args", dest="pytest_args", nargs=argparse.REMAINDER, default=[],
                   help="the rest goes to pytest (test) or to the benchmark (bench)")
    d.set_defaults(fn=cmd_dropin)
    c = sub.add_parser("coverage", help="line and branch coverage of the kernel file under chosen tests (gcov build)",
                       description=_doc("tvdcn.coverage"), formatter_class=raw)
    c.add_argument("--variant", action="append",
                   help="baseline, patched or prefix-N, optionally -lowered; its -cov build is measured (default: "
                        "patched; repeat it to run the tests on each and merge their counts, e.g. --variant patched "
                        "--variant patched-lowered)")
    c.add_argument("--json", help="where the summary goes (default: bench-results/coverage.json)")
    c.add_argument("--source")
    c.add_argument("--force", action="store_true")
    c.add_argument("pytest_args", nargs=argparse.REMAINDER,
                   help="test files and pytest options (default tests: %s); put -- before them if the first is "
                        "an option" % " ".join(importlib.import_module("tvdcn.coverage").DEFAULT_TESTS))
    c.set_defaults(fn=lambda args: importlib.import_module("tvdcn.coverage").main(args))
    aa = sub.add_parser("aarch64", help="the drop-in wheel for aarch64 and the stock-stack checks, under emulation",
                        description=_doc("tvdcn.aarch64"), formatter_class=raw)
    importlib.import_module("tvdcn.aarch64").add_arguments(aa)
    aa.set_defaults(fn=lambda args: importlib.import_module("tvdcn.aarch64").main(args))
    sub.add_parser("ci", help=OWN_PARSER["ci"][1], add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in OWN_PARSER:
        return importlib.import_module(OWN_PARSER[argv[0]][0]).main(argv[1:])
    p = parser()
    args, rest = p.parse_known_args(argv)
    if getattr(args, "takes_pytest_args", False):
        args.pytest_args = rest
    elif rest:
        p.error(f"unrecognized arguments: {' '.join(rest)} (see python -m tvdcn {args.cmd} --help)")
    try:
        return args.fn(args)
    except Failure as e:
        print(f"tvdcn: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
