"""Backbone and decoder registries, and the functions that build networks from names.

    build_model("b4", decoder="unet", num_classes=2, weights="imagenet")
"""

from __future__ import annotations

import os
import re
from functools import partial
from typing import Callable

from torch import nn

from robosat_effnet.errors import UnknownNameError
from robosat_effnet.models.efficientnet import (
    EfficientNet,
    EfficientNetEncoder,
    compound_scaling,
    scaling_for,
)
from robosat_effnet.models.fpn import FPNDecoder
from robosat_effnet.models.resnet import ResNetEncoder
from robosat_effnet.models.segmentation import SegmentationModel
from robosat_effnet.models.unet import UNetDecoder
from robosat_effnet.models import weights as _weights

Weights = str | os.PathLike | None

# backbone name -> encoder factory(in_channels, output_stride)
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    f"efficientnet-b{i}": partial(lambda v, **kw: EfficientNetEncoder(scaling_for(v), **kw), f"b{i}")
    for i in range(8)
}
BACKBONES["resnet50"] = ResNetEncoder
ALIASES = {f"b{i}": f"efficientnet-b{i}" for i in range(8)} | {f"efficientnet_b{i}": f"efficientnet-b{i}" for i in range(8)}

# decoder name -> factory(encoder, num_classes)
DECODERS: dict[str, Callable[[nn.Module, int], nn.Module]] = {
    "unet": lambda encoder, num_classes: UNetDecoder(encoder.out_channels, num_classes),
    "fpn": lambda encoder, num_classes: FPNDecoder(encoder.out_channels, encoder.strides, num_classes),
}

_PHI = re.compile(r"efficientnet-phi(\d+(?:\.\d+)?)")


def list_backbones() -> list[str]:
    """Canonical backbone names (aliases such as 'b4' are accepted too)."""
    return list(BACKBONES)


def list_decoders() -> list[str]:
    return list(DECODERS)


def canonical_backbone(name: str) -> str:
    """The registry name for a backbone name or alias; 'efficientnet-phi<x>' names any compound coefficient."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key in BACKBONES or _PHI.fullmatch(key):
        return key
    raise UnknownNameError(
        f"unknown backbone {name!r}; valid: {', '.join(list_backbones())} (aliases b0..b7, or efficientnet-phi<x>)"
    )


def _stem_key(encoder: nn.Module) -> str:
    return "conv1.weight" if isinstance(encoder, ResNetEncoder) else "stem.conv.weight"


def build_encoder(backbone: str, in_channels: int = 3, output_stride: int = 32, weights: Weights = None) -> nn.Module:
    """A feature encoder whose forward returns taps at strides (2, 4, 8, 16, 32).

    Args:
        backbone: a name from list_backbones() or an alias ("b4").
        in_channels: input bands; with pretrained weights extra bands start at zero.
        output_stride: 32, or 16/8 to replace the deepest downsamplings by dilation.
        weights: None (random), "imagenet" (torchvision's file, cached), or a path to a torchvision
            state dict or a checkpoint written by this package.
    Returns an nn.Module with `.out_channels` and `.strides`, one entry per tap.
    """
    name = canonical_backbone(backbone)
    phi = _PHI.fullmatch(name)
    if phi:
        encoder = EfficientNetEncoder(compound_scaling(float(phi[1])), in_channels, output_stride)
    else:
        encoder = BACKBONES[name](in_channels=in_channels, output_stride=output_stride)
    if weights is not None:
        state = _weights.load_state_dict(weights, name)
        _weights.load_into(encoder, state, _stem_key(encoder), source=f"weights {weights}")
    return encoder


def build_model(backbone: str = "efficientnet-b0", decoder: str = "unet", num_classes: int = 2,
                in_channels: int = 3, weights: Weights = None, output_stride: int = 32) -> SegmentationModel:
    """A segmentation network: `backbone` encoder + `decoder`, returning N x num_classes x H x W logits.

    `weights` initialise the encoder (see build_encoder); the decoder starts from random weights.
    """
    key = str(decoder).strip().lower()
    if key not in DECODERS:
        raise UnknownNameError(f"unknown decoder {decoder!r}; valid: {', '.join(list_decoders())}")
    encoder = build_encoder(backbone, in_channels, output_stride, weights)
    return SegmentationModel(encoder, DECODERS[key](encoder, num_classes))


def efficientnet(variant: str | None = None, num_classes: int = 1000, weights: Weights = None,
                 phi: float | None = None, in_channels: int = 3) -> EfficientNet:
    """The full EfficientNet ImageNet classifier.

    Args:
        variant: "b0".."b7" (or "efficientnet-b0".."efficientnet-b7").
        phi: instead of a variant, any compound coefficient (depth 1.2^phi, width 1.1^phi, resolution 1.15^phi).
        weights: None, "imagenet" or a path to a torchvision EfficientNet state dict.
    """
    if (variant is None) == (phi is None):
        raise UnknownNameError("give exactly one of variant ('b0'..'b7') or phi (a compound coefficient)")
    scaling = scaling_for(variant) if variant is not None else compound_scaling(phi)
    model = EfficientNet(scaling, num_classes, in_channels)
    if weights is not None:
        name = canonical_backbone(variant) if variant is not None else "efficientnet-phi"
        state = _weights.load_state_dict(weights, name)
        _weights.load_into(model, state, "stem.conv.weight", source=f"weights {weights}")
    return model
