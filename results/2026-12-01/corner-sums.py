"""Issue 24, prototypes, not patches: the offset and mask gradients from corner sums.

The tip's offset/mask pass forms, per channel and per (tap, pixel), both coordinate weights and the
bilinear value (about twenty flops besides its loads). Both gradients are linear in sums over the
group's channels, so the channel loop can accumulate those alone and the tile combine them once:

  proto_cs    four sums S_i = sum of col * v_i (four multiply-adds per channel):
                grad_offset_y = m * (dx * (S4 - S2) + (1 - dx) * (S3 - S1))
                grad_offset_x = m * (dy * (S4 - S3) + (1 - dy) * (S2 - S1))
                grad_mask     = w1 S1 + w2 S2 + w3 S3 + w4 S4  (0 with no corner inside)
  proto_cs8   eight sums: col * (v4 - v2), col * (v3 - v1), col * (v4 - v3), col * (v2 - v1) for
              the offsets (an infinite corner meets the other corners of its own channel, as in
              upstream's formula), and the four S_i read through the zero block where no corner
              is inside (upstream's bilinear value is 0 there: the sum is of col * 0)
  proto_cs8r  proto_cs8 with the channels as the inner loop, the eight sums in registers

Sums are reassociated, so grad_offset and grad_mask round differently (a patch would declare it);
each task still owns its entries, so the result does not depend on the thread count. A later
channel tile of a group adds its share to what the earlier tiles stored.

  .venv/bin/python results/2026-12-01/corner-sums.py build      # stage the tip and the prototypes
  .venv/bin/python results/2026-12-01/corner-sums.py check      # error against float64, thread bits
  .venv/bin/python results/2026-12-01/corner-sums.py nonfinite  # where results are NaN/Inf vs the tip
  .venv/bin/python -m tvdcn.bench --variants sa:patched,sa:proto_cs,sa:proto_cs8r --mode train ...
"""
import sys

sys.path.insert(0, "/work/main")
from tvdcn import standalone  # noqa: E402

# The rows of grad_offset (y, x) and grad_mask that tap k of the tile writes.
OUT_ROWS = """    scalar_t* go_y =
        grad_offset + ((b * n_offset_grps + g) * 2 * kk + 2 * k) * out_hw +
        pix_begin;
    scalar_t* go_x = go_y + out_hw;
    scalar_t* gmask =
        grad_mask + ((b * n_offset_grps + g) * kk + k) * out_hw + pix_begin;
"""
OLD_LOOP_START = "  // Only the tile [c_begin, c_end) is in `col` and `padded`. A later tile of\n"
OLD_LOOP_END = """      for (index_t p = 0; p < n_pix; ++p) {
        gmask[p] = gm[k * n_pix + p];
      }
    }
  }
}
"""
NEW_LOOP = """  const index_t c_per_offset_grp = channels / n_offset_grps;
  const index_t c_lo = std::max(g * c_per_offset_grp, c_begin);
  const index_t c_hi = std::min((g + 1) * c_per_offset_grp, c_end);
  const index_t tile_channels = c_end - c_begin;
  scalar_t* s1 = gm + n;
  scalar_t* s2 = s1 + n;
  scalar_t* s3 = s2 + n;
  scalar_t* s4 = s3 + n;
  std::fill(s1, s1 + 4 * n, scalar_t(0));
  const index_t col_stride = batch_sz * out_hw;
  for (index_t c = c_lo; c < c_hi; ++c) {
    const scalar_t* in =
        padded + (b * tile_channels + (c - c_begin)) * padded_plane;
    for (index_t k = 0; k < kk; ++k) {
      const scalar_t* col_row =
          col + ((c - c_begin) * kk + k) * col_stride + b * out_hw + pix_begin;
      const index_t e0 = k * n_pix;
      for (index_t p = 0; p < n_pix; ++p) {
        const index_t e = e0 + p;
        const scalar_t* q = in + plan_idx[e];
        const scalar_t cv = col_row[p];
        s1[e] += cv * q[0];
        s2[e] += cv * q[1];
        s3[e] += cv * q[padded_w];
        s4[e] += cv * q[padded_w + 1];
      }
    }
  }
  const bool first = c_lo == g * c_per_offset_grp;
  for (index_t k = 0; k < kk; ++k) {
""" + OUT_ROWS + """    for (index_t p = 0; p < n_pix; ++p) {
      const index_t e = k * n_pix + p;
      const scalar_t m = pm[e];
      const scalar_t ty =
          m * (pdx[e] * (s4[e] - s2[e]) + pomx[e] * (s3[e] - s1[e]));
      const scalar_t tx =
          m * (pdy[e] * (s4[e] - s3[e]) + pomy[e] * (s2[e] - s1[e]));
      go_y[p] = first ? ty : go_y[p] + ty;
      go_x[p] = first ? tx : go_x[p] + tx;
      if (use_mask) {
        const scalar_t tm = plan_inside[e]
            ? w1[e] * s1[e] + w2[e] * s2[e] + w3[e] * s3[e] + w4[e] * s4[e]
            : scalar_t(0);
        gmask[p] = first ? tm : gmask[p] + tm;
      }
    }
  }
}
"""
OLD_SCRATCH = "scratch<scalar_t>(12 * kk * tile, out_of_memory)"
NEW_SCRATCH = "scratch<scalar_t>(16 * kk * tile, out_of_memory)"

