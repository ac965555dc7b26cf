"""Issue 24, a prototype, not a patch: the backward's columns channels last, col2im by gradient rows.

`col2im-layouts.cpp` measured, alone, a col2im that keeps the planar loop's bits with channels-last
columns: each image's plan entries are bucketed by their floor row (a stable counting sort), and
gradient row y takes the top corners of bucket y and the bottom corners of bucket y - 1, merged in
(tap, pixel) order. This stages the tip's kernel with that change, as the standalone variant
`proto_rows`:

- the columns of a channel tile are a GEMM grad_out^T W' into (image, pixel, tap, channel), W' the
  tile's weight columns in (tap, channel) order: each element is the dot product it was (with this
  torch's MKL the same bits, results/2026-12-01/gemm-layout-bits.json);
- the offset and mask pass reads them there, and the tile's input channels last, one (tap, pixel)
  at a time with the channels inside, each sum still over the channels in increasing order;
- col2im accumulates rows of a channels-last tile gradient (tasks: image rows), then copies it
  into grad_input's planes (each channel's planes belong to one tile, and start at zero).

  .venv/bin/python results/2026-12-01/col2im-rows.py build   # stage and compile patched + proto_rows
  .venv/bin/python results/2026-12-01/col2im-rows.py check   # bits against the tip, 1 and 2 threads
  .venv/bin/python results/2026-12-01/col2im-rows.py parts   # stage copies with passes skipped (timing only)
  .venv/bin/python results/2026-12-01/col2im-rows.py ab patched,proto_rows,tip_rest,rows_rest 1
      # backward calls alternated in one process, the best of 10-12 per kernel, at 1 thread
  .venv/bin/python -m tvdcn.bench --variants sa:patched,sa:proto_rows --mode train ...
"""
import sys

sys.path.insert(0, "/work/main")
from tvdcn import standalone  # noqa: E402

EDITS = []  # (old, new): each old text must occur exactly once in the tip's kernel file

# 1. The offset and mask pass reads channels-last columns and a channels-last padded input, one
#    (tap, pixel) at a time with the channels inside: each entry's sums still run over the channels
#    in increasing order, term by term as before.
# The tip's channel loop, from its first line to the loop that stores the sums (not quoted whole).
COORD_START = "  const index_t col_stride = batch_sz * out_hw;\n"
COORD_END = "\n  for (index_t k = 0; k < kk; ++k) {\n    scalar_t* go_y =\n"
NEW_COORD = """  (void)batch_sz;
  const index_t tc = tile_channels;
  const scalar_t* img = padded + b * padded_plane * tc - c_begin;
  for (index_t k = 0; k < kk; ++k) {
    for (index_t p = 0; p < n_pix; ++p) {
      const index_t e = k * n_pix + p;
      const scalar_t* q1 = img + plan_idx[e] * tc;
      const scalar_t* q2 = q1 + tc;
      const scalar_t* q3 = q1 + padded_w * tc;
      const scalar_t* q4 = q3 + tc;
      const scalar_t* col_run =
          col + ((b * out_hw + pix_begin + p) * kk + k) * tc - c_begin;
      const scalar_t m = pm[e];
      const scalar_t dx = pdx[e], omx = pomx[e], dy = pdy[e], omy = pomy[e];
      const bool inside = plan_inside[e];
      const scalar_t a1 = w1[e], a2 = w2[e], a3 = w3[e], a4 = w4[e];
      scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
      for (index_t c = c_lo; c < c_hi; ++c) {
        const scalar_t v1 = q1[c], v2 = q2[c], v3 = q3[c], v4 = q4[c];
        const scalar_t cv = col_run[c];
        const scalar_t wy = dx * (v4 - v2) + omx * (v3 - v1);
        sy += m * wy * cv;
        const scalar_t wx = dy * (v4 - v3) + omy * (v2 - v1);
        sx += m * wx * cv;
        if (use_mask) {
          const scalar_t val =
              inside ? (a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4) : scalar_t(0);
          sm += cv * val;
        }
      }
      gy[e] = sy;
      gx[e] = sx;
      gm[e] = sm;
    }
  }
"""
EDITS.append(("""  // The planes of the channels [c_begin, c_end), whose rows `columns` holds.
  const Tensor padded = padded_copy(input, c_begin, c_end, false);
""", """  // The channels [c_begin, c_end), whose columns `columns` holds, channels last.
  const Tensor padded = padded_copy(input, c_begin, c_end, true);
"""))

