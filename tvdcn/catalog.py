"""What the benchmark measures: the configs by name, their inputs, and ResNet-50 with DCNv2 blocks.

Shared by the benchmark's timing (tvdcn.bench), the profiler (tvdcn.profile)
and the reproduction script of a PR body (tvdcn.prbody). Every config is a 3x3 deform_conv2d,
stride 1, padding 1, with mask and bias: ``batch`` images of ``channels`` channels (in and out),
``size`` x ``size``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .log import Failure


@dataclass(frozen=True)
class Config:
    name: str
    batch: int
    channels: int
    size: int
    timed: bool = True  # in the default timing set (s64-b32 is for --memory)


CONFIGS = [
    Config("s32-b1", 1, 64, 32), Config("s32-b4", 4, 64, 32), Config("s32-b8", 8, 64, 32),
    Config("s64-b1", 1, 256, 64), Config("s64-b4", 4, 256, 64),
    Config("c4-det", 2, 256, 50, timed=False), Config("c3-det", 2, 128, 100, timed=False),
    Config("s64-b32", 32, 256, 64, timed=False),
    # A call so small that fixed costs dominate: what routing through Python costs the drop-in.
    Config("tiny", 1, 4, 8, timed=False),
]
MODEL = "resnet50-dcn"


def config(name: str) -> Config:
    """The config called ``name`` (not the model, ``MODEL``)."""
    for c in CONFIGS:
        if c.name == name:
            return c
    raise Failure(f"unknown config {name!r}: one of {', '.join(c.name for c in CONFIGS)}, {MODEL}")


def inputs(c: Config, train: bool, dtype: str = "float32") -> dict[str, Any]:
    """The op's arguments for config ``c`` (seeded: the same in every process), as leaves with
    gradients when ``train``."""
    import torch

    g = torch.Generator().manual_seed(0)
    t = {
        "input": torch.rand(c.batch, c.channels, c.size, c.size, generator=g),
        "offset": torch.rand(c.batch, 18, c.size, c.size, generator=g) * 4 - 2,
        "mask": torch.rand(c.batch, 9, c.size, c.size, generator=g),
        "weight": torch.rand(c.channels, c.channels, 3, 3, generator=g) / (3 * c.channels),
        "bias": torch.rand(c.channels, generator=g),
    }
    t = {k: v.to(getattr(torch, dtype)) for k, v in t.items()}
    if train:
        for v in t.values():
            v.requires_grad_()
    return t


def resnet50_dcn(deformable: bool) -> Any:
    """ResNet-50 (random weights, eval mode); with ``deformable``, every 3x3 convolution of stages
    c3-c5 (layer2-layer4) is a DCNv2 block as in the DCNv2 paper: a 3x3 convolution predicting
    the offsets and the mask (zero-initialized as there, so the sampling starts on the grid;
    here small random values so that it does not), then ``DeformConv2d``."""
    import torch
    import torchvision
    from torchvision.ops import DeformConv2d

    class DCNv2(torch.nn.Module):
        def __init__(self, conv: torch.nn.Conv2d) -> None:
            super().__init__()
            self.offset_mask = torch.nn.Conv2d(conv.in_channels, 27, 3, conv.stride, 1)
            torch.nn.init.normal_(self.offset_mask.weight, std=0.01)
            self.dcn = DeformConv2d(conv.in_channels, conv.out_channels, 3, conv.stride, 1, bias=False)
            self.dcn.weight.data.copy_(conv.weight.data)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            om = self.offset_mask(x)
            return self.dcn(x, om[:, :18], om[:, 18:].sigmoid())

    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    if deformable:
        for layer in (model.layer2, model.layer3, model.layer4):
            for block in layer:
                block.conv2 = DCNv2(block.conv2)
    return model.eval()
