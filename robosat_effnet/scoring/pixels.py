"""Segmentation metrics from a confusion matrix, for any number of classes.

The confusion matrix is the one thing accumulated during validation (it sums across batches
and across DistributedDataParallel ranks); every score is derived from it afterwards.

>>> c = confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], num_classes=2)
>>> scores(c)["iou"]
[0.5, 0.6666666666666666]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from robosat_effnet.colors import NODATA_INDEX


def confusion_matrix(pred: Any, target: Any, num_classes: int, ignore_index: int | None = NODATA_INDEX) -> torch.Tensor:
    """Count (truth, prediction) pairs: a LongTensor [C, C], rows = truth, columns = prediction.

    `pred` and `target` are class indices of the same shape (torch tensors, numpy arrays or lists).
    Pixels whose target equals `ignore_index` are not counted; other values outside 0..C-1 raise ValueError.
    """
    pred = torch.as_tensor(np.asarray(pred) if not isinstance(pred, torch.Tensor) else pred).reshape(-1)
    target = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target).reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(f"prediction has {pred.numel()} values but target has {target.numel()}")
    pred = pred.to(torch.long)
    target = target.to(device=pred.device, dtype=torch.long)
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if pred.numel() and (min(pred.min(), target.min()) < 0 or max(pred.max(), target.max()) >= num_classes):
        raise ValueError(f"class indices must be in 0..{num_classes - 1}")
    # One bincount over the flattened (truth, prediction) pair is the fastest way on CPU and GPU.
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores(confusion: Any, class_names: list[str] | None = None) -> dict[str, Any]:
    """Per-class and summary scores of a confusion matrix (rows = truth, columns = prediction).

    Returns plain Python numbers (so the dict can go into a checkpoint or a CSV):
    "iou", "precision", "recall", "f1": lists with one value per class (NaN where undefined, e.g.
    IoU of a class that is neither present nor predicted); "miou": mean of the defined IoUs;
    "mcc": multi-class Matthews correlation coefficient (Gorodkin's R_K, as scikit-learn computes it;
    0.0 when undefined); "accuracy": the fraction of pixels right; "classes": the class names.
    """
    c = np.asarray(confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, dtype=np.float64)
    tp = np.diag(c)
    truth = c.sum(axis=1)  # pixels of each class in the labels
    predicted = c.sum(axis=0)  # pixels of each class in the prediction
    total = c.sum()

    iou = _ratio(tp, truth + predicted - tp)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, truth)
    f1 = _ratio(2 * tp, truth + predicted)

    # MCC for K classes: (c*s - p.t) / sqrt((s^2 - p.p) * (s^2 - t.t)); floats avoid int64 overflow.
    covariance = tp.sum() * total - predicted @ truth
    spread = (total**2 - predicted @ predicted) * (total**2 - truth @ truth)
    mcc = float(covariance / math.sqrt(spread)) if spread > 0 else 0.0

    defined = [v for v in iou if not math.isnan(v)]
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(tp))]
    return {
        "classes": names,
        "iou": iou,
        "miou": float(np.mean(defined)) if defined else math.nan,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mcc": mcc,
        "accuracy": float(tp.sum() / total) if total else math.nan,
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> list[float]:
    return [float(n / d) if d > 0 else math.nan for n, d in zip(numerator, denominator, strict=True)]
