"""The CI matrix (``ci/matrix.toml``): its cells, the GitHub Actions workflow generated from it, and
running one cell here exactly as the workflow does.

``python3 -m tvdcn.ci list | workflow | env CELL | run CELL``

Standard library only: it runs before the project's environment exists (it is what makes it).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent
MATRIX = REPO / "ci" / "matrix.toml"
WORKFLOW = REPO / "ci" / "workflow.yml"


@dataclass(frozen=True)
class Cell:
    python: str
    torch: str
    level: str
    command: str
    pinned: bool
    slow: bool = False

    @property
    def name(self) -> str:
        return f"py{self.python}-torch{self.torch}-{self.level}"

    def env(self) -> dict[str, str]:
        """What scripts/env.sh needs to build this cell's environment, apart from others'."""
        e = {"TVDCN_PYTHON": self.python, "TVDCN_TORCH": self.torch}
        if not self.pinned:
            suffix = f"py{self.python}-torch{self.torch}"
            e.update(TVDCN_VENV=str(REPO / f".venv-{suffix}"), TVDCN_WORK=str(REPO / f".work-{suffix}"))
        return e


def load(path: Path = MATRIX) -> list[Cell]:
    data = tomllib.loads(path.read_text())
    levels, pin, slow = data["levels"], data["pin"], data.get("slow", [])
    cells = []
    for c in data["cell"]:
        for level in c["levels"]:
            if level not in levels:
                raise SystemExit(f"{path}: unknown level {level!r} (one of {', '.join(levels)})")
            cells.append(Cell(c["python"], c["torch"], level, levels[level],
                              (c["python"], c["torch"]) == (pin["python"], pin["torch"]), level in slow))
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise SystemExit(f"{path}: a cell is listed twice")
    return cells


def workflow(cells: list[Cell]) -> str:
    """The GitHub Actions workflow: one job per cell, each running `ci/run-cell.sh NAME`."""
    include = "\n".join(f"          - {{name: {c.name}, python: \"{c.python}\", slow: {str(c.slow).lower()}}}"
                        for c in cells)
    return f"""\
# GENERATED from ci/matrix.toml by `python3 -m tvdcn.ci workflow > ci/workflow.yml`; do not edit.
# GitHub Actions for a fork (copy to .github/workflows/). Each job is one matrix cell, run by
# `ci/run-cell.sh NAME`, the same command that runs the cell locally. Slow cells (matrix.toml's
# `slow`) run on the weekly schedule and on a manual dispatch only.
name: deform_conv2d patch series
on:
  push:
  pull_request:
  workflow_dispatch:
  schedule:
    - cron: "0 3 * * 0"
jobs:
  cell:
    name: ${{{{ matrix.name }}}}
    runs-on: ubuntu-24.04
    timeout-minutes: 90
    strategy:
      fail-fast: false
      matrix:
        include:
{include}
    steps:
      - uses: actions/checkout@v4
      # The cell's Python for its environment; 3.11 for the runner (tomllib) and the pin.
      - uses: actions/setup-python@v5
        with:
          python-version: |
            ${{{{ matrix.python }}}}
            3.11
      - uses: actions/cache@v4
        with:
          path: ~/.cache/tvdcn
          key: tvdcn-${{{{ matrix.name }}}}-${{{{ hashFiles('vendor/torchvision.toml', 'requirements.txt') }}}}
      # On runners without Debian sources the pin's next source (the GitHub tag archive) is used.
      - run: sudo apt-get install -y ccache
      - if: ${{{{ !matrix.slow }}}}
        run: ci/run-cell.sh ${{{{ matrix.name }}}}
      # Slow cells: on the schedule or a manual dispatch, as root (the aarch64 cell installs Debian
      # packages, registers binfmt_misc and chroots).
      - if: ${{{{ matrix.slow && (github.event_name == 'schedule' || github.event_name == 'workflow_dispatch') }}}}
        run: sudo -E env "PATH=$PATH" ci/run-cell.sh ${{{{ matrix.name }}}}
      - if: always()
        uses: actions/upload-artifact@v4
        with: {{name: "results-${{{{ matrix.name }}}}", path: bench-results/, if-no-files-found: ignore}}
"""


def find(cells: list[Cell], name: str) -> Cell:
    for c in cells:
        if c.name == name:
            return c
    raise SystemExit(f"no cell {name!r}; cells:\n  " + "\n  ".join(c.name for c in cells))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m tvdcn.ci", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the cells, one per line")
    sub.add_parser("workflow", help="print the GitHub Actions workflow generated from the matrix")
    e = sub.add_parser("env", help="the environment variables of a cell, as shell assignments")
    e.add_argument("cell")
    r = sub.add_parser("run", help="run one cell here, as CI does")
    r.add_argument("cell")
    args = p.parse_args(argv)
    cells = load()
    if args.cmd == "list":
        for c in cells:
            print(f"{c.name:<32} {c.command}{'  (slow)' if c.slow else ''}")
    elif args.cmd == "workflow":
        sys.stdout.write(workflow(cells))
    elif args.cmd == "env":
        print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in find(cells, args.cell).env().items()))
    else:
        c = find(cells, args.cell)
        print(f"[ci] cell {c.name}: {c.command}", file=sys.stderr, flush=True)
        return subprocess.call(shlex.split(c.command), cwd=REPO, env=dict(os.environ, **c.env()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
