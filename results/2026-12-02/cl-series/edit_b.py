"""Patch B of the channels-last backward: col2im by rows of the input gradient."""
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
    global src
    a = src.index(start)
    z = src.index(end, a)
    src = src[:a] + new + src[z:]


region("// Accumulates the column gradients of the channels [lo, lo + n) of the tile,",
       "// The input gradient's plan of a block of images",
       """// Row y of image b of `acc`, the tile's input gradient channels last
// (images, height, width, tile channels), from the channels [c_begin, c_end),
// whose columns `col` holds channels last (row (image, pixel) of col_ld
// entries in (tap, channel) order): the top corners of the entries whose floor
// row is y and the bottom corners of those whose floor row is y - 1, merged in
// entry order, the serial loop's (tap, pixel) order, so each element gets its
// shares in that order. A corner's share is a run of the entry's offset
// group's channels. The buckets: see bucket_col2im_plan.
template <typename scalar_t>
void deformable_col2im_row(
    const Geometry<int64_t>& geo,
    int64_t b,
    int64_t y,
    int64_t c_begin,
    int64_t c_end,
    const scalar_t* col,
    int64_t col_ld,
    const int64_t* plan_idx,
    const int64_t* plan_row,
    const unsigned char* plan_flags,
    const scalar_t* plan_mw,
    const int64_t* order,
    const int64_t* col_pos,
    const int64_t* starts,
    scalar_t* acc) {
  const int64_t height = geo.height, width = geo.width;
  const int64_t kk = geo.kk(), out_hw = geo.out_hw();
  const int64_t n_groups = geo.n_offset_grps;
  const int64_t c_per_group = geo.channels / n_groups;
  const int64_t tc = c_end - c_begin;
  const int64_t tap_ld = col_ld / kk;
  const scalar_t* img_col = col + b * out_hw * col_ld;
  scalar_t* row_acc = acc + (b * height + y) * width * tc;
  for (int64_t g = c_begin / c_per_group; g * c_per_group < c_end; ++g) {
    const int64_t lo = std::max(c_begin, g * c_per_group) - c_begin;
    const int64_t n = std::min(c_end, (g + 1) * c_per_group) - c_begin - lo;
    const int64_t* s = starts + (b * n_groups + g) * (height + 2);
    // Bucket y + 1 holds floor row y (top corners), bucket y floor row y - 1.
    const int64_t* t = order + s[y + 1];
    const int64_t* const t_end = order + s[y + 2];
    const int64_t* u = order + s[y];
    const int64_t* const u_end = order + s[y + 1];
    while (t != t_end || u != u_end) {
      const bool top = u == u_end || (t != t_end && *t < *u);
      const int64_t* at = top ? t++ : u++;
      const int64_t e = *at;
      const int64_t pos = col_pos[at - order];
      const scalar_t* cv = img_col + pos / kk * col_ld + pos % kk * tap_ld + lo;
      const unsigned flags = plan_flags[e];
      const scalar_t* mw = plan_mw + 4 * e;
      const int64_t x = plan_idx[e] - plan_row[e] * width;
      const int q0 = top ? 0 : 2;
      for (int q = q0; q < q0 + 2; ++q) {
        if (flags & (1u << q)) {
          const scalar_t w = mw[q];
          scalar_t* a = row_acc + (x + q - q0) * tc + lo;
          for (int64_t j = 0; j < n; ++j) {
            a[j] += w * cv[j];
          }
        }
      }
    }
  }
}

""")

# The buckets, once per block of images, after the plan.
sub("""// Adds the column gradients of the channels [c_begin, c_end), which `columns`
// holds channels last, to grad_im through the plan: into a channels-last tile
// gradient, then copied into the channels' planes, which no other tile
// touches and which start at zero.""", """// The input gradient's plan bucketed by floor row, per (image, offset group)
// bg: bucket r (floor row r - 1, from -1 on) is order[s[r], s[r + 1]), with s
// = starts + bg * (height + 2), its entries in increasing order (a stable
// counting sort); col_pos[i] is entry order[i]'s pixel * kk + tap. Entries
// with no share are left out.
void bucket_col2im_plan(
    const Geometry<int64_t>& geo,
    const Tensor& plan_idx,
    const Tensor& plan_flags,
    const Tensor& order,
    const Tensor& col_pos,
    const Tensor& starts) {
  const int64_t height = geo.height, kk = geo.kk(), out_hw = geo.out_hw();
  const int64_t n_plan = plan_flags.numel();
  const int64_t per_bg = kk * out_hw;
  const int64_t n_bg = n_plan / std::max<int64_t>(per_bg, 1);
  const int64_t* row_ptr = plan_idx.const_data_ptr<int64_t>() + n_plan;
  const unsigned char* flags_ptr = plan_flags.const_data_ptr<uint8_t>();
  int64_t* order_ptr = order.mutable_data_ptr<int64_t>();
  int64_t* pos_ptr = col_pos.mutable_data_ptr<int64_t>();
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
          std::copy(s, s + height + 2, next.get());
          int64_t e = e0;
          for (int64_t k = 0; k < kk; ++k) {
            for (int64_t pix = 0; pix < out_hw; ++pix, ++e) {
              if (flags_ptr[e]) {
                const int64_t at = next[row_ptr[e] + 1]++;
                order_ptr[at] = e;
                pos_ptr[at] = pix * kk + k;
              }
            }
          }
        }
      });
  STD_TORCH_CHECK(
      !out_of_memory,
      "deform_conv2d: out of memory bucketing the input gradient's plan");
}

// Adds the column gradients of the channels [c_begin, c_end), which `columns`
// holds channels last, to grad_im through the plan: a row of a channels-last
// tile gradient per task, then copied into the channels' planes, which no
// other tile touches and which start at zero.""")