# 2. col2im by gradient rows, from bucketed plan entries.
COL2IM_START = """// Adds the column gradients of the channels [c_begin, c_end), whose rows
// `columns` holds, to grad_im through the plan.
void compute_grad_input("""
COL2IM_END = """// Output pixels per offset and mask gradient task"""
NEW_COL2IM = """// Row y of image b of the tile's channels-last gradient `acc` (images, height,
// width, tile channels): the top corners of the entries whose floor row is y
// and the bottom corners of those whose floor row is y - 1, merged in entry
// order, which is the planar loop's (tap, pixel) order. `order` lists each
// (image, offset group)'s entries bucketed by floor row; bucket r (row r - 1)
// is order[starts[r] .. starts[r + 1]).
template <typename scalar_t>
void deformable_col2im_row(
    const Geometry<int64_t>& geo,
    int64_t b,
    int64_t y,
    int64_t c_begin,
    int64_t c_end,
    const scalar_t* cols,
    const int64_t* plan_idx,
    const int64_t* plan_row,
    const unsigned char* plan_flags,
    const scalar_t* plan_mw,
    const int64_t* order,
    const int64_t* colpos,
    const int64_t* starts,
    scalar_t* acc) {
  const int64_t height = geo.height, width = geo.width;
  const int64_t kk = geo.kk(), out_hw = geo.out_hw();
  const int64_t n_groups = geo.n_offset_grps;
  const int64_t cpg = geo.channels / n_groups;
  const int64_t tc = c_end - c_begin;
  scalar_t* row_acc = acc + (b * height + y) * width * tc;
  for (int64_t g = c_begin / cpg; g * cpg < c_end; ++g) {
    const int64_t lo = std::max(c_begin, g * cpg) - c_begin;
    const int64_t hi = std::min(c_end, (g + 1) * cpg) - c_begin;
    const int64_t* s = starts + (b * n_groups + g) * (height + 2);
    const int64_t* t = order + s[y + 1];
    const int64_t* t_end = order + s[y + 2];
    const int64_t* u = order + s[y];
    const int64_t* u_end = order + s[y + 1];
    while (t != t_end || u != u_end) {
      const bool top = u == u_end || (t != t_end && *t < *u);
      const int64_t* at = top ? t++ : u++;
      const int64_t e = *at;
      const scalar_t* col =
          cols + (b * out_hw * kk + colpos[at - order]) * tc;
      const unsigned flags = plan_flags[e];
      const scalar_t* mw = plan_mw + 4 * e;
      const int64_t x = plan_idx[e] - plan_row[e] * width;
      const int q0 = top ? 0 : 2;
      for (int q = q0; q < q0 + 2; ++q) {
        if (!(flags & (1u << q))) {
          continue;
        }
        scalar_t* a = row_acc + (x + (q - q0)) * tc;
        const scalar_t m = mw[q];
        for (int64_t c = lo; c < hi; ++c) {
          a[c] += m * col[c];
        }
      }
    }
  }
}

// Adds the column gradients of the channels [c_begin, c_end), which `columns`
// holds channels last, to grad_im through the plan.
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
  (void)use_64bit;
  const int64_t height = geo.height, width = geo.width;
  const int64_t n_plan = plan_flags.numel();
  const int64_t tc = c_end - c_begin;
  if (n_plan == 0 || tc * parallel_imgs == 0) {
    return;
  }
  const int64_t n_bg = parallel_imgs * geo.n_offset_grps;
  const int64_t per_bg = geo.kk() * geo.out_hw();
  const Tensor order = torch::stable::new_empty(
      plan_idx, {n_plan}, torch::headeronly::ScalarType::Long);
  const Tensor colpos = torch::stable::new_empty(
      plan_idx, {n_plan}, torch::headeronly::ScalarType::Long);
  const Tensor starts = torch::stable::new_empty(
      plan_idx, {n_bg * (height + 2)}, torch::headeronly::ScalarType::Long);
  const Tensor acc =
      torch::stable::new_zeros(columns, {parallel_imgs, height, width, tc});
  const int64_t* idx_ptr = plan_idx.const_data_ptr<int64_t>();
  const int64_t* row_ptr = idx_ptr + n_plan;
  const unsigned char* flags_ptr = plan_flags.const_data_ptr<uint8_t>();
  int64_t* order_ptr = order.mutable_data_ptr<int64_t>();
  int64_t* colpos_ptr = colpos.mutable_data_ptr<int64_t>();
  const int64_t kk = geo.kk(), out_hw = geo.out_hw();
  int64_t* starts_ptr = starts.mutable_data_ptr<int64_t>();
  std::atomic<bool> out_of_memory{false};
  torch::stable::parallel_for(
      0, n_bg, 1, [&](int64_t begin, int64_t end) noexcept {
        const auto next = scratch<int64_t>(height + 2, out_of_memory);
        if (!next) {
          return;
        }
        for (int64_t bg = begin; bg < end; ++bg) {
          int64_t* s = starts_ptr + bg * (height + 2);
          std::fill(s, s + height + 2, int64_t(0));
          const int64_t e0 = bg * per_bg;
          for (int64_t e = e0; e < e0 + per_bg; ++e) {
            if (flags_ptr[e]) {
              ++s[row_ptr[e] + 2];
            }
          }
          s[0] = e0;
          for (int64_t r = 1; r < height + 2; ++r) {
            s[r] += s[r - 1];
          }
          // s[r] now counts from e0 the entries of rows below r - 1; s[r + 1]
          // ends bucket r. Rows run from -1, bucket 0.
          std::copy(s, s + height + 2, next.get());
          int64_t e = e0;
          for (int64_t k = 0; k < kk; ++k) {
            for (int64_t pix = 0; pix < out_hw; ++pix, ++e) {
              if (flags_ptr[e]) {
                const int64_t at = next[row_ptr[e] + 1]++;
                order_ptr[at] = e;
                colpos_ptr[at] = pix * kk + k;
              }
            }
          }
        }
      });
  STD_TORCH_CHECK(
      !out_of_memory, "deform_conv2d: out of memory sorting col2im's plan");
  THO_DISPATCH_V2(
      columns.scalar_type(),
      "compute_grad_input",
      AT_WRAP([&] {
        const scalar_t* cols = columns.const_data_ptr<scalar_t>();
        const scalar_t* mw_ptr = plan_mw.const_data_ptr<scalar_t>();
        scalar_t* acc_ptr = acc.mutable_data_ptr<scalar_t>();
        torch::stable::parallel_for(
            0,
            parallel_imgs * height,
            1,
            [&](int64_t begin, int64_t end) noexcept {
              for (int64_t task = begin; task < end; ++task) {
                deformable_col2im_row<scalar_t>(
                    geo,
                    task / height,
                    task % height,
                    c_begin,
                    c_end,
                    cols,
                    idx_ptr,
                    row_ptr,
                    flags_ptr,
                    mw_ptr,
                    order_ptr,
                    colpos_ptr,
                    starts_ptr,
                    acc_ptr);
              }
            });
        scalar_t* grad_ptr = grad_im.mutable_data_ptr<scalar_t>();
        const int64_t hw = height * width;
        torch::stable::parallel_for(
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
            });
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
}

"""

