"""Running cases against a variant in child processes, so that a crash fails one case only.

``run_cases`` returns, for every case id, either the dict of result tensors, a ``CaseError``
(the op raised) or a ``CaseCrash`` (the process died in that case: signal or exit status, and
the tail of its stderr). After a crash the remaining cases run in a fresh process.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import variant
from .cases import Case


@dataclass
class CaseError:
    message: str


def describe_failure(returncode: int, stderr: str) -> str:
    """How a process died, with the part of stderr that says why.

    A sanitizer report is quoted from its first line (the error and the top frames) and its
    SUMMARY line; anything else by the tail of stderr.
    """
    how = f"signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    lines = stderr.splitlines()
    start = next((i for i, ln in enumerate(lines)
                  if "runtime error:" in ln or "ERROR: AddressSanitizer" in ln), None)
    if start is None:
        return f"process died ({how}); stderr tail:\n{stderr[-2000:]}"
    summary = [ln for ln in lines[start:] if ln.startswith("SUMMARY:")]
    report = "\n".join(ln[:300] for ln in lines[start:start + 14] + summary[:1])
    return f"process died ({how}) with a sanitizer report:\n{report}"


@dataclass
class CaseCrash:
    returncode: int
    stderr: str

    def __str__(self) -> str:
        return f"in this case: {describe_failure(self.returncode, self.stderr)}"


def run_cases(name: str, threads: int, cases: list[Case], fill_uninitialized: bool = False,
              timeout: float = 900) -> dict[str, Any]:
    """Compute ``cases`` with variant ``name`` at ``threads`` threads."""
    import torch

    results: dict[str, Any] = {}
    todo = list(cases)
    with tempfile.TemporaryDirectory(prefix=f"tvdcn-{name}-t{threads}-") as tmp:
        out = Path(tmp)
        while todo:
            (out / "cases.json").write_text(json.dumps([c.to_json() for c in todo]))
            cmd = [variant.python(name), "-m", "tvdcn.worker", "--cases", str(out / "cases.json"), "--out", str(out),
                   "--threads", str(threads)] + (["--fill-uninitialized"] if fill_uninitialized else [])
            try:
                r = subprocess.run(cmd, env=variant.env(name), capture_output=True, text=True,
                                   timeout=timeout)
                rc, err = r.returncode, r.stderr
            except subprocess.TimeoutExpired as e:
                rc, err = -9, f"timed out after {timeout}s (hang?)\n{e.stderr or ''}"
            started = [ln.split(" ", 1)[1] for ln in (out / "progress").read_text().splitlines()] \
                if (out / "progress").exists() else []
            (out / "progress").unlink(missing_ok=True)
            for c in todo:
                if (out / f"{c.id}.pt").exists():
                    results[c.id] = torch.load(out / f"{c.id}.pt")
                elif (out / f"{c.id}.error").exists():
                    results[c.id] = CaseError((out / f"{c.id}.error").read_text())
            if rc == 0:
                break
            if not started:  # died before any case: nothing to attribute it to
                raise RuntimeError(f"worker for {name} failed before running a case (rc={rc}):\n{err[-3000:]}")
            results[started[-1]] = CaseCrash(rc, err)
            todo = [c for c in todo if c.id not in results]
    return results


def run_snippet(name: str, code: str, threads: int = 2, timeout: float = 600,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a fresh process with variant ``name`` importable.

    ``code`` reports by printing one JSON line last; a crash shows as a negative return code.
    """
    prologue = f"import tvdcn\nimport torch\ntorch.set_num_threads({threads})\n"
    try:
        return subprocess.run([variant.python(name), "-c", prologue + code], env=variant.env(name, extra_env),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, -9, e.stdout or "", f"timed out after {timeout}s (hang?)")


class Server:
    """A long-lived worker process for one (variant, threads): one case at a time, cheaply.

    A crash in a case returns ``CaseCrash`` for that case and the next case starts a new process.
    """

    def __init__(self, name: str, threads: int, tmp: Path) -> None:
        self.name, self.threads, self.tmp = name, threads, tmp
        self.proc: subprocess.Popen | None = None
        self.n = 0

    def _start(self) -> subprocess.Popen:
        self.err = open(self.tmp / f"{self.name}-t{self.threads}.stderr", "w+")
        return subprocess.Popen([variant.python(self.name), "-m", "tvdcn.worker", "--serve", "--threads", str(self.threads)],
                                env=variant.env(self.name), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=self.err, text=True)

    def run(self, case: Case) -> Any:
        import torch

        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        self.n += 1
        out = self.tmp / f"{self.name}-t{self.threads}-{self.n}.pt"
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"case": case.to_json(), "out": str(out)}) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().strip()
        except BrokenPipeError:
            answer = ""
        if answer == "done":
            res = torch.load(out)
            out.unlink()
            return res
        if answer.startswith("error "):
            return CaseError(answer[6:])
        rc = self.proc.wait()
        self.err.seek(0)
        crash = CaseCrash(rc, self.err.read())
        self.proc = None
        return crash

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()
