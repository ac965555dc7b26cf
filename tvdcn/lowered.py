"""Lowered thresholds: a test build whose kernel takes its rarely taken paths on small tensors.

``NAME-lowered`` (optionally ``-lowered-cov`` / ``-lowered-asan``) is variant NAME built from a copy
of its tree in which tvdcn.build rewrites, in the kernel file only, the constants that decide those
paths (``SUBSTITUTIONS``): the 64-bit index switch, the forward's image chunks and pixel tiles, the
backward's channel tiles and its GEMMs' tasks, the pixel tiles of its plans, and the parallel
grain. The patches are not touched: the rewrite happens in the variant's own worktree after
checkout, and each substitution must match its text exactly once, or the build fails saying which
constant moved (a refactor of the kernel must update this table, not silently test the defaults).
Replacements never add or remove a line, so line numbers (and coverage) map onto the real file.

Three rewrites are not thresholds. ``scratch``, the helper behind every raw plan buffer (the
memory at::empty's NaN fill does not reach), fills each buffer with 0xff bytes: a float entry read
before it is written is NaN, an index is -1, which the grid's comparisons and an ASan build catch.
And failures on request, for the error paths no test could reach otherwise (tests/kernel/
test_faults.py): ``TVDCN_FAIL_SCRATCH=N`` makes every plan allocation of N elements fail (0: every
allocation), so each site's out-of-memory error is reached by choosing its size;
``TVDCN_FAIL_GEMM`` makes every tile GEMM of the forward and every GEMM task of the backward fail, as a
failing one would. Unset, they change nothing.

What lowering may change, and what it must not (``DECLARED``, recorded in the variant's
build.json and read by the suite, tests/conftest.py):

- ``out`` is already declared changed by the series (its GEMM operands change shape and order);
  smaller pixel tiles and ``small_tile_mm`` on one-pixel tiles round it differently again, so it
  stays compared with the float64 reference, and must still not depend on the thread count.
- The four gradients the channel tiles feed (patch 0028): a tile's columns are blocks of a GEMM
  (weight^T x grad_out), from which grad_input, grad_offset and grad_mask are computed, and
  grad_weight is added a block of columns at a time; lowered, the tiles split almost every shape,
  into blocks as narrow as one channel, and the GEMM tasks (patch 0043) into chunks of 16 or 32
  pixels or columns. A BLAS need not round a block of a GEMM as it rounds the whole, nor, before
  0043 ran each task on one thread, the same at every thread count (NVPL did not for grad_weight
  at 4 threads; MKL on x86 did not for a one-channel block of columns at 2 threads, nor for
  grad_weight's blocks at 1: results/2026-11-30/tile-rounding.txt). Patch 0028 declares the four
  for ``[split]`` cases, whose columns exceed the default 32 MiB (tvdcn.cases.backward_split);
  lowered, almost every case splits, so this build declares them unscoped: they are compared
  with the float64 reference at every thread count, left out of the thread-invariance checks
  (which a prefix before 0043 needs), and held to baseline's bits on the exact cases (dyadic
  values, every sum exact in float64), where no GEMM shape or order can change a bit
  (tests/kernel/test_threads.py::test_exact_cases_bit_identical_to_baseline).
- ``grad_bias`` (and, on the exact cases, everything) must stay bit-identical to baseline at every
  thread count. The 64-bit index type, chunks, pixel tiles of the plans and the grain only change
  where a value is computed and by which thread, never an element's arithmetic or the order of
  its sums (col2im's rows take their entries in the plan's order; the offset and mask gradients
  sum a group's channels in increasing order whatever the tile): what changes bits under this
  build is the BLAS's blocks only.
"""
from __future__ import annotations

from pathlib import Path

from .log import Failure

