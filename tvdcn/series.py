"""The vendored tree: a git repository whose history *is* the patch series.

``pristine`` (a tag) is one commit holding upstream exactly as fetched; the branch ``series``
holds one commit per file in ``patches/series`` on top of it, applied with ``git am``. Commits
are made with a fixed identity and dates, so the same patches always give the same commit ids.

Editing a patch means committing in that tree (or ``git commit --fixup`` and
``git rebase -i --autosquash pristine``) and running ``tvdcn export``, which writes
``patches/`` back with ``git format-patch``. Nobody edits a diff by hand.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import fetch, paths
from .log import Failure, info
from .pin import Pin, load as load_pin

_IDENTITY = {
    "GIT_AUTHOR_NAME": "tvdcn", "GIT_AUTHOR_EMAIL": "tvdcn@localhost",
    "GIT_COMMITTER_NAME": "tvdcn", "GIT_COMMITTER_EMAIL": "tvdcn@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}
STATE = paths.SRC.parent / "state.json"
PLACEHOLDER = f"{_IDENTITY['GIT_AUTHOR_NAME']} <{_IDENTITY['GIT_AUTHOR_EMAIL']}>"  # the series' commit identity


def git(*args: str, cwd: Path = paths.SRC, check: bool = True, dates: bool = True) -> str:
    """Run git in the vendored tree with a fixed identity; return stdout."""
    env = dict(os.environ)
    env.update(_IDENTITY if dates else {k: v for k, v in _IDENTITY.items() if not k.endswith("_DATE")})
    r = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise Failure(f"git {' '.join(args)} failed in {cwd}:\n{r.stdout}{r.stderr}")
    return r.stdout.strip()


def read_state() -> dict:
    """What the last import/apply recorded (origin of the source, applied series)."""
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def write_state(state: dict) -> None:
    STATE.write_text(json.dumps(state, indent=2) + "\n")


def patch_files() -> list[Path]:
    """The patches named in ``patches/series``, in order."""
    if not paths.SERIES_FILE.exists():
        return []
    names = [ln.strip() for ln in paths.SERIES_FILE.read_text().splitlines()]
    files = [paths.PATCHES / n for n in names if n and not n.startswith("#")]
    for f in files:
        if not f.exists():
            raise Failure(f"patches/series lists {f.name}, which does not exist")
    return files


# A patch that changes the rounding of some results says so in a trailer, e.g.
# "Rounding-changed: out" (names as in tvdcn.cases.run: out, grad_input, grad_offset, grad_mask,
# grad_weight, grad_bias). The suite then checks those results against the reference and for
# thread-count invariance instead of bit equality with baseline; every other result stays
# bit-identical. A patch that changes bits without the trailer fails the suite.
ROUNDING_TRAILER = "Rounding-changed"
# Trailers that are this repository's bookkeeping, left out of what goes upstream (apply --as-me,
# pr-body): the status of a patch, and the rounding declaration the suite reads (the message's prose
# states the change for reviewers).
# A patch after which a result may depend on the thread count, as upstream's GEMM makes it, says
# "Thread-dependent: out"; a later patch that makes it invariant again says "Thread-invariant: out".
# The suite then leaves those results out of its thread-count invariance checks (they are still
# compared with the reference at every thread count it runs).
DEPENDENT_TRAILER, INVARIANT_TRAILER = "Thread-dependent", "Thread-invariant"
# A declaration can be limited to the cases that take one path: "grad_input[split]" declares
# grad_input only where the backward runs in channel tiles (the scopes: tvdcn.cases.SCOPES).
BOOKKEEPING_TRAILERS = ("Forwarded:", f"{ROUNDING_TRAILER}:", f"{DEPENDENT_TRAILER}:",
                        f"{INVARIANT_TRAILER}:")


def _trailer_names(commit: str, since: str, keys: tuple[str, ...]):
    """Per patch after ``since`` up to ``commit``, oldest first: (subject, one list of result names
    per trailer key in ``keys``)."""
    fmt = "%s" + "".join(f"%x00%(trailers:key={k},valueonly,separator=%x2C)" for k in keys) + "%x01"
    for entry in git("log", "--reverse", f"--format={fmt}", f"{since}..{commit}").split("\x01"):
        if "\x00" in entry:
            subject, *values = entry.strip().split("\x00")
            yield subject, [[n.strip() for n in v.split(",") if n.strip()] for v in values]


def scoped(key: str) -> tuple[str, str | None]:
    """A declared name as (result, scope): "grad_input[split]" -> ("grad_input", "split"),
    "out" -> ("out", None)."""
    m = re.fullmatch(r"(\w+)(?:\[(\w+)\])?", key)
    if not m:
        raise Failure(f"a rounding or thread trailer names {key!r}: a result name, optionally with a [scope]")
    return m.group(1), m.group(2)


def declared_rounding(commit: str, since: str = "pristine") -> dict[str, str]:
    """Results whose rounding the patches after ``since`` up to ``commit`` declare changed: name
    as declared (with its ``[scope]``, if any: ``scoped``) -> the subject of the first patch
    declaring it."""
    declared: dict[str, str] = {}
    for subject, (names,) in _trailer_names(commit, since, (ROUNDING_TRAILER,)):
        for name in names:
            declared.setdefault(name, subject)
    return declared


def thread_dependent(commit: str) -> dict[str, str]:
    """Results that may depend on the thread count at ``commit``: those a patch up to it declares
    ``Thread-dependent:`` and no later one ``Thread-invariant:`` (of the same name and scope);
    name as declared -> the declaring subject.
    Counted from pristine whatever the baseline: it is a property of the variant itself."""
    state: dict[str, str] = {}
    for subject, (dependent, invariant) in _trailer_names(commit, "pristine",
                                                          (DEPENDENT_TRAILER, INVARIANT_TRAILER)):
        state.update(dict.fromkeys(dependent, subject))
        for name in invariant:
            state.pop(name, None)
    return state


def ensure_pristine(pin: Pin, user_source: str | None) -> tuple[str, bool]:
    """Make sure the vendored repository holds the wanted upstream source as commit ``pristine``.

    Returns (pristine commit, reused). A pinned source must match the pin's tree id exactly;
    a user-given source that does not is accepted with a warning (e.g. upstream main).
    """
    state = read_state()
    have = git("rev-parse", "-q", "--verify", "pristine^{commit}", check=False) if (paths.SRC / ".git").exists() else ""
    if have and user_source is None and state.get("origin_pinned") and git("rev-parse", "pristine^{tree}") == pin.tree:
        return have, True
    paths.WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.WORK) as scratch:
        src = fetch.obtain(pin, user_source, Path(scratch))
        tree = _tree_of(src.root)
        if have and git("rev-parse", "pristine^{tree}") == tree:
            state.update(origin=src.origin, origin_pinned=src.pinned or tree == pin.tree)
            write_state(state)
            return have, True
        if tree != pin.tree:
            if src.pinned:
                raise Failure(f"{src.origin}: unpacked tree {tree} is not the pinned {pin.tree}; refusing it")
            info(f"WARNING: {src.origin} is not torchvision {pin.version} as pinned (tree {tree[:12]}); "
                 "building it anyway, the series may not apply")
        info(f"importing {src.origin} into {paths.SRC}")
        if paths.SRC.exists():
            _prune_worktrees()
            shutil.rmtree(paths.SRC)
        shutil.copytree(src.root, paths.SRC, symlinks=True)
    git("init", "-q", "-b", "series")
    git("add", "-A", "-f")
    git("commit", "-q", "-m", f"Import upstream torchvision ({src.origin})")
    git("tag", "-f", "pristine")
    write_state({"origin": src.origin, "origin_pinned": src.pinned or tree == pin.tree})
    return git("rev-parse", "HEAD"), False


def _tree_of(root: Path) -> str:
    """The git tree id of a directory's files (all of them, ignore rules notwithstanding)."""
    with tempfile.TemporaryDirectory() as idx:
        env = dict(os.environ, GIT_INDEX_FILE=str(Path(idx) / "index"), GIT_DIR=str(Path(idx) / "git"))
        subprocess.run(["git", "init", "-q", "--bare", env["GIT_DIR"]], check=True, env=env)
        subprocess.run(["git", "--work-tree", str(root), "add", "-A", "-f"], check=True, env=env, cwd=root)
        return subprocess.run(["git", "write-tree"], check=True, env=env, capture_output=True,
                              text=True).stdout.strip()


