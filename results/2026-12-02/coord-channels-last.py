"""Issue 24: the offset/mask pass gathering its corners from a channels-last padded input.

The tip's pass reads the corners of a block of 8 channels from 8 planes of a planar padded copy:
two rows of each plane per entry. The variant `clin` takes the channels-last padded copy that the
forward already builds (`padded_copy(..., true)`), so a corner's channels are adjacent. Only the
addresses change: every value, expression and sum order is the tip's. Not a patch (yet).

    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-channels-last.py
    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-interleave.py check clin
    PYTHONPATH=. .venv/bin/python results/2026-12-02/coord-interleave.py ab 1 patched,clin
"""
from tvdcn import standalone

EDITS = [
    ("""    const scalar_t* in =
        padded + (b * tile_channels + (c - c_begin)) * padded_plane;
""", """    const scalar_t* in = padded + b * padded_plane * tile_channels + (c - c_begin);
"""),
    ("""        const scalar_t* q = in + plan_idx[e];
        scalar_t* cp = col_row + p;
        for (index_t j = 0; j < n_c; ++j) {
          const scalar_t v1 = q[0], v2 = q[1];
          const scalar_t v3 = q[padded_w], v4 = q[padded_w + 1];
""", """        const scalar_t* q = in + plan_idx[e] * tile_channels;
        scalar_t* cp = col_row + p;
        for (index_t j = 0; j < n_c; ++j) {
          const scalar_t v1 = q[0], v2 = q[tile_channels];
          const scalar_t v3 = q[padded_w * tile_channels];
          const scalar_t v4 = q[(padded_w + 1) * tile_channels];
"""),
    ("""          *cp = m * val;
          q += padded_plane;
""", """          *cp = m * val;
          q += 1;
"""),
    ("""  const Tensor padded = padded_copy(input, c_begin, c_end, false);
""", """  const Tensor padded = padded_copy(input, c_begin, c_end, true);
"""),
]


def kernel(tip: str) -> str:
    for old, new in EDITS:
        if tip.count(old) != 1:
            raise SystemExit(f"expected one {old!r}")
        tip = tip.replace(old, new)
    return tip


if __name__ == "__main__":
    if not (standalone.ROOT / "patched" / "build").exists():  # the tip, staged and built once
        standalone.stage(["patched"])
        standalone.build(dirs=[standalone.ROOT / "patched"])
    tip = (standalone.ROOT / "patched" / "cpu" / standalone.KERNEL.name).read_text()
    d = standalone.clone(standalone.ROOT / "patched", "clin", kernel(tip), prototype="clin")
    print(standalone.build(dirs=[d]))
