"""Three mechanical edits to the series, applied to every prefix tree from the patch that wrote the code.

Usage: .venv/bin/python results/2026-12-01/lean-series.py [--repo .work/src/torchvision] [--branch series]

Each edit rewrites the kernel file of the prefixes from its first patch on; the other files and every
message, author and date are kept, and the new commits replace the branch (the old tip is printed so
it can be restored). Every edit asserts the text it rewrites occurs as often as expected, so a prefix
whose code differs fails loudly instead of being skipped. Each rewritten file is then clang-formatted
with upstream's style (each prefix was clean before: only the rewritten lines can move).

- 0009 (bfloat16 and float16 computed in float32): the forward and backward convert their arguments in
  place (``to_dtype(x, compute_dtype(input))``, a no-op for float32 and float64) and round each result
  back, instead of calling themselves again with fourteen arguments on float32 copies. Same values,
  same kernels: the float32 op on the same values, rounded once.
- 0028 (column buffer in channel tiles): ``columns_tile`` is one narrowed view, not a copy then a narrow.
- 0034 (one scratch helper): no blank line after each ``scratch`` declaration or after ``padded_copy(``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

KERNEL = "torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp"
CLANG_FORMAT = Path(sys.executable).parent / "clang-format"

OLD_HELPERS = """\
bool computes_in_float32(const Tensor& input) {
  return input.scalar_type() == torch::headeronly::ScalarType::BFloat16 ||
      input.scalar_type() == torch::headeronly::ScalarType::Half;
}

Tensor to_dtype(const Tensor& t, torch::headeronly::ScalarType dtype) {
  return torch::stable::to(t, dtype);
}
"""
NEW_HELPERS = """\
torch::headeronly::ScalarType compute_dtype(const Tensor& input) {
  const auto dtype = input.scalar_type();
  const bool low = dtype == torch::headeronly::ScalarType::BFloat16 ||
      dtype == torch::headeronly::ScalarType::Half;
  return low ? torch::headeronly::ScalarType::Float : dtype;
}

Tensor to_dtype(const Tensor& t, torch::headeronly::ScalarType dtype) {
  return t.scalar_type() == dtype ? t : torch::stable::to(t, dtype);
}
"""
OLD_TUPLE = """\
  return std::make_tuple(
      grad_input, grad_weight, grad_offset, grad_mask, grad_bias);
"""
NEW_TUPLE = """\
  return std::make_tuple(
      to_dtype(grad_input, input.scalar_type()),
      to_dtype(grad_weight, input.scalar_type()),
      to_dtype(grad_offset, input.scalar_type()),
      to_dtype(grad_mask, input.scalar_type()),
      to_dtype(grad_bias, input.scalar_type()));
"""


def git(repo: Path, *args: str, env: dict | None = None, input: str | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env, input=input).stdout


def replace_once(text: str, old: str, new: str, count: int = 1) -> str:
    found = text.count(old)
    assert found == count, f"expected {count} of {old[:60]!r}, found {found}"
    return text.replace(old, new)


def body(text: str, name: str) -> tuple[int, int]:
    """The span of a top-level function's definition, from its name to its closing brace."""
    start = re.search(rf"^\S.* {re.escape(name)}\(\n", text, re.M)
    assert start, name
    end = text.index("\n}\n", start.start()) + 3
    return start.start(), end


def in_float32_in_place(text: str) -> str:
    text = replace_once(text, OLD_HELPERS, NEW_HELPERS)
    for name, args, returns in (
            ("deform_conv2d_forward_kernel", ("input", "offset", "weight", "mask", "bias"), "wrap"),
            ("deform_conv2d_backward_kernel", ("grad_out", "input", "weight", "offset", "mask", "bias"), "tuple")):
        a, b = body(text, name)
        fn = text[a:b]
        # The recursion on float32 copies, from its test to its closing brace at the body's indent.
        m = re.search(r"^  if \(computes_in_float32\(input\)\) \{\n.*?^  \}\n", fn, re.M | re.S)
        assert m, name
        fn = fn[:m.start()] + fn[m.end():]
        assert not re.search(r"\bdtype\b", re.sub(r'"[^"\n]*"', '""', fn)), f"{name} already names dtype"
        fn = fn[:m.start()] + "  const auto dtype = compute_dtype(input);\n" + fn[m.start():]
        for arg in args:
            fn = replace_once(fn, f"torch::stable::contiguous({arg});",
                              f"torch::stable::contiguous(to_dtype({arg}, dtype));")
        if returns == "tuple":
            fn = replace_once(fn, OLD_TUPLE, NEW_TUPLE)
            assert len(re.findall(r"^ {2,4}return ", fn, re.M)) == 1, name
        else:
            # Every value the forward returns (at the body's indent or one block in; lambdas return
            # nothing), rounded back to the input's dtype.
            returns_found = 0

            def wrap(r: re.Match) -> str:
                nonlocal returns_found
                returns_found += 1
                return f"{r.group(1)}return to_dtype({r.group(2)}, input.scalar_type());"
            fn = re.sub(r"^( {2}| {4})return ([^;]+);", wrap, fn, flags=re.M)
            assert returns_found >= 1, name
            print("   ", name, "returns", returns_found)
        text = text[:a] + fn + text[b:]
    assert "computes_in_float32" not in text
    return text


