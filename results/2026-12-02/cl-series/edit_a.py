"""Patch A of the channels-last backward: edits the kernel file in place (the worktree's)."""
import sys
from pathlib import Path

path = Path(sys.argv[1])
src = path.read_text()


def sub(old: str, new: str) -> None:
    global src
    if src.count(old) != 1:
        raise SystemExit(f"not quoted once: {old[:70]!r}")
    src = src.replace(old, new)


def region(start: str, end: str, new: str) -> None:
    """Replaces [start, end) -- end excluded -- with new."""
    global src
    a = src.index(start)
    z = src.index(end, a)
    src = src[:a] + new + src[z:]


# 1. col2im: from the channels-last columns into a channels-last tile gradient.
region("// Accumulates the column gradients of the channels [c, c + n_channels) of image",
       "// The input gradient's plan of a block of images",
       """// Accumulates the column gradients of the channels [lo, lo + n) of the tile,
// all of offset group g, of image b into `acc`, the tile's input gradient
// channels last (images, height, width, tile channels). `col` holds the tile's
// columns channels last: row (image, pixel) of col_ld entries in (tap,
// channel) order. The entries are taken in (tap, pixel) order, so each element
// gets its shares in the serial loop's order; a corner's share is a run of
// adjacent channels.
template <typename scalar_t, typename index_t>
void deformable_col2im_tile(
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
    index_t tile_channels,
    scalar_t* acc) {
  const index_t width = geo.width, kk = geo.kk(), out_hw = geo.out_hw();
  const index_t tc = tile_channels;
  const int64_t e0 = (int64_t(b) * geo.n_offset_grps + g) * kk * out_hw;
  scalar_t* img = acc + int64_t(b) * geo.height * width * tc + lo;
  // The offsets of the four corners from the floor one.
  const int64_t corner[4] = {0, tc, int64_t(width) * tc, int64_t(width + 1) * tc};
  for (index_t k = 0; k < kk; ++k) {
    for (index_t pix = 0; pix < out_hw; ++pix) {
      const int64_t e = e0 + int64_t(k) * out_hw + pix;
      const unsigned flags = plan_flags[e];
      if (!flags) {
        continue;
      }
      const scalar_t* mw = plan_mw + 4 * e;
      const scalar_t* cv =
          col + (int64_t(b) * out_hw + pix) * col_ld + k * (col_ld / kk) + lo;
      scalar_t* gp = img + plan_idx[e] * tc;
      for (int q = 0; q < 4; ++q) {
        if (flags & (1u << q)) {
          const scalar_t w = mw[q];
          scalar_t* a = gp + corner[q];
          for (index_t j = 0; j < n; ++j) {
            a[j] += w * cv[j];
          }
        }
      }
    }
  }
}

// Tasks per thread for col2im: a task is one image and block of channels, and
// walks the image's whole plan.
constexpr int64_t kCol2imTasksPerThread = 2;

// Channels per col2im block, at least: the blocks are multiples of it, so that
// a task's runs of channels stay long.
constexpr int64_t kCol2imBlockChannels = 16;

""")

