"""Probabilities -> class masks: the most likely class, and a building only where the model is sure enough.

Taking the argmax (p > 0.5 with two classes) joins neighbouring roofs through the narrow, half-certain gaps
between them, and keeps faint blobs on bare earth. Requiring the winning foreground class to reach
`MASK_THRESHOLD` cuts those bridges and drops those blobs. Measured on buildings-oam (pretrained Lite0, the
recipe, seed 0; per-building F1 against the label tiles, SpaceNet matching, 2 m2), on regions the model never
saw: Philippines 0.453 -> 0.481, Kampala 0.217 -> 0.274, Zanzibar 0.448 -> 0.446 (level); of 0.4-0.7, 0.7 did
best (BENCHMARKS.md, "Outlines a mapper can keep"). After training on the area's own tiles 0.5 did better on two
regions of three, so the recipe passes `--threshold 0.5` there. Shared by predict, eval, the study and the
Deepness export, so all of them draw the same masks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is not imported here: the CLI reads MASK_THRESHOLD for its defaults without it
    import torch

MASK_THRESHOLD = 0.7
# `features` leaves out outlines smaller than this (m2 on the ground): a network's specks, cars and crates.
# Measured as above: per-building F1 +1.4 to +5.7 points over 2 m2 on both regions, across regions and after
# fine-tuning on a quarter of the area; 10 m2 gained less (small houses start to go).
OUTLINE_MIN_AREA = 5.0


def to_classes(probs: torch.Tensor, threshold: float = MASK_THRESHOLD) -> torch.Tensor:
    """N x K x H x W probabilities -> N x H x W uint8 classes: the argmax, except that a pixel whose winning
    class is not background (index 0) but has a probability below `threshold` is background. 0 (or 0.5 with
    two classes) gives the plain argmax."""
    best, classes = probs.max(dim=1)
    classes = classes.byte()
    if threshold > 0:
        classes[(classes > 0) & (best < threshold)] = 0
    return classes


def to_classes_numpy(probs: np.ndarray, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """`to_classes` for one K x H x W numpy array -> H x W uint8."""
    classes = probs.argmax(axis=0).astype(np.uint8)
    if threshold > 0:
        classes[(classes > 0) & (probs.max(axis=0) < threshold)] = 0
    return classes


def threshold_settings(threshold: float, probs: bool) -> dict[str, float]:
    """The provenance entry of a predict run: masks made at another threshold are another run (an older folder,
    made with the plain argmax, is not continued at 0.7 either); probability tiles do not depend on it."""
    return {} if probs else {"threshold": float(threshold)}
