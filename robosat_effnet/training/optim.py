"""The optimiser's settings: parameter groups (decay, the encoder's own learning rate) and the learning-rate
schedule (linear warm-up, then cosine decay to 0)."""

from __future__ import annotations

import math
from typing import Any

from torch import nn


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier at `step`: linear warm-up over `warmup` steps, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: nn.Module, weight_decay: float, lr: float,
                  encoder_lr: float | None = None) -> list[dict[str, Any]]:
    """AdamW's parameter groups: weights with decay, norms and biases without, at `lr`, or the encoder at
    `encoder_lr` and the decoder at `lr`."""
    # Weight decay on norm scales and biases only shrinks them towards zero; decay the weights only. A pretrained
    # encoder may learn more slowly than the new decoder (`encoder_lr`), so that its features are adapted, not lost.
    parts = [(model, lr)] if encoder_lr in (None, lr) else [(model.encoder, encoder_lr), (model.decoder, lr)]
    return [{"params": [p for p in part.parameters() if p.requires_grad and (p.ndim > 1) == decay],
             "weight_decay": weight_decay if decay else 0.0, "lr": part_lr}
            for part, part_lr in parts for decay in (True, False)]
