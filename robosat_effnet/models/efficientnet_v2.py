"""EfficientNetV2 (Tan & Le, 2021) written from the paper: Fused-MBConv in the early stages, MBConv with
squeeze-excitation later, and the V2-S/M/L stage tables.

The MBConv block, squeeze-excitation, stochastic depth, convolution units and initialisation are
EfficientNet's (efficientnet.py); this module adds the fused block and the V2 layouts. Parameter names
are our own; `weights.py` maps torchvision's published checkpoints onto them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from robosat_effnet.errors import ConfigError
from robosat_effnet.models.efficientnet import (
    ConvBNAct,
    EfficientNet,
    EfficientNetEncoder,
    MBConv,
    StochasticDepth,
    build_stages,
    init_weights,
    tap_stages,
)


@dataclass(frozen=True)
class V2Stage:
    """One row of the paper's Table 4: (Fused-)MBConv<expand>, k x k, stride, channels, layers."""

    fused: bool
    expand: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


@dataclass(frozen=True)
class V2Variant:
    """A V2 network: its stages (after the stride-2 3x3 stem), head width, evaluation size, dropout, BatchNorm."""

    stages: tuple[V2Stage, ...]
    resolution: int  # the evaluation size (train at smaller sizes, progressive learning)
    dropout: float
    head: int = 1280
    # The published weights (V2-L ported from TensorFlow, V2-S/M trained by torchvision to match) need
    # BatchNorm eps=1e-3; the momentum is PyTorch's default.
    bn_eps: float = 1e-3
    bn_momentum: float = 0.1

    @property
    def stem(self) -> int:
        return self.stages[0].in_channels


FUSED, MBCONV = True, False

# Table 4 of the paper (V2-S); M and L as the authors' code (and torchvision) lay them out: M and L add a
# seventh stage and are wider and deeper, not compound-scaled copies of S.
V2_VARIANTS = {
    "v2-s": V2Variant((
        V2Stage(FUSED, 1, 3, 1, 24, 24, 2),
        V2Stage(FUSED, 4, 3, 2, 24, 48, 4),
        V2Stage(FUSED, 4, 3, 2, 48, 64, 4),
        V2Stage(MBCONV, 4, 3, 2, 64, 128, 6),
        V2Stage(MBCONV, 6, 3, 1, 128, 160, 9),
        V2Stage(MBCONV, 6, 3, 2, 160, 256, 15),
    ), resolution=384, dropout=0.2),
    "v2-m": V2Variant((
        V2Stage(FUSED, 1, 3, 1, 24, 24, 3),
        V2Stage(FUSED, 4, 3, 2, 24, 48, 5),
        V2Stage(FUSED, 4, 3, 2, 48, 80, 5),
        V2Stage(MBCONV, 4, 3, 2, 80, 160, 7),
        V2Stage(MBCONV, 6, 3, 1, 160, 176, 14),
        V2Stage(MBCONV, 6, 3, 2, 176, 304, 18),
        V2Stage(MBCONV, 6, 3, 1, 304, 512, 5),
    ), resolution=480, dropout=0.3),
    "v2-l": V2Variant((
        V2Stage(FUSED, 1, 3, 1, 32, 32, 4),
        V2Stage(FUSED, 4, 3, 2, 32, 64, 7),
        V2Stage(FUSED, 4, 3, 2, 64, 96, 7),
        V2Stage(MBCONV, 4, 3, 2, 96, 192, 10),
        V2Stage(MBCONV, 6, 3, 1, 192, 224, 19),
        V2Stage(MBCONV, 6, 3, 2, 224, 384, 25),
        V2Stage(MBCONV, 6, 3, 1, 384, 640, 7),
    ), resolution=480, dropout=0.4),
}


def v2_key(name: str) -> str | None:
    """'v2-s' for 'v2-s', 'efficientnet-v2-s', 'efficientnet_v2_s' (any case); None for names that are not V2."""
    key = str(name).strip().lower().replace("_", "-").removeprefix("efficientnet-")
    return key if key.startswith("v2") else None