region("// Adds the column gradients of the channels [c_begin, c_end), whose rows\n// `columns` holds, to grad_im through the plan.\nvoid compute_grad_input(",
       "// Output pixels per offset and mask gradient task",
       """// Adds the column gradients of the channels [c_begin, c_end), which `columns`
// holds channels last, to grad_im through the plan: into a channels-last tile
// gradient, then copied into the channels' planes, which no other tile
// touches and which start at zero.
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
  // Blocks of a multiple of kCol2imBlockChannels channels of one offset group,
  // split only as far as the threads need: which task adds a channel's shares
  // does not change them.
  const int64_t c_per_offset_grp = geo.channels / geo.n_offset_grps;
  const auto groups = offset_groups_of(c_begin, c_end, c_per_offset_grp);
  const int64_t per_split = parallel_imgs * groups.second;
  const int64_t splits = std::max<int64_t>(
      1,
      (kCol2imTasksPerThread * torch::stable::get_num_threads() + per_split -
       1) /
          per_split);
  const int64_t span = std::min(c_per_offset_grp, tc);
  const int64_t block = (((span + splits - 1) / splits + kCol2imBlockChannels -
                          1) /
                         kCol2imBlockChannels) *
      kCol2imBlockChannels;
  const int64_t blocks_per_grp = (span + block - 1) / block;
  const int64_t num_tasks = per_split * blocks_per_grp;
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
                  const int64_t blk = task / parallel_imgs % blocks_per_grp;
                  const int64_t g =
                      groups.first + task / (parallel_imgs * blocks_per_grp);
                  const auto range =
                      group_channels(g, c_per_offset_grp, c_begin, c_end);
                  const int64_t lo = range.first + blk * block;
                  const int64_t hi = std::min(range.second, lo + block);
                  if (lo >= hi) {
                    continue;
                  }
                  deformable_col2im_tile<scalar_t, index_t>(
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
          // Each row of the tile gradient into its channels' planes, a run of
          // channels at a time.
          scalar_t* grad_ptr = grad_im.mutable_data_ptr<scalar_t>();
          const int64_t channels = geo.channels;
          torch::stable::parallel_for(
              0,
              parallel_imgs * height,
              1,
              [&](int64_t begin, int64_t end) noexcept {
                for (int64_t r = begin; r < end; ++r) {
                  const int64_t b = r / height, y = r % height;
                  const scalar_t* src = acc_ptr + r * width * tc;
                  scalar_t* dst =
                      grad_ptr + (b * channels + c_begin) * plane + y * width;
                  for (int64_t c0 = 0; c0 < tc; c0 += kCol2imBlockChannels) {
                    const int64_t c1 = std::min(tc, c0 + kCol2imBlockChannels);
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

""")

# 2. The offset/mask pass: channels last.
sub("""// Channels per read of an offset and mask gradient entry's plan and sums.
constexpr int64_t kCoordBlockChannels = 8;

""", "")
sub("""// input reads the zero block with dx = dy = 0. Each entry of `col`, once read,
// is replaced by m times the bilinear sample: the im2col columns of the weight
// gradient.""", """// input reads the zero block with dx = dy = 0. `padded` holds the tile's
// channels last, `col` its columns: row (image, pixel) of col_ld entries in
// (tap, channel) order. Each entry of `col`, once read, is replaced by m times
// the bilinear sample: the im2col columns of the weight gradient.""")
region("  // A block of channels per read of the plan;",
       "\n  for (index_t k = 0; k < kk; ++k) {\n    scalar_t* go_y =\n",
       """  // One entry at a time, its run of the group's channels inside; each sum
  // still adds them in increasing order.
  const index_t tc = tile_channels;
  const index_t n_c = c_hi - c_lo;
  const scalar_t* img = padded + b * padded_plane * tc + (c_lo - c_begin);
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
""")
sub("""  // The planes of the channels [c_begin, c_end), whose rows `columns` holds.
  const Tensor padded = padded_copy(input, c_begin, c_end, false);
""", """  // The channels [c_begin, c_end), whose columns `columns` holds, channels
  // last.
  const Tensor padded = padded_copy(input, c_begin, c_end, true);
""")
sub("""// planar, or channels last for the forward's vectorized gather.""",
    """// planar, or channels last for the vectorized gathers.""")

# 3. Tiles of a multiple of 16 channels.
sub("""// The backward's column buffer holds a tile of channels: as many as fit in
// kBackwardTileBytes, at least kBackwardTileMinChannels (or a weight group's),
// so its size is bounded (it was 1.2 GB for 32 images of 256 channels of
// 64x64). Columns that fit are not split.""", """// The backward's column buffer holds a tile of channels: as many as fit in
// kBackwardTileBytes, in multiples of 16 (a GEMM writing rows of 9 x 227
// entries ran 1.4x slower than one writing rows of 9 x 224), at least
// kBackwardTileMinChannels (or a weight group's), so its size is bounded (it
// was 1.2 GB for 32 images of 256 channels of 64x64). Columns that fit are not
// split.""")
sub("""      kBackwardTileBytes / std::max<int64_t>(channel_bytes, 1));""",
    """      kBackwardTileBytes / std::max<int64_t>(channel_bytes, 1) / 16 * 16);""")

