"""Shared fixtures of the verification suite.

Tests never import torchvision themselves: each variant runs in its own processes (both register
the same ``torchvision::`` ops), and this process compares the tensors they return.

The suite's parameters are pytest options (``pytest --help``, group "tvdcn"): ``--patched`` (the
variant under test, default ``patched``; ``prefix-N`` for a prefix), ``--baseline`` (the reference
variant, default ``baseline``), ``--threads``, ``--fuzz-examples``, ``--fuzz-seed``,
``--opcheck-configs``, ``--stacks`` and ``--summary-json``. Variant names: tvdcn.variant. The subsets (``-m prefix`` ...): pytest.ini.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pytest
import torch

from tvdcn import isolate, series, variant
from tvdcn.cases import SCOPES, Case, grid
from tvdcn.log import Failure
from tvdcn.reference import TOLERANCE

# Set from the options by pytest_configure, before any test module is imported.
PATCHED = "patched"
BASELINE = "baseline"
THREADS: tuple[int, ...] = (1, 2, 3, 4, 8)
FUZZ_EXAMPLES = 2000
FUZZ_SEED = 0
OPCHECK_CONFIGS: int | None = None
# The stock stacks test_dropin runs the drop-in wheel on: the newest torch's by default, every one
# with --stacks all (the CI matrix's dropin level runs each of them too).
STACKS: tuple[str, ...] = (max(variant.STACKS, key=lambda n: tuple(map(int, variant.STACKS[n].torch.split(".")))),)
SUMMARY_JSON: str | None = None
GRID = grid()

# The environment variables these options replaced: a run that still sets one is stopped, not misled.
RENAMED = {"TVDCN_PATCHED": "--patched", "TVDCN_BASELINE": "--baseline", "TVDCN_THREAD_COUNTS": "--threads",
           "TVDCN_FUZZ_EXAMPLES": "--fuzz-examples", "TVDCN_FUZZ_SEED": "--fuzz-seed",
           "TVDCN_SUMMARY_JSON": "--summary-json", "TVDCN_OPCHECK_CONFIGS": "--opcheck-configs"}


def _thread_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise pytest.UsageError(f"--threads {text!r}: give thread counts separated by commas, e.g. 1,4") from None
    if not counts or min(counts) < 1:
        raise pytest.UsageError(f"--threads {text!r}: thread counts are 1 or more, e.g. 1,4")
    return counts


def _stack_names(text: str) -> tuple[str, ...]:
    names = [n for n in text.split(",") if n]
    try:
        if not names or "all" in names and len(names) > 1:
            raise Failure(f"give 'all' or stacks separated by commas, of {', '.join(variant.STACKS)}")
        return tuple(s.name for s in variant.stacks([] if names == ["all"] else names))
    except Failure as e:
        raise pytest.UsageError(f"--stacks {text!r}: {e}") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("tvdcn", "the variants and budgets of the verification suite")
    g.addoption("--patched", default="patched", metavar="VARIANT",
                help="the variant under test (default: patched; e.g. prefix-3, patched-asan, tv0.29+fast, sa:patched)")
    g.addoption("--baseline", default="baseline", metavar="VARIANT",
                help="the variant it is compared with (default: baseline)")
    g.addoption("--threads", default="1,2,3,4,8", metavar="N,N,...",
                help="the thread counts of the grid's checks (default: 1,2,3,4,8)")
    g.addoption("--fuzz-examples", type=int, default=2000, metavar="N",
                help="the fuzzing budget of test_fuzz (default: 2000)")
    g.addoption("--fuzz-seed", type=int, default=0, metavar="N", help="the fuzzing seed (default: 0)")
    g.addoption("--opcheck-configs", type=int, metavar="N",
                help="test_opcheck on N grid configurations spread over its families, and batch 0, instead of "
                     "every one (default: all; tvdcn.aarch64 takes 6 under emulation)")
    g.addoption("--stacks", default=",".join(STACKS), metavar="NAME,...|all",
                help=f"the stock stacks test_dropin runs the drop-in wheel on (default: {','.join(STACKS)}; "
                     f"all: {', '.join(variant.STACKS)}; about 15 minutes each on 2 cores)")
    g.addoption("--summary-json", metavar="PATH",
                help="also write what ran, on what, with what outcome, to PATH (for tvdcn.prbody)")


def pytest_configure(config: pytest.Config) -> None:
    global PATCHED, BASELINE, THREADS, FUZZ_EXAMPLES, FUZZ_SEED, OPCHECK_CONFIGS, STACKS, SUMMARY_JSON
    stale = [f"{k} (now {v})" for k, v in RENAMED.items() if k in os.environ]
    if stale:
        raise pytest.UsageError(f"unset {', '.join(stale)}: the suite's parameters are pytest options")
    PATCHED, BASELINE = config.getoption("patched"), config.getoption("baseline")
    THREADS = _thread_counts(config.getoption("threads"))
    FUZZ_EXAMPLES, FUZZ_SEED = config.getoption("fuzz_examples"), config.getoption("fuzz_seed")
    OPCHECK_CONFIGS = config.getoption("opcheck_configs")
    STACKS = _stack_names(config.getoption("stacks"))
    SUMMARY_JSON = config.getoption("summary_json")

# Figures for the end-of-run summary: property -> counters.
SUMMARY: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


class Runs:
    """Results of the grid per (variant, threads, fill mode), computed once per session."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, bool], dict[str, Any]] = {}

    def get(self, name: str, threads: int, fill: bool = False) -> dict[str, Any]:
        key = (name, threads, fill)
        if key not in self._cache:
            self._cache[key] = isolate.run_cases(name, threads, GRID, fill_uninitialized=fill)
        return self._cache[key]


