"""Patch A1 (split of A): the backward's GEMMs one task each inside the parallel region, planar."""
import sys
from pathlib import Path

path = Path(sys.argv[1])
src = path.read_text()


def sub(old: str, new: str) -> None:
    global src
    if src.count(old) != 1:
        raise SystemExit(f"not quoted once: {old[:70]!r}")
    src = src.replace(old, new)


sub("""// t (batch, ...) as blocks of n images: (batch / n, n, ...).""", """// The backward's GEMMs run a task at a time inside a parallel region, each on
// one thread: about kGemmTasks tasks of at least kGemmMinRows and at most
// kGemmMaxRows pixels (or columns, for grad_weight), in multiples of 16. The
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

// c = beta * c + a * b on this thread, for strided matrices: a m x k (a[i][l]
// at a[i * a_row + l * a_col]), b k x n (likewise), c m x n (rows of c_row).
// addmm_ on views or, with one row or one column, a plain loop in order
// (BLAS's matrix-vector path rounds differently inside and outside a parallel
// region). Returns false if the GEMM failed: nothing may throw across
// parallel_for.
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
    int64_t b_col,
    double beta,
    torch::stable::Device device,
    torch::headeronly::ScalarType dtype) noexcept {
  if (m == 1 || n == 1) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        scalar_t acc = 0;
        for (int64_t l = 0; l < k; ++l) {
          acc += a[i * a_row + l * a_col] * b[l * b_row + j * b_col];
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
        const_cast<scalar_t*>(b), {k, n}, {b_row, b_col}, device, dtype);
    stable_helpers::addmm_(c_t, a_t, b_t, beta);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// A channel tile's columns (tile entries, pixels) = w_t grad_out_g, with w_t
// (tile entries, out channels) the tile's weight columns transposed and
// grad_out_g (out channels, pixels): a task is a chunk of pixels.
void tile_columns(
    const Tensor& w_t,
    const Tensor& grad_out_g,
    const Tensor& cols) {
  const int64_t entries = cols.size(0), pixels = cols.size(1);
  const int64_t o_g = grad_out_g.size(0);
  const int64_t chunk = gemm_split(pixels, kGemmMinRows, kGemmMaxRows);
  const int64_t n_tasks = (pixels + chunk - 1) / chunk;
  // At least two workers when there are threads, so that every GEMM runs
  // inside the region.
  const int64_t n_workers = std::max(
      n_tasks, std::min<int64_t>(torch::stable::get_num_threads(), 2));
  const int64_t w_row = w_t.stride(0), w_col = w_t.stride(1);
  const int64_t go_row = grad_out_g.stride(0), ld = cols.stride(0);
  const auto device = cols.device();
  const auto dtype = cols.scalar_type();
  std::atomic<bool> failed{false};
  THO_DISPATCH_V2(
      dtype,
      "tile_columns",
      AT_WRAP([&] {
        const scalar_t* w = w_t.const_data_ptr<scalar_t>();
        const scalar_t* go = grad_out_g.const_data_ptr<scalar_t>();
        scalar_t* out = cols.mutable_data_ptr<scalar_t>();
        torch::stable::parallel_for(
            0, n_workers, 1, [&](int64_t begin, int64_t end) noexcept {
              for (int64_t t = begin; t < std::min(end, n_tasks); ++t) {
                const int64_t p0 = t * chunk;
                if (!task_gemm<scalar_t>(
                        out + p0,
                        entries,
                        std::min(chunk, pixels - p0),
                        ld,
                        w,
                        o_g,
                        w_row,
                        w_col,
                        go + p0,
                        go_row,
                        1,
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

// grad_w (out channels, tile entries) += grad_out_g (out channels, pixels)
// cols^T, cols (tile entries, pixels): a task is a block of entries.
void tile_weight_grad(
    const Tensor& grad_w,
    const Tensor& grad_out_g,
    const Tensor& cols) {
  const int64_t o_g = grad_w.size(0), n = grad_w.size(1);
  const int64_t k = cols.size(1);
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
                        c + j0 * ld,
                        1,
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

// t (batch, ...) as blocks of n images: (batch / n, n, ...).""")

sub("""      // (out channels per group, images * pixels)
      const Tensor grad_out_g = torch::stable::reshape(
          torch::stable::transpose(
              torch::stable::select(grad_out_elt, 1, g), 0, 1),
          {n_out_channels / n_weight_grps, n_parallel_imgs * out_hw});
      Tensor weight_g""", """      Tensor weight_g""")

sub("""        // mm_out writes every element of the tile.
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
            columns_tile);""", """        // Every element of the tile is written.
        tile_columns(
            torch::stable::transpose(
                torch::stable::narrow(
                    weight_g,
                    1,
                    (c0 - g * c_per_weight_grp) * kk,
                    (c1 - c0) * kk),
                0,
                1),
            grad_out_buf_g,
            columns_tile);""")

sub("""        stable_helpers::addmm_(
            torch::stable::narrow(
                grad_weight_g,
                1,
                (c0 - g * c_per_weight_grp) * kk,
                (c1 - c0) * kk),
            grad_out_buf_g,
            torch::stable::transpose(columns_tile, 1, 0));""", """        tile_weight_grad(
            torch::stable::narrow(
                grad_weight_g,
                1,
                (c0 - g * c_per_weight_grp) * kk,
                (c1 - c0) * kk),
            grad_out_buf_g,
            columns_tile);""")
path.write_text(src)
print("ok")