# The same with eight sums per sample, which keep upstream's non-finite results: the four corner
# differences that the offset gradients weight (an infinite corner meets an infinite corner of the
# same channel, as upstream's per-channel formula has it), and the four corner sums of the mask
# gradient read through the zero block where the position has no corner inside (upstream's
# bilinear value is 0 there, so the sum is of col * 0).
NEW_LOOP8 = NEW_LOOP.replace("""  scalar_t* s4 = s3 + n;
  std::fill(s1, s1 + 4 * n, scalar_t(0));""", """  scalar_t* s4 = s3 + n;
  scalar_t* d42 = s4 + n;
  scalar_t* d31 = d42 + n;
  scalar_t* d43 = d31 + n;
  scalar_t* d21 = d43 + n;
  std::fill(s1, s1 + 8 * n, scalar_t(0));""").replace("""        const scalar_t* q = in + plan_idx[e];
        const scalar_t cv = col_row[p];
        s1[e] += cv * q[0];
        s2[e] += cv * q[1];
        s3[e] += cv * q[padded_w];
        s4[e] += cv * q[padded_w + 1];""", """        const scalar_t* q = in + plan_idx[e];
        const scalar_t cv = col_row[p];
        const scalar_t v1 = q[0], v2 = q[1];
        const scalar_t v3 = q[padded_w], v4 = q[padded_w + 1];
        d42[e] += cv * (v4 - v2);
        d31[e] += cv * (v3 - v1);
        d43[e] += cv * (v4 - v3);
        d21[e] += cv * (v2 - v1);
        if (use_mask) {
          const scalar_t* r = in + (plan_inside[e] ? plan_idx[e] : zero_block);
          s1[e] += cv * r[0];
          s2[e] += cv * r[1];
          s3[e] += cv * r[padded_w];
          s4[e] += cv * r[padded_w + 1];
        }""").replace("""      const scalar_t ty =
          m * (pdx[e] * (s4[e] - s2[e]) + pomx[e] * (s3[e] - s1[e]));
      const scalar_t tx =
          m * (pdy[e] * (s4[e] - s3[e]) + pomy[e] * (s2[e] - s1[e]));""", """      const scalar_t ty = m * (pdx[e] * d42[e] + pomx[e] * d31[e]);
      const scalar_t tx = m * (pdy[e] * d43[e] + pomy[e] * d21[e]);""").replace("""        const scalar_t tm = plan_inside[e]
            ? w1[e] * s1[e] + w2[e] * s2[e] + w3[e] * s3[e] + w4[e] * s4[e]
            : scalar_t(0);""", """        const scalar_t tm =
            w1[e] * s1[e] + w2[e] * s2[e] + w3[e] * s3[e] + w4[e] * s4[e];""")
assert NEW_LOOP8.count("d42") == 4 and "r[padded_w + 1]" in NEW_LOOP8 and "plan_inside[e]\n" not in NEW_LOOP8
NEW_SCRATCH8 = "scratch<scalar_t>(20 * kk * tile, out_of_memory)"

