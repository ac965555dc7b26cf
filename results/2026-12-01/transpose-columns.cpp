// Issue 24, a measurement: what transposing a backward column tile, rows (channel, tap) of pixels,
// into (pixel, tap, channel) costs alone, one core, built as the kernel is (-O3, baseline x86-64).
// g++ -O3 -std=c++17 results/2026-12-01/transpose-columns.cpp -o /tmp/transpose-columns && /tmp/transpose-columns
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
#include <cstdint>
using I = int64_t;
template <int B>
void tr_blocked(const float* src, float* dst, I tc, I kk, I np) {
  for (I q0 = 0; q0 < np; q0 += B) {
    const I q1 = std::min(np, q0 + B);
    for (I k = 0; k < kk; ++k)
      for (I c0 = 0; c0 < tc; c0 += B) {
        const I c1 = std::min(tc, c0 + B);
        for (I q = q0; q < q1; ++q) {
          float* out = dst + (q * kk + k) * tc;
          for (I c = c0; c < c1; ++c) out[c] = src[(c * kk + k) * np + q];
        }
      }
  }
}
// 4x4 register tiles within 16x16 blocks: loads of 4 contiguous pixels per row, stores of 4
// contiguous channels per pixel.
void tr_4x4(const float* src, float* dst, I tc, I kk, I np) {
  for (I q0 = 0; q0 < np; q0 += 16) {
    const I q1 = std::min(np, q0 + 16);
    for (I k = 0; k < kk; ++k)
      for (I c0 = 0; c0 < tc; c0 += 16) {
        const I c1 = std::min(tc, c0 + 16);
        I q = q0;
        for (; q + 4 <= q1; q += 4) {
          I c = c0;
          for (; c + 4 <= c1; c += 4) {
            float t[4][4];
            for (int i = 0; i < 4; ++i)
              for (int j = 0; j < 4; ++j) t[i][j] = src[((c + i) * kk + k) * np + q + j];
            for (int j = 0; j < 4; ++j)
              for (int i = 0; i < 4; ++i) dst[((q + j) * kk + k) * tc + c + i] = t[i][j];
          }
          for (; c < c1; ++c)
            for (int j = 0; j < 4; ++j) dst[((q + j) * kk + k) * tc + c] = src[(c * kk + k) * np + q + j];
        }
        for (; q < q1; ++q)
          for (I c = c0; c < c1; ++c) dst[(q * kk + k) * tc + c] = src[(c * kk + k) * np + q];
      }
  }
}
template <typename F>
double best(F f) { double b = 1e30; for (int r = 0; r < 7; ++r) { auto t0 = std::chrono::steady_clock::now(); f(); b = std::min(b, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()); } return b; }
int main() {
  struct S { const char* n; I tc, kk, np; } shapes[] = {{"s64-b1 tile 227", 227, 9, 4096}, {"c3-det tile 46", 46, 9, 20000}, {"s32-b1", 64, 9, 1024}};
  for (auto s : shapes) {
    std::vector<float> src(s.tc * s.kk * s.np), d1(src.size()), d2(src.size()), d3(src.size());
    for (size_t i = 0; i < src.size(); ++i) src[i] = float(i % 1000);
    double a = best([&] { tr_blocked<16>(src.data(), d1.data(), s.tc, s.kk, s.np); });
    double b = best([&] { tr_blocked<32>(src.data(), d2.data(), s.tc, s.kk, s.np); });
    double c = best([&] { tr_4x4(src.data(), d3.data(), s.tc, s.kk, s.np); });
    std::printf("%s (%.0f MB): blocked16 %.2f ms, blocked32 %.2f ms, 4x4 %.2f ms, equal %d %d\n", s.n, src.size() * 4 / 1e6, a, b, c, d1 == d2, d1 == d3);
  }
}