# 3. The tile's columns channels last: grad_out^T times the tile's weight in (tap, channel) order.
EDITS.append(("""        const Tensor columns_tile = torch::stable::narrow(
            columns, 0, whole ? c0 * kk : 0, (c1 - c0) * kk);
        // mm_out writes every element of the tile.
        stable_helpers::mm_out(
            columns_tile,
            torch::stable::transpose(
                torch::stable::narrow(
                    weight_g,
                    1,
                    (c0 - g * c_per_weight_grp) * kk,
                    (c1 - c0) * kk),
                0,
                1),
            grad_out_g);
""", """        const Tensor columns_tile = torch::stable::reshape(
            torch::stable::narrow(
                columns, 0, whole ? c0 * kk : 0, (c1 - c0) * kk),
            {n_parallel_imgs * out_hw, (c1 - c0) * kk});
        // The tile's weight columns in (tap, channel) order.
        const int64_t out_g = n_out_channels / n_weight_grps;
        const Tensor weight_t =
            torch::stable::new_empty(weight_g, {out_g, (c1 - c0) * kk});
        THO_DISPATCH_V2(
            weight_g.scalar_type(),
            "weight_t",
            AT_WRAP([&] {
              const scalar_t* src = weight_g.const_data_ptr<scalar_t>();
              scalar_t* dst = weight_t.mutable_data_ptr<scalar_t>();
              const int64_t row = weight_g.size(1);
              const int64_t cg0 = c0 - g * c_per_weight_grp;
              for (int64_t o = 0; o < out_g; ++o) {
                for (int64_t k = 0; k < kk; ++k) {
                  for (int64_t c = 0; c < c1 - c0; ++c) {
                    dst[(o * kk + k) * (c1 - c0) + c] =
                        src[o * row + (cg0 + c) * kk + k];
                  }
                }
              }
            }),
            AT_EXPAND(AT_FLOATING_TYPES));
        // mm_out writes every element of the tile.
        stable_helpers::mm_out(
            columns_tile, torch::stable::transpose(grad_out_g, 0, 1), weight_t);
"""))


