"""Apply the series onto any torchvision checkout (upstream main, a release branch, a contributor's
branch) on a new branch, with ``git am --3way``, and say per patch how it went.

``python -m tvdcn apply PATH [--branch B] [--skip N] [--as-me] [--check]``

Per patch: ``clean`` (applied as is), ``3-way`` (the context had moved; git merged it using the
blob ids recorded in the patch), or ``conflict`` (with the files and the conflicting hunks); the
first conflict stops the run, since later patches build on that one, and leaves the checkout as
it was. ``--skip 1`` leaves out our stable-ABI port, which main already has in its own form.
``--as-me`` makes the contributor (the checkout's ``git config user.name/email``) the author of
each commit and adds their ``Signed-off-by``. ``--check`` then builds the branch's base and the
branch side by side in a separate work directory and runs the suite's ``prefix`` tests.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import paths, series
from .log import Failure, info


@dataclass
class Outcome:
    patch: str
    status: str                       # clean | 3-way | conflict | skipped | not tried
    files: list[str] = field(default_factory=list)
    hunks: str = ""


def _git(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise Failure(f"git {' '.join(args)} failed in {repo}:\n{r.stdout}{r.stderr}")
    return r


def _conflict_hunks(repo: Path, files: list[str], limit: int = 6000) -> str:
    """The conflicting regions of each file, with a few lines around them."""
    out = []
    for f in files:
        try:
            lines = (repo / f).read_text(errors="replace").splitlines()
        except OSError:
            continue
        i = 0
        while i < len(lines):
            if lines[i].startswith("<<<<<<<"):
                j = i
                while j < len(lines) and not lines[j].startswith(">>>>>>>"):
                    j += 1
                lo, hi = max(0, i - 3), min(len(lines), j + 4)
                out.append(f"--- {f}:{i + 1}\n" + "\n".join(lines[lo:hi]))
                i = j
            i += 1
    text = "\n".join(out)
    return text if len(text) <= limit else text[:limit] + "\n[... cut]"


def apply_series(repo: Path, branch: str, skip: int = 0, as_me: bool = False,
                 patches: list[Path] | None = None) -> list[Outcome]:
    """Apply the series on a new branch of ``repo`` (from its HEAD); return one outcome per patch."""
    repo = repo.resolve()
    if not repo.is_dir():
        raise Failure(f"{repo}: no such directory; give the path of a torchvision git checkout")
    if _git(repo, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise Failure(f"{repo} is not a git checkout")
    if _git(repo, "status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise Failure(f"{repo} has uncommitted changes; commit or stash them first")
    if _git(repo, "rev-parse", "-q", "--verify", f"refs/heads/{branch}", check=False).returncode == 0:
        raise Failure(f"{repo} already has a branch {branch!r}; pick another with --branch or delete it")
    files = patches if patches is not None else series.patch_files()
    env = dict(os.environ)
    if as_me:
        name = _git(repo, "config", "user.name", check=False).stdout.strip()
        email = _git(repo, "config", "user.email", check=False).stdout.strip()
        if not name or not email:
            raise Failure(f"--as-me: set user.name and user.email in {repo} (git config) first")
    _git(repo, "checkout", "-q", "-b", branch)
    outcomes = [Outcome(f.name, "skipped") for f in files[:skip]]
    for k, f in enumerate(files[skip:], start=skip):
        args = ["am", "--3way", "--keep-non-patch"]
        r = _git(repo, *args, str(f.resolve()), check=False, env=env)
        if r.returncode != 0:
            conflicted = _git(repo, "diff", "--name-only", "--diff-filter=U", check=False).stdout.split()
            hunks = _conflict_hunks(repo, conflicted)
            if not conflicted:  # did not even get to a merge (e.g. a file the patch edits is missing)
                hunks = (r.stdout + r.stderr)[-3000:]
            _git(repo, "am", "--abort", check=False)
            outcomes.append(Outcome(f.name, "conflict", conflicted, hunks))
            outcomes += [Outcome(g.name, "not tried") for g in files[k + 1:]]
            break
        merged = "Falling back to patching base and 3-way merge" in (r.stdout + r.stderr)
        if as_me:
            # The contributor submits it: their authorship and sign-off replace the series' placeholder
            # identity, and the series' bookkeeping trailers stay out of the PR.
            msg = _git(repo, "log", "-1", "--format=%B").stdout
            keep = [ln for ln in msg.rstrip().splitlines()
                    if not ln.startswith(series.BOOKKEEPING_TRAILERS) and ln != f"Signed-off-by: {series.PLACEHOLDER}"]
            _git(repo, "commit", "-q", "--amend", "--reset-author", "--signoff", "-m", "\n".join(keep).rstrip() + "\n")
        outcomes.append(Outcome(f.name, "3-way" if merged else "clean"))
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        lines.append(f"  {o.status:<10} {o.patch}")
        if o.status == "conflict":
            lines.append(f"             files: {', '.join(o.files) or '(see below)'}")
            lines.extend("             " + ln for ln in o.hunks.splitlines())
    return "\n".join(lines)


def main(args) -> int:
    repo = Path(args.path)
    if not repo.is_dir() or _git(repo, "rev-parse", "--git-dir", check=False).returncode != 0:
        raise Failure(f"{repo} is not a git checkout: give the path of a clone of torchvision")
    outcomes = apply_series(repo, args.branch, skip=args.skip, as_me=args.as_me)
    applied = all(o.status in ("clean", "3-way", "skipped") for o in outcomes)
    print(f"Series onto {repo.resolve()} (branch {args.branch}):")
    print(report(outcomes))
    if not applied:
        print(f"\nStopped at the conflict; {repo} is back on the branch's last applied patch.")
        return 1
    if not args.check:
        return 0
    # Build the branch's base (as TVDCN_SOURCE) in its own work directory, apply and build the series
    # there with the same machinery, and run the fast checks: nothing of this checkout's .work moves.
    base = _git(repo, "rev-parse", f"{args.branch}~{len(outcomes) - args.skip}").stdout.strip()
    work = paths.WORK / "apply" / re.sub(r"[^A-Za-z0-9_.-]", "_", repo.resolve().name)
    info(f"--check: building {repo} at {base[:12]} and the series on it in {work}")
    env = dict(os.environ, TVDCN_WORK=str(work), TVDCN_SOURCE=f"{repo.resolve()}")
    tmp = _git(repo, "worktree", "add", "-q", "--detach", str(work / "base-checkout"), base, check=False)
    if tmp.returncode != 0 and not (work / "base-checkout").exists():
        raise Failure(tmp.stderr)
    env["TVDCN_SOURCE"] = str(work / "base-checkout")
    build = subprocess.run([sys.executable, "-m", "tvdcn", "build", "--force"], cwd=paths.REPO, env=env)
    if build.returncode != 0:
        print("--check: the series does not build there (see above)")
        return 1
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "prefix"], cwd=paths.REPO, env=env)
    print(f"--check: fast checks {'passed' if r.returncode == 0 else 'FAILED'}")
    return r.returncode
