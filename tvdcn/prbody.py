"""A pull-request body for one patch of the series, generated: nothing in it is typed by hand.

``python -m tvdcn pr-body N [--skip-bench] [--skip-checks] [--reuse] [--fuzz-examples N] [-o FILE]``

``--reuse`` renders the body again from the last run's results (``bench-results/pr-NNNN-*.json``)
without running anything: for a patch message or a presentation change.

- **Summary**: the patch's own message (subject, body; the series' bookkeeping trailers left out).
- **Benchmark**: the patch against its parent (variants ``prefix-(N-1)`` and ``prefix-N``, each in
  its own processes, interleaved; ``tvdcn bench``'s Compare-style table with its environment), at
  1 thread and at every core of the machine, forward and training step.
- **Correctness**: the suite's ``pr`` tests run with the parent as the baseline (``--baseline``), so
  "bit-identical" means "to the code before this patch"; the cases, thread counts and fuzzing
  budget as the suite reported them (``--summary-json``); the last sanitizer run, with the tree it
  ran on.
- **Reproduce**: a script that needs only torch and a torchvision build (main, then this branch):
  it prints timings and a digest of the outputs per thread count.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from . import catalog, paths, series
from .log import Failure, info

TRAILERS = ("Signed-off-by:", *series.BOOKKEEPING_TRAILERS)
CONFIGS = "s32-b1,s64-b1,c3-det"

REPRO = '''\
"""Reproduce: time torchvision.ops.deform_conv2d on CPU (forward; forward + backward) and digest its
results, at 1 thread and at all cores. Run it with main's torchvision, then with this branch's, and
compare the two printouts: timings, and the digests (equal where the PR says bit-identical)."""
import hashlib, os, time
import torch
from torchvision.ops import deform_conv2d

CONFIGS = {configs}  # name: (batch, channels, size); 3x3, stride 1, padding 1, with mask and bias


def inputs(b, c, s):
    g = torch.Generator().manual_seed(0)
    t = dict(x=torch.rand(b, c, s, s, generator=g), off=torch.rand(b, 18, s, s, generator=g) * 4 - 2,
             mask=torch.rand(b, 9, s, s, generator=g), w=torch.rand(c, c, 3, 3, generator=g) / (3 * c),
             bias=torch.rand(c, generator=g))
    return {{k: v.requires_grad_() for k, v in t.items()}}


def step(t, train):
    out = deform_conv2d(t["x"], t["off"], t["w"], t["bias"], padding=1, mask=t["mask"])
    if not train:
        return [out]
    out.backward(torch.ones_like(out))
    return [out] + [t[k].grad for k in ("x", "off", "w", "mask", "bias")]


def digest(tensors):
    return hashlib.sha256(b"".join(x.detach().contiguous().numpy().tobytes() for x in tensors)).hexdigest()[:16]


for threads in sorted({{1, os.cpu_count()}}):
    torch.set_num_threads(threads)
    for name, shape in CONFIGS.items():
        for train in (False, True):
            t = inputs(*shape)
            with torch.set_grad_enabled(train):
                res = step(t, train)  # warm-up, and the digest
                times = []
                for _ in range(5):
                    for v in t.values():
                        v.grad = None
                    t0 = time.perf_counter(); step(t, train); times.append(time.perf_counter() - t0)
            print(f"threads={{threads}} {{name:<8}} {{'train' if train else 'forward':<8}} "
                  f"median {{1e3 * sorted(times)[2]:8.1f}} ms  digest {{digest(res)}}")
'''


def _patch(n: int) -> Path:
    files = series.patch_files()
    if not 1 <= n <= len(files):
        raise Failure(f"the series has patches 1..{len(files)}")
    return files[n - 1]


def message(n: int) -> tuple[str, str, dict[str, str]]:
    """(subject, body, trailers) of patch ``n`` from the vendored tree's commit."""
    commit = series.read_state()["prefixes"][n]
    raw = series.git("log", "-1", "--format=%B", commit)
    subject, _, body = raw.partition("\n")
    lines, trailers = [], {}
    for ln in body.strip().splitlines():
        if ln.startswith(TRAILERS):
            continue
        m = re.match(r"^([A-Z][A-Za-z-]+): (.*)$", ln)
        if m and m.group(1) == series.ROUNDING_TRAILER:
            trailers[m.group(1)] = m.group(2)
        lines.append(ln)
    return subject.strip(), "\n".join(lines).strip(), trailers


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 7200) -> subprocess.CompletedProcess:
    info("running " + " ".join(cmd))
    return subprocess.run(cmd, cwd=paths.REPO, env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                          timeout=timeout)


def bench(n: int, out: Path, configs: str = CONFIGS) -> str:
    threads = f"1,{os.cpu_count()}" if (os.cpu_count() or 1) > 1 else "1"
    r = _run([sys.executable, "-m", "tvdcn", "bench", "--variants", f"prefix-{n - 1},prefix-{n}", "--mode", "both",
              "--configs", configs, "--threads", threads, "--rounds", "3", "--min-run-time", "0.5", "--json", str(out)])
    if r.returncode != 0:
        raise Failure(f"benchmark failed:\n{r.stderr[-3000:]}")
    return r.stdout.strip()