# 4. Channel tiles in multiples of 16 channels: a GEMM writing rows of kk * tile_channels elements
#    runs about 1.5x slower with MKL when that row length is not aligned (227 channels: 54 -> 83 ms).
EDITS.append(("""  const int64_t fit = std::max(
      kBackwardTileMinChannels,
      kBackwardTileBytes / std::max<int64_t>(channel_bytes, 1));
""", """  const int64_t fit = std::max(
      kBackwardTileMinChannels,
      kBackwardTileBytes / std::max<int64_t>(channel_bytes, 1) / 16 * 16);
"""))


# 3 and 4 instead (proto_rows_tr): the tip's GEMM, its bits and its threading unchanged, then the
# tile's columns transposed to (image, pixel, tap, channel) in a second buffer.
EDITS_TR = []
EDITS_TR.append(("""// t (batch, ...) as blocks of n images: (batch / n, n, ...).
""", """// A tile's columns, rows (channel, tap) of np pixels, as (pixel, tap, channel).
void transpose_columns(
    const Tensor& planar,
    const Tensor& cl,
    int64_t tc,
    int64_t kk) {
  const int64_t np = planar.size(1);
  constexpr int64_t kBlock = 16;
  THO_DISPATCH_V2(
      planar.scalar_type(),
      "transpose_columns",
      AT_WRAP([&] {
        const scalar_t* src = planar.const_data_ptr<scalar_t>();
        scalar_t* dst = cl.mutable_data_ptr<scalar_t>();
        torch::stable::parallel_for(
            0,
            (np + kBlock - 1) / kBlock,
            1,
            [&](int64_t begin, int64_t end) noexcept {
              // Square blocks of 16 pixels by 16 channels per tap: every
              // line read or written is used whole while in L1.
              for (int64_t blk = begin; blk < end; ++blk) {
                const int64_t q0 = blk * kBlock;
                const int64_t q1 = std::min(np, q0 + kBlock);
                for (int64_t k = 0; k < kk; ++k) {
                  for (int64_t c0 = 0; c0 < tc; c0 += kBlock) {
                    const int64_t c1 = std::min(tc, c0 + kBlock);
                    for (int64_t q = q0; q < q1; ++q) {
                      scalar_t* out = dst + (q * kk + k) * tc;
                      for (int64_t c = c0; c < c1; ++c) {
                        out[c] = src[(c * kk + k) * np + q];
                      }
                    }
                  }
                }
              }
            });
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
}

// t (batch, ...) as blocks of n images: (batch / n, n, ...).
"""))
EDITS_TR.append(("""  const bool whole = tile_channels == n_in_channels;

  // The input gradient's sampling plan, rebuilt for each block of images.
""", """  const bool whole = tile_channels == n_in_channels;
  Tensor columns_cl_buffer =
      torch::stable::new_empty(columns, {columns.numel()});

  // The input gradient's sampling plan, rebuilt for each block of images.
"""))
EDITS_TR.append(("""            grad_out_g);
        compute_grad_offset_and_mask(
            geo,
            columns_tile,
""", """            grad_out_g);
        const int64_t np = n_parallel_imgs * out_hw;
        const Tensor columns_cl = torch::stable::reshape(
            torch::stable::narrow(columns_cl_buffer, 0, 0, (c1 - c0) * kk * np),
            {np, (c1 - c0) * kk});
        transpose_columns(columns_tile, columns_cl, c1 - c0, kk);
        compute_grad_offset_and_mask(
            geo,
            columns_cl,
"""))
EDITS_TR.append(("""        compute_grad_input(
            geo,
            columns_tile,
""", """        compute_grad_input(
            geo,
            columns_cl,
"""))


