"""Backbone and decoder registries, and the functions that build networks from names.

    build_model("b4", decoder="unet", num_classes=2, weights="imagenet")
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import partial

from torch import nn

from robosat_effnet.errors import ConfigError, UnknownNameError
from robosat_effnet.limits import MAX_DECODER_CHANNELS
from robosat_effnet.models import fitting as _fitting
from robosat_effnet.models import weights as _weights
from robosat_effnet.models.efficientnet import EfficientNet, EfficientNetEncoder
from robosat_effnet.models.efficientnet_v2 import (
    V2_VARIANTS,
    EfficientNetV2,
    EfficientNetV2Encoder,
    v2_key,
    variant_for,
)
from robosat_effnet.models.fpn import FPNDecoder
from robosat_effnet.models.materialise import on_meta
from robosat_effnet.models.resnet import ResNetEncoder
from robosat_effnet.models.scaling import VARIANTS, compound_scaling, scaling_for
from robosat_effnet.models.segmentation import SegmentationModel
from robosat_effnet.models.unet import UNET_CHANNELS, UNET_LITE_CHANNELS, UNetDecoder

Weights = str | os.PathLike | None

# backbone name -> encoder factory(in_channels, output_stride)
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    f"efficientnet-{v}": partial(lambda v, **kw: EfficientNetEncoder(scaling_for(v), **kw), v) for v in VARIANTS
}
BACKBONES |= {f"efficientnet-{k}": partial(EfficientNetV2Encoder, v) for k, v in V2_VARIANTS.items()}
BACKBONES["resnet50"] = ResNetEncoder
ALIASES = {a: f"efficientnet-{v}" for v in VARIANTS for a in (v, f"efficientnet_{v}")}
ALIASES |= {a: f"efficientnet-{k}" for k in V2_VARIANTS for a in (k, f"efficientnet_{k.replace('-', '_')}")}

# decoder name -> factory(encoder, num_classes, channels); channels None: the decoder's default widths
# (U-Net: one width per block, deepest first; FPN: [pyramid, segmentation]).
DECODERS: dict[str, Callable[[nn.Module, int, Sequence[int] | None], nn.Module]] = {
    "unet": lambda encoder, num_classes, channels: UNetDecoder(encoder.out_channels, num_classes,
                                                               channels or UNET_CHANNELS),
    "unet-lite": lambda encoder, num_classes, channels: UNetDecoder(encoder.out_channels, num_classes,
                                                                    channels or UNET_LITE_CHANNELS),
    "fpn": lambda encoder, num_classes, channels: FPNDecoder(encoder.out_channels, encoder.strides, num_classes,
                                                             *(channels or ())),
}

_PHI = re.compile(r"efficientnet-phi([0-9]+(?:\.[0-9]+)?)")


def list_backbones() -> list[str]:
    """Canonical backbone names (aliases such as 'b4' are accepted too)."""
    return list(BACKBONES)


def list_decoders() -> list[str]:
    """Decoder names: "unet", "unet-lite" (narrower, ends at stride 2; the faster one), "fpn"."""
    return list(DECODERS)


def canonical_backbone(name: str) -> str:
    """The registry name for a backbone name or alias; 'efficientnet-phi<x>' names any compound coefficient."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key in BACKBONES or _PHI.fullmatch(key):
        return key
    raise UnknownNameError(
        f"unknown backbone {name!r}; valid: {', '.join(list_backbones())} "
        "(aliases b0..b8, l2, lite0..lite4, v2-s, v2-m, v2-l, or efficientnet-phi<x>)"
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
        _fitting.load_into(encoder, state, _stem_key(encoder), source=f"weights {weights}", backbone=name, checked=True)
    return encoder


def build_model(backbone: str = "efficientnet-b0", decoder: str = "unet", num_classes: int = 2,
                in_channels: int = 3, weights: Weights = None, output_stride: int = 32,
                decoder_channels: Sequence[int] | None = None) -> SegmentationModel:
    """A segmentation network: `backbone` encoder + `decoder`, returning N x num_classes x H x W logits.

    `weights` initialise the encoder (see build_encoder). The decoder starts from random weights, unless `weights`
    is a checkpoint of ours with the same decoder, widths and classes: then the whole trained model is the start
    (fine-tuning it, e.g. on labelled tiles of a new area).
    `decoder_channels` replaces the decoder's widths: for "unet"/"unet-lite" one per block, deepest first
    (5 end at input resolution, 4 stop at stride 2 and upsample the logits); for "fpn" [pyramid, segmentation].
    None keeps the decoder's defaults (unet 256..16, unet-lite 128..16, fpn [256, 128]).
    """
    key = str(decoder).strip().lower()
    if key not in DECODERS:
        raise UnknownNameError(f"unknown decoder {decoder!r}; valid: {', '.join(list_decoders())}")
    if decoder_channels is not None and (key == "fpn") != (len(decoder_channels) == 2):
        raise ConfigError(f"decoder_channels {list(decoder_channels)} do not fit the {key} decoder: give "
                          + ("[pyramid, segmentation] widths, e.g. [256, 128]" if key == "fpn" else
                             "5 widths, deepest first, e.g. [256, 128, 64, 32, 16] (or 4 to stop at stride 2)"))
    if decoder_channels is not None and not all(1 <= w <= MAX_DECODER_CHANNELS for w in decoder_channels):
        raise ConfigError(f"decoder_channels {list(decoder_channels)} must be widths from 1 to {MAX_DECODER_CHANNELS}")
    encoder = build_encoder(backbone, in_channels, output_stride, weights)
    try:
        head = DECODERS[key](encoder, num_classes, list(decoder_channels) if decoder_channels else None)
    except ValueError as e:  # the decoder's own check of the widths it was given
        raise ConfigError(f"decoder_channels: {e}") from None
    if weights is not None and str(weights).lower() != "imagenet":
        _weights.load_decoder(head, weights)  # a trained model of ours: fine-tune all of it where it fits
    return SegmentationModel(encoder, head)


def efficientnet(variant: str | None = None, num_classes: int = 1000, weights: Weights = None,
                 phi: float | None = None, in_channels: int = 3) -> EfficientNet | EfficientNetV2:
    """The full EfficientNet (or EfficientNetV2) ImageNet classifier.

    Args:
        variant: "b0".."b8", "l2", "lite0".."lite4" (or "efficientnet-b0".., "efficientnet-lite0"..), or "v2-s",
            "v2-m", "v2-l".
        phi: instead of a variant, any compound coefficient (depth 1.2^phi, width 1.1^phi, resolution 1.15^phi).
        weights: None, "imagenet" or a path to a torchvision EfficientNet state dict.
    """
    if (variant is None) == (phi is None):
        raise UnknownNameError("give exactly one of variant ('b0'..'b8', 'l2', 'lite0'..'lite4', 'v2-s'..) or phi "
                               "(a compound coefficient)")
    def build() -> EfficientNet | EfficientNetV2:
        if variant is not None and v2_key(variant):
            return EfficientNetV2(variant_for(variant), num_classes, in_channels)
        return EfficientNet(scaling_for(variant) if variant is not None else compound_scaling(phi), num_classes,
                            in_channels)

    if weights is None:
        return build()
    name = canonical_backbone(variant) if variant is not None else "efficientnet-phi"
    state = _weights.load_state_dict(weights, name)
    model = on_meta(build)  # every weight comes from the file: none drawn at random
    _fitting.load_into(model, state, "stem.conv.weight", source=f"weights {weights}", checked=True)
    return model
