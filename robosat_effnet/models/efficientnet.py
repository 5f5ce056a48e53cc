"""EfficientNet (Tan & Le, 2019) written from the paper: MBConv blocks with squeeze-excitation,
SiLU and stochastic depth, built to the widths and depths of a Scaling row (`scaling.py`).

EfficientNet-Lite (Google's edge family, tensorflow/tpu `efficientnet/lite`) is the same builder with three flags
of its Scaling row: no squeeze-excitation, ReLU6, and a fixed stem (32) and head (1280) with the first and last
stage never repeated more. Its published weights were trained with TensorFlow's "same" padding, which pads
stride-2 convolutions asymmetrically (the extra pixel on the right and bottom); `same_padding` reproduces it, for
B8 and L2 too (their only published weights are TensorFlow's as well).

Parameter names are our own; `weights.py` maps torchvision's, timm's and efficientnet_pytorch's onto them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from robosat_effnet.errors import ConfigError
from robosat_effnet.models.scaling import (
    B0_STAGES,
    STOCHASTIC_DEPTH,
    Scaling,
    Stage,
    head_channels,
    round_channels,
    scaled_stages,
)


class SamePad(nn.Module):
    """TensorFlow's "same" padding of a strided convolution: the output is ceil(input / stride) and the padding it
    needs is split with the extra pixel on the right and bottom (PyTorch's symmetric padding shifts the grid)."""

    def __init__(self, kernel: int, stride: int, dilation: int = 1):
        super().__init__()
        self.kernel, self.stride, self.dilation = kernel, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((-(-size // self.stride) - 1) * self.stride + (self.kernel - 1) * self.dilation + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return nn.functional.pad(x, pads) if any(pads) else x

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


class ConvBNAct(nn.Sequential):
    """Convolution (same padding, no bias), BatchNorm and an optional activation (SiLU unless another is given).

    `same_padding` pads strided convolutions as TensorFlow does (SamePad); at stride 1 both conventions agree.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, dilation: int = 1,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm2d, act: bool = True,
                 activation: Callable[..., nn.Module] = nn.SiLU, same_padding: bool = False):
        padding = (kernel - 1) // 2 * dilation
        super().__init__()
        if same_padding and stride > 1:
            self.pad, padding = SamePad(kernel, stride, dilation), 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False)
        self.bn = norm(cout)
        if act:
            self.act = activation(inplace=True)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, 1x1 reduce, SiLU, 1x1 expand, sigmoid gate."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = torch.sigmoid(self.expand(nn.functional.silu(self.reduce(scale))))
        return x * scale


class StochasticDepth(nn.Module):
    """Drop a residual branch for whole samples with probability p while training (Huang et al. 2016)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MBConv(nn.Module):
    """Mobile inverted bottleneck: expand 1x1, depthwise k x k, squeeze-excite, project 1x1, residual.

    EfficientNet-Lite's blocks: `se=False`, `activation=nn.ReLU6`, `same_padding=True`.
    """

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int, drop: float,
                 norm: Callable[[int], nn.Module], dilation: int = 1, se: bool = True,
                 activation: Callable[..., nn.Module] = nn.SiLU, same_padding: bool = False):
        super().__init__()
        hidden = cin * expand
        conv = partial(ConvBNAct, norm=norm, activation=activation)
        self.expand = conv(cin, hidden, 1) if expand != 1 else None
        self.depthwise = conv(hidden, hidden, kernel, stride, groups=hidden, dilation=dilation,
                              same_padding=same_padding)
        # squeeze relative to the block's input width; Lite has no squeeze-excitation (it quantises badly)
        self.se = SqueezeExcite(hidden, max(1, cin // 4)) if se else nn.Identity()
        self.project = conv(hidden, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout
        self.drop = StochasticDepth(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.se(self.depthwise(out)))
        if self.residual:
            out = self.drop(out)
            out += x  # in place: saves a full-size allocation per block
        return out


def build_stages(stages: Sequence[tuple[Callable[..., nn.Module], Stage]], norm: Callable[[int], nn.Module],
                 stem_stride: int = 2, output_stride: int = 32) -> tuple[nn.ModuleList, list[int]]:
    """The stages of an EfficientNet (V1 or V2) after its stem, from (block class, stage) pairs: `repeats` blocks
    of MBConv (or V2's FusedMBConv) at the stage's real channel counts (a Stage, or a V2Stage with the same
    fields). Returns (stages, stride after each stage).

    Where the running stride would pass `output_stride`, the stage keeps stride 1 and dilates its k x k
    convolutions instead, so deeper taps stay at `output_stride`. The stochastic-depth drop rate grows
    linearly with depth over the whole network, from 0 at the first block towards 0.2.
    """
    total, index = sum(stage.repeats for _, stage in stages), 0
    modules, strides, stride, dilation = nn.ModuleList(), [], stem_stride, 1
    for block, stage in stages:
        step = stage.stride
        if stride * step > output_stride:
            dilation, step = dilation * step, 1
        stride *= step
        blocks = []
        for i in range(stage.repeats):
            blocks.append(block(stage.in_channels if i == 0 else stage.out_channels, stage.out_channels,
                                stage.expand, stage.kernel, step if i == 0 else 1, STOCHASTIC_DEPTH * index / total,
                                norm, dilation))
            index += 1
        modules.append(nn.Sequential(*blocks))
        strides.append(stride)
    return modules, strides


def tap_stages(stages: Sequence[Stage], stem_stride: int = 2) -> list[int]:
    """Indices of the last stage at each nominal stride (2, 4, 8, 16, 32): the encoder's taps."""
    nominal, stride = [], stem_stride
    for s in stages:
        stride *= s.stride
        nominal.append(stride)
    return [i for i in range(len(nominal)) if i == len(nominal) - 1 or nominal[i + 1] != nominal[i]]


def _norm(scaling: Scaling) -> Callable[[int], nn.Module]:
    return partial(nn.BatchNorm2d, eps=scaling.bn_eps, momentum=scaling.bn_momentum)


def _activation(scaling: Scaling) -> Callable[..., nn.Module]:
    return nn.ReLU6 if scaling.lite else nn.SiLU


def build_body(scaling: Scaling, in_channels: int = 3,
               output_stride: int = 32) -> tuple[nn.Module, nn.ModuleList, list[int]]:
    """The stem and the seven scaled stages; returns (stem, stages, stride after each stage)."""
    norm, activation = _norm(scaling), _activation(scaling)
    stages = scaled_stages(scaling)
    stem = ConvBNAct(in_channels, stages[0].in_channels, 3, stride=2, norm=norm, activation=activation,
                     same_padding=scaling.same_padding)
    block = partial(MBConv, se=not scaling.lite, activation=activation, same_padding=scaling.same_padding)
    return (stem, *build_stages([(block, s) for s in stages], norm, output_stride=output_stride))


def init_weights(module: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit BatchNorm, small uniform classifier, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class EfficientNet(nn.Module):
    """The ImageNet classifier: stem, stages, 1x1 head conv to 4x the last width, pool, dropout, linear."""

    def __init__(self, scaling: Scaling, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.scaling = scaling
        self.stem, self.stages, _ = build_body(scaling, in_channels)
        last, head = round_channels(B0_STAGES[-1].out_channels, scaling.width), head_channels(scaling)
        self.head = ConvBNAct(last, head, 1, norm=_norm(scaling), activation=_activation(scaling))
        self.dropout = nn.Dropout(scaling.dropout)
        self.classifier = nn.Linear(head, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.head(x).mean((2, 3))
        return self.classifier(self.dropout(x))


class EfficientNetEncoder(nn.Module):
    """Stem and stages without the head conv; forward returns the last feature map at each stride.

    Taps are at strides (2, 4, 8, 16, 32), or with dilation (2, 4, 8, 16, 16) for output_stride=16
    and (2, 4, 8, 8, 8) for output_stride=8.
    """

    def __init__(self, scaling: Scaling, in_channels: int = 3, output_stride: int = 32):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ConfigError(f"output_stride must be 8, 16 or 32, not {output_stride}")
        self.stem, self.stages, stage_strides = build_body(scaling, in_channels, output_stride)
        self.tap_indices = tap_stages(B0_STAGES)
        self.strides = [stage_strides[i] for i in self.tap_indices]
        self.out_channels = [round_channels(B0_STAGES[i].out_channels, scaling.width) for i in self.tap_indices]
        self.in_channels = in_channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        taps = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.tap_indices:
                taps.append(x)
        return taps