# Eight sums held in registers: the channels are the inner loop of each (tap, pixel), so nothing is
# stored per channel; reads walk the tile's planes and column rows at a fixed offset.
NEW_LOOP8R = """  const index_t c_per_offset_grp = channels / n_offset_grps;
  const index_t c_lo = std::max(g * c_per_offset_grp, c_begin);
  const index_t c_hi = std::min((g + 1) * c_per_offset_grp, c_end);
  const index_t tile_channels = c_end - c_begin;
  const index_t col_stride = batch_sz * out_hw;
  const bool first = c_lo == g * c_per_offset_grp;
  const scalar_t* in0 =
      padded + (b * tile_channels + (c_lo - c_begin)) * padded_plane;
  for (index_t k = 0; k < kk; ++k) {
    const scalar_t* col0 =
        col + ((c_lo - c_begin) * kk + k) * col_stride + b * out_hw + pix_begin;
""" + OUT_ROWS + """    for (index_t p = 0; p < n_pix; ++p) {
      const index_t e = k * n_pix + p;
      const index_t at = plan_idx[e];
      const index_t mat = plan_inside[e] ? at : zero_block;
      scalar_t a42 = 0, a31 = 0, a43 = 0, a21 = 0;
      scalar_t s1 = 0, s2 = 0, s3 = 0, s4 = 0;
      const scalar_t* in = in0;
      const scalar_t* cvp = col0 + p;
      for (index_t c = c_lo; c < c_hi; ++c) {
        const scalar_t* q = in + at;
        const scalar_t cv = *cvp;
        const scalar_t v1 = q[0], v2 = q[1];
        const scalar_t v3 = q[padded_w], v4 = q[padded_w + 1];
        a42 += cv * (v4 - v2);
        a31 += cv * (v3 - v1);
        a43 += cv * (v4 - v3);
        a21 += cv * (v2 - v1);
        if (use_mask) {
          const scalar_t* r = in + mat;
          s1 += cv * r[0];
          s2 += cv * r[1];
          s3 += cv * r[padded_w];
          s4 += cv * r[padded_w + 1];
        }
        in += padded_plane;
        cvp += kk * col_stride;
      }
      const scalar_t m = pm[e];
      const scalar_t ty = m * (pdx[e] * a42 + pomx[e] * a31);
      const scalar_t tx = m * (pdy[e] * a43 + pomy[e] * a21);
      go_y[p] = first ? ty : go_y[p] + ty;
      go_x[p] = first ? tx : go_x[p] + tx;
      if (use_mask) {
        const scalar_t tm = w1[e] * s1 + w2[e] * s2 + w3[e] * s3 + w4[e] * s4;
        gmask[p] = first ? tm : gmask[p] + tm;
      }
    }
  }
}
"""


def kernel(loop: str = NEW_LOOP, scratch: str = NEW_SCRATCH) -> str:
    """The staged tip's kernel file with the corner-sum pass (stage patched first)."""
    src = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    a = src.index(OLD_LOOP_START)
    b = src.index(OLD_LOOP_END, a) + len(OLD_LOOP_END)
    assert src.count(OLD_SCRATCH) == 1
    return (src[:a] + loop + src[b:]).replace(OLD_SCRATCH, scratch)


def build() -> None:
    standalone.stage(["patched"])
    dst = standalone.clone(standalone.ROOT / "patched", "proto_cs", kernel(), prototype="corner sums")
    dst8 = standalone.clone(standalone.ROOT / "patched", "proto_cs8", kernel(NEW_LOOP8, NEW_SCRATCH8),
                            prototype="eight sums")
    dst8r = standalone.clone(standalone.ROOT / "patched", "proto_cs8r", kernel(NEW_LOOP8R),
                             prototype="eight sums in registers")
    for d in (standalone.ROOT / "patched", dst, dst8, dst8r):
        print(standalone._build_one(d), flush=True)


