// Issue 24, a measurement, not a patch: how much of the backward's sampling
// passes a channels-last layout could save, on one core, on the benchmark's
// shapes (3x3, stride 1, padding 1, one offset group, offsets ~ N(0, 1)).
//
//   col2im   planar: the tip's loop, one (image, channel) plane per task,
//            columns (channel, tap, pixel); scatters one float per corner.
//            channels-last: per (tap, pixel), each corner adds a run of C
//            floats; columns (pixel, tap, channel), grad (y, x, channel).
//            Every grad element receives its shares in the same (tap, pixel)
//            order in both, so the sums are the same bits.
//   coord    planar: the tip's per-channel form of the offset and mask
//            gradients (sums over channels in increasing order).
//            channels-last: the same terms with the channel sum in vector
//            lanes (a reassociation: a patch would declare the rounding).
//
// g++ -O3 -march=native -std=c++17 col2im-layouts.cpp -o /tmp/col2im-layouts
// /tmp/col2im-layouts            # prints one JSON line per shape
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

struct Entry {
  int idx;  // floor corner, as y_l * W + x_l
  int row;
  unsigned char flags;
  float mw[4];
  float w[4];  // bilinear weights (for the coord pass), mask applied apart
  float dy, dx, m;
};

struct Shape {
  const char* name;
  int batch, channels, size;
};

