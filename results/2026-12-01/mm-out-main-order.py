"""Give ``stable_helpers::mm_out`` main's signature in every prefix that has it, and reorder its calls.

Usage: .venv/bin/python results/2026-12-01/mm-out-main-order.py [--repo .work/src/torchvision] [--branch series]

Main's helper (the stable CUDA port calls ``mm_out(weight_g, grad_out_g, columns_g)``) takes the
operands in the schema's order, ``mm_out(self, mat2, out)`` with ``Tensor& out``, and returns nothing;
ours took ``(out, self, mat2)`` and returned ``out``. Applied on main, our calls would bind to main's
helper with the output first, so the series now uses main's signature from the patch that adds the
helper (0011) on. Each call's output becomes an argument by name: an expression is first held in a
local (``columns_g`` for a group's rows of ``columns``, else ``out_g``); a named ``const Tensor``
loses its ``const``. Same op, same operands: no value changes. Messages, authors and dates are kept;
each rewritten file is clang-formatted with upstream's style.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

_spec = importlib.util.spec_from_file_location("lean_series", Path(__file__).with_name("lean-series.py"))
lean = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lean)

KERNEL = lean.KERNEL
HEADER = "torchvision/csrc/ops/StableABICompat.h"
FIRST = 11  # the patch that adds mm_out

# The dispatcher call both definitions share.
CALL_MM_OUT = """\
  std::array<StableIValue, 3> stack{
      torch::stable::detail::from(self),
      torch::stable::detail::from(mat2),
      torch::stable::detail::from(out)};
  TORCH_ERROR_CODE_CHECK(torch_call_dispatcher(
      "aten::mm", "out", stack.data(), TORCH_ABI_VERSION));
"""
SCHEMA = "// aten::mm.out(Tensor self, Tensor mat2, *, Tensor(a!) out) -> Tensor(a!)\n"
OLD_HELPER = (SCHEMA + "inline Tensor mm_out(\n    const Tensor& out,\n    const Tensor& self,\n"
              "    const Tensor& mat2) {\n" + CALL_MM_OUT
              + "  return torch::stable::detail::to<Tensor>(stack[0]);\n}\n")
NEW_HELPER = (SCHEMA + "inline void mm_out(const Tensor& self, const Tensor& mat2, Tensor& out) {\n" + CALL_MM_OUT
              + "  // Take ownership of the returned handle (out itself) so that it is freed.\n"
              + "  torch::stable::detail::to<Tensor>(stack[0]);\n}\n")

CALL = "stable_helpers::mm_out("


def call_args(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose '(' ends at start, and the index after its ';'."""
    depth, i, args, cur = 1, start, [], []
    while depth:
        ch = text[i]
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 1 and ch == ",":
            args.append("".join(cur))
            cur = []
        elif depth:
            cur.append(ch)
        i += 1
    args.append("".join(cur))
    assert text[i] == ";", text[start - 40:i + 5]
    return [" ".join(a.split()) for a in args], i + 1


def reorder_calls(text: str) -> str:
    pos = 0
    while (at := text.find(CALL, pos)) >= 0:
        line_start = text.rindex("\n", 0, at) + 1
        indent = text[line_start:at]
        assert not indent.strip(), text[line_start:at + 40]
        (out, self_, mat2), end = call_args(text, at + len(CALL))
        if re.fullmatch(r"\w+", out):
            decl = text.rfind(f"const Tensor {out} = ", 0, at)
            assert decl >= 0, out
            text = text[:decl] + text[decl + len("const "):]
            at -= len("const ")
            end -= len("const ")
            new = f"{indent}{CALL}{self_}, {mat2}, {out});"
        else:
            name = "columns_g" if out == "torch::stable::select(columns, 0, g)" else "out_g"
            assert not re.search(rf"\b{name}\b", text[text.rfind("\n}\n", 0, at):at]), name
            new = f"{indent}Tensor {name} = {out};\n{indent}{CALL}{self_}, {mat2}, {name});"
        text = text[:line_start] + new + text[end:]
        pos = line_start + len(new)
    return text


def main() -> None:
    repo, branch, base = lean.arguments(__doc__)

    def files(number: int, commit: str, style: Path) -> dict[str, str]:
        if number < FIRST:
            return {}
        header = lean.replace_once(lean.git(repo, "show", f"{commit}:{HEADER}"), OLD_HELPER, NEW_HELPER)
        text = lean.git(repo, "show", f"{commit}:{KERNEL}")
        assert lean.clang_format(text, style) == text, f"prefix {number} was not clang-format clean"
        calls = text.count(CALL)
        text = lean.clang_format(reorder_calls(text), style)
        assert text.count(CALL) == calls, number
        return {HEADER: header, KERNEL: text}
    lean.rewrite(repo, branch, base, files)


if __name__ == "__main__":
    main()
