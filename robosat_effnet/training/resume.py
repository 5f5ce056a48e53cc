"""A checkpoint's training state (optimizer, schedule, scaler, RNG, history, epoch) checked and restored.

A file that loads safely can still hold anything where the training state belongs (a list for the optimizer, a
string for the epoch, tensors of another model's shapes). Each entry is checked before it is used, and what the
optimizer, scheduler, scaler and RNG refuse is one CheckpointError naming the file, not a traceback.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import nn

from robosat_effnet.errors import CheckpointError
from robosat_effnet.training.rng import set_rng_state

# entry -> (what it must be, in words; the check)
STATE = {
    "epoch": ("a whole number of epochs done", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "best_epoch": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "best_miou": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)),
    "history": ("a list of rows", lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v)),
    "optimizer": ("the optimizer's state", lambda v: isinstance(v, dict) and isinstance(v.get("param_groups"), list)
                  and isinstance(v.get("state"), dict)),
    "scheduler": ("the schedule's state", lambda v: isinstance(v, dict)),
    "scaler": ("the gradient scaler's state", lambda v: isinstance(v, dict)),
    "rng": ("random generator states", lambda v: isinstance(v, dict)),
}


def check_training_state(state: dict[str, Any], path: str | os.PathLike, only: tuple[str, ...] | None = None) -> None:
    """CheckpointError naming the first entry of a checkpoint's training state that is missing or of the wrong kind
    (e.g. a checkpoint with weights only); `only` checks just those entries (e.g. ("epoch",))."""
    if only is None and ("optimizer" not in state or "epoch" not in state):
        raise CheckpointError(f"{path} holds weights only, no training state; it cannot be resumed")
    for key, (expected, ok) in STATE.items():
        if only is not None and key not in only:
            continue
        if key not in state or not ok(state[key]):
            found = "missing" if key not in state else f"{str(state[key])[:60]!r}"
            raise CheckpointError(f"{path} is a damaged robosat_effnet checkpoint: its {key} is {found}, not "
                                  f"{expected}; resume from another checkpoint (e.g. checkpoint-NNNNN.pth) or train "
                                  "without --resume")


def restore(state: dict[str, Any], path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, scaler: torch.amp.GradScaler) -> None:
    """Load a checked training state (`check_training_state`) into the run's model, optimizer, scheduler, scaler
    and random generators."""
    check_training_state(state, path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _check_moments(optimizer)
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
        raise CheckpointError(f"{path} is a damaged robosat_effnet checkpoint: its training state does not fit "
                              f"this model ({type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}); "
                              "resume from another checkpoint or train without --resume") from None


def _check_moments(optimizer: torch.optim.Optimizer) -> None:
    """The optimizer's per-parameter tensors (AdamW's moments) have their parameter's shape: torch only finds out
    at the first step, deep inside it."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    raise ValueError(f"optimizer {name} of shape {tuple(value.shape)} for a parameter of shape "
                                     f"{tuple(param.shape)}")
                if not isinstance(value, torch.Tensor):
                    raise TypeError(f"optimizer {name} is a {type(value).__name__}, not a tensor")
