"""The series' form as upstream reviews it (issue 22): each patch one sitting's read, each message a
short what and why. Read from patches/ (the exported series), so no vendored tree is needed."""
from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tvdcn import paths, series

pytestmark = [pytest.mark.tooling]

MAX_BYTES = 15_000  # a patch file, except the port (main has its own)
MAX_WORDS = 200     # a message, its subject included, its trailers not
PORT = "0001-"
TRAILER = re.compile(r"^[A-Z][\w-]*: ")

PATCHES = [paths.PATCHES / name for name in paths.SERIES_FILE.read_text().split()]


def message_words(text: str) -> int:
    """The words of a format-patch file's message: the subject (less `[PATCH]`) and the body up to
    the trailers (the last paragraph, if every line of it is `Key: value`) and the `---` line."""
    headers, rest = text.split("\n\n", 1)
    subject = re.search(r"^Subject: \[PATCH[^]]*\] (.*(?:\n .*)*)", headers, re.M)
    assert subject, "no Subject header"
    message = subject.group(1) + "\n\n" + rest.split("\n---\n", 1)[0]
    paragraphs = message.strip().split("\n\n")
    if all(TRAILER.match(line) for line in paragraphs[-1].splitlines()):
        paragraphs = paragraphs[:-1]
    return len(" ".join(paragraphs).split())


def test_message_words_counts_the_subject_and_leaves_out_trailers():
    text = ("From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] one two three\n\nfour five\n\nsix: seven\n\n"
            "Signed-off-by: a <a@b>\nForwarded: no\n---\n file | 1 +\n")
    assert message_words(text) == 7


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.name[:4])
def test_patch_size_and_message_length(patch):
    text = patch.read_text()
    if not patch.name.startswith(PORT):
        assert len(text.encode()) <= MAX_BYTES, f"{patch.name}: {len(text.encode())} bytes; split it"
    words = message_words(text)
    assert words <= MAX_WORDS, f"{patch.name}: its message has {words} words; figures go in the PR body"


def test_every_prefix_is_clang_format_clean(tmp_path):
    """Upstream's lint runs clang-format over torchvision/csrc with the repository's .clang-format:
    each prefix's C++ files, as the series leaves them, must come out of it unchanged."""
    if not (paths.SRC / ".git").exists():
        pytest.skip("the vendored tree is not prepared (scripts/build.sh)")
    clang_format = Path(sys.executable).parent / "clang-format"
    assert clang_format.exists(), "clang-format is in requirements.txt: run scripts/build.sh to install it"
    style = tmp_path / ".clang-format"
    style.write_text(series.git("show", "pristine:.clang-format") + "\n")
    unclean = []
    for k, commit in enumerate(series.git("rev-list", "--reverse", "pristine..series").split(), 1):
        for name in series.git("diff", "--name-only", "pristine", commit).split():
            if not name.endswith((".cpp", ".h", ".cu", ".cuh")) or not series.git("ls-tree", commit, name):
                continue
            text = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=paths.SRC, capture_output=True,
                                  text=True, check=True).stdout
            formatted = subprocess.run([str(clang_format), f"--style=file:{style}", f"--assume-filename={name}"],
                                       input=text, capture_output=True, text=True, check=True).stdout
            if formatted != text:
                diff = difflib.unified_diff(text.splitlines(), formatted.splitlines(), lineterm="", n=0)
                unclean.append(f"prefix-{k} {name}:\n" + "\n".join(list(diff)[2:12]))
    assert not unclean, "\n".join(unclean)
