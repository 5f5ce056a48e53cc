"""torchvision's ResNet50 as an encoder: robosat's baseline, kept for side-by-side comparison."""

from __future__ import annotations

import torch
from torch import nn

from robosat_effnet.errors import ConfigError

# Which of layer2..layer4 trade their stride for dilation at each output stride.
_DILATE = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}


class ResNetEncoder(nn.Module):
    """ResNet50 with taps after conv1/bn1/relu (stride 2) and after layer1..layer4 (strides 4..32).

    Parameter names are torchvision's, so its published state dicts load as they are.
    """

    def __init__(self, in_channels: int = 3, output_stride: int = 32):
        super().__init__()
        if output_stride not in _DILATE:
            raise ConfigError(f"output_stride must be 8, 16 or 32, not {output_stride}")
        import torchvision  # imported here: it costs seconds and only this backbone needs it

        net = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=_DILATE[output_stride])
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = [64, 256, 512, 1024, 2048]
        strides, stride = [2, 4], 4
        for dilated in _DILATE[output_stride]:
            stride = stride if dilated else stride * 2
            strides.append(stride)
        self.strides = strides
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        taps = [x]
        x = self.maxpool(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            taps.append(x)
        return taps