def _prune_worktrees() -> None:
    for wt in paths.BUILDS.glob("*"):
        shutil.rmtree(wt, ignore_errors=True)


def _series_key(pristine: str, files: list[Path]) -> str:
    h = hashlib.sha256(pristine.encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def apply(pristine: str, force: bool = False) -> list[str]:
    """Apply ``patches/series`` on ``pristine`` as branch ``series``.

    Returns the commit after each prefix: element 0 is pristine, element N has N patches.
    Refuses to throw away commits in the vendored tree that were never exported.
    """
    files = patch_files()
    key = _series_key(pristine, files)
    state = read_state()
    head = git("rev-parse", "-q", "--verify", "refs/heads/series", check=False)
    if head and state.get("applied_key") == key and head == state.get("applied_head"):
        return state["prefixes"]
    if head and head != state.get("applied_head", pristine) and not force:
        raise Failure(
            f"the vendored tree {paths.SRC} has commits on 'series' that are not in patches/ "
            "(export them with `scripts/tvdcn export`, or pass --force to discard them)")
    if git("status", "--porcelain", "--untracked-files=no") and not force:
        raise Failure(f"the vendored tree {paths.SRC} has uncommitted changes; commit and export them, "
                      "or pass --force to discard them")
    git("checkout", "-q", "-f", "-B", "series", pristine)
    prefixes = [pristine]
    for f in files:
        info(f"applying {f.name}")
        # --keep-non-patch: only "[PATCH]" leaves the subject, so an area tag ("[ops] ...") survives
        # the round trip through export.
        r = subprocess.run(["git", "am", "-q", "--3way", "--keep-non-patch", "--committer-date-is-author-date", str(f)],
                           cwd=paths.SRC,
                           env=dict(os.environ, **{k: v for k, v in _IDENTITY.items() if "COMMITTER" in k}),
                           capture_output=True, text=True)
        if r.returncode != 0:
            git("am", "--abort", check=False)
            raise Failure(f"{f.name} does not apply on top of the previous patches:\n{r.stdout}{r.stderr}")
        prefixes.append(git("rev-parse", "HEAD"))
    state.update(applied_key=key, applied_head=prefixes[-1], prefixes=prefixes)
    write_state(state)
    return prefixes


def format_patches(outdir: Path) -> list[Path]:
    """The commits pristine..series as patch files in ``outdir``, as ``export`` writes them."""
    git("format-patch", "-q", "-N", "--zero-commit", "--no-signature", "-o", str(outdir),
        "pristine..series", dates=False)
    return sorted(outdir.glob("*.patch"))


def export() -> list[Path]:
    """Write the commits pristine..series back to ``patches/`` (git format-patch) and the series file."""
    if git("status", "--porcelain", "--untracked-files=no"):
        raise Failure(f"commit your changes in {paths.SRC} first")
    for old in paths.PATCHES.glob("*.patch"):
        old.unlink()
    files = format_patches(paths.PATCHES)
    paths.SERIES_FILE.write_text("".join(f"{f.name}\n" for f in files))
    head = git("rev-parse", "series")
    state = read_state()
    state.update(applied_head=head, applied_key=_series_key(git("rev-parse", "pristine"), files),
                 prefixes=[git("rev-parse", "pristine"), *git("rev-list", "--reverse", "pristine..series").split()])
    write_state(state)
    return files


def prepare(source: str | None = None, force: bool = False) -> list[str]:
    """Fetch/verify upstream (``source``, else ``TVDCN_SOURCE``, else the pin) and apply the series;
    return the prefix commits (pristine first)."""
    pristine, reused = ensure_pristine(load_pin(), source or os.environ.get("TVDCN_SOURCE"))
    info(f"upstream source: {'reused' if reused else 'imported'} ({pristine[:12]})")
    return apply(pristine, force=force)
