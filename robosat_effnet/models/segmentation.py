"""An encoder and a decoder joined into a segmentation network that returns per-pixel logits."""

from __future__ import annotations

import torch
from torch import nn

from robosat_effnet.errors import InputSizeError


class SegmentationModel(nn.Module):
    """encoder taps -> decoder -> logits N x num_classes x H x W at the input resolution."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.divisor = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x.shape[-2], x.shape[-1], self.divisor)
        return self.decoder(self.encoder(x), x.shape[-2:])


def check_size(height: int, width: int, divisor: int = 32) -> None:
    """Raise InputSizeError naming the nearest valid sizes when a side is not a multiple of `divisor`."""
    if height % divisor == 0 and width % divisor == 0 and height > 0 and width > 0:
        return

    def nearest(n: int) -> str:
        if n % divisor == 0:
            return str(n)
        low, high = n // divisor * divisor, (n // divisor + 1) * divisor
        return f"{low} or {high}" if low else str(high)

    raise InputSizeError(
        f"input is {height} x {width} px but both sides must be multiples of {divisor}: "
        f"use {nearest(height)} x {nearest(width)} px (crop or pad the tiles)"
    )