def checks(n: int, out: Path, fuzz_examples: int = 500) -> dict:
    """The tests that hold for every prefix of the series (marker ``pr``; test_hardening pins the
    final series' error messages, e.g. the dtype list patch 0009 extends, so it is not one), with
    the parent as the baseline; the suite's summary of them."""
    r = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "pr", "--baseline", f"prefix-{n - 1}",
              "--patched", f"prefix-{n}", "--summary-json", str(out), "--fuzz-examples", str(fuzz_examples)])
    if not out.exists():
        raise Failure(f"the checks wrote no summary:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return json.loads(out.read_text())


def evidence_markdown(ev: dict, n: int) -> str:
    o = ev["outcome"]
    status = "all passed" if not o.get("failed") and not o.get("error") else \
        f"**{o.get('failed', 0)} failed, {o.get('error', 0)} errors**"
    skipped = f" ({o['skipped']} skipped)" if o.get("skipped") else ""
    lines = [f"The verification suite ran with the parent (`prefix-{n - 1}`) as the baseline and this patch "
             f"(`prefix-{n}`) under test: {o.get('passed', 0)} tests {status}"
             f"{skipped}; threads {', '.join(map(str, ev['threads']))}; "
             f"a grid of {ev['grid']} configurations; hypothesis fuzzing, {ev['fuzz']['examples']} examples, "
             f"seed {ev['fuzz']['seed']}.", ""]
    if ev["declared"]:
        lines.append("Rounding declared changed by this patch (checked against the float64 reference and for "
                     "thread invariance instead of bit equality): "
                     + ", ".join(f"`{k}`" for k in ev["declared"]) + ".")
    else:
        lines.append("Every result (output and the five gradients) is compared by bit pattern with the parent's.")
    lines += ["", "| property | counts |", "|---|---|"]
    for prop, counts in ev["properties"].items():
        lines.append(f"| {prop} | {', '.join(f'{k}={v}' for k, v in counts.items())} |")
    return "\n".join(lines)


def sanitizer_note() -> str:
    rec = paths.REPO / "bench-results" / "sanitize-summary.json"
    if not rec.exists():
        return ("Sanitizers: not run for this body; `scripts/sanitize.sh` (ASan + UBSan with "
                "float-cast-overflow) runs the grid, hardening cases, reference checks and fuzzing under them.")
    s = json.loads(rec.read_text())
    return (f"Sanitizers (ASan + UBSan, float-cast-overflow included) on `{s['patched']}`: "
            f"{s['outcome'].get('passed', 0)} passed, {s['outcome'].get('failed', 0)} failed.")


def body(n: int, bench_md: str | None, ev: dict | None) -> str:
    subject, text, trailers = message(n)
    configs = {c.name: (c.batch, c.channels, c.size) for c in map(catalog.config, CONFIGS.split(","))}
    parts = [f"# {subject}", "", text, "", "## Benchmark", ""]
    # The bench's own headings ("## Environment") go one level below this section's.
    parts.append("\n".join("#" + ln if ln.startswith("## ") else ln for ln in bench_md.splitlines())
                 if bench_md else "_(not run: `--skip-bench`)_")
    parts += ["", "## Correctness", ""]
    parts.append(evidence_markdown(ev, n) if ev else "_(not run: `--skip-checks`)_")
    parts += ["", sanitizer_note(), "", "## Reproduce", "",
              "With a stock build of torchvision from main, then from this branch:", "", "```python",
              REPRO.format(configs=json.dumps(configs)).rstrip(), "```", "",
              f"<sub>Generated by `python -m tvdcn pr-body {n}` from patch "
              f"`{_patch(n).name}`.</sub>"]
    return "\n".join(parts) + "\n"


def main(args) -> int:
    n = args.patch
    if n < 2:
        raise Failure("patch 1 has no parent prefix in the series to compare with")
    _patch(n)
    from . import build as build_mod, pin as pin_mod

    prefixes = series.prepare(args.source, force=args.force)
    outdir = paths.REPO / "bench-results"
    outdir.mkdir(exist_ok=True)
    bench_json, checks_json = outdir / f"pr-{n:04d}-bench.json", outdir / f"pr-{n:04d}-checks.json"
    if args.reuse:
        # The text again from the last run's results, e.g. after the patch message changed.
        from .benchreport import report

        missing = [str(f) for f, skip in ((bench_json, args.skip_bench), (checks_json, args.skip_checks))
                   if not skip and not f.exists()]
        if missing:
            raise Failure(f"--reuse: no results of an earlier run in {', '.join(missing)}; run without --reuse")
        bench_md = None if args.skip_bench else report(json.loads(bench_json.read_text()))
        ev = None if args.skip_checks else json.loads(checks_json.read_text())
    else:
        pin = pin_mod.load()
        for v in build_mod.variants_for(prefixes, [f"prefix-{n - 1}", f"prefix-{n}"]):
            build_mod.build(pin, v, prefixes.index(v.commit))
        bench_md = None if args.skip_bench else bench(n, bench_json, args.configs)
        ev = None if args.skip_checks else checks(n, checks_json, args.fuzz_examples)
    text = body(n, bench_md, ev)
    out = Path(args.output) if args.output else outdir / f"pr-{n:04d}.md"
    out.write_text(text)
    print(text)
    info(f"PR body written to {out}")
    return 0 if not ev or not (ev["outcome"].get("failed") or ev["outcome"].get("error")) else 1