def kernel(gemm: str = "transposed") -> str:
    """The prototype's kernel file: with gemm="transposed" the channels-last columns come from
    grad_out^T W' (edits 3, 4), with "copy" from the tip's GEMM and a transpose (EDITS_TR)."""
    src = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    a = src.index(COORD_START)
    b = src.index(COORD_END, a)
    assert src.count(COORD_START) == 1 and src.count(COORD_END) == 1
    src = src[:a] + NEW_COORD + src[b:]
    for old, new in EDITS[:1] + (EDITS[1:] if gemm == "transposed" else EDITS_TR):
        assert src.count(old) == 1, old[:80]
        src = src.replace(old, new)
    a = src.index(COL2IM_START)
    b = src.index(COL2IM_END, a)
    return src[:a] + NEW_COL2IM + src[b:]


def build() -> None:
    standalone.stage(["patched"])
    dst = standalone.clone(standalone.ROOT / "patched", "proto_rows", kernel(),
                           prototype="channels-last columns, col2im by gradient rows")
    tr = standalone.clone(standalone.ROOT / "patched", "proto_rows_tr", kernel("copy"),
                          prototype="the tip's GEMM, columns transposed, col2im by gradient rows")
    print(standalone.build(dirs=[standalone.ROOT / "patched", dst, tr]), flush=True)


def load_ops(names: list[str]) -> dict:
    """The compiled standalone variants ``names``, each as its op namespace."""
    import torch

    ops = {}
    for name in names:
        torch.ops.load_library(str(standalone.ROOT / name / "build" / f"{standalone.namespace(name)}.so"))
        ops[name] = getattr(torch.ops, standalone.namespace(name))
    return ops


def check_shapes() -> list[tuple]:
    """(batch, in, out, size, offset groups, weight groups, mask, dtype); the last two run in
    channel tiles."""
    import torch

    return [(1, 64, 64, 32, 1, 1, True, torch.float32), (2, 48, 32, 17, 2, 1, True, torch.float32),
            (3, 16, 8, 9, 4, 2, False, torch.float64), (5, 12, 6, 7, 3, 3, True, torch.float32),
            (40, 4, 5, 7, 1, 1, True, torch.float32), (1, 256, 64, 64, 1, 1, True, torch.float32),
            (2, 20, 8, 128, 1, 1, False, torch.float64)]