# 4. The columns and the weight gradient: GEMMs of one task each, inside the region.
sub("""// t (batch, ...) as blocks of n images: (batch / n, n, ...).""", """// The backward's GEMMs run a task at a time inside a parallel region, each on
// one thread: about kGemmTasks tasks of at least kGemmMinRows and at most
// kGemmMaxRows rows (or columns, for grad_weight), in multiples of 16. The
// split depends on the shape only, so the result does not depend on the thread
// count.
constexpr int64_t kGemmTasks = 8;
constexpr int64_t kGemmMinRows = 256;
constexpr int64_t kGemmMaxRows = 1024;
constexpr int64_t kGemmMinCols = 64;
constexpr int64_t kGemmMaxCols = 512;

int64_t gemm_split(int64_t n, int64_t lo, int64_t hi) {
  return std::clamp<int64_t>((n / kGemmTasks + 15) / 16 * 16, lo, hi);
}

// c = beta * c + a * b, a m x k (a[i][l] at a[i * a_row + l * a_col]), b k x n
// (rows of b_row), c m x n (rows of c_row), on this thread: addmm_ on views or,
// with one row or one column, a plain loop in order (BLAS's matrix-vector path
// rounds differently inside and outside a parallel region). Returns false if
// the GEMM failed. Nothing may throw across parallel_for.
template <typename scalar_t>
bool task_gemm(
    scalar_t* c,
    int64_t m,
    int64_t n,
    int64_t c_row,
    const scalar_t* a,
    int64_t k,
    int64_t a_row,
    int64_t a_col,
    const scalar_t* b,
    int64_t b_row,
    double beta,
    torch::stable::Device device,
    torch::headeronly::ScalarType dtype) noexcept {
  if (m == 1 || n == 1) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        scalar_t acc = 0;
        for (int64_t l = 0; l < k; ++l) {
          acc += a[i * a_row + l * a_col] * b[l * b_row + j];
        }
        scalar_t* out = c + i * c_row + j;
        *out = beta == 0 ? acc : *out + acc;
      }
    }
    return true;
  }
  try {
    Tensor c_t =
        torch::stable::from_blob(c, {m, n}, {c_row, 1}, device, dtype);
    Tensor a_t = torch::stable::from_blob(
        const_cast<scalar_t*>(a), {m, k}, {a_row, a_col}, device, dtype);
    Tensor b_t = torch::stable::from_blob(
        const_cast<scalar_t*>(b), {k, n}, {b_row, 1}, device, dtype);
    stable_helpers::addmm_(c_t, a_t, b_t, beta);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// A channel tile's columns, channels last: row (image, pixel) of `cols` holds
// the tile's entries in (tap, channel) order, grad_out_g^T w_tile, with
// grad_out_g (images, out channels, pixels) and w_tile the tile's weight
// columns in that order. A task is a chunk of one image's pixels.
void tile_columns(
    const Tensor& grad_out_g,
    const Tensor& w_tile,
    const Tensor& cols) {
  const int64_t n_imgs = grad_out_g.size(0), o_g = grad_out_g.size(1);
  const int64_t out_hw = grad_out_g.size(2), ld = cols.size(1);
  const int64_t chunk = gemm_split(n_imgs * out_hw, kGemmMinRows, kGemmMaxRows);
  const int64_t chunks = (out_hw + chunk - 1) / chunk;
  const int64_t n_tasks = n_imgs * chunks;
  // At least two workers when there are threads, so that every GEMM runs
  // inside the region.
  const int64_t n_workers = std::max(
      n_tasks, std::min<int64_t>(torch::stable::get_num_threads(), 2));
  const int64_t img_stride = grad_out_g.stride(0);
  const int64_t channel_stride = grad_out_g.stride(1);
  const auto device = cols.device();
  const auto dtype = cols.scalar_type();
  std::atomic<bool> failed{false};
  THO_DISPATCH_V2(
      dtype,
      "tile_columns",
      AT_WRAP([&] {
        const scalar_t* go = grad_out_g.const_data_ptr<scalar_t>();
        const scalar_t* w = w_tile.const_data_ptr<scalar_t>();
        scalar_t* out = cols.mutable_data_ptr<scalar_t>();
        torch::stable::parallel_for(
            0, n_workers, 1, [&](int64_t begin, int64_t end) noexcept {
              for (int64_t t = begin; t < std::min(end, n_tasks); ++t) {
                const int64_t b = t / chunks, p0 = t % chunks * chunk;
                const int64_t n = std::min(chunk, out_hw - p0);
                if (!task_gemm<scalar_t>(
                        out + (b * out_hw + p0) * ld,
                        n,
                        ld,
                        ld,
                        go + b * img_stride + p0,
                        o_g,
                        1,
                        channel_stride,
                        w,
                        ld,
                        0.0,
                        device,
                        dtype)) {
                  failed = true;
                }
              }
            });
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
  STD_TORCH_CHECK(!failed, "deform_conv2d: a GEMM of the backward failed");
}

// grad_w (out channels, tile entries) += grad_out_g (out channels, pixels) cols
// (pixels, tile entries): a task is a block of columns.
void tile_weight_grad(
    const Tensor& grad_w,
    const Tensor& grad_out_g,
    const Tensor& cols) {
  const int64_t o_g = grad_w.size(0), n = grad_w.size(1);
  const int64_t k = cols.size(0);
  const int64_t block = gemm_split(n, kGemmMinCols, kGemmMaxCols);
  const int64_t n_tasks = (n + block - 1) / block;
  const int64_t n_workers = std::max(
      n_tasks, std::min<int64_t>(torch::stable::get_num_threads(), 2));
  const int64_t gw_row = grad_w.stride(0), go_row = grad_out_g.stride(0);
  const int64_t ld = cols.stride(0);
  const auto device = cols.device();
  const auto dtype = cols.scalar_type();
  std::atomic<bool> failed{false};
  THO_DISPATCH_V2(
      dtype,
      "tile_weight_grad",
      AT_WRAP([&] {
        scalar_t* gw = grad_w.mutable_data_ptr<scalar_t>();
        const scalar_t* go = grad_out_g.const_data_ptr<scalar_t>();
        const scalar_t* c = cols.const_data_ptr<scalar_t>();
        torch::stable::parallel_for(
            0, n_workers, 1, [&](int64_t begin, int64_t end) noexcept {
              for (int64_t t = begin; t < std::min(end, n_tasks); ++t) {
                const int64_t j0 = t * block;
                if (!task_gemm<scalar_t>(
                        gw + j0,
                        o_g,
                        std::min(block, n - j0),
                        gw_row,
                        go,
                        k,
                        go_row,
                        1,
                        c + j0,
                        ld,
                        1.0,
                        device,
                        dtype)) {
                  failed = true;
                }
              }
            });
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
  STD_TORCH_CHECK(!failed, "deform_conv2d: a GEMM of the backward failed");
}

// dst (rows, channels * kk) = src (rows, kk * channels) with each row's
// entries from (tap, channel) order into (channel, tap) order.
void tap_major_to_channel_major(const Tensor& src, Tensor dst, int64_t kk) {
  const int64_t rows = dst.size(0), channels = dst.size(1) / kk;
  THO_DISPATCH_V2(
      dst.scalar_type(),
      "tap_major_to_channel_major",
      AT_WRAP([&] {
        const scalar_t* s = src.const_data_ptr<scalar_t>();
        scalar_t* d = dst.mutable_data_ptr<scalar_t>();
        const int64_t s_row = src.stride(0);
        const int64_t d_row = dst.stride(0);
        for (int64_t i = 0; i < rows; ++i) {
          for (int64_t c = 0; c < channels; ++c) {
            for (int64_t k = 0; k < kk; ++k) {
              d[i * d_row + c * kk + k] = s[i * s_row + k * channels + c];
            }
          }
        }
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
}

// t (batch, ...) as blocks of n images: (batch / n, n, ...).""")

