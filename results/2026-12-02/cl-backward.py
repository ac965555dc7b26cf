"""Issue 24, a prototype, not a patch: the backward's columns channels last, from an in-region GEMM.

The 2026-12-01 prototype (`results/2026-12-01/col2im-rows.py`) showed the offset/mask pass 2-2.7x
faster on channels-last columns, but getting them cost either a transpose (which took back half of
the gain) or MKL's transposed GEMM (whose bits changed with the thread count for small K). This
stages the 42-patch tip with:

- each channel tile's columns written as rows (image, pixel) of (tap, channel) by GEMMs of the
  transposed problem, grad_out_g^T W'', one per chunk of 256 pixels of one image, each on one
  thread inside a parallel region (as 0042's forward does): a chunk's bits do not depend on the
  thread count;
- col2im unchanged but for where it reads a column entry (a block's channels now adjacent);
- the offset/mask pass reading a channels-last padded input and those rows, one (tap, pixel) entry
  at a time with the group's channels inside, sums in registers, each still over the channels in
  increasing order, then writing its im2col back into the rows;
- the weight gradient accumulated per tile in (tap, channel) order, permuted into grad_weight at
  the end (a copy).

    PYTHONPATH=. .venv/bin/python results/2026-12-02/cl-backward.py build
    PYTHONPATH=. .venv/bin/python results/2026-12-02/cl-backward.py check   # against the tip
    PYTHONPATH=. .venv/bin/python results/2026-12-02/cl-backward.py ab 1 patched,clb 10
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from tvdcn import standalone

sys.path.insert(0, str(Path(__file__).parent))
ci = importlib.import_module("coord-interleave")

EDITS: list[tuple[str, str]] = []

# col2im: a block's column entries are adjacent in a row of (tap, channel).
EDITS.append(("""  const int64_t col_channel = int64_t(kk) * col_ld;
  scalar_t* grad = grad_im + (int64_t(b) * channels + c) * plane;
  for (index_t k = 0; k < kk; ++k) {
    const scalar_t* col_row =
        col + (int64_t(c - c_begin) * kk + k) * col_ld + int64_t(b) * out_hw;
""", """  const int64_t col_tc = col_ld / kk;
  scalar_t* grad = grad_im + (int64_t(b) * channels + c) * plane;
  for (index_t k = 0; k < kk; ++k) {
    const scalar_t* col_row = col + int64_t(b) * out_hw * col_ld +
        int64_t(k) * col_tc + (c - c_begin);
"""))
EDITS.append(("""      const scalar_t* cv = col_row + pix;
""", """      const scalar_t* cv = col_row + int64_t(pix) * col_ld;
"""))
EDITS.append(("""        cv += col_channel;
""", """        cv += 1;
"""))

# The offset/mask pass: channels last.
EDITS.append(("""  const Tensor padded = padded_copy(input, c_begin, c_end, false);
""", """  const Tensor padded = padded_copy(input, c_begin, c_end, true);
"""))
COORD_START = "  // A block of channels per read of the plan;"
COORD_END = "\n  for (index_t k = 0; k < kk; ++k) {\n    scalar_t* go_y =\n"
NEW_COORD = """  // Channels last: the tile's padded input is (images, rows, columns, tile
  // channels), its columns rows (image, pixel) of col_ld = kk * tile channels.
  const index_t tc = tile_channels;
  const scalar_t* img = padded + b * padded_plane * tc + (c_lo - c_begin);
  const index_t n_c = c_hi - c_lo;
  for (index_t k = 0; k < kk; ++k) {
    for (index_t p = 0; p < n_pix; ++p) {
      const index_t e = k * n_pix + p;
      const scalar_t m = pm[e];
      const scalar_t dx = pdx[e], omx = pomx[e], dy = pdy[e], omy = pomy[e];
      const bool inside = plan_inside[e];
      const scalar_t a1 = w1[e], a2 = w2[e], a3 = w3[e], a4 = w4[e];
      const scalar_t* q1 = img + plan_idx[e] * tc;
      const scalar_t* q2 = q1 + tc;
      const scalar_t* q3 = q1 + padded_w * tc;
      const scalar_t* q4 = q3 + tc;
      scalar_t* cp = col + (b * out_hw + pix_begin + p) * col_ld + k * tc +
          (c_lo - c_begin);
      scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
      for (index_t j = 0; j < n_c; ++j) {
        const scalar_t v1 = q1[j], v2 = q2[j], v3 = q3[j], v4 = q4[j];
        const scalar_t cv = cp[j];
        const scalar_t wy = dx * (v4 - v2) + omx * (v3 - v1);
        sy += m * wy * cv;
        const scalar_t wx = dy * (v4 - v3) + omy * (v2 - v1);
        sx += m * wx * cv;
        const scalar_t val =
            inside ? (a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4) : scalar_t(0);
        if (use_mask) {
          sm += cv * val;
        }
        cp[j] = m * val;
      }
      gy[e] = sy;
      gx[e] = sx;
      gm[e] = sm;
    }
  }
"""

# The columns GEMM, in chunks of one image's pixels inside a parallel region.
HELPER_ANCHOR = "// t (batch, ...) as blocks of n images: (batch / n, n, ...).\n"
HELPER = """// Prototype: cols (images * pixels, kk * tile channels) = grad_out_g^T w_tile,
// a chunk of kClChunk pixels of one image per GEMM, each on one thread inside
// the region.
constexpr int64_t kClChunk = 256;
void cl_columns(
    const Tensor& w_tile,
    const Tensor& grad_out,
    int64_t elt,
    int64_t g,
    int64_t n_imgs,
    int64_t out_hw,
    const Tensor& cols) {
  const int64_t n_wg = grad_out.size(2), o_g = grad_out.size(3);
  const int64_t ld = cols.stride(0);
  const int64_t chunks = (out_hw + kClChunk - 1) / kClChunk;
  const int64_t n_tasks = n_imgs * chunks;
  const int64_t n_threads = torch::stable::get_num_threads();
  const int64_t n_run = std::max(n_tasks, std::min<int64_t>(n_threads, 2));
  std::atomic<bool> failed{false};
  const auto device = cols.device();
  const auto dtype = cols.scalar_type();
  THO_DISPATCH_V2(
      cols.scalar_type(),
      "cl_columns",
      AT_WRAP([&] {
        scalar_t* cols_ptr = cols.mutable_data_ptr<scalar_t>();
        const scalar_t* go_ptr = grad_out.const_data_ptr<scalar_t>();
        torch::stable::parallel_for(
            0, n_run, 1, [&](int64_t begin, int64_t end) noexcept {
              for (int64_t t = begin; t < std::min(end, n_tasks); ++t) {
                const int64_t b = t / chunks;
                const int64_t p0 = (t % chunks) * kClChunk;
                const int64_t n = std::min(kClChunk, out_hw - p0);
                const scalar_t* go = go_ptr +
                    (((elt * n_imgs + b) * n_wg + g) * o_g) * out_hw + p0;
                try {
                  Tensor out = torch::stable::from_blob(
                      cols_ptr + (b * out_hw + p0) * ld,
                      {n, ld},
                      {ld, 1},
                      device,
                      dtype);
                  Tensor a = torch::stable::from_blob(
                      const_cast<scalar_t*>(go),
                      {n, o_g},
                      {1, out_hw},
                      device,
                      dtype);
                  stable_helpers::addmm_(out, a, w_tile, /*beta=*/0.0);
                } catch (const std::exception&) {
                  failed = true;
                }
              }
            });
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
  STD_TORCH_CHECK(!failed, "deform_conv2d: the columns GEMM failed");
}

// Prototype: gw (o_g, ld) += grad_out_buf (o_g, pixels) cols (pixels, ld), in
// blocks of kClWeightBlock columns, each GEMM on one thread inside the region.
constexpr int64_t kClWeightBlock = 128;
void cl_weight(const Tensor& gw, const Tensor& go, const Tensor& cols) {
  const int64_t n = cols.size(1);
  const int64_t blocks = (n + kClWeightBlock - 1) / kClWeightBlock;
  const int64_t n_run =
      std::max(blocks, std::min<int64_t>(torch::stable::get_num_threads(), 2));
  std::atomic<bool> failed{false};
  torch::stable::parallel_for(
      0, n_run, 1, [&](int64_t begin, int64_t end) noexcept {
        for (int64_t t = begin; t < std::min(end, blocks); ++t) {
          try {
            Tensor gw_t = gw;
            Tensor cols_t = cols;
            const int64_t w = std::min(kClWeightBlock, n - t * kClWeightBlock);
            stable_helpers::addmm_(
                torch::stable::narrow(gw_t, 1, t * kClWeightBlock, w),
                go,
                torch::stable::narrow(cols_t, 1, t * kClWeightBlock, w));
          } catch (const std::exception&) {
            failed = true;
          }
        }
      });
  STD_TORCH_CHECK(!failed, "deform_conv2d: the weight GEMM failed");
}

// Prototype: grad_weight's (channel, tap) entries of [c0, c1) from a tile's
// (tap, channel) ones.
void cl_permute(const Tensor& src, const Tensor& dst, int64_t kk) {
  const int64_t rows = dst.size(0), n = dst.size(1), tc = n / kk;
  THO_DISPATCH_V2(
      dst.scalar_type(),
      "cl_permute",
      AT_WRAP([&] {
        const scalar_t* s = src.const_data_ptr<scalar_t>();
        scalar_t* d = dst.mutable_data_ptr<scalar_t>();
        const int64_t ss = src.stride(0);
        const int64_t ds = dst.stride(0);
        for (int64_t o = 0; o < rows; ++o) {
          for (int64_t c = 0; c < tc; ++c) {
            for (int64_t k = 0; k < kk; ++k) {
              d[o * ds + c * kk + k] = s[o * ss + k * tc + c];
            }
          }
        }
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
}

"""

OLD_TILE = """        Tensor columns_tile = torch::stable::narrow(
            columns, 0, whole ? c0 * kk : 0, (c1 - c0) * kk);
        // mm_out writes every element of the tile.
        stable_helpers::mm_out(
            torch::stable::transpose(
                torch::stable::narrow(
                    weight_g,
                    1,
                    (c0 - g * c_per_weight_grp) * kk,
                    (c1 - c0) * kk),
                0,
                1),
            grad_out_g,
            columns_tile);
"""
NEW_TILE = """        (void)grad_out_g;
        (void)whole;
        const int64_t tc = c1 - c0;
        // The tile's weight columns in (tap, channel) order.
        const Tensor w_tile = torch::stable::reshape(
            torch::stable::contiguous(torch::stable::transpose(
                torch::stable::reshape(
                    torch::stable::narrow(
                        weight_g, 1, (c0 - g * c_per_weight_grp) * kk, tc * kk),
                    {weight_g.size(0), tc, kk}),
                1,
                2)),
            {weight_g.size(0), tc * kk});
        Tensor columns_tile = torch::stable::from_blob(
            columns.mutable_data_ptr(),
            {n_parallel_imgs * out_hw, tc * kk},
            {tc * kk, 1},
            columns.device(),
            columns.scalar_type());
        cl_columns(
            w_tile, grad_out, elt, g, n_parallel_imgs, out_hw, columns_tile);
"""
OLD_ADDMM = """        stable_helpers::addmm_(
            torch::stable::narrow(
                grad_weight_g,
                1,
                (c0 - g * c_per_weight_grp) * kk,
                (c1 - c0) * kk),
            grad_out_buf_g,
            torch::stable::transpose(columns_tile, 1, 0));
"""
NEW_ADDMM = """        Tensor gw_cl_g = torch::stable::select(gw_cl, 0, g);
        cl_weight(
            torch::stable::narrow(
                gw_cl_g,
                1,
                (c0 - g * c_per_weight_grp) * kk,
                (c1 - c0) * kk),
            grad_out_buf_g,
            columns_tile);
"""
OLD_LOOP = """  for (int64_t elt = 0; elt < batch_sz / n_parallel_imgs; elt++) {
    auto offset_elt"""
NEW_LOOP = """  // Prototype: grad_weight in each tile's (tap, channel) order.
  const Tensor gw_cl = torch::stable::new_zeros(
      grad_weight_grps, grad_weight_grps.sizes());
  for (int64_t elt = 0; elt < batch_sz / n_parallel_imgs; elt++) {
    auto offset_elt"""
OLD_RET = """  return std::make_tuple(grad_input, grad_weight, grad_offset, grad_mask);
}

// Checks every argument"""
NEW_RET = """  for (int64_t g = 0; g < n_weight_grps; g++) {
    for (int64_t c0 = g * c_per_weight_grp; c0 < (g + 1) * c_per_weight_grp;
         c0 += tile_channels) {
      const int64_t c1 =
          std::min(c0 + tile_channels, (g + 1) * c_per_weight_grp);
      const int64_t off = (c0 - g * c_per_weight_grp) * kk;
      Tensor src_g = torch::stable::select(gw_cl, 0, g);
      Tensor dst_g = torch::stable::select(grad_weight_grps, 0, g);
      cl_permute(
          torch::stable::narrow(src_g, 1, off, (c1 - c0) * kk),
          torch::stable::narrow(
              dst_g,
              1,
              off,
              (c1 - c0) * kk),
          kk);
    }
  }
  return std::make_tuple(grad_input, grad_weight, grad_offset, grad_mask);
}

// Checks every argument"""


# col2im into a channels-last tile gradient: a task is one (image, block of channels) and takes
# the entries in (tap, pixel) order, as the planar loop does, so each element gets its shares in
# the same order; a corner's share is a run of adjacent channels. The tile gradient is then copied
# into grad_input's planes (each plane belongs to one tile and starts at zero).
CL_COL2IM_START = """// Adds the column gradients of the channels [c_begin, c_end), whose rows
// `columns` holds, to grad_im through the plan.
void compute_grad_input("""
CL_COL2IM_END = "// Output pixels per offset and mask gradient task"
CL_COL2IM = """template <typename scalar_t, typename index_t>
void deformable_col2im_cl(
    index_t lo,
    index_t n,
    index_t b,
    index_t g,
    const scalar_t* col,
    index_t col_ld,
    const int64_t* plan_idx,
    const unsigned char* plan_flags,
    const scalar_t* plan_mw,
    const Geometry<index_t> geo,
    index_t tc,
    scalar_t* acc) {
  const index_t width = geo.width, kk = geo.kk(), out_hw = geo.out_hw();
  const int64_t e0 = (int64_t(b) * geo.n_offset_grps + g) * kk * out_hw;
  const int64_t col_tc = col_ld / kk;
  scalar_t* img = acc + int64_t(b) * geo.height * width * tc + lo;
  for (index_t k = 0; k < kk; ++k) {
    for (index_t pix = 0; pix < out_hw; ++pix) {
      const int64_t e = e0 + int64_t(k) * out_hw + pix;
      const unsigned flags = plan_flags[e];
      if (!flags) {
        continue;
      }
      const scalar_t* mw = plan_mw + 4 * e;
      const scalar_t* cv =
          col + (int64_t(b) * out_hw + pix) * col_ld + k * col_tc + lo;
      scalar_t* gp = img + plan_idx[e] * tc;
      if (flags & 1) {
        const scalar_t w = mw[0];
        for (index_t j = 0; j < n; ++j) {
          gp[j] += w * cv[j];
        }
      }
      if (flags & 2) {
        const scalar_t w = mw[1];
        scalar_t* q = gp + tc;
        for (index_t j = 0; j < n; ++j) {
          q[j] += w * cv[j];
        }
      }
      if (flags & 4) {
        const scalar_t w = mw[2];
        scalar_t* q = gp + int64_t(width) * tc;
        for (index_t j = 0; j < n; ++j) {
          q[j] += w * cv[j];
        }
      }
      if (flags & 8) {
        const scalar_t w = mw[3];
        scalar_t* q = gp + int64_t(width + 1) * tc;
        for (index_t j = 0; j < n; ++j) {
          q[j] += w * cv[j];
        }
      }
    }
  }
}

constexpr int64_t kCol2imTileBytes = 256 << 10;

void compute_grad_input(
    const Geometry<int64_t>& geo,
    const Tensor& columns,
    int64_t c_begin,
    int64_t c_end,
    const Tensor& plan_idx,
    const Tensor& plan_flags,
    const Tensor& plan_mw,
    int64_t parallel_imgs,
    bool use_64bit,
    Tensor grad_im) {
  const int64_t height = geo.height, width = geo.width;
  const int64_t n_plan = plan_flags.numel();
  const int64_t tc = c_end - c_begin;
  if (n_plan == 0 || tc == 0 || parallel_imgs == 0) {
    return;
  }
  const Tensor acc =
      torch::stable::new_zeros(columns, {parallel_imgs, height, width, tc});
  const int64_t c_per_offset_grp = geo.channels / geo.n_offset_grps;
  const auto groups = offset_groups_of(c_begin, c_end, c_per_offset_grp);
  // Blocks of a multiple of 16 channels, split only as far as two tasks per
  // thread need: a task walks the whole plan of its image once.
  const int64_t per_block = parallel_imgs * groups.second;
  const int64_t splits = std::max<int64_t>(
      1, (2 * torch::stable::get_num_threads() + per_block - 1) / per_block);
  const int64_t span = std::min(c_per_offset_grp, tc);
  // At most kCol2imTileBytes of an image's tile gradient per task, which a
  // task's entries sweep once per tap: it stays in L2.
  const int64_t cache_channels = std::max<int64_t>(
      16,
      kCol2imTileBytes / (height * width * columns.element_size()) / 16 * 16);
  (void)cache_channels;
  const int64_t block_channels = std::max<int64_t>(
      kCol2imBlockChannels, ((span + splits - 1) / splits + 15) / 16 * 16);
  const int64_t blocks_per_grp = (span + block_channels - 1) / block_channels;
  const int64_t num_tasks = parallel_imgs * groups.second * blocks_per_grp;
  const int64_t col_ld = columns.stride(0);
  const int64_t plane = height * width;
  THO_DISPATCH_V2(
      columns.scalar_type(),
      "compute_grad_input",
      AT_WRAP([&] {
        dispatch_index_type(use_64bit, [&](auto index_tag) {
          using index_t = decltype(index_tag);
          const auto geo_i = geo.as<index_t>();
          const scalar_t* columns_ptr = columns.const_data_ptr<scalar_t>();
          scalar_t* acc_ptr = acc.mutable_data_ptr<scalar_t>();
          const int64_t* idx_ptr = plan_idx.const_data_ptr<int64_t>();
          const unsigned char* flags_ptr = plan_flags.const_data_ptr<uint8_t>();
          const scalar_t* mw_ptr = plan_mw.const_data_ptr<scalar_t>();
          torch::stable::parallel_for(
              0, num_tasks, 1, [&](int64_t begin, int64_t end) noexcept {
                for (int64_t task = begin; task < end; ++task) {
                  const int64_t b = task % parallel_imgs;
                  const int64_t block = task / parallel_imgs % blocks_per_grp;
                  const int64_t g =
                      groups.first + task / (parallel_imgs * blocks_per_grp);
                  const auto range =
                      group_channels(g, c_per_offset_grp, c_begin, c_end);
                  const int64_t lo = range.first + block * block_channels;
                  const int64_t hi = std::min(range.second, lo + block_channels);
                  if (lo >= hi) {
                    continue;
                  }
                  deformable_col2im_cl<scalar_t, index_t>(
                      lo - c_begin,
                      hi - lo,
                      b,
                      g,
                      columns_ptr,
                      col_ld,
                      idx_ptr,
                      flags_ptr,
                      mw_ptr,
                      geo_i,
                      tc,
                      acc_ptr);
                }
              });
          scalar_t* grad_ptr = grad_im.mutable_data_ptr<scalar_t>();
          const int64_t channels = geo.channels;
          torch::stable::parallel_for(
              0, parallel_imgs * height, 1, [&](int64_t begin, int64_t end) noexcept {
                for (int64_t r = begin; r < end; ++r) {
                  const int64_t b = r / height, y = r % height;
                  const scalar_t* src = acc_ptr + r * width * tc;
                  scalar_t* dst =
                      grad_ptr + (b * channels + c_begin) * plane + y * width;
                  for (int64_t c0 = 0; c0 < tc; c0 += 16) {
                    const int64_t c1 = std::min(tc, c0 + 16);
                    for (int64_t x = 0; x < width; ++x) {
                      for (int64_t c = c0; c < c1; ++c) {
                        dst[c * plane + x] = src[x * tc + c];
                      }
                    }
                  }
                }
              });
        });
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
}

"""


# Tiles of a multiple of 16 channels: MKL writes rows of 9 x 227 entries about 1.5x slower than
# rows of 9 x 224 (2026-12-01; gemm-layouts.py, output gemm-layouts.txt).
EDITS.append(("""      kBackwardTileBytes / std::max<int64_t>(channel_bytes, 1));
""", """      kBackwardTileBytes / std::max<int64_t>(channel_bytes, 1) / 16 * 16);
"""))


# `clr`: col2im by gradient rows instead (results/2026-12-01/col2im-rows.py's code, bucketed
# entries merged in (tap, pixel) order per row), with the copy-out above.
ROWS_COPY_OLD = """        torch::stable::parallel_for(
            0,
            parallel_imgs * tc,
            1,
            [&](int64_t begin, int64_t end) noexcept {
              for (int64_t task = begin; task < end; ++task) {
                const int64_t b = task / tc, c = task % tc;
                scalar_t* plane =
                    grad_ptr + (b * geo.channels + c_begin + c) * hw;
                const scalar_t* src = acc_ptr + b * hw * tc + c;
                for (int64_t p = 0; p < hw; ++p) {
                  plane[p] = src[p * tc];
                }
              }
            });"""
ROWS_COPY_NEW = """        const int64_t channels = geo.channels;
        torch::stable::parallel_for(
            0, parallel_imgs * height, 1, [&](int64_t begin, int64_t end) noexcept {
              for (int64_t r = begin; r < end; ++r) {
                const int64_t b = r / height, y = r % height;
                const scalar_t* src = acc_ptr + r * width * tc;
                scalar_t* dst =
                    grad_ptr + (b * channels + c_begin) * hw + y * width;
                for (int64_t c0 = 0; c0 < tc; c0 += 16) {
                  const int64_t c1 = std::min(tc, c0 + 16);
                  for (int64_t x = 0; x < width; ++x) {
                    for (int64_t c = c0; c < c1; ++c) {
                      dst[c * hw + x] = src[x * tc + c];
                    }
                  }
                }
              }
            });"""


PREFETCH_OLD = """      const int64_t* at = top ? t++ : u++;
"""
PREFETCH_NEW = """      const int64_t* at = top ? t++ : u++;
      // Prototype: the column runs of the entries 8 ahead in each bucket.
      for (const int64_t* ahead : {t + 8, u + 8}) {
        if (ahead < (ahead - u == 8 ? u_end : t_end)) {
          const scalar_t* next =
              cols + (b * out_hw * kk + colpos[ahead - order]) * tc + lo;
          for (int64_t c = 0; c < hi - lo; c += 64 / sizeof(scalar_t)) {
            __builtin_prefetch(next + c);
          }
        }
      }
"""


def rows_col2im(prefetch: bool = False) -> str:
    sys.path.insert(0, str(Path(__file__).parent.parent / "2026-12-01"))
    text = importlib.import_module("col2im-rows").NEW_COL2IM
    if text.count(ROWS_COPY_OLD) != 1:
        raise SystemExit("col2im-rows.py's copy-out is not as quoted")
    text = text.replace(ROWS_COPY_OLD, ROWS_COPY_NEW)
    if prefetch:
        if text.count(PREFETCH_OLD) != 1:
            raise SystemExit("col2im-rows.py's merge is not as quoted")
        text = text.replace(PREFETCH_OLD, PREFETCH_NEW)
    return text


COORD_PF_OLD = """      scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
"""
COORD_PF_NEW = """      if (p + 4 < n_pix) {
        // Prototype: the column run and the corner rows 4 entries ahead.
        const scalar_t* nc = cp + 4 * col_ld;
        const scalar_t* nq = img + plan_idx[e + 4] * tc;
        for (index_t c = 0; c < 2 * tc && c < n_c + tc; c += 64 / sizeof(scalar_t)) {
          __builtin_prefetch(nq + c);
          __builtin_prefetch(nq + padded_w * tc + c);
        }
        for (index_t c = 0; c < n_c; c += 64 / sizeof(scalar_t)) {
          __builtin_prefetch(nc + c, 1);
        }
      }
      scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
"""


def kernel(tip: str, col2im: str | None = None, prefetch: bool = False) -> str:
    src = tip
    for old, new in EDITS + [(HELPER_ANCHOR, HELPER + HELPER_ANCHOR), (OLD_TILE, NEW_TILE),
                             (OLD_ADDMM, NEW_ADDMM), (OLD_LOOP, NEW_LOOP), (OLD_RET, NEW_RET)]:
        if src.count(old) != 1:
            raise SystemExit(f"not quoted once in the tip: {old[:60]!r}")
        src = src.replace(old, new)
    a = src.index(CL_COL2IM_START)
    z = src.index(CL_COL2IM_END, a)
    src = src[:a] + (col2im or CL_COL2IM) + src[z:]
    a = src.index(COORD_START)
    z = src.index(COORD_END, a)
    coord = NEW_COORD
    if prefetch:
        if coord.count(COORD_PF_OLD) != 1:
            raise SystemExit("the pass is not as quoted")
        coord = coord.replace(COORD_PF_OLD, COORD_PF_NEW)
    src = src[:a] + coord + src[z:]
    if "#include <exception>" not in src:
        raise SystemExit("the tip lost <exception>")
    return src


# col2im's channels per task: a block's entries are adjacent, so a task reads whole runs of them.
BLOCKS = {"clb": "16", "clbA": "16", "clbB": "16", "clr": "16", "clr128": "16", "clr1": "16", "clrp": "16", "clr1p": "16", "clrpp": "16", "clrqpp": "16"}
# kBackwardTileBytes in MiB.
TILE_MIB = {"clr128": 128}
# Pixels per columns GEMM, and columns per weight-gradient GEMM.
CHUNKS = {"clb": 1024, "clbB": 512, "clr": 1024, "clr128": 1024, "clr1": 1024, "clrp": 1024, "clr1p": 1024, "clrpp": 1024, "clrqpp": 1024}
WBLOCKS = {"clb": 512, "clbB": 256, "clr": 512, "clr128": 512, "clr1": 512, "clrp": 512, "clr1p": 512, "clrpp": 512, "clrqpp": 512}


# `...q...`: GEMM partitions from the shape, about eight tasks each (chunks of 256-1024 pixels,
# weight blocks of 64-512 columns), instead of fixed sizes.
SHAPE_SPLIT = [
    ("  const int64_t chunks = (out_hw + kClChunk - 1) / kClChunk;\n",
     "  const int64_t chunk_px = std::clamp<int64_t>(\n      (n_imgs * out_hw / 8 + 15) / 16 * 16, 256, kClChunk);\n"
     "  const int64_t chunks = (out_hw + chunk_px - 1) / chunk_px;\n"),
    ("                const int64_t p0 = (t % chunks) * kClChunk;\n                const int64_t n = std::min(kClChunk, out_hw - p0);\n",
     "                const int64_t p0 = (t % chunks) * chunk_px;\n                const int64_t n = std::min(chunk_px, out_hw - p0);\n"),
    ("  const int64_t blocks = (n + kClWeightBlock - 1) / kClWeightBlock;\n",
     "  const int64_t wb =\n      std::clamp<int64_t>((n / 8 + 15) / 16 * 16, 64, kClWeightBlock);\n  const int64_t blocks = (n + wb - 1) / wb;\n"),
    ("            const int64_t w = std::min(kClWeightBlock, n - t * kClWeightBlock);\n",
     "            const int64_t w = std::min(wb, n - t * wb);\n"),
    ("                torch::stable::narrow(gw_t, 1, t * kClWeightBlock, w),\n",
     "                torch::stable::narrow(gw_t, 1, t * wb, w),\n"),
    ("                torch::stable::narrow(cols_t, 1, t * kClWeightBlock, w));\n",
     "                torch::stable::narrow(cols_t, 1, t * wb, w));\n"),
]


def shape_split(text: str) -> str:
    for old, new in SHAPE_SPLIT:
        if text.count(old) != 1:
            raise SystemExit(f"not quoted once: {old[:50]!r}")
        text = text.replace(old, new)
    return text


def build(names: str = "clb") -> None:
    if not (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).exists():
        standalone.stage(["patched"])
    tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    old = "constexpr int64_t kCol2imBlockChannels = 4;"
    dirs = [standalone.clone(standalone.ROOT / "patched", n, kernel(tip, rows_col2im(n.endswith("p")) if n.startswith("clr") else None, n.endswith("pp")).replace(
        "constexpr int64_t kBackwardTileBytes = int64_t(32) << 20;",
        f"constexpr int64_t kBackwardTileBytes = int64_t({TILE_MIB.get(n, 32)}) << 20;").replace(
        "      get_greatest_divisor_below_bound(batch_sz, kMaxParallelImgs);",
        "      get_greatest_divisor_below_bound(batch_sz, kMaxParallelImgs);" if not n.startswith("clr1") or n.startswith("clr128") else "      1;").replace(
        old, f"constexpr int64_t kCol2imBlockChannels = {BLOCKS[n]};").replace(
        "constexpr int64_t kClChunk = 256;", f"constexpr int64_t kClChunk = {CHUNKS.get(n, 256)};").replace(
        "constexpr int64_t kClWeightBlock = 128;", f"constexpr int64_t kClWeightBlock = {WBLOCKS.get(n, 128)};"),
        prototype=n) for n in names.split(",")]
    for d in dirs:
        if "q" in d.name:
            k = d / "cpu" / standalone.KERNEL.name
            k.write_text(shape_split(k.read_text()))
    print(standalone.build(dirs=dirs), flush=True)


def same(ref: str, names: str) -> None:
    """Every backward result of each variant in ``names`` against ``ref``, bit for bit: the check
    shapes and the verify ones, finite, Inf and NaN data, 1, 2 and 3 threads."""
    import torch

    ops = ci.load_ops([ref, *names.split(",")])
    shapes = [(1, 64, 64, 32, 1, 1, True, torch.float32), (2, 48, 32, 17, 2, 1, True, torch.float32),
              (3, 16, 8, 9, 4, 2, False, torch.float64), (5, 12, 6, 7, 3, 3, True, torch.float32),
              (40, 4, 5, 7, 1, 1, True, torch.float32), (2, 20, 8, 13, 1, 1, False, torch.float64),
              (8, 64, 64, 32, 1, 1, True, torch.float32), (1, 40, 6, 11, 1, 2, True, torch.float32),
              (2, 128, 16, 40, 1, 1, True, torch.float32), (1, 24, 8, 1, 1, 1, True, torch.float32)]
    bad = total = 0
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        for shape in shapes:
            for data in ("finite", "inf", "nan"):
                a = list(ci._args(*shape[:6], mask=shape[6], dtype=shape[7]))
                if data != "finite":
                    a[1] = a[1].clone()
                    a[1].view(-1)[:: 7] = float(data)
                r = ops[ref]._deform_conv2d_backward(*a)
                for n in names.split(","):
                    o = ops[n]._deform_conv2d_backward(*a)
                    total += 1
                    if not all(torch.equal(x.nan_to_num(1e30, 1e31, -1e31), y.nan_to_num(1e30, 1e31, -1e31))
                               and torch.equal(x.isnan(), y.isnan()) for x, y in zip(r, o)):
                        bad += 1
                        print("DIFFERS", n, threads, shape, data, flush=True)
    print(f"{bad} of {total} calls differ from {ref}", flush=True)


def verify(name: str = "clb") -> None:
    """Per result: does `name` match the tip, is it the same at 1-4 threads, and its error against
    the tip's own float64 result, next to the tip's float32 error (max |d| / max |ref|)."""
    import torch

    ops = ci.load_ops(["patched", name])
    names = ("grad_input", "grad_weight", "grad_offset", "grad_mask", "grad_bias")
    shapes = [(1, 64, 64, 32, 1, 1, True), (2, 48, 32, 17, 2, 1, True), (3, 16, 8, 9, 4, 2, False),
              (5, 12, 6, 7, 3, 3, True), (40, 4, 5, 7, 1, 1, True), (2, 20, 8, 13, 1, 1, False),
              (8, 64, 64, 32, 1, 1, True), (1, 40, 6, 11, 1, 2, True)]
    for shape in shapes:
        a = ci._args(*shape[:6], mask=shape[6])
        a64 = [t.double() if torch.is_tensor(t) else t for t in a]
        torch.set_num_threads(1)
        ref = ops["patched"]._deform_conv2d_backward(*a64)
        tip = ops["patched"]._deform_conv2d_backward(*a)
        outs = []
        for th in (1, 2, 3, 4):
            torch.set_num_threads(th)
            outs.append(ops[name]._deform_conv2d_backward(*a))
        varies = sorted({names[i] for o in outs[1:] for i, (x, y) in enumerate(zip(outs[0], o))
                         if not torch.equal(x, y)})
        invariant = not varies
        line = []
        for i, n in enumerate(names):
            scale = ref[i].abs().max().item() or 1.0
            e_tip = (tip[i].double() - ref[i]).abs().max().item() / scale
            e_new = (outs[0][i].double() - ref[i]).abs().max().item() / scale
            same = torch.equal(tip[i], outs[0][i])
            line.append(f"{n} {'same' if same else f'{e_tip:.1e}->{e_new:.1e}'}")
        print(shape, "thread-invariant" if invariant else f"VARIES WITH THREADS: {varies}", "; ".join(line), flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "build":
        build(*sys.argv[2:])
    elif cmd == "check":
        ci.check(*(sys.argv[2:] or ["clb"]))
    elif cmd == "same":
        same(*sys.argv[2:])
    elif cmd == "verify":
        verify(*sys.argv[2:])
    elif cmd == "ab":
        ci.ab(*sys.argv[2:])