def one_view(text: str) -> str:
    old = ("Tensor columns_tile = columns;\n        columns_tile = torch::stable::narrow(\n"
           "            columns_tile, 0,")
    return replace_once(text, old, "const Tensor columns_tile = torch::stable::narrow(\n            columns, 0,", 2)


def no_blank_after_scratch(text: str) -> str:
    text, n = re.subn(r"(scratch<[^;]*;\n)\n", r"\1", text)
    assert n == 7, n
    text, n = re.subn(r"padded_copy\(\n\n", "padded_copy(\n", text)
    assert n == 1, n
    return text


EDITS = ((9, in_float32_in_place), (28, one_view), (34, no_blank_after_scratch))


def clang_format(text: str, style: Path) -> str:
    return subprocess.run([str(CLANG_FORMAT), f"--style=file:{style}", f"--assume-filename={KERNEL}"],
                          input=text, check=True, capture_output=True, text=True).stdout


def rewrite(repo: Path, branch: str, base: str, files) -> None:
    """Replace ``branch`` by commits with the same messages, authors and dates, where
    ``files(number, commit, style)`` gives each commit's rewritten files ({path: text}, maybe empty)."""
    style = Path(os.environ.get("TMPDIR", "/tmp")) / "lean-series.clang-format"
    style.write_text(git(repo, "show", f"{base}:.clang-format") + "\n")
    old_tip = git(repo, "rev-parse", branch).strip()
    commits = git(repo, "rev-list", "--reverse", f"{base}..{branch}").split()
    parent = git(repo, "rev-parse", base).strip()
    index = Path(os.environ.get("TMPDIR", "/tmp")) / "lean-series.index"
    for number, commit in enumerate(commits, start=1):
        env = dict(os.environ, GIT_INDEX_FILE=str(index))
        git(repo, "read-tree", commit, env=env)
        for path, text in files(number, commit, style).items():
            blob = git(repo, "hash-object", "-w", "--stdin", input=text).strip()
            git(repo, "update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env).strip()
        fields = git(repo, "log", "-1", "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI", commit).split("\0")
        meta = dict(os.environ, GIT_AUTHOR_NAME=fields[0], GIT_AUTHOR_EMAIL=fields[1], GIT_AUTHOR_DATE=fields[2],
                    GIT_COMMITTER_NAME=fields[3], GIT_COMMITTER_EMAIL=fields[4], GIT_COMMITTER_DATE=fields[5].strip())
        message = git(repo, "cat-file", "commit", commit).split("\n\n", 1)[1]
        parent = git(repo, "commit-tree", tree, "-p", parent, env=meta, input=message).strip()
        lines = git(repo, "show", f"{parent}:{KERNEL}").count("\n")
        print(f"{number:2d} {commit[:7]} -> {parent[:7]}  kernel {lines} lines")
    git(repo, "update-ref", f"refs/heads/{branch}", parent, old_tip)
    print(f"{branch}: {old_tip[:7]} -> {parent[:7]} (restore: git -C {repo} branch -f {branch} {old_tip})")


def lean_kernel(repo: Path):
    def files(number: int, commit: str, style: Path) -> dict[str, str]:
        edits = [f for first, f in EDITS if number >= first]
        if not edits:
            return {}
        text = git(repo, "show", f"{commit}:{KERNEL}")
        assert clang_format(text, style) == text, f"prefix {number} was not clang-format clean"
        for edit in edits:
            text = edit(text)
        return {KERNEL: clang_format(text, style)}
    return files


def arguments(doc: str) -> tuple[Path, str, str]:
    """The vendored repository, the branch to rewrite and its base, from the command line."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--repo", type=Path, default=Path(".work/src/torchvision"))
    ap.add_argument("--branch", default="series")
    ap.add_argument("--base", default="pristine")
    args = ap.parse_args()
    return args.repo.resolve(), args.branch, args.base


def main() -> None:
    repo, branch, base = arguments(__doc__)
    rewrite(repo, branch, base, lean_kernel(repo))


if __name__ == "__main__":
    main()
