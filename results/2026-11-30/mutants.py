"""Issue 26: each new check shown failing once on purpose, by a mutant in the path it covers.

Builds ``<base>-mutants`` (default base: patched-lowered): the base variant's kernel file (for a
-lowered base, with its lowered thresholds, tvdcn.lowered) plus every mutant below, each active only
in a process whose TVDCN_MUTANT names it, so one build serves them all. Then, per mutant and once
with none (the control, which must pass), runs the grid's properties against it:

  python -m pytest -q tests/kernel/test_threads.py tests/kernel/test_reference.py --patched <base>-mutants \
      --threads 1,2,3 [-k ...]

and records which tests failed. Run from the repository root, after scripts/build.sh:

  .venv/bin/python results/2026-11-30/mutants.py [--base patched-lowered] [--json PATH] [--threads 1,2,3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tvdcn import build, lowered, paths, pin as pin_mod, series, variant  # noqa: E402

HELPER = ("namespace vision {",
          "#include <cstdlib>\n#include <cstring>\nnamespace vision {\n"
          "inline bool mutant(const char* m) {\n"
          "  static const char* e = std::getenv(\"TVDCN_MUTANT\");\n"
          "  return e != nullptr && std::strcmp(e, m) == 0;\n}")

# name -> (the path it breaks, [(exact text, replacement)])
MUTANTS = {
    "chunk": ("forward image chunks (b0 > 0): every chunk reads the first chunk's offsets", [
        ("                b0 * n_offset_grps * 2 * kk * out_hw;",
         "                (mutant(\"chunk\") ? 0 : b0) * n_offset_grps * 2 * kk * out_hw;")]),
    "int64": ("the int64_t instantiations: their geometry's vertical padding one row off", [
        ("        T(pad_h),", "        T(pad_h + (mutant(\"int64\") && sizeof(T) == 8)),")]),
    "btile": ("backward channel tiles across 32-image blocks: the input gradient's plan of block 0 "
              "reused for later blocks when the columns are tiled", [
        ("    compute_col2im_plan(\n        geo, offset_elt, mask_elt, use_64bit, plan_idx, plan_flags, plan_mw);",
         "    if (!(mutant(\"btile\") && !whole && elt > 0)) compute_col2im_plan(\n"
         "        geo, offset_elt, mask_elt, use_64bit, plan_idx, plan_flags, plan_mw);")]),
    "small": ("small_tile_mm (one output channel per group, or one pixel): its sum skips the first term", [
        ("      for (int64_t l = 0; l < k; ++l) {",
         "      for (int64_t l = mutant(\"small\") ? 1 : 0; l < k; ++l) {")]),
    "partial": ("a partial last forward tile: its last pixel is never computed", [
        ("                      const int64_t n_pix = std::min(tile, out_hw - pix_begin);",
         "                      const int64_t n_pix = std::min(tile, out_hw - pix_begin) - (mutant(\"partial\") "
         "&& out_hw - pix_begin < tile && out_hw - pix_begin > 1);")]),
}


def mutate(text: str) -> str:
    for old, new in [HELPER] + [s for _, subs in MUTANTS.values() for s in subs]:
        n = text.count(old)
        if n != 1:
            raise SystemExit(f"mutant text found {n} times, not once: {old!r}")
        text = text.replace(old, new)
    return text


def build_mutants(base: str) -> str:
    pin = pin_mod.load()
    prefixes = series.prepare(None)
    (v,) = build.variants_for(prefixes, [base])
    name = f"{base}-mutants"
    m = build.Build(name, v.commit, v.instrument, v.lowered)
    real_apply = lowered.apply
    # The build applies tvdcn.lowered's rewrite to a -lowered base after checkout; the mutants go
    # on top of it (or alone, for a plain base), and the key changes with them.
    lowered.apply = lambda path: path.write_text(mutate(lowered.rewrite(path.read_text()) if v.lowered
                                                        else path.read_text()))
    real_key = build._key
    build._key = lambda b: {**real_key(b), "mutants": MUTANTS}
    if not v.lowered:
        m.lowered = True  # so that build() calls the rewrite above; the record says what it is
    try:
        build.build(pin, m, prefixes.index(m.commit))
    finally:
        lowered.apply, build._key = real_apply, real_key
    rec = json.loads(m.record.read_text())
    if not v.lowered:
        rec.pop("lowered", None)  # a plain base declares nothing beyond the series
    rec["mutants"] = {k: w for k, (w, _) in MUTANTS.items()}
    m.record.write_text(json.dumps(rec, indent=2) + "\n")
    return name


def run(name: str, mutant: str | None, threads: str, extra: list[str]) -> dict:
    env = dict(os.environ)
    env.pop("TVDCN_MUTANT", None)
    if mutant:
        env["TVDCN_MUTANT"] = mutant
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kernel/test_threads.py",
           "tests/kernel/test_reference.py", "--patched", name, "--threads", threads, *extra]
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^FAILED (\S+)", r.stdout, re.M)))
    tail = [ln for ln in r.stdout.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    return {"mutant": mutant, "what": MUTANTS[mutant][0] if mutant else "none (control)", "exit": r.returncode,
            "result": tail[-1] if tail else r.stdout[-300:], "failed": failed,
            "seconds": round(time.monotonic() - t0), "command": " ".join(cmd[1:])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="patched-lowered")
    p.add_argument("--threads", default="1,2,3")
    p.add_argument("--only", help="comma-separated mutants (default: all)")
    p.add_argument("--json", default=str(REPO / "bench-results" / "mutants.json"))
    p.add_argument("pytest_args", nargs="*")
    a = p.parse_args()
    name = build_mutants(a.base)
    variant.parse.cache_clear()
    out = {"base": a.base, "variant": name, "version": variant.info(name)["version"], "threads": a.threads,
           "runs": []}
    for m in [None, *(a.only.split(",") if a.only else MUTANTS)]:
        r = run(name, m, a.threads, a.pytest_args)
        print(f"{m or 'control'}: exit {r['exit']}, {r['result']} ({r['seconds']} s)", flush=True)
        for f in r["failed"][:6]:
            print(f"    {f}")
        out["runs"].append(r)
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    ok = out["runs"][0]["exit"] == 0 and all(r["exit"] != 0 for r in out["runs"][1:])
    print("control passes and every mutant fails" if ok else "NOT as expected")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