sub("""  // (blocks, groups, out channels per group, images, out_h, out_w), for the
  // weight gradient.""", """  // (blocks, groups, out channels per group, images, out_h, out_w), for the
  // weight gradient.""")

sub("""  const int64_t c_per_weight_grp = n_in_channels / n_weight_grps;
  const int64_t tile_channels = columns.size(0) / kk;
  // A buffer of every channel's columns holds each tile at its own rows.
  const bool whole = tile_channels == n_in_channels;
""", """  const int64_t c_per_weight_grp = n_in_channels / n_weight_grps;
  const int64_t tile_channels = columns.size(1) / kk;
  const int64_t col_rows = columns.size(0);
  // The weight gradient of each tile in the columns' (tap, channel) order,
  // put in place at the end.
  const Tensor grad_weight_tiles =
      torch::stable::new_zeros(grad_weight_grps, grad_weight_grps.sizes());
""")

sub("""      // (out channels per group, images * pixels)
      const Tensor grad_out_g = torch::stable::reshape(
          torch::stable::transpose(
              torch::stable::select(grad_out_elt, 1, g), 0, 1),
          {n_out_channels / n_weight_grps, n_parallel_imgs * out_hw});
      Tensor weight_g = torch::stable::select(weight, 0, g);
      Tensor grad_weight_g = torch::stable::select(grad_weight_grps, 0, g);
""", """      // (images, out channels per group, pixels)
      const Tensor grad_out_g = torch::stable::select(grad_out_elt, 1, g);
      Tensor weight_g = torch::stable::select(weight, 0, g);
      Tensor grad_weight_g = torch::stable::select(grad_weight_tiles, 0, g);
""")