def variant_for(name: str) -> V2Variant:
    """The V2Variant of 'v2-s', 'v2-m' or 'v2-l' (also 'efficientnet-v2-s', 'efficientnet_v2_s')."""
    key = v2_key(name)
    if key not in V2_VARIANTS:
        raise ConfigError(f"unknown EfficientNetV2 variant {name!r}; valid: {', '.join(V2_VARIANTS)}")
    return V2_VARIANTS[key]


class FusedMBConv(nn.Module):
    """MBConv with its expand 1x1 and depthwise k x k fused into one full k x k convolution, then project 1x1.

    With expansion 1 there is nothing to project: the block is a single k x k conv-BN-SiLU. No squeeze-
    excitation (the paper drops it here: full convolutions already mix channels).
    """

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int, drop: float,
                 norm: Callable[[int], nn.Module], dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        # Registration order is layer order: weights.py numbers torchvision's block.<i> from it.
        self.fused = ConvBNAct(cin, hidden if expand != 1 else cout, kernel, stride, dilation=dilation, norm=norm)
        self.project = ConvBNAct(hidden, cout, 1, norm=norm, act=False) if expand != 1 else None
        self.residual = stride == 1 and cin == cout
        self.drop = StochasticDepth(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fused(x)
        if self.project is not None:
            out = self.project(out)
        if self.residual:
            out = self.drop(out)
            out += x
        return out


def build_v2_body(variant: V2Variant, in_channels: int = 3,
                  output_stride: int = 32) -> tuple[nn.Module, nn.ModuleList, list[int]]:
    """The stem and stages of a V2 network; returns (stem, stages, stride after each stage), built and dilated
    as EfficientNet's (`build_stages`)."""
    norm = partial(nn.BatchNorm2d, eps=variant.bn_eps, momentum=variant.bn_momentum)
    stem = ConvBNAct(in_channels, variant.stem, 3, stride=2, norm=norm)
    stages = [(FusedMBConv if s.fused else MBConv, s) for s in variant.stages]
    return (stem, *build_stages(stages, norm, output_stride=output_stride))


class EfficientNetV2(nn.Module):
    """The ImageNet classifier: stem, stages, 1x1 head conv (1280), pool, dropout, linear."""

    def __init__(self, variant: V2Variant, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.variant = variant
        self.stem, self.stages, _ = build_v2_body(variant, in_channels)
        norm = partial(nn.BatchNorm2d, eps=variant.bn_eps, momentum=variant.bn_momentum)
        self.head = ConvBNAct(variant.stages[-1].out_channels, variant.head, 1, norm=norm)
        self.dropout = nn.Dropout(variant.dropout)
        self.classifier = nn.Linear(variant.head, num_classes)
        init_weights(self)

    forward = EfficientNet.forward  # the same walk: stem, stages, head, pool, dropout, linear


class EfficientNetV2Encoder(nn.Module):
    """Stem and stages without the head conv; forward returns the last feature map at each stride.

    Taps are at strides (2, 4, 8, 16, 32), or with dilation (2, 4, 8, 16, 16) for output_stride=16
    and (2, 4, 8, 8, 8) for output_stride=8.
    """

    def __init__(self, variant: V2Variant, in_channels: int = 3, output_stride: int = 32):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ConfigError(f"output_stride must be 8, 16 or 32, not {output_stride}")
        self.stem, self.stages, stage_strides = build_v2_body(variant, in_channels, output_stride)
        self.tap_indices = tap_stages(variant.stages)
        self.strides = [stage_strides[i] for i in self.tap_indices]
        self.out_channels = [variant.stages[i].out_channels for i in self.tap_indices]
        self.in_channels = in_channels
        init_weights(self)

    forward = EfficientNetEncoder.forward  # the same walk: stem, stages, keep the tap stages' outputs
