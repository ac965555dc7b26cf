"""Getting the upstream torchvision source and proving that it is the pinned one.

Sources are tried in order:

1. a user-given local checkout or tarball (``TVDCN_SOURCE`` or ``--source``), e.g. a clone of
   upstream main to rebase the series on;
2. Debian's source package (``pytorch-vision``), located through apt with a private sources list
   that points at the mirror this machine's apt already uses; only the ``.orig.tar.gz`` is
   downloaded and its SHA256 is checked against the pin;
3. the GitHub tag archive, for machines that can reach it.

The caller verifies the unpacked tree against the pin's git tree id (see :mod:`tvdcn.series`).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths
from .log import Failure, info
from .pin import Pin


@dataclass
class Source:
    """An unpacked source tree and where it came from."""

    root: Path
    origin: str
    pinned: bool  # True when it came from one of the pin's sources (so the tree id must match)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dest: Path, expected_sha256: str | None) -> Path:
    """Download ``url`` to ``dest`` (reused when already there with the right hash)."""
    if dest.exists() and (expected_sha256 is None or sha256(dest) == expected_sha256):
        info(f"using cached {dest.name}")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    info(f"downloading {url}")
    with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0)
        done = 0
        while block := r.read(1 << 20):
            f.write(block)
            done += len(block)
        info(f"downloaded {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))
    got = sha256(tmp)
    if expected_sha256 is not None and got != expected_sha256:
        tmp.unlink()
        raise Failure(f"{url}: SHA256 {got} does not match the pin's {expected_sha256}; refusing it")
    tmp.replace(dest)
    return dest


def _unpack(archive: Path, dest: Path) -> Path:
    """Unpack a tarball into ``dest`` and return the single top-level directory inside it."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as t:
        t.extractall(dest, filter="data")
    entries = [p for p in dest.iterdir()]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def apt_mirror() -> str:
    """The Debian mirror URI that this machine's apt is configured with.

    ``TVDCN_DEBIAN_MIRROR`` overrides it. The repository never names a host itself.
    """
    if os.environ.get("TVDCN_DEBIAN_MIRROR"):
        return os.environ["TVDCN_DEBIAN_MIRROR"].rstrip("/")
    candidates: list[str] = []
    etc = Path("/etc/apt")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for f in files:
        if f.is_file():
            for line in f.read_text().splitlines():
                m = re.match(r"^\s*deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and not m.group(2).endswith("-security"):
                    candidates.append(m.group(1))
    for f in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in f.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if fields.get("Enabled", "yes") == "no" or "URIs" not in fields:
                continue
            if all(s.endswith("-security") for s in fields.get("Suites", "").split()):
                continue
            candidates += fields["URIs"].split()
    debian = [u for u in candidates if re.search(r"/debian/?$", u)]
    if not debian:
        raise Failure(
            "could not find a Debian mirror in /etc/apt; set TVDCN_DEBIAN_MIRROR to one, "
            "or give a local torchvision source with TVDCN_SOURCE=/path/to/checkout-or-tarball"
        )
    return debian[0].rstrip("/")


def _apt_uris(src: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Ask apt, through a private sources list, for the source package's file URIs and hashes."""
    state = paths.CACHE / "apt"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    sources_list = state / "sources.list"
    sources_list.write_text(f"deb-src {apt_mirror()} {src['suite']} main\n")
    opts = [
        "-o", f"Dir::Etc::SourceList={sources_list}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={state / 'lists'}",
    ]
    if not shutil.which("apt-get"):
        raise Failure("apt-get is not available for the Debian source")

    def print_uris() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["apt-get", "source", "--print-uris", f"{src['package']}={src['debian_version']}", *opts],
            capture_output=True, text=True,
        )

    r = print_uris()
    if r.returncode != 0:
        info(f"apt-get update for {src['suite']} sources (private lists under {state})")
        subprocess.run(["apt-get", "update", "-qq", *opts], check=True, capture_output=True)
        r = print_uris()
    if r.returncode != 0:
        raise Failure(f"apt could not locate {src['package']} {src['debian_version']}: {r.stderr.strip()}")
    found = {}
    for m in re.finditer(r"^'(\S+)' (\S+) \d+ SHA256:([0-9a-f]{64})$", r.stdout, re.M):
        found[m.group(2)] = (m.group(1), m.group(3))
    return found


def _from_debian(src: dict[str, Any], scratch: Path) -> Source:
    uris = _apt_uris(src) if not (paths.DOWNLOADS / src["file"]).exists() else {}
    dest = paths.DOWNLOADS / src["file"]
    if not dest.exists() or sha256(dest) != src["sha256"]:
        if src["file"] not in uris:
            raise Failure(f"apt does not list {src['file']}")
        url, apt_sha = uris[src["file"]]
        if apt_sha != src["sha256"]:
            raise Failure(f"apt lists {src['file']} with SHA256 {apt_sha}, the pin says {src['sha256']}")
        _download(url, dest, src["sha256"])
    else:
        info(f"using cached {dest.name} (SHA256 verified)")
    return Source(_unpack(dest, scratch), f"debian:{src['package']}={src['debian_version']}", True)


def _from_github(src: dict[str, Any], scratch: Path) -> Source:
    dest = _download(src["url"], paths.DOWNLOADS / src["file"], src.get("sha256"))
    return Source(_unpack(dest, scratch), f"github:{src['url']}", True)


def _from_user(location: str, scratch: Path) -> Source:
    p = Path(location).expanduser().resolve()
    if p.is_file():
        return Source(_unpack(p, scratch), f"tarball:{p}", False)
    if (p / ".git").exists():
        # `git archive` takes exactly the committed tree, not build junk of the checkout.
        head = subprocess.run(["git", "-C", str(p), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        out = scratch / "checkout"
        out.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(p), "archive", "--format=tar", "HEAD"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
        return Source(out, f"checkout:{p}@{head[:12]}", False)
    if p.is_dir():
        return Source(p, f"directory:{p}", False)
    raise Failure(f"TVDCN_SOURCE={location}: no such file or directory")


def obtain(pin: Pin, user_source: str | None, scratch: Path) -> Source:
    """Return the unpacked source from the first source that works."""
    if user_source:
        info(f"using the user-given source {user_source}")
        return _from_user(user_source, scratch)
    errors = []
    for src in pin.sources:
        try:
            fn = {"debian": _from_debian, "github": _from_github}[src["kind"]]
            return fn(src, Path(tempfile.mkdtemp(dir=scratch)))
        except (Failure, OSError, subprocess.CalledProcessError) as e:
            errors.append(f"  {src['kind']}: {e}")
            info(f"source {src['kind']} failed: {e}")
    raise Failure("no torchvision source could be had:\n" + "\n".join(errors)
                  + "\nGive one with TVDCN_SOURCE=/path/to/vision-checkout-or-tarball")
