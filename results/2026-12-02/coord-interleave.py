"""Issue 24: the offset/mask pass with several plan entries in flight per block of channels.

The 42-patch tip's pass runs, per entry (tap, pixel), a block of 8 channels whose three sums are
updated in memory (`gy[e] += ...`, so gcc neither keeps them in registers nor vectorizes the
channel loop as an in-order reduction, which would unfuse aarch64's multiply-adds). Each channel's
update then waits for the previous one's store of the same sum: one dependent chain per entry.
The variants below keep every sum's terms, expressions and order, and only change which entries
are in flight together:

- `il2`, `il4`: U consecutive pixels of a tap per pass over the block's channels, their plan held
  in locals, each channel's U updates independent;
- `jout`: the channel loop outside the pixel loop within a block (the plan re-read per channel).

    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-interleave.py build
    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-interleave.py check      # bits vs the tip
    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-interleave.py ab 1       # backward alone

Not a patch.
"""
from __future__ import annotations

import sys

from tvdcn import standalone

OLD = """      const index_t e0 = k * n_pix;
      for (index_t p = 0; p < n_pix; ++p) {
        const index_t e = e0 + p;
        const scalar_t m = pm[e];
        const scalar_t dx = pdx[e], omx = pomx[e], dy = pdy[e], omy = pomy[e];
        const bool inside = plan_inside[e];
        const scalar_t a1 = w1[e], a2 = w2[e], a3 = w3[e], a4 = w4[e];
        const scalar_t* q = in + plan_idx[e];
        scalar_t* cp = col_row + p;
        for (index_t j = 0; j < n_c; ++j) {
          const scalar_t v1 = q[0], v2 = q[1];
          const scalar_t v3 = q[padded_w], v4 = q[padded_w + 1];
          const scalar_t cv = *cp;
          const scalar_t wy = dx * (v4 - v2) + omx * (v3 - v1);
          gy[e] += m * wy * cv;
          const scalar_t wx = dy * (v4 - v3) + omy * (v2 - v1);
          gx[e] += m * wx * cv;
          const scalar_t val =
              inside ? (a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4) : scalar_t(0);
          if (use_mask) {
            gm[e] += cv * val;
          }
          *cp = m * val;
          q += padded_plane;
          cp += col_channel;
        }
      }
"""

IL = """      const index_t e0 = k * n_pix;
      const auto entries = [&](index_t p, auto width) {
        constexpr index_t U = decltype(width)::value;
        scalar_t m[U], dx[U], omx[U], dy[U], omy[U], a1[U], a2[U], a3[U], a4[U];
        bool inside[U];
        const scalar_t* q[U];
        for (index_t u = 0; u < U; ++u) {
          const index_t e = e0 + p + u;
          m[u] = pm[e];
          dx[u] = pdx[e];
          omx[u] = pomx[e];
          dy[u] = pdy[e];
          omy[u] = pomy[e];
          inside[u] = plan_inside[e];
          a1[u] = w1[e];
          a2[u] = w2[e];
          a3[u] = w3[e];
          a4[u] = w4[e];
          q[u] = in + plan_idx[e];
        }
        scalar_t* cp = col_row + p;
        for (index_t j = 0; j < n_c; ++j) {
          for (index_t u = 0; u < U; ++u) {
            const index_t e = e0 + p + u;
            const scalar_t v1 = q[u][0], v2 = q[u][1];
            const scalar_t v3 = q[u][padded_w], v4 = q[u][padded_w + 1];
            const scalar_t cv = cp[u];
            const scalar_t wy = dx[u] * (v4 - v2) + omx[u] * (v3 - v1);
            gy[e] += m[u] * wy * cv;
            const scalar_t wx = dy[u] * (v4 - v3) + omy[u] * (v2 - v1);
            gx[e] += m[u] * wx * cv;
            const scalar_t val = inside[u]
                ? (a1[u] * v1 + a2[u] * v2 + a3[u] * v3 + a4[u] * v4)
                : scalar_t(0);
            if (use_mask) {
              gm[e] += cv * val;
            }
            cp[u] = m[u] * val;
            q[u] += padded_plane;
          }
          cp += col_channel;
        }
      };
      index_t p = 0;
      for (; p + UU <= n_pix; p += UU) {
        entries(p, std::integral_constant<index_t, UU>{});
      }
      for (; p < n_pix; ++p) {
        entries(p, std::integral_constant<index_t, 1>{});
      }
"""

