"""Issue 24: col2im with the block's channels outside chunks of 16 or 64 entries (cc16, cc64), to test
whether grad_input planes a multiple of 4 KB apart (s32, s64) slow its channel loop (4K aliasing
between one channel's store and the next one's load). Every element still gets its shares in
(tap, pixel) order. Not a patch.

    PYTHONPATH=. .venv/bin/python results/2026-12-02/col2im-chunk.py       # stage and build cc16, cc64
    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-interleave.py check cc16,cc64
    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-interleave.py ab 1 patched,cc16,cc64 8
"""
from tvdcn import standalone

if not (standalone.ROOT / "patched" / "build").exists():  # the tip, staged and built once
    standalone.stage(["patched"])
    standalone.build(dirs=[standalone.ROOT / "patched"])
tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
OLD = """    for (index_t pix = 0; pix < out_hw; ++pix) {
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
"""
NEW = """    for (index_t pix0 = 0; pix0 < out_hw; pix0 += CHUNK) {
      const index_t pix1 = std::min<index_t>(out_hw, pix0 + CHUNK);
      for (index_t j = 0; j < n_channels; ++j) {
        const scalar_t* col_j = col_row + j * col_channel;
        scalar_t* grad_j = grad + j * plane;
        for (index_t pix = pix0; pix < pix1; ++pix) {
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
          const scalar_t cv = col_j[pix];
          scalar_t* gp = grad_j + plan_idx[e];
          if (use & 1) {
            gp[0] += mw[0] * cv;
          }
          if (use & 2) {
            gp[1] += mw[1] * cv;
          }
          if (use & 4) {
            gp[width] += mw[2] * cv;
          }
          if (use & 8) {
            gp[width + 1] += mw[3] * cv;
          }
        }
      }
    }
"""
assert tip.count(OLD) == 1
dirs = [standalone.clone(standalone.ROOT / "patched", f"cc{n}", tip.replace(OLD, NEW.replace("CHUNK", str(n))), prototype="col2im-chunk") for n in (16, 64)]
print(standalone.build(dirs=dirs))
