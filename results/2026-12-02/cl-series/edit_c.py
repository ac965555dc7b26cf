"""Patch C of the channels-last backward: prefetch the runs of the entries ahead."""
import sys
from pathlib import Path

path = Path(sys.argv[1])
src = path.read_text()


def sub(old: str, new: str) -> None:
    global src
    if src.count(old) != 1:
        raise SystemExit(f"not quoted once: {old[:70]!r}")
    src = src.replace(old, new)


sub("""// The channels [c_begin, c_end) of `input` with one zero row and column above""",
    """// Asks for the cache lines of the n elements from p, ahead of their use
// (GCC and Clang; elsewhere nothing). It changes no result.
template <typename T>
inline void prefetch_run(const T* p, int64_t n) {
#if defined(__GNUC__)
  for (int64_t i = 0; i < n; i += 64 / int64_t(sizeof(T))) {
    __builtin_prefetch(p + i);
  }
#else
  (void)p;
  (void)n;
#endif
}

// Entries ahead whose runs the backward's channels-last passes prefetch: their
// runs are far apart in memory, a few cache lines each.
constexpr int64_t kPrefetchEntries = 4;

// The channels [c_begin, c_end) of `input` with one zero row and column above""")

# col2im: the next entries of both buckets.
sub("""      const bool top = u == u_end || (t != t_end && *t < *u);
      const int64_t* at = top ? t++ : u++;
""", """      const bool top = u == u_end || (t != t_end && *t < *u);
      const int64_t* at = top ? t++ : u++;
      if (t + kPrefetchEntries < t_end) {
        prefetch_run(
            img_col + col_pos[t + kPrefetchEntries - order] * tap_ld + lo, n);
      }
      if (u + kPrefetchEntries < u_end) {
        prefetch_run(
            img_col + col_pos[u + kPrefetchEntries - order] * tap_ld + lo, n);
      }
""")

# The offset/mask pass: the corners and the column run of the entry ahead.
sub("""      scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
""", """      if (p + kPrefetchEntries < n_pix) {
        const scalar_t* ahead = img + plan_idx[e + kPrefetchEntries] * tc;
        prefetch_run(ahead, tc + n_c);
        prefetch_run(ahead + padded_w * tc, tc + n_c);
        prefetch_run(cp + kPrefetchEntries * col_ld, n_c);
      }
      scalar_t sy = gy[e], sx = gx[e], sm = gm[e];
""")
path.write_text(src)
print("ok")
