"""Issue 24: the backward's two sampling passes reading their plan once per block of channels.

Both passes walk a plan (per tap and pixel: corner index, weights, mask) and apply it to every
channel. The tip reads the plan, and the offset/mask pass its three sums, once per channel. Here
each plan entry is read once per block of channels, and each channel still gets its terms in the
same order: per grad_input element in (tap, pixel) order, per offset/mask sum in increasing
channel order. So the results should be the same bits.

    python results/2026-12-01/channel-blocks.py build [BLOCK ...]   # standalone variants blkN
    python results/2026-12-01/channel-blocks.py check NAMES         # bits against "fuse" (the tip)
    python results/2026-12-01/channel-blocks.py ab NAMES [THREADS]  # backward only, alternated

Not a patch: the variants are staged next to the tip's standalone copy ("fuse").
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tvdcn import standalone

HERE = Path(__file__).parent

COORD_HEAD_OLD = """  const index_t col_stride = batch_sz * out_hw;
  for (index_t c = c_lo; c < c_hi; ++c) {
"""
COORD_HEAD_NEW = """  // A block of channels per read of the plan; each sum still adds them in
  // increasing order.
  const index_t col_stride = batch_sz * out_hw;
  const index_t col_channel = kk * col_stride;
  for (index_t c = c_lo; c < c_hi; c += kCoordBlockChannels) {
    const index_t n_c = std::min<index_t>(kCoordBlockChannels, c_hi - c);
"""
COORD_BODY_OLD = """        const scalar_t* q = in + plan_idx[e];
        const scalar_t v1 = q[0], v2 = q[1];
        const scalar_t v3 = q[padded_w], v4 = q[padded_w + 1];
        const scalar_t cv = col_row[p];
        const scalar_t m = pm[e];
        const scalar_t wy = pdx[e] * (v4 - v2) + pomx[e] * (v3 - v1);
        gy[e] += m * wy * cv;
        const scalar_t wx = pdy[e] * (v4 - v3) + pomy[e] * (v2 - v1);
        gx[e] += m * wx * cv;
        const scalar_t val = plan_inside[e]
            ? (w1[e] * v1 + w2[e] * v2 + w3[e] * v3 + w4[e] * v4)
            : scalar_t(0);
        if (use_mask) {
          gm[e] += cv * val;
        }
        col_row[p] = m * val;
"""
COORD_BODY_NEW = """        const scalar_t m = pm[e];
        const scalar_t dx = pdx[e], omx = pomx[e], dy = pdy[e], omy = pomy[e];
        const bool inside = plan_inside[e];
        const scalar_t a1 = w1[e], a2 = w2[e], a3 = w3[e], a4 = w4[e];
        scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
        const scalar_t* q = in + plan_idx[e];
        scalar_t* cp = col_row + p;
        for (index_t j = 0; j < n_c; ++j) {
          const scalar_t v1 = q[0], v2 = q[1];
          const scalar_t v3 = q[padded_w], v4 = q[padded_w + 1];
          const scalar_t cv = *cp;
          const scalar_t wy = dx * (v4 - v2) + omx * (v3 - v1);
          sy += m * wy * cv;
          const scalar_t wx = dy * (v4 - v3) + omy * (v2 - v1);
          sx += m * wx * cv;
          const scalar_t val = inside ? (a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4)
                                      : scalar_t(0);
          if (use_mask) {
            sm += cv * val;
          }
          *cp = m * val;
          q += padded_plane;
          cp += col_channel;
        }
        gy[e] = sy;
        gx[e] = sx;
        gm[e] = sm;
"""

COORD_CONST_OLD = "constexpr int64_t kCoordTilePixels = 128;\n"
COORD_CONST_NEW = COORD_CONST_OLD + """
// Channels per read of an offset and mask gradient entry's plan and sums.
constexpr int64_t kCoordBlockChannels = {coord};
"""

PLANE_OLD_HEAD = "// Accumulates the column gradients of channel c and image b"
PLANE_OLD_END = "// Below this many tasks per thread"

PLANE_NEW = """// Accumulates the column gradients of the channels [c, c + n_channels) of image
// b, all of one offset group (`col` holds the channels from c_begin on), into
// the rows [row_begin, row_end) of their grad_im planes through the plan, each
// in the serial loop's order: the sums do not depend on the split.
template <typename scalar_t, typename index_t>
void deformable_col2im_planes(
    index_t c,
    index_t n_channels,
    index_t b,
    index_t row_begin,
    index_t row_end,
    const scalar_t* col,
    index_t c_begin,
    const int64_t* plan_idx,
    const int64_t* plan_row,
    const unsigned char* plan_flags,
    const scalar_t* plan_mw,
    const Geometry<index_t> geo,
    index_t batch_sz,
    scalar_t* grad_im) {
  const index_t channels = geo.channels, height = geo.height;
  const index_t width = geo.width, n_offset_grps = geo.n_offset_grps;
  const index_t kk = geo.kk(), out_hw = geo.out_hw();
  const index_t g = c / (channels / n_offset_grps);
  const int64_t e0 = (int64_t(b) * n_offset_grps + g) * kk * out_hw;
  const int64_t plane = int64_t(height) * width;
  const int64_t col_channel = int64_t(kk) * batch_sz * out_hw;
  scalar_t* grad = grad_im + (int64_t(b) * channels + c) * plane;
  for (index_t k = 0; k < kk; ++k) {
    const scalar_t* col_row =
        col + ((int64_t(c - c_begin) * kk + k) * batch_sz + b) * out_hw;
    const int64_t ek = e0 + int64_t(k) * out_hw;
    for (index_t pix = 0; pix < out_hw; ++pix) {
      const int64_t e = ek + pix;
      const unsigned flags = plan_flags[e];
      if (!flags) {
        continue;
      }
      const int64_t r = plan_row[e];
      const unsigned rows = (r >= row_begin && r < row_end ? 3u : 0u) |
          (r + 1 >= row_begin && r + 1 < row_end ? 12u : 0u);
      const unsigned use = flags & rows;
      if (!use) {
        continue;
      }
      const scalar_t* mw = plan_mw + 4 * e;
      const int64_t p = plan_idx[e];
      const scalar_t* cv = col_row + pix;
      scalar_t* gp = grad + p;
      for (index_t j = 0; j < n_channels; ++j) {
        if (use & 1) {
          gp[0] += mw[0] * *cv;
        }
        if (use & 2) {
          gp[1] += mw[1] * *cv;
        }
        if (use & 4) {
          gp[width] += mw[2] * *cv;
        }
        if (use & 8) {
          gp[width + 1] += mw[3] * *cv;
        }
        cv += col_channel;
        gp += plane;
      }
    }
  }
}

"""

TASKS_OLD = """  const int64_t height = geo.height;
  const int64_t n_plan = plan_flags.numel();
  const int64_t tile_channels = c_end - c_begin;
  const int64_t num_planes = tile_channels * parallel_imgs;
  if (n_plan == 0 || num_planes == 0) {
    return;
  }
"""
TASKS_NEW = """  const int64_t height = geo.height;
  const int64_t n_plan = plan_flags.numel();
  const int64_t tile_channels = c_end - c_begin;
  if (n_plan == 0 || tile_channels == 0 || parallel_imgs == 0) {
    return;
  }
  // Blocks of at most kCol2imBlockChannels channels of one offset group.
  const int64_t c_per_offset_grp = geo.channels / geo.n_offset_grps;
  const auto groups = offset_groups_of(c_begin, c_end, c_per_offset_grp);
  const int64_t blocks_per_grp =
      (std::min(c_per_offset_grp, tile_channels) + kCol2imBlockChannels - 1) /
      kCol2imBlockChannels;
  const int64_t num_planes = parallel_imgs * groups.second * blocks_per_grp;
"""

CALL_OLD = """                for (int64_t task = begin; task < end; ++task) {
                  const int64_t plane = task / bands;
                  const int64_t band = task % bands;
                  deformable_col2im_plane<scalar_t, index_t>(
                      c_begin + plane / parallel_imgs,
                      plane % parallel_imgs,
"""
CALL_NEW = """                for (int64_t task = begin; task < end; ++task) {
                  const int64_t plane = task / bands;
                  const int64_t band = task % bands;
                  const int64_t g = groups.first +
                      plane / (parallel_imgs * blocks_per_grp);
                  const int64_t block =
                      (plane / parallel_imgs) % blocks_per_grp;
                  const int64_t lo = std::max(g * c_per_offset_grp, c_begin) +
                      block * kCol2imBlockChannels;
                  const int64_t hi = std::min(
                      {(g + 1) * c_per_offset_grp,
                       c_end,
                       lo + kCol2imBlockChannels});
                  if (lo >= hi) {
                    continue;
                  }
                  deformable_col2im_planes<scalar_t, index_t>(
                      lo,
                      hi - lo,
                      plane % parallel_imgs,
"""
COL2IM_CONST_OLD = """// Below this many tasks per thread, planes are split into row bands (each scans
// its plane's whole plan).
constexpr int64_t kCol2imTasksPerThread = 4;
"""
COL2IM_CONST_NEW = """// Below this many tasks per thread, blocks of planes are split into row bands
// (each scans the block's whole plan).
constexpr int64_t kCol2imTasksPerThread = 4;

// Channels per col2im task, which reads each plan entry once for all of them.
constexpr int64_t kCol2imBlockChannels = {col2im};
"""


def coord_edit(src: str, coord: int) -> str:
    """The offset/mask pass reading its plan once per ``coord`` channels."""
    for old, new in [(COORD_HEAD_OLD, COORD_HEAD_NEW), (COORD_BODY_OLD, COORD_BODY_NEW),
                     (COORD_CONST_OLD, COORD_CONST_NEW.format(coord=coord))]:
        assert src.count(old) == 1, old[:80]
        src = src.replace(old, new)
    return src


def col2im_edit(src: str, col2im: int) -> str:
    """col2im scattering each plan entry into ``col2im`` channels' planes."""
    for old, new in [(TASKS_OLD, TASKS_NEW), (CALL_OLD, CALL_NEW),
                     (COL2IM_CONST_OLD, COL2IM_CONST_NEW.format(col2im=col2im))]:
        assert src.count(old) == 1, old[:80]
        src = src.replace(old, new)
    a = src.index(PLANE_OLD_HEAD)
    b = src.index(PLANE_OLD_END, a)
    return src[:a] + PLANE_NEW + src[b:]


def kernel(coord: int, col2im: int, src: str | None = None) -> str:
    if src is None:
        src = (standalone.ROOT / "fuse" / "cpu" / standalone.KERNEL.name).read_text()
    return col2im_edit(coord_edit(src, coord), col2im)


def build(*specs: str) -> None:
    """Each spec COORD:COL2IM stages variant blk{COORD}_{COL2IM}."""
    dirs = []
    for spec in specs or ("4:4", "8:8"):
        coord, col2im = (int(x) for x in spec.split(":"))
        dirs.append(standalone.clone(standalone.ROOT / "fuse", f"blk{coord}_{col2im}", kernel(coord, col2im),
                                     prototype=f"plan read once per {coord} (offset/mask) and {col2im} (col2im) "
                                               "channels"))
    print(standalone.build(dirs=dirs), flush=True)


def _rows():
    spec = importlib.util.spec_from_file_location("col2im_rows", HERE / "col2im-rows.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check(names: str, ref: str = "fuse") -> None:
    """Every backward result of each variant against the tip's (``ref``, "fuse" by default), by
    bits, at 1, 2 and 3 threads, on shapes with offset groups, weight groups, channel tiles, several
    images and float64, plus non-finite input and grad_out."""
    import torch

    rows = _rows()
    ops = rows.load_ops([ref, *names.split(",")])
    # col2im-rows.py's shapes, and two with partial blocks in several offset groups.
    shapes = rows.check_shapes() + [(2, 30, 12, 11, 5, 2, True, torch.float32),
                                    (1, 7, 3, 13, 1, 1, True, torch.float32)]
    names_out = ["grad_input", "grad_weight", "grad_offset", "grad_mask", "grad_bias"]
    bad = dict.fromkeys(names.split(","), 0)
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        for shape in shapes:
            b, cin, cout, hw, og, wg, use_mask, dtype = shape
            for poison in (None, "inf", "nan"):
                x, w, off, mask, bias, gout = rows.backward_inputs(*shape)
                if poison:
                    v = float(poison)
                    x.view(-1)[:: 97] = v
                    gout.view(-1)[5:: 211] = -v if poison == "inf" else v
                res = {n: op._deform_conv2d_backward(gout, x, w, off, mask, bias, 1, 1, 1, 1, 1, 1, wg, og,
                                                     use_mask) for n, op in ops.items()}
                as_int = torch.int32 if dtype == torch.float32 else torch.int64
                for n in bad:
                    diff = [o for o, a, z in zip(names_out, res[ref], res[n])
                            if not torch.equal(a.contiguous().view(as_int), z.contiguous().view(as_int))]
                    if diff:
                        bad[n] += 1
                        print(threads, shape, poison, n, "differs:", diff, flush=True)
    print("cases with differing bits (3 threads x 9 shapes x 3 inputs):", bad, flush=True)


def ab(names: str, threads: str = "1") -> None:
    _rows().ab(names, threads)



# Mutants of the tip's blocks (0039, 0040), to show test_float64_reference_cpu failing on them.
MUTANTS = {
    # Partial blocks of the offset/mask pass are skipped.
    "mut_coord_tail": ("const index_t n_c = std::min<index_t>(kCoordBlockChannels, c_hi - c);",
                       "const index_t n_c = std::min<index_t>(kCoordBlockChannels, c_hi - c) / "
                       "kCoordBlockChannels * kCoordBlockChannels;"),
    # col2im blocks are not cut at the offset group's end.
    "mut_col2im_group": ("{(g + 1) * c_per_offset_grp,", "{c_end,"),
}


def mutants() -> None:
    """Stage the tip's kernel and the MUTANTS, then run test_ops.py's float64 reference cases on
    each (run under the patched variant: python -m tvdcn run patched -- python THIS mutants)."""
    import os

    from tvdcn import paths

    standalone.stage(["patched"])
    tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    dirs = [standalone.ROOT / "patched"]
    for name, (old, new) in MUTANTS.items():
        assert tip.count(old) == 1, old
        dirs.append(standalone.clone(standalone.ROOT / "patched", name, tip.replace(old, new)))
    standalone.build(dirs=dirs)
    sys.path.insert(0, str(paths.WORK / "build" / "patched" / "test"))
    import test_ops
    from torchvision import ops

    cases = [m.args for m in test_ops.TestDeformConv.test_float64_reference_cpu.pytestmark
             if m.name == "parametrize"][0][1]
    for d in dirs:
        os.environ["TVDCN_VARIANT"] = f"sa:{d.name}"
        standalone.op.cache_clear()
        ops.deform_conv2d = standalone.op()
        for case in cases:
            try:
                test_ops.TestDeformConv().test_float64_reference_cpu(*case)
                result = "passed"
            except AssertionError as e:
                result = "FAILED: " + str(e).splitlines()[0]
            print(f"{d.name:18} {case}: {result}", flush=True)


if __name__ == "__main__":
    {"build": build, "check": check, "ab": ab, "mutants": mutants}[sys.argv[1]](*sys.argv[2:])
