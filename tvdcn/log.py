"""Progress messages on stderr, so that stdout stays machine-readable where it matters."""
from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


def info(msg: str) -> None:
    print(f"[tvdcn {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Failure(RuntimeError):
    """An error whose message tells the user what to do next; printed without a traceback."""
