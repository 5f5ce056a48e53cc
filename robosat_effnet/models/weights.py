"""Pretrained weights: torchvision's ImageNet files (download and cache), layout detection, key mapping
onto our modules, and stem adaptation for inputs with other than three bands."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robosat_effnet.errors import WeightsError

# torchvision's weight enums per backbone; their IMAGENET1K_V1 entry carries the URL and metadata.
TORCHVISION_ENUMS = {f"efficientnet-b{i}": f"EfficientNet_B{i}_Weights" for i in range(8)}
TORCHVISION_ENUMS |= {f"efficientnet-v2-{s}": f"EfficientNet_V2_{s.upper()}_Weights" for s in "sml"}
TORCHVISION_ENUMS["resnet50"] = "ResNet50_Weights"


def torchvision_weights(backbone: str):
    """torchvision's ImageNet weights entry (URL + metadata) for one of our backbone names."""
    import torchvision

    if backbone not in TORCHVISION_ENUMS:
        raise WeightsError(f"no ImageNet weights are published for {backbone}; pass weights=None or a file")
    return getattr(torchvision.models, TORCHVISION_ENUMS[backbone]).IMAGENET1K_V1


def download_imagenet(backbone: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict, downloaded once into the torch hub cache ($TORCH_HOME/hub/checkpoints)."""
    url = torchvision_weights(backbone).url
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=str(cache), map_location="cpu",
                                                  progress=True, check_hash=True, weights_only=True)
    except Exception as e:  # URLError, HTTPError, timeouts, hash mismatch all mean the same to the user
        raise WeightsError(
            f"cannot download ImageNet weights for {backbone} from {url} ({type(e).__name__}); "
            f"download that file on a machine with internet access and pass its path as --weights, "
            f"or place it in {cache}"
        ) from None


def load_state_dict(weights: str | os.PathLike, backbone: str) -> dict[str, torch.Tensor]:
    """Resolve `weights` ("imagenet" or a path) to a raw state dict (any supported layout)."""
    if str(weights).lower() == "imagenet":
        return download_imagenet(backbone)
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; pass 'imagenet', a torchvision .pth or a checkpoint")
    try:
        with warnings.catch_warnings():  # torch's "please file an issue" on a pickle protocol: noise, then refused
            warnings.simplefilter("ignore", UserWarning)
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's text may advise loading unsafely: say what is wrong instead
        from robosat_effnet.io import load_failure

        raise WeightsError(f"cannot load weights {path}: {load_failure(path, e)}; pass 'imagenet', a torchvision "
                           ".pth or a checkpoint written by `rs-effnet train`") from None
    if isinstance(data, dict) and data.get("format") == "robosat_effnet":
        return {k.removeprefix("encoder."): v for k, v in data["model"].items() if k.startswith("encoder.")}
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path} holds no state dict of tensors; pass a torchvision .pth or a checkpoint")
    return data


def detect_layout(state: dict[str, Any]) -> str:
    """Which model wrote a state dict: 'torchvision-efficientnet', 'resnet' or 'ours'."""
    if "features.0.0.weight" in state:
        return "torchvision-efficientnet"
    if "layer1.0.conv1.weight" in state:
        return "resnet"
    if "stem.conv.weight" in state:
        return "ours"
    if any(k.startswith("module.") for k in state):
        raise WeightsError("this is a DataParallel (robosat) state dict with 'module.' keys; it cannot be mapped")
    raise WeightsError(f"unrecognised weights layout (first keys: {', '.join(list(state)[:3])})")


def torchvision_name(model: nn.Module, key: str) -> str:
    """torchvision's EfficientNet (V1 or V2) name for one of our parameter/buffer names."""
    m = re.fullmatch(r"stem\.(conv|bn)\.(.+)", key)
    if m:
        return f"features.0.{0 if m[1] == 'conv' else 1}.{m[2]}"
    m = re.fullmatch(r"head\.(conv|bn)\.(.+)", key)
    if m:
        return f"features.{len(model.stages) + 1}.{0 if m[1] == 'conv' else 1}.{m[2]}"
    m = re.fullmatch(r"classifier\.(.+)", key)
    if m:
        return f"classifier.1.{m[1]}"
    m = re.fullmatch(r"stages\.(\d+)\.(\d+)\.(expand|fused|depthwise|se|project)\.(\w+)\.(.+)", key)
    if not m:
        raise WeightsError(f"no torchvision name for parameter {key}")
    stage, block, part, layer, rest = int(m[1]), int(m[2]), m[3], m[4], m[5]
    # torchvision numbers a block's layers block.0, block.1, ... in forward order. Our blocks register their
    # parts in that order and leave absent ones (no expand conv at expansion 1) unregistered.
    parts = [name for name, _ in model.stages[stage][block].named_children() if name != "drop"]
    sub = {"conv": "0", "bn": "1", "reduce": "fc1", "expand": "fc2"}[layer]
    return f"features.{stage + 1}.{block}.block.{parts.index(part)}.{sub}.{rest}"


def adapt_stem(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Fit an RGB first-conv weight to `in_channels` bands.

    More bands: keep the RGB filters for the first three and zero the rest, so extra bands start with no
    effect (a zero 4th band gives exactly the RGB features). One band: the sum of the RGB filters (a grey
    image then responds as RGB with equal channels). Two bands: the first two RGB filters.
    """
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    if in_channels < weight.shape[1]:
        return weight[:, :in_channels].clone()
    extra = weight.new_zeros((weight.shape[0], in_channels - weight.shape[1], *weight.shape[2:]))
    return torch.cat([weight, extra], dim=1)


def load_into(model: nn.Module, state: dict[str, torch.Tensor], stem_key: str, source: str = "weights") -> None:
    """Map `state` onto `model` (our EfficientNet/encoder or the ResNet encoder) and load it.

    Every parameter of `model` must be found; extra entries (a classifier, the head conv when loading an
    encoder) are ignored.
    """
    layout = detect_layout(state)
    own = model.state_dict()
    if layout == "torchvision-efficientnet":
        state = {key: state[torchvision_name(model, key)] for key in own if torchvision_name(model, key) in state}
    missing = [k for k in own if k not in state]
    if missing:
        raise WeightsError(f"{source} do not fit this backbone: {len(missing)} missing entries, e.g. {missing[0]}")
    mapped = {k: state[k] for k in own}
    mapped[stem_key] = adapt_stem(mapped[stem_key], own[stem_key].shape[1])
    wrong = [k for k in own if mapped[k].shape != own[k].shape]
    if wrong:
        raise WeightsError(f"{source} do not fit this backbone: {wrong[0]} has shape "
                           f"{tuple(mapped[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
    model.load_state_dict(mapped)