# (what, exact text in the kernel file, replacement, why this value). Each text must occur once.
SUBSTITUTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("64-bit index switch",
     "if (t.numel() > 0 && span > std::numeric_limits<int>::max()) {",
     "if (t.numel() > 0 && span > 4096) {",
     "INT_MAX elements -> 4096: the grid's batch-1/2 shapes stay on int, the larger ones take the "
     "int64_t instantiations, forward and backward"),
    ("parallel grain",
     "constexpr int64_t kSamplesPerChunk = 32768;",
     "constexpr int64_t kSamplesPerChunk = 64;",
     "32768 -> 64 samples: small shapes are split among threads, so thread invariance is not "
     "checked on serial runs only"),
    ("plan pixels",
     "constexpr int64_t kPlanPixels = 256;",
     "constexpr int64_t kPlanPixels = 24;",
     "256 -> 24: the forward's largest pixel tile, so that images split into several tiles"),
    ("forward tile bytes",
     "constexpr int64_t kTileBytes = 1 << 20;",
     "constexpr int64_t kTileBytes = 1 << 14;",
     "1 MiB -> 16 KiB: forward tiles of 8 to 24 pixels"),
    ("forward tile rounding",
     "tile = std::clamp<int64_t>(tile / 16 * 16, 64, kPlanPixels);",
     "tile = std::clamp<int64_t>(tile / 8 * 8, 8, kPlanPixels);",
     "multiples of 16, at least 64 -> multiples of 8, at least 8 (the lower bound must stay below "
     "kPlanPixels): partial last tiles, one-pixel last tiles (small_tile_mm)"),
    ("coordinate tile pixels",
     "constexpr int64_t kCoordTilePixels = 128;",
     "constexpr int64_t kCoordTilePixels = 16;",
     "128 -> 16: several offset/mask gradient tiles per image"),
    ("backward GEMM rows",
     "constexpr int64_t kGemmMinRows = 256;",
     "constexpr int64_t kGemmMinRows = 16;",
     "256 -> 16: the backward's columns GEMM in several tasks per image, with a partial last one"),
    ("backward GEMM rows ceiling",
     "constexpr int64_t kGemmMaxRows = 1024;",
     "constexpr int64_t kGemmMaxRows = 32;",
     "1024 -> 32: every grid image's pixels in chunks of 16 or 32"),
    ("backward GEMM columns",
     "constexpr int64_t kGemmMinCols = 64;",
     "constexpr int64_t kGemmMinCols = 16;",
     "64 -> 16: grad_weight's GEMM in several blocks of columns, with a partial last one"),
    ("backward GEMM columns ceiling",
     "constexpr int64_t kGemmMaxCols = 512;",
     "constexpr int64_t kGemmMaxCols = 32;",
     "512 -> 32: blocks of 16 or 32 columns on the grid's shapes"),
    ("forward chunk bytes",
     "constexpr int64_t kChunkBytes = 32 << 20;",
     "constexpr int64_t kChunkBytes = 4096;",
     "32 MiB -> 4 KiB of padded images per chunk: 1 or 2 images of the grid's small shapes, so "
     "every batch above 2 runs several chunks (b0 > 0), with a partial last one"),
    ("backward tile bytes",
     "constexpr int64_t kBackwardTileBytes = int64_t(32) << 20;",
     "constexpr int64_t kBackwardTileBytes = int64_t(16) << 10;",
     "32 MiB -> 16 KiB of columns: the backward runs in channel tiles from a few channels and "
     "images on, across every 32-image block"),
    ("backward tile min channels",
     "constexpr int64_t kBackwardTileMinChannels = 16;",
     "constexpr int64_t kBackwardTileMinChannels = 3;",
     "16 -> 3: tiles that start inside an offset group and end in the next, and a partial last "
     "tile of a weight group"),
    # Not thresholds: faults on request, and poisoned scratch (see FAULTS).
    ("scratch buffers",
     "std::unique_ptr<T[]> buffer(new (std::nothrow) T[n]);",
     "const char* fail = std::getenv(\"TVDCN_FAIL_SCRATCH\"); std::unique_ptr<T[]> buffer("
     "fail && (std::atoll(fail) == 0 || std::atoll(fail) == n) ? nullptr : new (std::nothrow) T[n]); "
     "if (buffer) { __builtin_memset(buffer.get(), 0xff, sizeof(T) * n); }",
     "a task's plan buffers are filled with 0xff bytes (NaN, index -1) so that an entry read before it "
     "is written shows; TVDCN_FAIL_SCRATCH=N fails every allocation of N elements (0: all)"),
    ("GEMM failure",
     "Tensor out_g = torch::stable::from_blob(",
     "Tensor out_g = std::getenv(\"TVDCN_FAIL_GEMM\") ? throw std::exception() : torch::stable::from_blob(",
     "TVDCN_FAIL_GEMM set: every tile GEMM of the forward throws, as a failing one would"),
    ("backward GEMM failure",
     "    stable_helpers::addmm_(c_t, a_t, b_t, beta);",
     "    if (std::getenv(\"TVDCN_FAIL_GEMM\")) { throw std::exception(); } "
     "stable_helpers::addmm_(c_t, a_t, b_t, beta);",
     "TVDCN_FAIL_GEMM set: every GEMM task of the backward fails, as a failing one would"),
)

# Results whose rounding the lowered build may change from baseline, beyond the series' own
# declarations, and results it may make depend on the thread count: name -> why (module doc).
TILE_WHY = ("the backward's channel tiles (patch 0028), lowered to a few channels, compute it from GEMMs "
            "that are blocks of baseline's (columns: rows of weight^T x grad_out; grad_weight: blocks of "
            "columns), which a BLAS may round differently from the whole and by thread count")
TILED = ("grad_input", "grad_offset", "grad_mask", "grad_weight")
DECLARED = {"rounding_changed": dict.fromkeys(TILED, TILE_WHY),
            "thread_dependent": dict.fromkeys(TILED, TILE_WHY)}


def rewrite(text: str, where: str = "the kernel file",
            substitutions: tuple[tuple[str, str, str, str], ...] = SUBSTITUTIONS) -> str:
    """``text`` with every substitution made; each must match exactly once, or a Failure names it."""
    for what, old, new, _ in substitutions:
        assert "\n" not in old and "\n" not in new, what
        n = text.count(old)
        if n != 1:
            raise Failure(f"lowered thresholds: {what}: expected `{old}` exactly once in {where}, found it "
                          f"{n} times; the kernel changed, update tvdcn.lowered.SUBSTITUTIONS")
        text = text.replace(old, new)
    return text


def apply(path: Path) -> None:
    """Rewrite the kernel file at ``path`` in place (a variant's own worktree copy only)."""
    path.write_text(rewrite(path.read_text(), str(path)))


def record() -> dict:
    """What a lowered build records in its build.json: the thresholds and the declarations."""
    return {"thresholds": [{"what": w, "from": o, "to": n, "why": y} for w, o, n, y in SUBSTITUTIONS],
            **DECLARED}
