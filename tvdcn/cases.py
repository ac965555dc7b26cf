"""Test cases for deform_conv2d: a case is a plain, JSON-able description; inputs come from its seed.

Used by the verification suite and the benchmark alike. Inputs are generated in float64 from a
seeded generator and then cast, so every process (and every variant) sees bit-identical inputs.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

@dataclass(frozen=True)
class Case:
    batch: int = 2
    cin: int = 4
    cout: int = 6
    h: int = 7
    w: int = 8
    kh: int = 3
    kw: int = 3
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (1, 1)
    dil: tuple[int, int] = (1, 1)
    wgroups: int = 1
    ogroups: int = 1
    mask: bool = True
    bias: bool = True
    dtype: str = "float32"
    # "normal": offsets of a few pixels, many samples off the border; "exact": dyadic values whose
    # every product and sum is exact in float64, so no reduction order can change any result.
    values: str = "normal"
    # Memory layout of the tensor arguments: contiguous, noncontig (every other element of a
    # wider buffer), channels_last, or expanded (input is one image broadcast over the batch
    # with stride 0).
    layout: str = "contiguous"
    # Which arguments require grad (a subset of input, offset, weight, mask, bias).
    requires: tuple[str, ...] = ("input", "offset", "weight", "mask", "bias")
    seed: int = 0

    @property
    def id(self) -> str:
        s = (f"b{self.batch}-c{self.cin}x{self.cout}-{self.h}x{self.w}-k{self.kh}x{self.kw}"
             f"-s{self.stride[0]}{self.stride[1]}-p{self.pad[0]}{self.pad[1]}-d{self.dil[0]}{self.dil[1]}"
             f"-g{self.wgroups}o{self.ogroups}{'-mask' if self.mask else ''}{'-bias' if self.bias else ''}"
             f"-{self.dtype}{'-exact' if self.values == 'exact' else ''}")
        if self.layout != "contiguous":
            s += f"-{self.layout}"
        if self.requires != Case.requires:
            s += "-grad:" + ("+".join(self.requires) or "none")
        return s if self.seed == 0 else f"{s}-seed{self.seed}"

    def out_hw(self) -> tuple[int, int]:
        oh = (self.h + 2 * self.pad[0] - self.dil[0] * (self.kh - 1) - 1) // self.stride[0] + 1
        ow = (self.w + 2 * self.pad[1] - self.dil[1] * (self.kw - 1) - 1) // self.stride[1] + 1
        return oh, ow

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Case":
        d = dict(d)
        for k in ("stride", "pad", "dil", "requires"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def make_inputs(case: Case) -> dict[str, Any]:
    """The op's inputs (and the upstream gradient) for a case; deterministic from its seed."""
    import torch

    g = torch.Generator().manual_seed(hash_seed(case))
    oh, ow = case.out_hw()
    kk = case.kh * case.kw
    f64 = torch.float64

    def rand(*shape: int, lo: float, hi: float) -> "torch.Tensor":
        return torch.rand(*shape, generator=g, dtype=f64) * (hi - lo) + lo

    def dyadic(*shape: int, lo: int, hi: int, den: int) -> "torch.Tensor":
        return torch.randint(lo, hi + 1, shape, generator=g, dtype=torch.int64).to(f64) / den

    shapes = {
        "input": (case.batch, case.cin, case.h, case.w),
        "offset": (case.batch, 2 * case.ogroups * kk, oh, ow),
        "weight": (case.cout, case.cin // case.wgroups, case.kh, case.kw),
        "mask": (case.batch, case.ogroups * kk, oh, ow),
        "bias": (case.cout,),
        "grad_out": (case.batch, case.cout, oh, ow),
    }
    if case.values == "exact":
        t = {
            "input": dyadic(*shapes["input"], lo=-8, hi=8, den=8),
            "offset": dyadic(*shapes["offset"], lo=-20, hi=20, den=8),
            "weight": dyadic(*shapes["weight"], lo=-8, hi=8, den=8),
            "mask": dyadic(*shapes["mask"], lo=0, hi=8, den=8),
            "bias": dyadic(*shapes["bias"], lo=-8, hi=8, den=8),
            "grad_out": dyadic(*shapes["grad_out"], lo=-8, hi=8, den=8),
        }
    else:
        t = {
            "input": rand(*shapes["input"], lo=-1, hi=1),
            "offset": rand(*shapes["offset"], lo=-2.5, hi=2.5),
            "weight": rand(*shapes["weight"], lo=-1, hi=1),
            "mask": rand(*shapes["mask"], lo=0, hi=1),
            "bias": rand(*shapes["bias"], lo=-1, hi=1),
            "grad_out": rand(*shapes["grad_out"], lo=-1, hi=1),
        }
    dtype = getattr(torch, case.dtype)
    if case.layout == "expanded":
        t["input"] = t["input"][:1].expand(shapes["input"])
    return {k: v.to(dtype) for k, v in t.items()}


def _leaf(case: Case, name: str, value: Any) -> tuple[Any, Any]:
    """(leaf tensor that may require grad, the argument passed to the op in the case's layout).

    The argument is a differentiable function of the leaf, so gradients reach the leaf whatever
    the layout; only its strides differ.
    """
    import torch

    wants = name in case.requires
    if case.layout == "expanded" and name == "input":
        leaf = value[:1].clone().requires_grad_(wants)
        return leaf, leaf.expand(value.shape)
    leaf = value.clone().requires_grad_(wants)
    if case.layout == "noncontig":
        # Every other element of a buffer twice as wide in the last dimension.
        wide = torch.stack([leaf, torch.zeros_like(leaf)], dim=-1).flatten(-2)
        return leaf, wide[..., ::2]
    if case.layout == "channels_last" and value.dim() == 4:
        return leaf, leaf.contiguous(memory_format=torch.channels_last)
    return leaf, leaf


def hash_seed(case: Case) -> int:
    return int.from_bytes(hashlib.sha256(case.id.encode()).digest()[:6], "little") ^ case.seed


def run(case: Case, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Forward + backward of ``torchvision.ops.deform_conv2d`` (or, in a standalone kernel's
    process, its equivalent: tvdcn.standalone); returns output and all gradients."""
    import torch

    from .standalone import current_op

    deform_conv2d = current_op()

    t = inputs or make_inputs(case)
    names = ["input", "offset", "weight"] + (["mask"] if case.mask else []) + (["bias"] if case.bias else [])
    leaves, args = {}, {}
    for n in names:
        leaves[n], args[n] = _leaf(case, n, t[n])
    out = deform_conv2d(args["input"], args["offset"], args["weight"], args.get("bias"), stride=case.stride,
                        padding=case.pad, dilation=case.dil, mask=args.get("mask"))
    res = {"out": out.detach()}
    if out.requires_grad:
        out.backward(t["grad_out"])
    for n in names:
        if n in case.requires:
            g = leaves[n].grad
            res[f"grad_{n}"] = g if g is not None else torch.zeros_like(leaves[n])
    return res


# The kernel's bound on the backward's column buffer and its block of images (kBackwardTileBytes,
# kMaxParallelImgs; tests/tooling/test_trailers.py checks them against the kernel file).
BACKWARD_TILE_BYTES = 32 << 20
MAX_PARALLEL_IMGS = 32


def backward_split(case: Case) -> bool:
    """Whether the backward's columns exceed its buffer bound, so that it runs in channel tiles
    (patch 0028; the scope of its declarations, which 0043 ends): the bound test of 0028-0042, from the shape and the dtype it computes in (float32 for
    bfloat16 and float16), with the cache line that pads a row of a multiple of 4 KB (patch 0041;
    before it, this counts a few more layers as split). A superset of the layers that really split
    (the tile's floor of 16 channels can keep a small layer whole), which only relaxes the checks
    there."""
    if case.batch == 0:
        return False
    block = max(d for d in range(1, min(case.batch, MAX_PARALLEL_IMGS) + 1) if case.batch % d == 0)
    oh, ow = case.out_hw()
    element = 8 if case.dtype == "float64" else 4
    row = block * oh * ow * element
    row += 64 if row % 4096 == 0 else 0
    return case.cin * case.kh * case.kw * row > BACKWARD_TILE_BYTES


# The scopes a patch's rounding or thread-dependence declaration can be limited to, by a name in
# brackets ("Rounding-changed: grad_input[split]", tvdcn.series): whether a case is in it.
SCOPES = {"split": backward_split}


def grid() -> list[Case]:
    """The thread-count / equality grid: each shape family at every batch size of interest.

    Batches 33 and 64 go through the parallel-images blocking (blocks of up to 32 images).
    """
    families = [
        Case(),
        Case(cin=4, cout=6, wgroups=2, ogroups=2),
        Case(cin=4, cout=4, ogroups=4),                                  # one offset group per channel
        Case(stride=(2, 2), pad=(0, 0), dil=(2, 2), h=9, w=10),
        Case(kh=2, kw=3, stride=(1, 2), pad=(0, 1), dil=(2, 1)),         # non-square everything
        Case(mask=False, bias=False),
        Case(dtype="float64"),
        Case(cin=6, cout=6, wgroups=3, ogroups=3, kh=1, kw=1, pad=(0, 0), mask=False),
        # One output channel per weight group: the forward's GEMM is small_tile_mm's loop.
        Case(cin=4, cout=2, wgroups=2, ogroups=2),
    ]
    out = [dataclasses.replace(f, batch=b) for f in families for b in (1, 2, 7, 33, 64)]
    out += [
        # Large enough that the im2col loop splits into several chunks at batch 1-2.
        Case(batch=2, cin=16, cout=8, h=24, w=24),
        Case(batch=1, cin=16, cout=8, h=24, w=24, dtype="float64", ogroups=4, wgroups=2),
        # Measured: upstream's own forward/grad_weight vary with the thread count here (GEMM).
        Case(batch=40, cin=4, cout=5, h=7, w=8),
        # The backward's column buffer in channel tiles (patch 0028; at most 32 MiB of columns,
        # at least 16 channels): 28 channels fit here, so the tiles are [0, 28), [28, 48),
        # [48, 76), [76, 96): the weight groups' border (48) ends one, two start inside an offset
        # group (32 channels) and end in the next, and one continues a group.
        Case(batch=8, cin=96, cout=16, h=64, w=64, wgroups=2, ogroups=3),
        # 14 channels fit, the floor makes it 16: tiles [0, 16), [16, 20); no mask.
        Case(batch=2, cin=20, cout=8, h=128, w=128, dtype="float64", mask=False),
        # Paths the shapes above miss (issue 26). One output pixel: small_tile_mm for every group.
        Case(batch=3, cin=4, cout=6, h=3, w=3, pad=(0, 0)),
        # A partial last forward tile: 100 pixels in tiles of 64.
        Case(batch=11, cin=4, cout=6, h=10, w=10),
        # The backward's channel tiles across two 32-image blocks: 16 channels fit, tiles [0, 16)
        # and [16, 32) (each over two offset groups), in each block. Exact values, so that every
        # result is held to baseline's bits although 0028 declares the split gradients changed.
        Case(batch=64, cin=32, cout=4, h=32, w=32, ogroups=4, dtype="float64", values="exact"),
        # A split whose GEMM blocks round unlike baseline's whole GEMM (MKL: grad_weight at 1
        # thread, the columns' last one-channel block at 2): tiles [0, 16), [16, 17). What 0028's
        # "[split]" declarations are for (results/2026-11-30/tile-rounding.txt).
        Case(batch=1, cin=17, cout=6, h=256, w=256),
        # Column rows of a multiple of 4 KB, which patch 0041 pads by a cache line, in one channel
        # tile, so held to baseline's bits: 2 x 32 x 32 floats; 16 x 32 doubles, with groups.
        Case(batch=2, cin=8, cout=8, h=32, w=32),
        Case(batch=1, cin=4, cout=6, h=16, w=32, dtype="float64", wgroups=2, ogroups=2),
        # Under the lowered build (tvdcn.lowered) the shapes from batch 3 on (these too) also run
        # several forward chunks, the 64-bit instantiations, and channel tiles in every block.
    ]
    # Exact arithmetic: no reduction order can change these, so baseline itself must be invariant.
    out += [dataclasses.replace(f, batch=b, dtype="float64", values="exact")
            for f in families[:5] for b in (2, 33)]
    out.append(Case(batch=2, cin=16, cout=8, h=24, w=24, dtype="float64", values="exact"))
    out += [Case(batch=33, cin=4, cout=2, wgroups=2, ogroups=2, dtype="float64", values="exact"),
            Case(batch=3, cin=4, cout=6, h=3, w=3, pad=(0, 0), dtype="float64", values="exact")]
    return out