def backward_inputs(b, cin, cout, hw, og, wg, use_mask, dtype):
    """A backward call's inputs, seeded: input, weight, offset, mask, bias, grad_out (3x3 kernel)."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(b, cin, hw, hw, dtype=dtype)
    w = torch.randn(cout, cin // wg, 3, 3, dtype=dtype)
    off = torch.randn(b, 2 * og * 9, hw, hw, dtype=dtype) * 2
    mask = torch.rand(b, og * 9, hw, hw, dtype=dtype) if use_mask else torch.zeros(b, 1, dtype=dtype)
    return x, w, off, mask, torch.randn(cout, dtype=dtype), torch.randn(b, cout, hw, hw, dtype=dtype)


def check() -> None:
    """Every result against the tip's, by bits, at 1 and 2 threads, on shapes that cover groups,
    offset groups, several images per block, channel tiles and float64."""
    import torch

    ops = load_ops(["patched", "proto_rows", "proto_rows_tr"])
    shapes = check_shapes()
    bad = {"proto_rows": 0, "proto_rows_tr": 0}
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        for b, cin, cout, hw, og, wg, use_mask, dtype in shapes:
            x, w, off, mask, bias, gout = backward_inputs(b, cin, cout, hw, og, wg, use_mask, dtype)
            res = {}
            for name, op in ops.items():
                res[name] = op._deform_conv2d_backward(gout, x, w, off, mask, bias, 1, 1, 1, 1, 1, 1, wg, og,
                                                       use_mask)
            names = ["grad_input", "grad_weight", "grad_offset", "grad_mask", "grad_bias"]
            as_int = torch.int32 if dtype == torch.float32 else torch.int64
            line = f"{threads} {(b, cin, cout, hw, og, wg, use_mask, str(dtype))}"
            for proto in ("proto_rows", "proto_rows_tr"):
                diff = [n for n, a, z in zip(names, res["patched"], res[proto])
                        if not torch.equal(a.contiguous().view(as_int), z.contiguous().view(as_int))]
                bad[proto] += bool(diff)
                line += f"  {proto} differs: {diff or 'none'}"
            print(line, flush=True)
    print("shapes with differing bits:", bad)


def _skip(src: str, fn: str) -> str:
    """``src`` with function ``fn`` returning at once: its pass skipped, results wrong, for timing."""
    head = src.index("\nvoid " + fn + "(")
    body = src.index(") {\n", head) + 4
    return src[:body] + "  return;\n" + src[body:]


def parts() -> None:
    tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    proto = kernel()
    coord, col2im = "compute_grad_offset_and_mask", "compute_grad_input"
    variants = {"tip_nocoord": _skip(tip, coord), "tip_nocol2im": _skip(tip, col2im),
                "rows_nocoord": _skip(proto, coord), "rows_nocol2im": _skip(proto, col2im),
                "tip_rest": _skip(_skip(tip, coord), col2im), "rows_rest": _skip(_skip(proto, coord), col2im)}
    print(standalone.build(dirs=[standalone.clone(standalone.ROOT / "patched", n, k) for n, k in variants.items()]))


def ab(names: str, threads: str = "1") -> None:
    import time

    import torch

    ops = load_ops(names.split(","))
    torch.set_num_threads(int(threads))
    for cfg, (b, c, s) in {"s32-b1": (1, 64, 32), "s64-b1": (1, 256, 64), "c3-det": (2, 128, 100)}.items():
        torch.manual_seed(0)
        x, w, off = torch.randn(b, c, s, s), torch.randn(c, c, 3, 3), torch.randn(b, 18, s, s)
        mask, bias, gout = torch.rand(b, 9, s, s), torch.randn(c), torch.randn(b, c, s, s)
        best = dict.fromkeys(ops, 1e9)
        for _ in range(12 if s < 64 else 10):
            for n, op in ops.items():
                t = time.perf_counter()
                op._deform_conv2d_backward(gout, x, w, off, mask, bias, 1, 1, 1, 1, 1, 1, 1, 1, True)
                best[n] = min(best[n], time.perf_counter() - t)
        print(cfg, {n: round(v * 1e3, 1) for n, v in best.items()}, flush=True)


if __name__ == "__main__":
    {"build": build, "check": check, "parts": parts, "ab": ab}[sys.argv[1]](*sys.argv[2:])
