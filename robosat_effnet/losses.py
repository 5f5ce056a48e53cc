"""Segmentation losses by name, with robosat's names and semantics, plus Dice.

Every loss takes logits N x C x H x W and targets N x H x W (class indices) and returns a scalar.

- "CrossEntropy": class-weighted cross-entropy.
- "Focal": cross-entropy whose per-pixel log-probabilities are scaled by (1 - p)^gamma (robosat's form:
  the factor applies to every class's log-probability before the weighted NLL picks the true one).
- "mIoU": the larger of (1 - soft mean IoU) and the weighted cross-entropy, as robosat did.
- "Lovasz": the Lovasz hinge on the logits of the one-hot targets, flattened over classes and pixels of
  each image, averaged over images (robosat's LovaszLoss2d; Berman et al. 2018). Ignores class weights.
- "Dice": 1 - mean over classes of the soft Dice coefficient over the batch. Ignores class weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robosat_effnet.errors import UnknownNameError


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


# name -> factory(class weights tensor or None, gamma); robosat's names first.
LOSSES: dict[str, Callable[[torch.Tensor | None, float], nn.Module]] = {
    "CrossEntropy": lambda weight, gamma: CrossEntropyLoss(weight),
    "mIoU": lambda weight, gamma: MeanIoULoss(weight),
    "Focal": lambda weight, gamma: FocalLoss(weight, gamma),
    "Lovasz": lambda weight, gamma: LovaszHingeLoss(),
    "Dice": lambda weight, gamma: DiceLoss(),
}
WEIGHTED = {"CrossEntropy", "mIoU", "Focal"}  # the losses that use dataset.toml's [weights]


def canonical_loss(name: str) -> str:
    """The registry spelling of a loss name (case-insensitive); UnknownNameError lists the valid ones."""
    for key in LOSSES:
        if key.lower() == str(name).strip().lower():
            return key
    raise UnknownNameError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)} ([opt] loss in model.toml)")


def build_loss(name: str, weights: Sequence[float] | None = None, gamma: float = 2.0) -> nn.Module:
    """The loss called `name`; `weights` (one per class) are used by CrossEntropy, mIoU and Focal."""
    key = canonical_loss(name)
    weight = torch.tensor(list(weights), dtype=torch.float32) if weights is not None and key in WEIGHTED else None
    return LOSSES[key](weight, gamma)