@pytest.fixture(scope="session")
def runs() -> Runs:
    return Runs()


def result(res: dict[str, Any], case: Case) -> dict[str, torch.Tensor]:
    """The tensors of one case, or fail the test with what went wrong in that case."""
    r = res.get(case.id)
    if r is None:
        pytest.fail(f"no result for {case.id}")
    if isinstance(r, isolate.CaseCrash):
        pytest.fail(f"{case.id}: {r}")
    if isinstance(r, isolate.CaseError):
        pytest.fail(f"{case.id}: the op raised {r.message}")
    return r


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and bit pattern (NaN payloads and signed zeros included)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
              torch.bfloat16: torch.int16}[a.dtype]
    return torch.equal(a.contiguous().view(as_int), b.contiguous().view(as_int))


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names of the tensors whose bits differ between two results of one case."""
    assert a.keys() == b.keys(), (a.keys(), b.keys())
    return [k for k in a if not bits_equal(a[k], b[k])]


_DECLARED: dict[str, str] | None = None


def applicable(declared: dict[str, str], case: Case | None) -> dict[str, str]:
    """The declarations that apply to ``case``: a scoped one ("grad_input[split]", see
    tvdcn.series.scoped) only where ``case`` is in its scope (tvdcn.cases.SCOPES); without a case
    (the hardening checks' own shapes), only the unscoped ones. Result name -> why."""
    out: dict[str, str] = {}
    for key, why in declared.items():
        name, scope = series.scoped(key)
        if scope is not None and scope not in SCOPES:
            raise Failure(f"a patch declares {key!r}: unknown scope {scope!r} (tvdcn.cases.SCOPES)")
        if scope is None or (case is not None and SCOPES[scope](case)):
            out.setdefault(name, why)
    return out


def declared(case: Case | None = None) -> dict[str, str]:
    """Results of ``case`` whose rounding the patches between baseline and the variant under test
    declare changed (``Rounding-changed:`` trailers, see tvdcn.series; a scoped one only where it
    applies): name -> the patch that declares it (or the lowered build that does). With a prefix
    as --baseline, only the patches after it count."""
    global _DECLARED
    if _DECLARED is None:
        pi, bi = variant.info(PATCHED), variant.info(BASELINE)
        # Standalone kernels (tvdcn.standalone) and the drop-in (its wheel's record) carry the
        # declarations of the commit they were built from; the vendored tree may be absent or newer.
        if "declared" in pi:
            _DECLARED = {k: v for k, v in pi["declared"].items() if k not in bi.get("declared", {})}
        else:
            _DECLARED = series.declared_rounding(pi["commit"], bi["commit"])
        # A build with lowered thresholds (tvdcn.lowered) declares its own, beyond the series'.
        for k in lowered_declared("rounding_changed"):
            _DECLARED.setdefault(k, f"lowered thresholds of {PATCHED}")
    return applicable(_DECLARED, case)


def lowered_declared(kind: str) -> dict[str, str]:
    """What the variant under test, if built with lowered thresholds (tvdcn.lowered), declares
    in its build record: ``rounding_changed`` or ``thread_dependent`` results, name -> why."""
    return dict(variant.info(PATCHED).get("lowered", {}).get(kind, {}))


_DEPENDENT: dict[str, str] | None = None


def thread_dependent(case: Case | None = None) -> dict[str, str]:
    """Results of ``case`` that may depend on the thread count in the variant under test, as
    upstream's GEMM makes them (``Thread-dependent:`` trailers not undone by a later
    ``Thread-invariant:``, see tvdcn.series; a scoped one only where it applies): name -> the
    patch that declares it (or the lowered build that does). The thread-invariance checks leave
    them out."""
    global _DEPENDENT
    if _DEPENDENT is None:
        pi = variant.info(PATCHED)
        if "thread_dependent" in pi:  # standalone kernels and the drop-in, as in declared()
            _DEPENDENT = dict(pi["thread_dependent"])
        else:
            _DEPENDENT = series.thread_dependent(pi["commit"])
        for k in lowered_declared("thread_dependent"):
            _DEPENDENT.setdefault(k, f"lowered thresholds of {PATCHED}")
    return applicable(_DEPENDENT, case)


def baseline_differs() -> dict[str, str]:
    """Results whose rounding the *baseline* changed from upstream 0.21 (a stock torchvision release
    under the drop-in, see tvdcn.variant.Stack.differs): name -> what was measured."""
    return variant.info(BASELINE).get("differs", {})


def undeclared_differences(patched: dict[str, torch.Tensor], base: dict[str, torch.Tensor],
                           case: Case | None = None) -> list[str]:
    """Results of patched whose bits differ from baseline's although no patch declares it (or,
    where the baseline itself changed a result's rounding, that are not within tolerance of it)."""
    out = []
    for k in differing(patched, base):
        if k in declared(case):
            continue
        if k in baseline_differs():
            if matches_baseline(k, patched[k], base[k], case) is None:
                SUMMARY["differences the baseline's own kernel explains (within 2x tolerance)"][k] += 1
                continue
        out.append(k)
    return out


def matches_baseline(name: str, got: torch.Tensor, want: torch.Tensor, case: Case | None = None) -> str | None:
    """Why ``got`` (patched) does not match ``want`` (baseline), or None. Bit equality, except
    for a result whose rounding a patch declares changed: then the same NaN positions and, since
    both are within TOLERANCE of the reference, within twice it of each other (relative to the
    largest magnitude, as in tvdcn.reference)."""
    if name not in declared(case) and name not in baseline_differs():
        return None if bits_equal(got, want) else "bits differ"
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"{got.dtype} {tuple(got.shape)} vs {want.dtype} {tuple(want.shape)}"
    if not torch.equal(got.isnan(), want.isnan()):
        return "NaN positions differ"
    g, w = got.double().nan_to_num(0.0), want.double().nan_to_num(0.0)
    if g.numel() == 0:
        return None
    if not torch.equal(g.isinf(), w.isinf()) or not torch.equal(g[g.isinf()], w[w.isinf()]):
        return "infinities differ"
    g, w = g.masked_fill(g.isinf(), 0.0), w.masked_fill(w.isinf(), 0.0)
    scale = max(1.0, w.abs().max().item())
    err = (g - w).abs().max().item()
    tol = 2 * TOLERANCE[str(got.dtype).removeprefix("torch.")]
    return None if err <= tol * scale else f"max difference {err:.3g} > {tol:g} * {scale:.3g}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tr = terminalreporter
    if SUMMARY_JSON:
        # For tools that quote the evidence (tvdcn.prbody): what ran, on what, with what outcome.
        import json

        counts = {k: len(v) for k, v in tr.stats.items() if k in ("passed", "failed", "error", "skipped")}
        with open(SUMMARY_JSON, "w") as f:
            json.dump({"patched": PATCHED, "baseline": BASELINE, "threads": THREADS, "grid": len(GRID),
                       "declared": _DECLARED or {}, "thread_dependent": _DEPENDENT or {}, "outcome": counts,
                       "lowered": variant.info(PATCHED).get("lowered"),
                       "fuzz": {"examples": str(FUZZ_EXAMPLES), "seed": str(FUZZ_SEED)},
                       "properties": {k: dict(v) for k, v in SUMMARY.items()}}, f, indent=2)
    if not SUMMARY:
        return
    tr.section("tvdcn property summary")
    tr.write_line(f"variants: {PATCHED} vs {BASELINE}; threads {THREADS}; grid of {len(GRID)} cases")
    if _DECLARED:
        tr.write_line("rounding declared changed: " + "; ".join(f"{k} (by \"{v}\")" for k, v in _DECLARED.items()))
    if _DEPENDENT:
        tr.write_line("declared thread-dependent: " + "; ".join(f"{k} (by \"{v}\")" for k, v in _DEPENDENT.items()))
    low = variant.info(PATCHED).get("lowered")
    if low:
        tr.write_line(f"{PATCHED} has lowered thresholds (tvdcn.lowered): "
                      + "; ".join(f"{t['what']} `{t['to']}`" for t in low["thresholds"]))
        for kind, label in (("rounding_changed", "rounding changed: compared with the reference, not baseline's bits "
                                                  "(but with them on the exact cases)"),
                            ("thread_dependent", "thread-dependent: left out of the thread-invariance checks")):
            by_why: dict[str, list[str]] = {}
            for k, why in low.get(kind, {}).items():
                by_why.setdefault(why, []).append(k)
            for why, names in by_why.items():
                tr.write_line(f"  it declares {', '.join(names)} {label}; why: {why}")
    for prop, counts in SUMMARY.items():
        tr.write_line(f"{prop}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
