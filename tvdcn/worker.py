"""Runs inside a variant's process: computes cases and saves their results, one file per case.

``python -m tvdcn.worker --cases CASES.json --out DIR --threads N [--fill-uninitialized]``

Before each case it appends ``start <id>`` to ``DIR/progress`` (flushed to disk), so that when a
case kills the process (segfault, abort) the parent knows which one did it and can go on with
the rest in a new process.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cases")
    p.add_argument("--out")
    p.add_argument("--serve", action="store_true",
                   help="read one JSON line per case on stdin ({case, out}); answer 'done' or 'error ...'")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--fill-uninitialized", action="store_true")
    a = p.parse_args()

    import torch

    from . import variant
    from .cases import Case, run
    from .standalone import current_op

    current_op()  # imports torchvision, or loads a standalone kernel (tvdcn.standalone)

    torch.set_num_threads(a.threads)
    if a.fill_uninitialized:
        # at::empty then returns NaN-filled (float) memory: any element a kernel forgets to write shows.
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = True
    if a.serve:
        for line in sys.stdin:
            req = json.loads(line)
            try:
                torch.save(run(Case.from_json(req["case"])), req["out"])
                print("done", flush=True)
            except Exception as e:  # an error (not a crash) is a result too
                print("error " + f"{type(e).__name__}: {e}".replace("\n", " "), flush=True)
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tv = sys.modules.get("torchvision")
    v = variant.current()
    (out / "env.json").write_text(json.dumps({
        "torchvision": getattr(tv, "__file__", str(v.dir) if isinstance(v, variant.Standalone) else None),
        "version": getattr(tv, "__version__", "standalone kernel"),
        "threads": torch.get_num_threads(), "variant": os.environ.get("TVDCN_VARIANT"),
    }))
    with open(out / "progress", "a") as progress:
        for d in json.loads(Path(a.cases).read_text()):
            case = Case.from_json(d)
            progress.write(f"start {case.id}\n")
            progress.flush()
            os.fsync(progress.fileno())
            try:
                res = run(case)
                torch.save(res, out / f"{case.id}.pt")
            except Exception as e:  # an error (not a crash) is a result too
                (out / f"{case.id}.error").write_text(f"{type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