template <typename F>
double best_ms(F&& f, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

int main() {
  const Shape shapes[] = {{"s32-b1", 1, 64, 32}, {"s64-b1", 1, 256, 64},
                          {"c3-det", 2, 128, 100}};
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (const auto& s : shapes) {
    const int H = s.size, W = s.size, C = s.channels, B = s.batch, KK = 9;
    const int P = H * W;  // output pixels (stride 1, padding 1)
    std::vector<Entry> plan(size_t(B) * KK * P);
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < KK; ++k)
        for (int p = 0; p < P; ++p) {
          Entry& e = plan[(size_t(b) * KK + k) * P + p];
          const float y = p / W - 1 + k / 3 + normal(rng);
          const float x = p % W - 1 + k % 3 + normal(rng);
          const float m = unit(rng);
          e = {};
          e.m = m;
          if (!(y > -1 && y < H && x > -1 && x < W)) continue;
          const int yl = std::floor(y), xl = std::floor(x);
          const float ly = y - yl, lx = x - xl;
          e.dy = ly;
          e.dx = lx;
          const float rw[2] = {1 - ly, ly}, cw[2] = {1 - lx, lx};
          for (int a = 0; a < 2; ++a)
            for (int c = 0; c < 2; ++c) {
              const bool in = yl + a >= 0 && yl + a < H && xl + c >= 0 && xl + c < W;
              e.w[2 * a + c] = in ? rw[a] * cw[c] : 0;
              if (in) {
                e.flags |= 1 << (2 * a + c);
                e.mw[2 * a + c] = m * rw[a] * cw[c];
              }
            }
          e.idx = yl * W + xl;
          e.row = yl;
        }
    // Columns: the same values in both layouts.
    std::vector<float> col_planar(size_t(C) * KK * B * P), col_cl(col_planar.size());
    for (auto& v : col_planar) v = normal(rng);
    for (int c = 0; c < C; ++c)
      for (int k = 0; k < KK; ++k)
        for (int b = 0; b < B; ++b)
          for (int p = 0; p < P; ++p)
            col_cl[((size_t(b) * P + p) * KK + k) * C + c] =
                col_planar[((size_t(c) * KK + k) * B + b) * P + p];
    std::vector<float> grad_planar(size_t(B) * C * P), grad_cl(grad_planar.size());

    auto col2im_planar = [&] {
      std::fill(grad_planar.begin(), grad_planar.end(), 0.f);
      for (int c = 0; c < C; ++c)
        for (int b = 0; b < B; ++b) {
          float* g = grad_planar.data() + (size_t(b) * C + c) * P;
          for (int k = 0; k < KK; ++k) {
            const float* cr = col_planar.data() + ((size_t(c) * KK + k) * B + b) * P;
            const Entry* ek = plan.data() + (size_t(b) * KK + k) * P;
            for (int p = 0; p < P; ++p) {
              const Entry& e = ek[p];
              if (!e.flags) continue;
              const float cv = cr[p];
              if (e.flags & 1) g[e.idx] += e.mw[0] * cv;
              if (e.flags & 2) g[e.idx + 1] += e.mw[1] * cv;
              if (e.flags & 4) g[e.idx + W] += e.mw[2] * cv;
              if (e.flags & 8) g[e.idx + W + 1] += e.mw[3] * cv;
            }
          }
        }
    };
    auto col2im_cl = [&] {
      std::fill(grad_cl.begin(), grad_cl.end(), 0.f);
      for (int b = 0; b < B; ++b) {
        float* g = grad_cl.data() + size_t(b) * P * C;
        for (int k = 0; k < KK; ++k) {
          const Entry* ek = plan.data() + (size_t(b) * KK + k) * P;
          for (int p = 0; p < P; ++p) {
            const Entry& e = ek[p];
            if (!e.flags) continue;
            const float* cv = col_cl.data() + ((size_t(b) * P + p) * KK + k) * C;
            const int off[4] = {e.idx, e.idx + 1, e.idx + W, e.idx + W + 1};
            for (int q = 0; q < 4; ++q) {
              if (!(e.flags & (1 << q))) continue;
              float* gq = g + size_t(off[q]) * C;
              const float a = e.mw[q];
              for (int c = 0; c < C; ++c) gq[c] += a * cv[c];
            }
          }
        }
      }
    };
    // Channels last in tiles of cb channels, each tile's columns and grad
    // contiguous, as a GEMM per channel tile would write them: (image,
    // pixel[, tap], channel of the tile); over bands of `rows` output rows, so
    // that the gradient rows a band touches stay in cache. With rows = H (one
    // band) each element gets its shares in the planar (tap, pixel) order;
    // with smaller bands in (band, tap, pixel) order: other bits.
    std::vector<float> col_blk(col_cl.size()), grad_blk(grad_cl.size());
    auto col2im_cl_banded = [&](int cb, int rows) {
      for (int c0 = 0; c0 < C; c0 += cb) {  // lay out the tiles (not timed)
        const int c1 = std::min(C, c0 + cb);
        for (size_t r = 0; r < size_t(B) * P * KK; ++r)
          for (int c = c0; c < c1; ++c)
            col_blk[size_t(c0) * B * P * KK + r * (c1 - c0) + c - c0] = col_cl[r * C + c];
      }
      const auto t0 = std::chrono::steady_clock::now();
      std::fill(grad_blk.begin(), grad_blk.end(), 0.f);
      for (int c0 = 0; c0 < C; c0 += cb) {
        const int c1 = std::min(C, c0 + cb), n = c1 - c0;
        for (int b = 0; b < B; ++b) {
          float* g = grad_blk.data() + size_t(c0) * B * P + size_t(b) * P * n;
          const float* cb_cols = col_blk.data() + size_t(c0) * B * P * KK + size_t(b) * P * KK * n;
          for (int r0 = 0; r0 < H; r0 += rows) {
            const int p0 = r0 * W, p1 = std::min(H, r0 + rows) * W;
            for (int k = 0; k < KK; ++k) {
              const Entry* ek = plan.data() + (size_t(b) * KK + k) * P;
              for (int p = p0; p < p1; ++p) {
                const Entry& e = ek[p];
                if (!e.flags) continue;
                const float* cv = cb_cols + (size_t(p) * KK + k) * n;
                const int off[4] = {e.idx, e.idx + 1, e.idx + W, e.idx + W + 1};
                for (int q = 0; q < 4; ++q) {
                  if (!(e.flags & (1 << q))) continue;
                  float* gq = g + size_t(off[q]) * n;
                  const float a = e.mw[q];
                  for (int c = 0; c < n; ++c) gq[c] += a * cv[c];
                }
              }
            }
          }
        }
      }
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    auto best_banded = [&](int cb, int rows) {
      double best = 1e30;
      for (int r = 0; r < 7; ++r) best = std::min(best, col2im_cl_banded(cb, rows));
      return best;
    };
    // Channels last, one gradient row at a time, in the planar loop's order:
    // entries are bucketed by their floor row (a stable counting sort keeps
    // the (tap, pixel) order within a bucket); row y gets the top corners of
    // bucket y and the bottom corners of bucket y - 1, merged in (tap, pixel)
    // order. Each element then sums its shares exactly as the planar loop
    // does, and rows are independent tasks. The sort is timed with the pass.
    std::vector<int> bucket_start(H + 2), order(size_t(KK) * P);
    auto col2im_cl_rows = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      std::fill(grad_cl.begin(), grad_cl.end(), 0.f);
      for (int b = 0; b < B; ++b) {
        const Entry* eb = plan.data() + size_t(b) * KK * P;
        std::fill(bucket_start.begin(), bucket_start.end(), 0);
        for (int e = 0; e < KK * P; ++e)
          if (eb[e].flags) ++bucket_start[eb[e].row + 2];  // rows -1 .. H-1
        for (int r = 1; r < H + 2; ++r) bucket_start[r] += bucket_start[r - 1];
        {
          std::vector<int> fill(bucket_start.begin(), bucket_start.end());
          for (int e = 0; e < KK * P; ++e)
            if (eb[e].flags) order[fill[eb[e].row + 1]++] = e;
        }
        auto bucket = [&](int row, const int*& first, const int*& last) {
          // entries whose floor row is `row` (-1 .. H-1)
          first = order.data() + bucket_start[row + 1];
          last = order.data() + (row + 2 < H + 2 ? bucket_start[row + 2] : bucket_start[H + 1]);
        };
        float* g = grad_cl.data() + size_t(b) * P * C;
        const float* cols = col_cl.data() + size_t(b) * P * KK * C;
        for (int y = 0; y < H; ++y) {
          const int *t, *te, *u, *ue;
          bucket(y, t, te);      // top corners land in row y
          bucket(y - 1, u, ue);  // bottom corners land in row y
          while (t != te || u != ue) {
            const bool top = u == ue || (t != te && *t < *u);
            const int e = top ? *t++ : *u++;
            const Entry& en = eb[e];
            const int k = e / P, p = e % P;
            const float* cv = cols + (size_t(p) * KK + k) * C;
            const int q0 = top ? 0 : 2;
            const int base = top ? en.idx : en.idx + W;
            for (int q = q0; q < q0 + 2; ++q) {
              if (!(en.flags & (1 << q))) continue;
              float* gq = g + size_t(base + (q - q0)) * C;
              const float a = en.mw[q];
              for (int c = 0; c < C; ++c) gq[c] += a * cv[c];
            }
          }
        }
      }
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    // Input: padded with a zero border so that every corner of an entry is
    // readable (as the tip's `padded` is); planar and channels-last copies.
    const int PW = W + 3, PP = (H + 3) * PW;
    std::vector<float> in_planar(size_t(B) * C * PP, 0.f), in_cl(in_planar.size(), 0.f);
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c)
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x) {
            const float v = normal(rng);
            in_planar[(size_t(b) * C + c) * PP + (y + 1) * PW + x + 1] = v;
            in_cl[(size_t(b) * PP + (y + 1) * PW + x + 1) * C + c] = v;
          }
    auto pidx = [&](const Entry& e) { return e.flags ? (e.row + 1) * PW + (e.idx - e.row * W) + 1 : 0; };
    std::vector<float> go_planar(size_t(B) * KK * P * 3), go_cl(go_planar.size());
    auto coord_planar = [&] {
      std::fill(go_planar.begin(), go_planar.end(), 0.f);
      for (int b = 0; b < B; ++b)
        for (int c = 0; c < C; ++c) {
          const float* in = in_planar.data() + (size_t(b) * C + c) * PP;
          for (int k = 0; k < KK; ++k) {
            const float* cr = col_planar.data() + ((size_t(c) * KK + k) * B + b) * P;
            const Entry* ek = plan.data() + (size_t(b) * KK + k) * P;
            float* o = go_planar.data() + (size_t(b) * KK + k) * P * 3;
            for (int p = 0; p < P; ++p) {
              const Entry& e = ek[p];
              const float* q = in + pidx(e);
              const float v1 = q[0], v2 = q[1], v3 = q[PW], v4 = q[PW + 1];
              const float cv = cr[p];
              o[3 * p] += e.m * (e.dx * (v4 - v2) + (1 - e.dx) * (v3 - v1)) * cv;
              o[3 * p + 1] += e.m * (e.dy * (v4 - v3) + (1 - e.dy) * (v2 - v1)) * cv;
              o[3 * p + 2] += (e.w[0] * v1 + e.w[1] * v2 + e.w[2] * v3 + e.w[3] * v4) * cv;
            }
          }
        }
    };
    // Channels last: per (tap, pixel), `sums` reduces the channels of the
    // corner runs q1..q4 and the column run into (offset y, offset x, mask).
    auto coord_cl_with = [&](std::vector<float>& out, auto&& sums) {
      for (int b = 0; b < B; ++b) {
        const float* img = in_cl.data() + size_t(b) * PP * C;
        for (int k = 0; k < KK; ++k) {
          const Entry* ek = plan.data() + (size_t(b) * KK + k) * P;
          float* o = out.data() + (size_t(b) * KK + k) * P * 3;
          for (int p = 0; p < P; ++p) {
            const Entry& e = ek[p];
            const float* q1 = img + size_t(pidx(e)) * C;
            const float* q3 = q1 + size_t(PW) * C;
            const float* cv = col_cl.data() + ((size_t(b) * P + p) * KK + k) * C;
            sums(e, q1, q1 + C, q3, q3 + C, cv, o + 3 * p);
          }
        }
      }
    };
    // The channel sums in vector lanes: reassociated, other bits.
    auto coord_cl = [&] {
      coord_cl_with(go_cl, [&](const Entry& e, const float* q1, const float* q2, const float* q3,
                               const float* q4, const float* cv, float* o) {
        float sy = 0, sx = 0, sm = 0;
#pragma omp simd reduction(+ : sy, sx, sm)
        for (int c = 0; c < C; ++c) {
          const float v1 = q1[c], v2 = q2[c], v3 = q3[c], v4 = q4[c];
          sy += (e.dx * (v4 - v2) + (1 - e.dx) * (v3 - v1)) * cv[c];
          sx += (e.dy * (v4 - v3) + (1 - e.dy) * (v2 - v1)) * cv[c];
          sm += (e.w[0] * v1 + e.w[1] * v2 + e.w[2] * v3 + e.w[3] * v4) * cv[c];
        }
        o[0] = e.m * sy;
        o[1] = e.m * sx;
        o[2] = sm;
      });
    };
    // Each sum over channels serial, in increasing channel order, term by
    // term as the planar loop forms it: the same bits where the compiler
    // contracts both alike.
    std::vector<float> go_cls(go_planar.size());
    auto coord_cl_serial = [&] {
      coord_cl_with(go_cls, [&](const Entry& e, const float* q1, const float* q2, const float* q3,
                                const float* q4, const float* cv, float* o) {
        float sy = 0, sx = 0, sm = 0;
        for (int c = 0; c < C; ++c) {
          const float v1 = q1[c], v2 = q2[c], v3 = q3[c], v4 = q4[c];
          sy += e.m * (e.dx * (v4 - v2) + (1 - e.dx) * (v3 - v1)) * cv[c];
          sx += e.m * (e.dy * (v4 - v3) + (1 - e.dy) * (v2 - v1)) * cv[c];
          sm += (e.w[0] * v1 + e.w[1] * v2 + e.w[2] * v3 + e.w[3] * v4) * cv[c];
        }
        o[0] = sy;
        o[1] = sx;
        o[2] = sm;
      });
    };
    const int reps = 7;
    const double t_planar = best_ms(col2im_planar, reps);
    const double t_cl32 = best_banded(32, H);
    const double t_cl64 = best_banded(64, H);
    double t_rows = 1e30;
    for (int r = 0; r < reps; ++r) t_rows = std::min(t_rows, col2im_cl_rows());
    size_t rows_differ = 0;
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c)
        for (int p = 0; p < P; ++p) {
          const float a = grad_planar[(size_t(b) * C + c) * P + p];
          const float z = grad_cl[(size_t(b) * P + p) * C + c];
          rows_differ += std::memcmp(&a, &z, sizeof a) != 0;
        }
    const double t_cl = best_ms(col2im_cl, reps);
    const double t_band64x4 = best_banded(64, 4);
    const double t_band64x8 = best_banded(64, 8);
    const double t_band256x2 = best_banded(256, 2);
    const double t_cp = best_ms(coord_planar, reps);
    const double t_cc = best_ms(coord_cl, reps);
    const double t_ccs = best_ms(coord_cl_serial, reps);
    size_t coord_serial_differ = 0;
    for (size_t i = 0; i < go_planar.size(); ++i)
      coord_serial_differ += std::memcmp(&go_planar[i], &go_cls[i], sizeof(float)) != 0;
    // Same bits: grad_cl (y, x, c) against grad_planar (c, y, x).
    size_t differ = 0;
    double coord_err = 0, coord_mag = 0;
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c)
        for (int p = 0; p < P; ++p) {
          const float a = grad_planar[(size_t(b) * C + c) * P + p];
          const float z = grad_cl[(size_t(b) * P + p) * C + c];
          differ += std::memcmp(&a, &z, sizeof a) != 0;
        }
    for (size_t i = 0; i < go_planar.size(); ++i) {
      coord_err = std::max(coord_err, double(std::fabs(go_planar[i] - go_cl[i])));
      coord_mag = std::max(coord_mag, double(std::fabs(go_planar[i])));
    }
    std::printf(
        "{\"shape\": \"%s\", \"col2im_planar_ms\": %.3f, \"col2im_channels_last_ms\": %.3f, "
        "\"col2im_channels_last_blocks32_ms\": %.3f, \"col2im_channels_last_blocks64_ms\": %.3f, "
        "\"col2im_bands_64ch_4rows_ms\": %.3f, \"col2im_bands_64ch_8rows_ms\": %.3f, "
        "\"col2im_bands_256ch_2rows_ms\": %.3f, \"col2im_rows_in_order_ms\": %.3f, "
        "\"col2im_rows_in_order_bits_differing\": %zu, \"col2im_bits_differing\": %zu, \"coord_planar_ms\": %.3f, \"coord_channels_last_ms\": %.3f, "
        "\"coord_max_rel_diff\": %.2e, \"coord_channels_last_serial_ms\": %.3f, "
        "\"coord_channels_last_serial_bits_differing\": %zu}\n",
        s.name, t_planar, t_cl, t_cl32, t_cl64, t_band64x4, t_band64x8, t_band256x2, t_rows, rows_differ, differ, t_cp, t_cc, coord_err / coord_mag, t_ccs, coord_serial_differ);
  }
}
