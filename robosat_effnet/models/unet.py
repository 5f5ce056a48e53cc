"""U-Net decoder (Ronneberger et al. 2015) over any encoder's feature taps."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNetBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(conv_bn_relu(cin + skip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: Sequence[int]) -> torch.Tensor:
        if x.shape[-2:] != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class UNetDecoder(nn.Module):
    """From the deepest tap up: one block per shallower tap, then a last block to input resolution.

    Channel counts come from `encoder_channels` (the encoder's `out_channels`, shallow to deep);
    `channels` are the decoder's own widths, deepest block first.
    """

    def __init__(self, encoder_channels: Sequence[int], num_classes: int,
                 channels: Sequence[int] = (256, 128, 64, 32, 16)):
        super().__init__()
        skips = list(encoder_channels[::-1][1:]) + [0]  # the last block has no skip: it reaches the input size
        if len(channels) < len(skips):
            raise ValueError(f"need {len(skips)} decoder widths, got {len(channels)}")
        widths = list(channels[: len(skips)])
        ins = [encoder_channels[-1]] + widths[:-1]
        self.blocks = nn.ModuleList(UNetBlock(cin, skip, cout) for cin, skip, cout in zip(ins, skips, widths))
        self.head = nn.Conv2d(widths[-1], num_classes, 1)

    def forward(self, taps: list[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        skips = taps[::-1][1:]
        x = taps[-1]
        for i, block in enumerate(self.blocks):
            skip = skips[i] if i < len(skips) else None
            x = block(x, skip, skip.shape[-2:] if skip is not None else size)
        return self.head(x)
