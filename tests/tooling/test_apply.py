"""``python -m tvdcn apply``: the series onto a torchvision checkout with ``git am --3way``.

On a clone of the vendored pristine tree every patch applies clean; a checkout whose context moved
near a hunk gets a 3-way merge; one that changed a line a patch changes gets a conflict report
naming the file and showing the hunk, and the checkout is left with the patches before it.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tvdcn import apply, paths, series

pytestmark = [pytest.mark.tooling]

KERNEL = "torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    repo = tmp_path / "vision"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(paths.SRC), str(repo)], check=True)
    git(repo, "checkout", "-q", "-b", "main", series.git("rev-parse", "pristine"))
    git(repo, "config", "user.name", "Ada Contributor")
    git(repo, "config", "user.email", "ada@example.org")
    return repo


def commit_edit(repo: Path, old: str, new: str) -> None:
    f = repo / KERNEL
    text = f.read_text()
    assert text.count(old) == 1, old
    f.write_text(text.replace(old, new))
    git(repo, "commit", "-qam", "a change upstream made meanwhile")


def test_every_patch_applies_clean_on_pristine(checkout):
    out = apply.apply_series(checkout, "dcn", as_me=True)
    assert [o.status for o in out] == ["clean"] * len(series.patch_files())
    # The branch's tree is the series' tree, authored and signed off by the contributor.
    assert git(checkout, "rev-parse", "dcn^{tree}") == series.git("rev-parse", "series^{tree}")
    authors = set(git(checkout, "log", "--format=%an <%ae>", "main..dcn").splitlines())
    assert authors == {"Ada Contributor <ada@example.org>"}
    body = git(checkout, "log", "-1", "--format=%B", "dcn")
    assert body.splitlines()[-1] == "Signed-off-by: Ada Contributor <ada@example.org>"
    bodies = git(checkout, "log", "--format=%B", "main..dcn")
    assert "tvdcn@localhost" not in bodies
    assert not [t for t in series.BOOKKEEPING_TRAILERS if t in bodies], "bookkeeping trailers left in"
    assert "Thread-dependent:" in series.git("log", "--format=%B", "pristine..series")  # so the check reads one


def test_the_vendored_series_exports_to_patches_unchanged(tmp_path):
    # The vendored tree is patches/ applied (git am); exporting it (git format-patch) must give
    # patches/ back byte for byte -- names, subjects with their "[ops]" tags, messages, diffs --
    # or an edit-and-export cycle would rewrite patches nobody touched.
    exported = series.format_patches(tmp_path)
    assert [f.name for f in exported] == [f.name for f in series.patch_files()]
    for new, old in zip(exported, series.patch_files()):
        assert new.read_bytes() == old.read_bytes(), f"{old.name} differs from its export"


def test_skip_leaves_out_the_first_patches(checkout):
    out = apply.apply_series(checkout, "dcn", skip=1)
    assert out[0].status == "skipped"
    # The kernel patches are written on top of the port: without it the first of them conflicts,
    # and the run stops there with the patches before it applied.
    k = next(i for i, o in enumerate(out) if o.status == "conflict")
    assert KERNEL in out[k].files and "<<<<<<<" in out[k].hunks
    assert all(o.status == "not tried" for o in out[k + 1:])
    applied = [o for o in out if o.status in ("clean", "3-way")]
    assert len(git(checkout, "rev-list", "main..HEAD").split()) == len(applied) == k - 1


def test_moved_context_merges_three_way(checkout):
    # A comment in the context of patch 0001's first hunk edited: plain git apply fails, 3-way merges.
    commit_edit(checkout, "src/deform_conv_cuda.cpp\n", "src/deform_conv_cuda.cpp (upstream's own edit)\n")
    out = apply.apply_series(checkout, "dcn")
    assert out[0].status in ("3-way", "conflict")
    if out[0].status == "conflict":
        pytest.fail(f"expected a clean 3-way merge: {out[0].hunks}")


def test_conflict_names_the_file_and_shows_the_hunk(checkout):
    commit_edit(checkout, "#include <ATen/ATen.h>\n", "#include <ATen/ATen.h> // upstream's own edit\n")  # 0001 removes it
    out = apply.apply_series(checkout, "dcn")
    assert out[0].status == "conflict", [o.status for o in out]
    assert out[0].files == [KERNEL]
    assert "<<<<<<<" in out[0].hunks and ">>>>>>>" in out[0].hunks
    assert git(checkout, "status", "--porcelain", "--untracked-files=no") == ""
