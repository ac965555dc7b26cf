"""An independent reference of deform_conv2d (DCNv1 without mask, DCNv2 with), from the definition.

    out[b, o, p] = bias[o] + sum_{c in group(o)} sum_{k} weight[o, c, k] * mask[b, g(c), k, p]
                   * sample(input[b, c], pos_y, pos_x)
    pos = p * stride - padding + k * dilation + offset[b, g(c), k, p]

``sample`` is bilinear interpolation with torchvision's border rule: the sample is taken only when
-1 < y < H and -1 < x < W (else it is zero), and corners outside the image read as zero.

Written with whole-tensor torch ops (a gather over a zero-bordered copy of the input), in float64,
so that autograd gives all five gradients and a few thousand fuzzed configurations take seconds.
It shares no code with torchvision and needs only torch.
"""
from __future__ import annotations

import torch


def sampling_positions(offset: torch.Tensor, kernel, stride, padding, dilation, dtype: torch.dtype,
                       position_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, x) of every sample, each (batch, offset_groups, kh * kw, out_h, out_w): the tap's
    position plus its offset, added in ``position_dtype`` (default ``dtype``), returned in ``dtype``."""
    (KH, KW), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    B, _, OH, OW = offset.shape
    K = KH * KW
    ky = (torch.arange(KH, dtype=dtype) * dh).repeat_interleave(KW)       # (K,)
    kx = (torch.arange(KW, dtype=dtype) * dw).repeat(KH)
    oy = torch.arange(OH, dtype=dtype) * sh - ph                           # (OH,)
    ox = torch.arange(OW, dtype=dtype) * sw - pw
    off = offset.reshape(B, offset.shape[1] // (2 * K), K, 2, OH, OW)
    pd = position_dtype or dtype
    y = ((oy.view(1, 1, 1, OH, 1) + ky.view(1, 1, K, 1, 1)).to(pd) + off[:, :, :, 0].to(pd)).to(dtype)
    x = ((ox.view(1, 1, 1, 1, OW) + kx.view(1, 1, K, 1, 1)).to(pd) + off[:, :, :, 1].to(pd)).to(dtype)
    return y, x


def deform_conv2d_ref(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None = None, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                      mask: torch.Tensor | None = None,
                      position_dtype: torch.dtype | None = None) -> torch.Tensor:
    """deform_conv2d from the definition; differentiable in every tensor argument.

    ``position_dtype``: round each sampling position (integer tap position + offset) to this
    dtype first, as a kernel working in that dtype does, so that a float32 position that rounds
    onto an integer or onto the -1 border is classified the same way on both sides.
    """
    B, C, H, W = input.shape
    O, Cg, KH, KW = weight.shape
    groups = C // Cg
    G = offset.shape[1] // (2 * KH * KW)
    OH, OW = offset.shape[2], offset.shape[3]
    K = KH * KW
    dt = input.dtype

    y, x = sampling_positions(offset, (KH, KW), stride, padding, dilation, dt, position_dtype)
    inside = (y > -1) & (y < H) & (x > -1) & (x < W)
    # Positions that are not sampled are moved to 0 (their value is masked out below), so that
    # floor() and the gather stay defined whatever the offset (NaN, Inf, huge).
    y = torch.where(inside, y, torch.zeros_like(y))
    x = torch.where(inside, x, torch.zeros_like(x))
    y0 = torch.floor(y).detach()
    x0 = torch.floor(x).detach()
    ly, lx = y - y0, x - x0

    # Zero border of one pixel: corner -1 and H / W read zero.
    padded = torch.nn.functional.pad(input, (1, 1, 1, 1))                  # (B, C, H+2, W+2)
    flat = padded.reshape(B, G, C // G, (H + 2) * (W + 2))

    def corner(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        idx = ((yi + 1) * (W + 2) + (xi + 1)).long().reshape(B, G, 1, K * OH * OW)
        idx = idx.expand(B, G, C // G, K * OH * OW)
        return torch.gather(flat, 3, idx).reshape(B, G, C // G, K, OH, OW)

    def bc(t: torch.Tensor) -> torch.Tensor:   # (B, G, K, OH, OW) -> broadcast over channels
        return t.unsqueeze(2)

    val = (bc((1 - ly) * (1 - lx)) * corner(y0, x0) + bc((1 - ly) * lx) * corner(y0, x0 + 1)
           + bc(ly * (1 - lx)) * corner(y0 + 1, x0) + bc(ly * lx) * corner(y0 + 1, x0 + 1))
    val = val * bc(inside.to(dt))
    if mask is not None:
        val = val * bc(mask.reshape(B, G, K, OH, OW))
    cols = val.reshape(B, C, K, OH * OW)                                    # channel-major, like im2col
    cols = cols.reshape(B, groups, Cg * K, OH * OW)
    w = weight.reshape(groups, O // groups, Cg * K)
    out = torch.einsum("gok,bgkp->bgop", w, cols).reshape(B, O, OH, OW)
    if bias is not None:
        out = out + bias.view(1, O, 1, 1)
    return out


def run_ref(case, inputs: dict) -> dict:
    """Forward + backward of the reference for a case (float64), results keyed like cases.run."""
    t = {k: v.detach().to(torch.float64) for k, v in inputs.items()}
    x = t["input"].requires_grad_()
    off = t["offset"].requires_grad_()
    w = t["weight"].requires_grad_()
    m = t["mask"].requires_grad_() if case.mask else None
    b = t["bias"].requires_grad_() if case.bias else None
    out = deform_conv2d_ref(x, off, w, b, case.stride, case.pad, case.dil, m,
                            position_dtype=getattr(torch, case.dtype))
    out.backward(t["grad_out"])
    res = {"out": out.detach()}
    for name, leaf in (("input", x), ("offset", off), ("weight", w), ("mask", m), ("bias", b)):
        if leaf is not None and name in case.requires:
            g = leaf.grad
            if name == "input" and case.layout == "expanded":
                g = g.sum(0, keepdim=True) if g.shape[0] else g  # one image broadcast over the batch
            res[f"grad_{name}"] = g
    return res


# Tolerances against the float64 reference, relative to the largest magnitude of the reference
# tensor. float64: the kernel and the reference differ only in summation order, an error of a few
# ulp per term (observed <= 2e-15 relative on the suite's grid), so 1e-10 leaves five orders of
# magnitude of margin and still fails on any real bug. float32: inputs are rounded to float32 and
# every sum of K products accumulates about K * 2^-24 relative error; K is at most a few hundred
# in the suite's shapes, so 1e-4 bounds it (observed <= 2e-6).
# bfloat16/float16 (computed in float32, rounded once): the float32 bound plus the final rounding,
# at most the unit roundoff u = 2^-8 / 2^-11 of the result's magnitude.
TOLERANCE = {"float64": 1e-10, "float32": 1e-4, "bfloat16": 2**-8 + 1e-4, "float16": 2**-11 + 1e-4}


def mismatches(case, got: dict, ref: dict) -> list[str]:
    """Tensors of ``got`` that are not within TOLERANCE of the reference (with the worst error).

    On "exact" cases, positions land exactly on integers and on the -1 border, where the
    sampled function has a kink or a jump and grad_offset is a one-sided derivative whose side
    is a convention; grad_offset is not compared there.
    """
    bad = []
    tol = TOLERANCE[case.dtype]
    for k, g in got.items():
        if k == "grad_offset" and case.values == "exact":
            continue
        r = ref[k]
        if g.shape != r.shape:
            bad.append(f"{k}: shape {tuple(g.shape)} vs reference {tuple(r.shape)}")
            continue
        if g.numel() == 0:
            continue
        scale = max(1.0, r.abs().max().item())
        err = (g.double() - r).abs().max().item()
        if not err <= tol * scale:
            bad.append(f"{k}: max error {err:.3g} > {tol:g} * {scale:.3g}")
    return bad