sub("""        Tensor columns_tile = torch::stable::narrow(
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
""", """        const int64_t n_entries = (c1 - c0) * kk;
        // The tile's weight columns in (tap, channel) order.
        const Tensor w_tile = torch::stable::reshape(
            torch::stable::contiguous(torch::stable::transpose(
                torch::stable::reshape(
                    torch::stable::narrow(
                        weight_g,
                        1,
                        (c0 - g * c_per_weight_grp) * kk,
                        n_entries),
                    {weight_g.size(0), c1 - c0, kk}),
                1,
                2)),
            {weight_g.size(0), n_entries});
        // The front of the buffer, as rows of the tile's entries; every
        // element is written.
        const Tensor columns_tile = torch::stable::from_blob(
            columns.mutable_data_ptr(),
            {col_rows, n_entries},
            {n_entries, 1},
            columns.device(),
            columns.scalar_type());
        tile_columns(grad_out_g, w_tile, columns_tile);
""")

sub("""        stable_helpers::addmm_(
            torch::stable::narrow(
                grad_weight_g,
                1,
                (c0 - g * c_per_weight_grp) * kk,
                (c1 - c0) * kk),
            grad_out_buf_g,
            torch::stable::transpose(columns_tile, 1, 0));
      }
    }
  }
  return std::make_tuple(grad_input, grad_weight, grad_offset, grad_mask);""", """        tile_weight_grad(
            torch::stable::narrow(
                grad_weight_g, 1, (c0 - g * c_per_weight_grp) * kk, n_entries),
            grad_out_buf_g,
            columns_tile);
      }
    }
  }
  for (int64_t g = 0; g < n_weight_grps; g++) {
    Tensor tiles_g = torch::stable::select(grad_weight_tiles, 0, g);
    Tensor grad_weight_g = torch::stable::select(grad_weight_grps, 0, g);
    for (int64_t c0 = 0; c0 < c_per_weight_grp; c0 += tile_channels) {
      const int64_t n_entries =
          (std::min(c0 + tile_channels, c_per_weight_grp) - c0) * kk;
      tap_major_to_channel_major(
          torch::stable::narrow(tiles_g, 1, c0 * kk, n_entries),
          torch::stable::narrow(grad_weight_g, 1, c0 * kk, n_entries),
          kk);
    }
  }
  return std::make_tuple(grad_input, grad_weight, grad_offset, grad_mask);""")

# 5. The buffer: rows (image, pixel) of a tile's entries.
region("  // One column buffer (a fresh one is faulted in page by page): each tile's",
       "\n  auto [grad_input, grad_weight, grad_offset, grad_mask] = backward_gradients(",
       """  // One column buffer (a fresh one is faulted in page by page): each tile's
  // GEMMs write its front, and the offset/mask pass replaces it by its im2col.
  const int64_t kk = weight_c.size(2) * weight_c.size(3);
  const int64_t col_rows = std::min(batch_sz, n_parallel_imgs) *
      grad_out_c.size(2) * grad_out_c.size(3);
  const int64_t channel_bytes = kk * col_rows * input_c.element_size();
  const int64_t buffer_channels =
      input_c.size(1) * channel_bytes <= kBackwardTileBytes
      ? input_c.size(1)
      : backward_tile_channels(input_c.size(1) / n_weight_grps, channel_bytes);
  const Tensor columns =
      torch::stable::new_empty(input_c, {col_rows, buffer_channels * kk});
""")

path.write_text(src)
print("ok")