JOUT = """      const index_t e0 = k * n_pix;
      for (index_t j = 0; j < n_c; ++j) {
        const scalar_t* in_j = in + j * padded_plane;
        scalar_t* col_j = col_row + j * col_channel;
        for (index_t p = 0; p < n_pix; ++p) {
          const index_t e = e0 + p;
          const scalar_t m = pm[e];
          const scalar_t dx = pdx[e], omx = pomx[e], dy = pdy[e], omy = pomy[e];
          const bool inside = plan_inside[e];
          const scalar_t a1 = w1[e], a2 = w2[e], a3 = w3[e], a4 = w4[e];
          const scalar_t* q = in_j + plan_idx[e];
          const scalar_t v1 = q[0], v2 = q[1];
          const scalar_t v3 = q[padded_w], v4 = q[padded_w + 1];
          const scalar_t cv = col_j[p];
          const scalar_t wy = dx * (v4 - v2) + omx * (v3 - v1);
          gy[e] += m * wy * cv;
          const scalar_t wx = dy * (v4 - v3) + omy * (v2 - v1);
          gx[e] += m * wx * cv;
          const scalar_t val =
              inside ? (a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4) : scalar_t(0);
          if (use_mask) {
            gm[e] += cv * val;
          }
          col_j[p] = m * val;
        }
      }
"""

# The whole block loop, for `pv`: pixels in lanes.
OLD_BLOCK = """    for (index_t k = 0; k < kk; ++k) {
      scalar_t* col_row =
          col + ((c - c_begin) * kk + k) * col_ld + b * out_hw + pix_begin;
""" + OLD + """    }
"""

PV = """    for (index_t k = 0; k < kk; ++k) {
      scalar_t* col_row =
          col + ((c - c_begin) * kk + k) * col_ld + b * out_hw + pix_begin;
      for (index_t p0 = 0; p0 < n_pix; p0 += LANES) {
        const index_t e0 = k * n_pix + p0;
        const index_t n_l = std::min<index_t>(LANES, n_pix - p0);
        scalar_t m[LANES], dx[LANES], omx[LANES], dy[LANES], omy[LANES];
        scalar_t a1[LANES], a2[LANES], a3[LANES], a4[LANES];
        scalar_t sy[LANES], sx[LANES], sm[LANES];
        bool ins[LANES];
        index_t idx[LANES];
        for (index_t l = 0; l < n_l; ++l) {
          const index_t e = e0 + l;
          m[l] = pm[e];
          dx[l] = pdx[e];
          omx[l] = pomx[e];
          dy[l] = pdy[e];
          omy[l] = pomy[e];
          a1[l] = w1[e];
          a2[l] = w2[e];
          a3[l] = w3[e];
          a4[l] = w4[e];
          ins[l] = plan_inside[e];
          idx[l] = plan_idx[e];
          sy[l] = gy[e];
          sx[l] = gx[e];
          sm[l] = gm[e];
        }
        for (index_t j = 0; j < n_c; ++j) {
          const scalar_t* in_j = in + j * padded_plane;
          scalar_t* cp = col_row + j * col_channel + p0;
          scalar_t v1[LANES], v2[LANES], v3[LANES], v4[LANES];
          for (index_t l = 0; l < n_l; ++l) {
            const scalar_t* q = in_j + idx[l];
            v1[l] = q[0];
            v2[l] = q[1];
            v3[l] = q[padded_w];
            v4[l] = q[padded_w + 1];
          }
          for (index_t l = 0; l < n_l; ++l) {
            const scalar_t cv = cp[l];
            const scalar_t wy = dx[l] * (v4[l] - v2[l]) + omx[l] * (v3[l] - v1[l]);
            sy[l] += m[l] * wy * cv;
            const scalar_t wx = dy[l] * (v4[l] - v3[l]) + omy[l] * (v2[l] - v1[l]);
            sx[l] += m[l] * wx * cv;
            const scalar_t val = ins[l]
                ? (a1[l] * v1[l] + a2[l] * v2[l] + a3[l] * v3[l] + a4[l] * v4[l])
                : scalar_t(0);
            if (use_mask) {
              sm[l] += cv * val;
            }
            cp[l] = m[l] * val;
          }
        }
        for (index_t l = 0; l < n_l; ++l) {
          gy[e0 + l] = sy[l];
          gx[e0 + l] = sx[l];
          gm[e0 + l] = sm[l];
        }
      }
    }
"""

# pv with the corners loaded in the lane loop (gcc may emulate the gathers).
PV_G = (PV.replace('          scalar_t v1[LANES], v2[LANES], v3[LANES], v4[LANES];\n          for (index_t l = 0; l < n_l; ++l) {\n            const scalar_t* q = in_j + idx[l];\n            v1[l] = q[0];\n            v2[l] = q[1];\n            v3[l] = q[padded_w];\n            v4[l] = q[padded_w + 1];\n          }\n          for (index_t l = 0; l < n_l; ++l) {\n            const scalar_t cv = cp[l];\n', '          for (index_t l = 0; l < n_l; ++l) {\n            const index_t i = idx[l];\n            const scalar_t v1 = in_j[i], v2 = in_j[i + 1];\n            const scalar_t v3 = in_j[i + padded_w], v4 = in_j[i + padded_w + 1];\n            const scalar_t cv = cp[l];\n')
        .replace("v1[l]", "v1").replace("v2[l]", "v2").replace("v3[l]", "v3").replace("v4[l]", "v4"))

