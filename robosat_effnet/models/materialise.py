"""Building a model whose every weight is about to be loaded: on the meta device (no memory, no random
initialisation), then given the loaded tensors. Random initialisation is most of the time of loading a large
network (4.9 s of L2's 10 s on two cores), all of it thrown away.

Only for models that are loaded whole (a checkpoint for inference, a classifier from its weights file): training
builds its models for real, because their random initialisation draws from the seeded generator and the runs
of a seed must stay the runs they were.

    model = on_meta(lambda: build_from_spec(spec))
    load_assigned(model, state)  # RuntimeError from load_state_dict when state does not fit
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import chain

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


class _NoRandomFill(TorchFunctionMode):
    """Skips the in-place random fills of initialisers on meta tensors: they have no values to fill, and torch
    runs `normal_` there through a decomposition whose first use imports torch._dynamo (1.4 s)."""

    FILLS = frozenset({torch.Tensor.normal_, torch.Tensor.uniform_})

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        if func in self.FILLS and args and getattr(args[0], "is_meta", False):
            return args[0]
        return func(*args, **(kwargs or {}))


def meta_build(build: Callable[[], nn.Module]) -> nn.Module:
    """`build()` on the meta device: shapes without memory or initial values (e.g. to check a file against)."""
    with torch.device("meta"), _NoRandomFill():
        return build()


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """`meta_build(build)` for a model about to be loaded whole, or built for real when it has buffers no state
    dict holds (non-persistent ones: nothing would replace their meta values)."""
    model = meta_build(build)
    if any(module._non_persistent_buffers_set for module in model.modules()):
        return build()
    return model


def load_assigned(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load `state` (the model's own names, every entry) into `model`, strictly. A model on the meta device takes
    copies of the tensors in its own dtypes (a copy: the caller's table stays its own); a real one loads them as
    `load_state_dict` does. RuntimeError, as load_state_dict's, when the entries or shapes do not fit."""
    if not any(t.is_meta for t in chain(model.parameters(), model.buffers())):
        model.load_state_dict(state)
        return
    own = model.state_dict()
    model.load_state_dict({k: v.to(dtype=own[k].dtype, copy=True) if k in own and isinstance(v, torch.Tensor)
                           else v for k, v in state.items()}, assign=True)
