"""The one check every weights file and checkpoint goes through before its tensors are looked up by name, mapped
or loaded: a non-empty table of named tensors of real, finite numbers (`tensors`). A file that loads safely can
hold anything (a list, a number, nested tables, keys that are numbers, complex or nan tensors); each is one
WeightsError naming the file and the entry, never an AttributeError or KeyError deep inside.
"""

from __future__ import annotations

from typing import Any

import torch

from robosat_effnet.errors import WeightsError


def tensors(state: Any, where: str, what: str = "its content") -> dict[str, torch.Tensor]:
    """`state` when it is a non-empty table of named tensors of real numbers, all finite; WeightsError otherwise.

    The one check every weights file and checkpoint goes through before its tensors are looked up by name,
    mapped or loaded, so an odd structure is a message, never an AttributeError or KeyError deep inside.
    """
    fix = ("pass a torchvision, timm or efficientnet_pytorch state dict, or a checkpoint written by "
           "`rs-effnet train`")
    if not isinstance(state, dict) or not state:
        found = "missing" if state is None else f"an empty {type(state).__name__}" if isinstance(
            state, (dict, list, tuple, str)) and not state else _a(type(state).__name__)
        raise WeightsError(f"{where}: {what} is {found}, not a state dict of named tensors; {fix}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise WeightsError(f"{where}: {what} has an entry named {key!r} ({_a(type(key).__name__)}), not "
                               f"by a parameter name; {fix}")
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{where}: {what} has {key} = {_a(type(value).__name__)}, not a tensor; {fix}")
        if value.is_complex() or value.dtype == torch.bool or value.is_quantized or value.is_sparse:
            kind = f"{value.dtype}{' (sparse)' if value.is_sparse else ''}"
            raise WeightsError(f"{where}: {what} has {key} of type {kind}, not real numbers; {fix}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(f"{where}: {what} has nan or infinite values in {key} (weights of a run that "
                               "diverged?); use weights saved before it diverged, or other weights")
    return state


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
