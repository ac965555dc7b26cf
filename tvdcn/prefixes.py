"""Every prefix of the series built and run through the prefix tests: the stack stays bisectable.

A full run is long (each prefix a build and the ``prefix`` tests at every thread count: hours on
two cores), so it can be spread over several sittings: with ``--record FILE`` each prefix's result is
written to FILE as soon as it is known, keyed by what decides it -- the prefix's tree, baseline's
tree, the torch and Python versions and the pytest arguments. A later run with the same FILE skips
a prefix recorded as passed under the same key and says so; one whose tree changed (a patch below
it was edited) runs again. ``--fresh`` ignores the record.

  python -m tvdcn prefixes --record results/DATE/prefixes.json [-- PYTEST ARGS]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import build as build_mod
from . import paths, pin as pin_mod, series
from .log import Failure, info


def key(prefixes: list[str], k: int, pytest_args: list[str]) -> dict[str, Any]:
    """What decides prefix ``k``'s result."""
    import torch

    return {"tree": series.git("rev-parse", f"{prefixes[k]}^{{tree}}"),
            "baseline_tree": series.git("rev-parse", f"{prefixes[0]}^{{tree}}"),
            "torch": torch.__version__, "python": platform.python_version(), "pytest_args": pytest_args}


def load(path: Path | None) -> dict[str, Any]:
    return json.loads(path.read_text()) if path and path.exists() else {}


def run(prefixes: list[str], pytest_args: list[str], record: Path | None = None, fresh: bool = False) -> int:
    pin = pin_mod.load()
    done = {} if fresh else load(record)
    files = series.patch_files()
    rows = []
    for k in range(1, len(prefixes)):
        name = f"prefix-{k}"
        want = key(prefixes, k, pytest_args)
        earlier = done.get(name, {})
        if earlier.get("key") == want and earlier.get("status") == "passed":
            info(f"{name}: passed on {earlier['date']} with the same tree, torch and arguments; skipped")
            rows.append((name, f"passed ({earlier['date']}, recorded)"))
            continue
        t0 = time.monotonic()
        try:
            for v in build_mod.variants_for(prefixes, ["baseline", name]):
                build_mod.build(pin, v, prefixes.index(v.commit))
        except Failure as e:
            info(f"{name} does not build: {e}")
            status = "does not build"
        else:
            info(f"{name}: running the prefix checks")
            rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "prefix", "--patched", name,
                                 *pytest_args], cwd=paths.REPO).returncode
            status = "passed" if rc == 0 else f"FAILED (pytest exit {rc})"
        rows.append((name, status))
        if record:
            done[name] = {"patch": files[k - 1].name, "status": status, "key": want,
                          "date": datetime.date.today().isoformat(), "seconds": round(time.monotonic() - t0)}
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(dict(sorted(done.items(), key=lambda kv: int(kv[0].split("-")[1]))),
                                         indent=1) + "\n")
    print("\nSeries prefixes:")
    for (name, status), f in zip(rows, files):
        print(f"  {name:<10} {f.name:<70} {status}")
    return 0 if all(st.startswith("passed") for _, st in rows) else 1


def main(args: argparse.Namespace, prefixes: list[str]) -> int:
    return run(prefixes, args.pytest_args, args.record, args.fresh)