VARIANTS = {"il2": IL.replace("UU", "2"), "il4": IL.replace("UU", "4"), "jout": JOUT, "pv8": PV.replace("LANES", "8"), "pv16": PV.replace("LANES", "16"), "pvg": PV_G.replace("LANES", "8")}


def kernel(name: str, tip: str) -> str:
    old = OLD_BLOCK if name.startswith("pv") else OLD
    if tip.count(old) != 1:
        raise SystemExit("the tip's loop is not as quoted")
    src = tip.replace(old, VARIANTS[name])
    if "<type_traits>" not in src:
        src = src.replace("#include <algorithm>", "#include <algorithm>\n#include <type_traits>", 1)
    return src


def build(names: str = "il2,il4,jout") -> None:
    standalone.stage(["patched"])
    tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    dirs = [standalone.clone(standalone.ROOT / "patched", n, kernel(n, tip), prototype=n)
            for n in names.split(",")]
    print(standalone.build(dirs=[standalone.ROOT / "patched", *dirs]), flush=True)


def load_ops(names: list[str]) -> dict:
    return {name: standalone.load(standalone.ROOT / name) for name in names}


def _args(b, cin, cout, s, og=1, wg=1, mask=True, dtype=None, seed=0):
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, cin, s, s, generator=g, dtype=dtype)
    w = torch.randn(cout, cin // wg, 3, 3, generator=g, dtype=dtype)
    off = torch.randn(b, 18 * og, s, s, generator=g, dtype=dtype) * 2
    m = torch.rand(b, 9 * og, s, s, generator=g, dtype=dtype) if mask else torch.zeros(b, 1, dtype=dtype)
    gout = torch.randn(b, cout, s, s, generator=g, dtype=dtype)
    bias = torch.randn(cout, generator=g, dtype=dtype)
    return (gout, x, w, off, m, bias, 1, 1, 1, 1, 1, 1, wg, og, mask)


def check(names: str = "il2,il4,jout") -> None:
    """Every backward result of each variant against the staged tip: shapes with offset groups,
    weight groups, no mask, float64, pixel counts not a multiple of 4; finite, Inf and NaN data;
    1, 2 and 3 threads."""
    import torch

    ops = load_ops(["patched", *names.split(",")])
    shapes = [(1, 64, 64, 32, 1, 1, True, torch.float32), (2, 48, 32, 17, 2, 1, True, torch.float32),
              (3, 16, 8, 9, 4, 2, False, torch.float64), (5, 12, 6, 7, 3, 3, True, torch.float32),
              (40, 4, 5, 7, 1, 1, True, torch.float32), (2, 20, 8, 13, 1, 1, False, torch.float64)]
    bad = total = 0
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        for shape in shapes:
            for data in ("finite", "inf", "nan"):
                a = list(_args(*shape[:6], mask=shape[6], dtype=shape[7]))
                if data != "finite":
                    a[1] = a[1].clone()
                    a[1].view(-1)[:: 7] = float(data)
                ref = ops["patched"]._deform_conv2d_backward(*a)
                for n in names.split(","):
                    out = ops[n]._deform_conv2d_backward(*a)
                    total += 1
                    same = all(torch.equal(r.nan_to_num(1e30, 1e31, -1e31), o.nan_to_num(1e30, 1e31, -1e31))
                               and torch.equal(r.isnan(), o.isnan()) for r, o in zip(ref, out))
                    if not same:
                        bad += 1
                        print("DIFFERS", n, threads, shape, data, flush=True)
    print(f"{bad} of {total} calls differ", flush=True)


def ab(threads: str = "1", names: str = "patched,il2,il4,jout", reps: str = "10") -> None:
    """Backward calls alternated in one process, the best of `reps` per kernel."""
    import time

    import torch

    ops = load_ops(names.split(","))
    torch.set_num_threads(int(threads))
    for cfg, (b, c, s) in {"s32-b1": (1, 64, 32), "s32-b8": (8, 64, 32), "s64-b1": (1, 256, 64),
                           "c3-det": (2, 128, 100)}.items():
        a = _args(b, c, c, s)
        best = dict.fromkeys(ops, 1e9)
        for _ in range(int(reps)):
            for n, op in ops.items():
                t = time.perf_counter()
                op._deform_conv2d_backward(*a)
                best[n] = min(best[n], time.perf_counter() - t)
        print(cfg, {n: round(v * 1e3, 2) for n, v in best.items()}, flush=True)


if __name__ == "__main__":
    {"build": build, "check": check, "ab": ab}[sys.argv[1]](*sys.argv[2:])
