"""Feature Pyramid Network decoder for segmentation (Lin et al. 2017; Kirillov et al. 2019 panoptic FPN)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class SegmentationBlock(nn.Module):
    """3x3 conv-GroupNorm-ReLU, repeated (with x2 upsampling) until the level reaches stride 4."""

    def __init__(self, cin: int, cout: int, upsamples: int):
        super().__init__()
        layers = []
        for i in range(max(1, upsamples)):
            layers.append(nn.Sequential(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                                        nn.GroupNorm(32, cout), nn.ReLU(inplace=True)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
            if x.shape[-2] < size[0]:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if x.shape[-2:] != tuple(size):  # dilated encoders: levels may already be at a finer stride
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        return x


class FPNDecoder(nn.Module):
    """Top-down pyramid over the stride 4..32 taps, per-level segmentation blocks, summed, upsampled."""

    def __init__(self, encoder_channels: Sequence[int], encoder_strides: Sequence[int], num_classes: int,
                 pyramid_channels: int = 256, segmentation_channels: int = 128, dropout: float = 0.2):
        super().__init__()
        if pyramid_channels < 1 or segmentation_channels < 32 or segmentation_channels % 32:
            raise ValueError(f"the FPN decoder needs 2 widths [pyramid, segmentation], the second a multiple of 32 "
                             f"(GroupNorm's 32 groups); got [{pyramid_channels}, {segmentation_channels}]")
        # The stride-2 tap is too shallow for the pyramid; it starts at stride 4.
        self.levels = [i for i, s in enumerate(encoder_strides) if s >= 4]
        self.lateral = nn.ModuleList(nn.Conv2d(encoder_channels[i], pyramid_channels, 1) for i in self.levels)
        self.blocks = nn.ModuleList(
            SegmentationBlock(pyramid_channels, segmentation_channels, int(math.log2(encoder_strides[i] // 4)))
            for i in self.levels
        )
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(segmentation_channels, num_classes, 1)

    def forward(self, taps: list[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        features = [taps[i] for i in self.levels]
        pyramid = [self.lateral[-1](features[-1])]
        for lateral, feature in zip(list(self.lateral)[-2::-1], features[-2::-1], strict=True):
            top = F.interpolate(pyramid[0], size=feature.shape[-2:], mode="nearest")
            pyramid.insert(0, lateral(feature) + top)
        target = pyramid[0].shape[-2:]
        x = sum(block(p, target) for block, p in zip(self.blocks, pyramid, strict=True))
        x = self.head(self.dropout(x))
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
