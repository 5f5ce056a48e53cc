"""Segmentation losses by name, with robosat's names and semantics, plus Dice.

Every loss takes logits N x C x H x W and targets N x H x W (class indices) and returns a scalar.

- "CrossEntropy": class-weighted cross-entropy.
- "Focal": cross-entropy whose per-pixel log-probabilities are scaled by (1 - p)^gamma (robosat's form:
  the factor applies to every class's log-probability before the weighted NLL picks the true one).
- "mIoU": the larger of (1 - soft mean IoU) and the weighted cross-entropy, as robosat did.
- "Lovasz": the Lovasz hinge on the logits of the one-hot targets, flattened over classes and pixels of
  each image, averaged over images (robosat's LovaszLoss2d; Berman et al. 2018). Ignores class weights.
- "Dice": 1 - mean over classes of the soft Dice coefficient over the batch. Ignores class weights.

`GapLoss` adds to any of them a term for the narrow gaps between neighbouring objects (U-Net's border weights,
Ronneberger et al. 2015): the cross-entropy of the background pixels that have two different objects within
`gap_px`, so that a network learns to keep neighbours apart instead of joining them into one outline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robosat_effnet.config.model import LOSS_NAMES, canonical_loss
from robosat_effnet.errors import MissingDependencyError


class CrossEntropyLoss(nn.Module):
    """Class-weighted cross-entropy over pixels."""

    def __init__(self, weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, weight=self.weight)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): down-weights well-classified pixels; gamma = 0 is cross-entropy."""

    def __init__(self, weight: torch.Tensor | None = None, gamma: float = 2.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1)
        return F.nll_loss((1 - log_p.exp()) ** self.gamma * log_p, targets, weight=self.weight)


class MeanIoULoss(nn.Module):
    """max(1 - soft mIoU, weighted cross-entropy): robosat's mIoU loss.

    The soft IoU is computed per image and class from softmax probabilities, then averaged over both.
    """

    def __init__(self, weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        probs = F.softmax(logits, dim=1)
        onehot = F.one_hot(targets, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
        intersection = (probs * onehot).sum(dim=(2, 3))
        union = (probs + onehot - probs * onehot).sum(dim=(2, 3))
        miou_loss = 1 - (intersection / union).mean()
        return torch.maximum(miou_loss, F.cross_entropy(logits, targets, weight=self.weight))


class LovaszHingeLoss(nn.Module):
    """robosat's Lovasz loss: per image, the Lovasz extension of the Jaccard loss applied to hinge errors."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = logits.shape[0]
        truth = F.one_hot(targets, logits.shape[1]).permute(0, 3, 1, 2).reshape(n, -1).to(logits.dtype)
        errors = 1 - logits.reshape(n, -1) * (2 * truth - 1)
        errors, order = torch.sort(errors, dim=1, descending=True)
        truth = torch.gather(truth, 1, order)
        return (F.relu(errors) * jaccard_gradient(truth)).sum(dim=1).mean()


class DiceLoss(nn.Module):
    """1 - mean soft Dice coefficient over classes (each class over the whole batch)."""

    def __init__(self, smooth: float = 1.0):
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        probs = F.softmax(logits, dim=1)
        onehot = F.one_hot(targets, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
        intersection = (probs * onehot).sum(dim=(0, 2, 3))
        total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
        return 1 - ((2 * intersection + self.smooth) / (total + self.smooth)).mean()


def jaccard_gradient(sorted_truth: torch.Tensor) -> torch.Tensor:
    """Per row, the gradient of the Lovasz extension of the Jaccard loss at errors sorted descending.

    For the first i sorted elements predicted positive, J_i = 1 - |truth \\ missed| / |truth U wrongly hit|;
    the gradient is J_i - J_{i-1} (with J_0 = 0).
    """
    positives = sorted_truth.sum(dim=1, keepdim=True)
    intersection = positives - sorted_truth.cumsum(dim=1)
    union = positives + (1 - sorted_truth).cumsum(dim=1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)


# name -> factory(class weights tensor or None, gamma); the names are config.model.LOSS_NAMES, in that order.
LOSSES: dict[str, Callable[[torch.Tensor | None, float], nn.Module]] = {
    "CrossEntropy": lambda weight, gamma: CrossEntropyLoss(weight),
    "mIoU": lambda weight, gamma: MeanIoULoss(weight),
    "Focal": lambda weight, gamma: FocalLoss(weight, gamma),
    "Lovasz": lambda weight, gamma: LovaszHingeLoss(),
    "Dice": lambda weight, gamma: DiceLoss(),
}
assert tuple(LOSSES) == LOSS_NAMES, "config.model.LOSS_NAMES must name the losses built here"
WEIGHTED = {"CrossEntropy", "mIoU", "Focal"}  # the losses that use dataset.toml's [weights]


def build_loss(name: str, weights: Sequence[float] | None = None, gamma: float = 2.0, gap_weight: float = 0.0,
               gap_px: int = 8) -> nn.Module:
    """The loss called `name`; `weights` (one per class) are used by CrossEntropy, mIoU and Focal.

    `gap_weight` > 0 adds the gap term (`GapLoss`) for background within `gap_px` of two objects.
    """
    key = canonical_loss(name)
    weight = torch.tensor(list(weights), dtype=torch.float32) if weights is not None and key in WEIGHTED else None
    loss = LOSSES[key](weight, gamma)
    return GapLoss(loss, gap_weight, gap_px) if gap_weight > 0 else loss


def _ndimage():
    try:
        from scipy import ndimage
    except ImportError:
        raise MissingDependencyError("[opt] gap_weight needs scipy: pip install robosat_effnet[footprints], or set "
                                     "gap_weight = 0") from None
    return ndimage


def gap_pixels(targets: torch.Tensor, radius: int) -> torch.Tensor:
    """N x H x W bool: background pixels (class 0) with two different objects within `radius` px in x and in y.

    Objects are the 4-connected parts of the non-background pixels of each tile; the wall between buildings that
    touch is no gap (there is no background there), the strip of ground between two close ones is.
    """
    import numpy as np

    ndimage = _ndimage()

    size = 2 * radius + 1  # a square window: the filters are separable, so this costs milliseconds per tile
    labels = targets.detach().cpu().numpy()
    out = np.zeros(labels.shape, dtype=bool)
    for i, label in enumerate(labels):
        ids, count = ndimage.label(label > 0)
        if count < 2:
            continue
        highest = ndimage.maximum_filter(ids, size=size, mode="constant", cval=0)
        lowest = ndimage.minimum_filter(np.where(ids > 0, ids, count + 1), size=size, mode="constant",
                                        cval=count + 1)
        out[i] = (label == 0) & (lowest <= count) & (highest != lowest)
    return torch.from_numpy(out).to(targets.device)


class GapLoss(nn.Module):
    """`base(logits, targets) + weight x` the mean cross-entropy over the gap pixels of the batch (`gap_pixels`)."""

    def __init__(self, base: nn.Module, weight: float, radius: int):
        super().__init__()
        _ndimage()  # a missing scipy is told before training starts, not at the first batch
        self.base, self.weight, self.radius = base, weight, radius

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.base(logits, targets)
        gaps = gap_pixels(targets, self.radius)
        if not gaps.any():
            return loss + 0.0 * logits.sum()  # the same graph every step (DDP expects every output used)
        pixels = F.cross_entropy(logits, targets, reduction="none")
        return loss + self.weight * pixels[gaps].mean()
