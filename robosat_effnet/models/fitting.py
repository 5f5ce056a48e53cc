"""Whether a state dict fits a model, and loading it: its keys mapped onto ours and its shapes compared
(`map_state`, `load_into`), and, when it does not fit, which backbone it was made for (`identify`), so the
message can say what to pass; `check_fits` asks all that of a file before any model is built for real.

Built on weights.py's name tables (torchvision's, timm's and efficientnet_pytorch's layouts) and
state_dicts.tensors (a file's structure checked first).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
from torch import nn

from robosat_effnet.errors import WeightsError
from robosat_effnet.models.materialise import load_assigned, meta_build
from robosat_effnet.models.state_dicts import tensors
from robosat_effnet.models.weights import (
    _TOP,
    TORCHVISION_ENUMS,
    adapt_stem,
    detect_layout,
    foreign_name,
    load_state_dict,
    normalisation,
    torchvision_name,
)


def check_fits(weights: str | os.PathLike, backbone: str, in_channels: int = 3) -> None:
    """WeightsError unless `weights` load, fit `backbone`'s encoder and (a checkpoint of ours) bring a usable
    normalisation: what training would find out only when it starts, asked before (e.g. for every run of a study).
    The encoder is built on the meta device: no memory, no initialisation."""
    from robosat_effnet import models

    name = models.canonical_backbone(backbone)
    state = load_state_dict(weights, name)
    encoder = meta_build(lambda: models.build_encoder(name, in_channels))
    map_state(encoder, state, models._stem_key(encoder), f"weights {weights}", name, checked=True)
    normalisation(name, weights)


def load_into(model: nn.Module, state: dict[str, torch.Tensor], stem_key: str, source: str = "weights",
              backbone: str | None = None, checked: bool = False) -> None:
    """Map `state` onto `model` (our EfficientNet/encoder or the ResNet encoder, built for real or on the meta
    device) and load it.

    Every parameter of `model` must be found; extra entries (a classifier, the head conv when loading an
    encoder) are ignored. `backbone` (the model's name) lets the message for weights of another architecture
    say which backbone they are for, when it can tell. `checked`: `state` comes from `weights.load_state_dict`,
    which has already checked every value (L2's 480M take 1.4 s), so it is not checked again.
    """
    load_assigned(model, map_state(model, state, stem_key, source, backbone, checked=checked))


def map_state(model: nn.Module, state: dict[str, torch.Tensor], stem_key: str, source: str = "weights",
              backbone: str | None = None, explain: bool = True, checked: bool = False) -> dict[str, torch.Tensor]:
    """`state` renamed to `model`'s own keys (stem fitted to its bands) and checked to fit it; WeightsError
    otherwise, saying which architecture the weights are for when `explain`. Nothing is loaded: a model on the
    meta device can be checked against a file without allocating it. `checked` as for `load_into`."""
    original = state = state if checked else tensors(state, source)
    layout = detect_layout(state)
    own = model.state_dict()

    def other(detail: str = "") -> WeightsError:
        return _other_architecture(original if explain else None, layout, source, backbone, detail)

    efficientnet = hasattr(model, "stages")  # ours, V1 or V2; ResNetEncoder has none
    v1 = efficientnet and all(hasattr(b, "depthwise") for s in model.stages for b in s)
    if not {"resnet": not efficientnet, "torchvision-efficientnet": efficientnet, "ours": True}.get(layout, v1):
        raise other()
    if layout == "torchvision-efficientnet":
        names = {key: _try(torchvision_name, model, key) for key in own}
        state = {key: state[name] for key, name in names.items() if name in state}
    elif layout in _TOP:
        names = {key: _try(foreign_name, model, key, layout) for key in own}
        state = {key: state[name] for key, name in names.items() if name in state}
    missing = [k for k in own if k not in state]
    if missing:
        raise other(f"{len(missing)} missing entries, e.g. {missing[0]}")
    mapped = {k: state[k] for k in own}
    stem, wanted = mapped[stem_key], own[stem_key]
    if stem.dim() == wanted.dim() and stem.shape[:1] + stem.shape[2:] == wanted.shape[:1] + wanted.shape[2:]:
        mapped[stem_key] = adapt_stem(stem, wanted.shape[1])  # only the bands may differ
    wrong = [k for k in own if mapped[k].shape != own[k].shape]
    if wrong:
        raise other(f"{wrong[0]} has shape {tuple(mapped[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
    return mapped


def _try(name_of: Any, *args: Any) -> str | None:
    """A foreign parameter name, or None where the layout has none (the key then counts as missing)."""
    try:
        return name_of(*args)
    except (WeightsError, KeyError, IndexError, ValueError):
        return None


def identify(state: dict[str, torch.Tensor], layout: str) -> list[str]:
    """The backbones (canonical names) whose every parameter a state dict holds, with the right shapes.

    The candidates are those the layout can describe (torchvision's file: the EfficientNets it publishes, timm's
    and efficientnet_pytorch's: V1 ones), each built once per process on the meta device (no memory).
    """
    from robosat_effnet import models

    names = {"resnet": ["resnet50"], "torchvision-efficientnet": [n for n in TORCHVISION_ENUMS if n != "resnet50"],
             "ours": models.list_backbones()}.get(layout) or [
        n for n in models.list_backbones() if n.startswith("efficientnet-") and "-v2-" not in n]
    found = []
    for name in names:
        try:
            encoder = _meta_encoder(name)
            map_state(encoder, state, models._stem_key(encoder), explain=False, checked=True)
        except Exception:  # noqa: BLE001 - any failure means: not this architecture
            continue
        found.append(name)
    return found


@functools.cache
def _meta_encoder(name: str) -> nn.Module:
    from robosat_effnet.models import build_encoder

    return meta_build(lambda: build_encoder(name))


def _other_architecture(state: dict[str, torch.Tensor] | None, layout: str, source: str, backbone: str | None,
                        detail: str = "") -> WeightsError:
    """The error for weights that do not fit: which backbone they are for, when it can tell, and what to pass."""
    kinds = {"torchvision-efficientnet": "torchvision EfficientNet", "timm-efficientnet": "timm EfficientNet",
             "efficientnet-pytorch": "efficientnet_pytorch EfficientNet", "resnet": "ResNet", "ours": "our"}
    candidates = [name for name in identify(state, layout) if name != backbone] if state is not None else []
    what = f"{kinds[layout]} weights" + (f" of {' or '.join(candidates)}" if candidates else "")
    target = f"--backbone {backbone}" if backbone else "this backbone"
    fix = f"pass --backbone {candidates[0]} to use them" if candidates else \
        "pass the backbone they were trained for"
    return WeightsError(f"{source} do not fit {target}: they are {what}" + (f" ({detail})" if detail else "")
                        + f"; {fix}, or weights made for {backbone or 'this backbone'} (e.g. --weights imagenet)")
