"""Command line: ``python -m tvdcn {build,export,run,bench,dropin,aarch64,...}`` (scripts/*.sh wrap it)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from . import build as build_mod
from . import paths, pin as pin_mod, series
from .log import Failure, info


def prepare(args: argparse.Namespace) -> list[str]:
    """Fetch/verify upstream and apply the series; return the prefix commits."""
    return series.prepare(args.source, force=args.force)


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    pin = pin_mod.load()
    prefixes = prepare(args)
    names = args.variant or ["baseline", "patched"]
    if args.prefix is not None:
        names = ["baseline", f"prefix-{args.prefix}"]
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


# The fast checks every prefix of the series must pass (upstream's tests and the new ones failing
# on baseline, bit equality with baseline at every thread count, every empty buffer written, the
# kernel file stable-ABI only).
PREFIX_CHECKS = ["tests/test_upstream.py", "tests/test_threads.py", "tests/test_uninitialized.py",
                 "tests/test_contexts.py", "tests/test_stable_abi.py"]


def cmd_prefixes(args: argparse.Namespace) -> int:
    """Build every prefix of the series and run the fast checks on it: the stack stays bisectable."""
    pin = pin_mod.load()
    prefixes = prepare(args)
    rows = []
    for k in range(1, len(prefixes)):
        name = f"prefix-{k}"
        try:
            for v in build_mod.variants_for(prefixes, ["baseline", name]):
                build_mod.build(pin, v, prefixes.index(v.commit))
        except Failure as e:
            info(f"{name} does not build: {e}")
            rows.append((name, "does not build"))
            continue
        info(f"{name}: running the fast checks")
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", *PREFIX_CHECKS, *args.pytest_args],
                           cwd=paths.REPO, env=dict(os.environ, TVDCN_PATCHED=name))
        rows.append((name, "passed" if r.returncode == 0 else f"FAILED (pytest exit {r.returncode})"))
    print("\nSeries prefixes:")
    for (name, status), f in zip(rows, series.patch_files()):
        print(f"  {name:<10} {f.name:<70} {status}")
    return 0 if all(st == "passed" for _, st in rows) else 1


def cmd_export(args: argparse.Namespace) -> int:
    files = series.export()
    print("\n".join(f"  {f.relative_to(paths.REPO)}" for f in files))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import variant

    return subprocess.call(variant.command(args.variant, args.argv))


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.main(args)


# The suite's checks that apply to a stock stack with the drop-in (the others test the vendored
# tree itself: its upstream test file, its build, its Python-side changes).
DROPIN_CHECKS = ["tests/test_dropin.py", "tests/test_threads.py", "tests/test_reference.py",
                 "tests/test_hardening.py", "tests/test_opcheck.py", "tests/test_fuzz.py"]


def _stacks(names: list[str]) -> list:
    from . import dropin

    names = names or list(dropin.STACKS)
    unknown = [n for n in names if n not in dropin.STACKS]
    if unknown:
        raise Failure(f"unknown stack(s) {unknown}: one of {', '.join(dropin.STACKS)}")
    return [dropin.STACKS[n] for n in names]


def cmd_dropin(args: argparse.Namespace) -> int:
    """Build the drop-in wheel from the patched variant; prepare stock stacks; test/bench it there."""
    from . import dropin

    pin = pin_mod.load()
    prefixes = prepare(args)
    for v in build_mod.variants_for(prefixes, ["patched"]):
        build_mod.build(pin, v, prefixes.index(v.commit))
    wheel = dropin.build_wheel("patched")
    print(f"drop-in wheel: {wheel}")
    if args.action == "build":
        return 0
    rc = 0
    for stack in _stacks(args.stacks):
        python = dropin.prepare(stack, wheel)
        print(f"{stack.name}: torch {stack.torch} + torchvision {stack.torchvision} + the wheel in {stack.env} "
              f"({python})")
        if args.action == "test":
            env = dict(os.environ, TVDCN_BASELINE=stack.name, TVDCN_PATCHED=stack.name + dropin.FAST_SUFFIX)
            # Fewer thread counts and fuzz examples than the main suite's: the kernel is the one the
            # suite checked; this checks it inside that torch against that torchvision's kernel.
            env.setdefault("TVDCN_THREAD_COUNTS", f"1,{max(2, os.cpu_count() or 1)}")
            env.setdefault("TVDCN_FUZZ_EXAMPLES", "300")
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", *DROPIN_CHECKS, *args.pytest_args],
                               cwd=paths.REPO, env=env)
            print(f"{stack.name}: {'passed' if r.returncode == 0 else f'FAILED (pytest exit {r.returncode})'}")
            rc = rc or r.returncode
        elif args.action == "bench":
            from . import bench

            bp = argparse.ArgumentParser()
            bench.add_arguments(bp)
            bargs = bp.parse_args(
                ["--variants", f"{stack.name},{stack.name}{dropin.FAST_SUFFIX}",
                 "--json", str(paths.REPO / "bench-results" / f"dropin-{stack.name}.json"), *args.pytest_args])
            rc = rc or bench.main(bargs)
    return rc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tvdcn", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fetch + verify upstream, apply patches/, build variants")
    b.add_argument("--source", help="a local torchvision checkout or tarball to use instead of the pin's sources")
    b.add_argument("--variant", action="append", help="baseline, patched or prefix-N, each optionally with -asan or -cov (repeatable)")
    b.add_argument("--prefix", type=int, help="build baseline and the first N patches (variant prefix-N)")
    b.add_argument("--force", action="store_true", help="discard unexported commits in the vendored tree")
    b.set_defaults(fn=cmd_build)
    pf = sub.add_parser("prefixes", help="build each prefix of the series and run the fast checks on it")
    pf.add_argument("--source")
    pf.add_argument("--force", action="store_true")
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
    a = sub.add_parser("apply", help="apply the series onto a torchvision checkout with git am --3way",
                       description=__import__("tvdcn.apply").apply.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("path", help="a git checkout of torchvision (its HEAD is the base)")
    a.add_argument("--branch", default="deform-conv2d-cpu", help="the new branch (default: %(default)s)")
    a.add_argument("--skip", type=int, default=0, metavar="N",
                   help="leave out the first N patches (1: our stable-ABI port, which main has in its own form)")
    a.add_argument("--as-me", action="store_true",
                   help="author = the checkout's git identity, with its Signed-off-by on every commit")
    a.add_argument("--check", action="store_true", help="then build base and series there and run the fast checks")
    a.set_defaults(fn=lambda args: __import__("tvdcn.apply").apply.main(args))
    pr = sub.add_parser("pr-body", help="generate the PR body of one patch (benchmark vs parent, evidence, repro)",
                        description=__import__("tvdcn.prbody").prbody.__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("patch", type=int, help="the patch's number in the series (2..N)")
    pr.add_argument("--skip-bench", action="store_true")
    pr.add_argument("--skip-checks", action="store_true")
    pr.add_argument("--reuse", action="store_true",
                    help="render from the last run's bench-results/pr-NNNN-*.json instead of running them again")
    pr.add_argument("--configs", default=__import__("tvdcn.prbody").prbody.CONFIGS, help="benchmark configs")
    pr.add_argument("-o", "--output", help="default: bench-results/pr-NNNN.md")
    pr.add_argument("--source")
    pr.add_argument("--force", action="store_true")
    pr.set_defaults(fn=lambda args: __import__("tvdcn.prbody").prbody.main(args))
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
                       description=__import__("tvdcn.coverage").coverage.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--variant", default="patched", help="baseline, patched or prefix-N; its -cov build is measured")
    c.add_argument("--json", help="where the summary goes (default: bench-results/coverage.json)")
    c.add_argument("--source")
    c.add_argument("--force", action="store_true")
    c.add_argument("pytest_args", nargs=argparse.REMAINDER,
                   help="test files and pytest options (default tests: %s); put -- before them if the first is "
                        "an option" % " ".join(__import__("tvdcn.coverage").coverage.DEFAULT_TESTS))
    c.set_defaults(fn=lambda args: __import__("tvdcn.coverage").coverage.main(args))
    aa = sub.add_parser("aarch64", help="the drop-in wheel for aarch64 and the stock-stack checks, under emulation",
                        description=__import__("tvdcn.aarch64").aarch64.__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    __import__("tvdcn.aarch64").aarch64.add_arguments(aa)
    aa.set_defaults(fn=lambda args: __import__("tvdcn.aarch64").aarch64.main(args))
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except Failure as e:
        print(f"tvdcn: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