region("void compute_grad_input(\n", "// Output pixels per offset and mask gradient task",
       """void compute_grad_input(
    const Geometry<int64_t>& geo,
    const Tensor& columns,
    int64_t c_begin,
    int64_t c_end,
    const Tensor& plan_idx,
    const Tensor& plan_flags,
    const Tensor& plan_mw,
    const Tensor& order,
    const Tensor& col_pos,
    const Tensor& starts,
    int64_t parallel_imgs,
    Tensor grad_im) {
  const int64_t height = geo.height, width = geo.width;
  const int64_t n_plan = plan_flags.numel();
  const int64_t tc = c_end - c_begin;
  if (n_plan == 0 || tc == 0 || parallel_imgs == 0) {
    return;
  }
  const Tensor acc =
      torch::stable::new_zeros(columns, {parallel_imgs, height, width, tc});
  const int64_t col_ld = columns.stride(0);
  const int64_t plane = height * width;
  // Channels per run of the copy into the planes.
  constexpr int64_t kRun = 16;

  THO_DISPATCH_V2(
      columns.scalar_type(),
      "compute_grad_input",
      AT_WRAP([&] {
        const scalar_t* columns_ptr = columns.const_data_ptr<scalar_t>();
        scalar_t* acc_ptr = acc.mutable_data_ptr<scalar_t>();
        const int64_t* idx_ptr = plan_idx.const_data_ptr<int64_t>();
        const int64_t* row_ptr = idx_ptr + n_plan;
        const unsigned char* flags_ptr = plan_flags.const_data_ptr<uint8_t>();
        const scalar_t* mw_ptr = plan_mw.const_data_ptr<scalar_t>();
        const int64_t* order_ptr = order.const_data_ptr<int64_t>();
        const int64_t* pos_ptr = col_pos.const_data_ptr<int64_t>();
        const int64_t* starts_ptr = starts.const_data_ptr<int64_t>();
        torch::stable::parallel_for(
            0,
            parallel_imgs * height,
            1,
            [&](int64_t begin, int64_t end) noexcept {
              for (int64_t r = begin; r < end; ++r) {
                deformable_col2im_row<scalar_t>(
                    geo,
                    r / height,
                    r % height,
                    c_begin,
                    c_end,
                    columns_ptr,
                    col_ld,
                    idx_ptr,
                    row_ptr,
                    flags_ptr,
                    mw_ptr,
                    order_ptr,
                    pos_ptr,
                    starts_ptr,
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
                for (int64_t c0 = 0; c0 < tc; c0 += kRun) {
                  const int64_t c1 = std::min(tc, c0 + kRun);
                  for (int64_t x = 0; x < width; ++x) {
                    for (int64_t c = c0; c < c1; ++c) {
                      dst[c * plane + x] = src[x * tc + c];
                    }
                  }
                }
              }
            });
      }),
      AT_EXPAND(AT_FLOATING_TYPES));
}

""")

sub("""  const Tensor plan_mw = torch::stable::new_empty(offset, {n_plan, 4});
""", """  const Tensor plan_mw = torch::stable::new_empty(offset, {n_plan, 4});
  // The plan bucketed by floor row, for col2im by rows of the input gradient.
  const Tensor order = torch::stable::new_empty(
      offset, {n_plan}, torch::headeronly::ScalarType::Long);
  const Tensor col_pos = torch::stable::new_empty(
      offset, {n_plan}, torch::headeronly::ScalarType::Long);
  const Tensor starts = torch::stable::new_empty(
      offset,
      {n_parallel_imgs * geo.n_offset_grps * (geo.height + 2)},
      torch::headeronly::ScalarType::Long);
""")
sub("""    compute_col2im_plan(
        geo, offset_elt, mask_elt, use_64bit, plan_idx, plan_flags, plan_mw);
""", """    compute_col2im_plan(
        geo, offset_elt, mask_elt, use_64bit, plan_idx, plan_flags, plan_mw);
    bucket_col2im_plan(geo, plan_idx, plan_flags, order, col_pos, starts);
""")
sub("""            plan_idx,
            plan_flags,
            plan_mw,
            n_parallel_imgs,
            use_64bit,
            grad_input_elt);""", """            plan_idx,
            plan_flags,
            plan_mw,
            order,
            col_pos,
            starts,
            n_parallel_imgs,
            grad_input_elt);""")
path.write_text(src)
print("ok")