def check() -> None:
    """grad_offset and grad_mask against the float64 op, next to the tip's error; thread bits."""
    import torch

    ops = {}
    for name in ("patched", "proto_cs", "proto_cs8", "proto_cs8r"):
        meta = standalone.ROOT / name
        torch.ops.load_library(str(meta / "build" / f"{standalone.namespace(name)}.so"))
        ops[name] = getattr(torch.ops, standalone.namespace(name))
    torch.manual_seed(0)
    shapes = [  # batch, in, out, size, offset groups, weight groups, mask
        (1, 64, 64, 32, 1, 1, True), (2, 48, 32, 17, 2, 1, True), (1, 256, 64, 16, 1, 1, True),
        (3, 16, 8, 9, 4, 2, False), (1, 96, 96, 96, 1, 1, True),
        (1, 256, 64, 64, 1, 1, True), (1, 192, 64, 72, 3, 1, True)]  # the last two in channel tiles
    for b, cin, cout, hw, og, wg, use_mask in shapes:
        x = torch.randn(b, cin, hw, hw, dtype=torch.float64)
        w = torch.randn(cout, cin // wg, 3, 3, dtype=torch.float64)
        off = torch.randn(b, 2 * og * 9, hw, hw, dtype=torch.float64) * 2
        mask = torch.rand(b, og * 9, hw, hw, dtype=torch.float64) if use_mask else torch.zeros(b, 1, dtype=torch.float64)
        bias = torch.randn(cout, dtype=torch.float64)
        gout = torch.randn(b, cout, hw, hw, dtype=torch.float64)
        args = (1, 1, 1, 1, 1, 1, wg, og, use_mask)
        ref = ops["patched"]._deform_conv2d_backward(gout, x, w, off, mask, bias, *args)
        line = f"b{b} c{cin}->{cout} {hw}x{hw} og{og} wg{wg} mask={use_mask}:"
        for name, op in ops.items():
            errs, bits = [], []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                got = op._deform_conv2d_backward(*(t.float() for t in (gout, x, w, off, mask, bias)), *args)
                bits.append(got)
            same = all(torch.equal(p, q) for p, q in zip(*bits))
            for i, label in ((2, "offset"), (3, "mask")):
                if label == "mask" and not use_mask:
                    continue
                r = ref[i]
                errs.append(f"{label} {((bits[0][i].double() - r).abs().max() / r.abs().max()).item():.2e}")
            line += f"  {name}: {', '.join(errs)}, 1==2 threads {same}"
        print(line, flush=True)


def nonfinite() -> None:
    """Where grad_offset and grad_mask are NaN or infinite, tip against prototype, on non-finite
    data, exact border positions and a non-finite grad_out (the suite's test_hardening edits)."""
    import torch

    ops = {}
    for name in ("patched", "proto_cs", "proto_cs8", "proto_cs8r"):
        torch.ops.load_library(str(standalone.ROOT / name / "build" / f"{standalone.namespace(name)}.so"))
        ops[name] = getattr(torch.ops, standalone.namespace(name))
    g = torch.Generator().manual_seed(0)
    B, C, O, H, W, og = 3, 4, 6, 7, 8, 2
    edits = {
        "nan input": lambda t: t["x"][0, 1, 2:4, 3:5].fill_(float("nan")),
        "inf input": lambda t: t["x"][0, 0, 0, 0].fill_(float("inf")),
        "inf region": lambda t: t["x"][1, :, 2:5, 2:5].fill_(float("inf")),
        "-inf/+inf": lambda t: (t["x"][1, 0, 2:5, 2:5].fill_(float("inf")),
                                t["x"][1, 1, 2:5, 2:5].fill_(float("-inf"))),
        "nan mask": lambda t: t["m"][1, 3, 1:3, 2].fill_(float("nan")),
        "nan weight": lambda t: t["w"][2, 0, 1, 1].fill_(float("nan")),
        "inf grad_out": lambda t: t["go"][0, 1, 3, 3].fill_(float("inf")),
        "nan grad_out": lambda t: t["go"][2, 4, 0, 0].fill_(float("nan")),
        # positions exactly on -1 and 0 (rows and columns): integer offsets
        "border": lambda t: t["off"].copy_(torch.randint(-3, 3, t["off"].shape, generator=g).float()),
    }
    for label, edit in edits.items():
        t = dict(x=torch.randn(B, C, H, W, generator=g), w=torch.randn(O, C // 2, 3, 3, generator=g),
                 off=torch.randn(B, 2 * og * 9, H, W, generator=g), m=torch.rand(B, og * 9, H, W, generator=g),
                 b=torch.randn(O, generator=g), go=torch.randn(B, O, H, W, generator=g))
        edit(t)
        res = {n: op._deform_conv2d_backward(t["go"], t["x"], t["w"], t["off"], t["m"], t["b"],
                                             1, 1, 1, 1, 1, 1, 2, og, True) for n, op in ops.items()}
        line = f"{label:>12}:"
        for proto in ("proto_cs", "proto_cs8", "proto_cs8r"):
            line += f"  {proto}"
            for i, k in ((2, "offset"), (3, "mask")):
                a, b = res["patched"][i], res[proto][i]
                same = torch.equal(a.isnan(), b.isnan()) and torch.equal(a.isinf(), b.isinf()) and \
                    torch.equal(a[a.isinf()], b[b.isinf()])
                line += f" {k} {int((~a.isfinite()).sum())}/{int((~b.isfinite()).sum())}{'' if same else ' DIFFER'}"
        print(line, flush=True)


if __name__ == "__main__":
    {"build": build, "check": check, "nonfinite": nonfinite}[sys.argv[1]]()
