"""The training history next to the checkpoints: `history.csv` (one row per epoch) and `history.png`."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robosat_effnet.io import atomic_path


def write_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the rows (dicts with the same keys, in epoch order) as CSV, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["epoch"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read a history.csv back (every value as a float)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot(rows: Sequence[dict[str, Any]], path: str | os.PathLike, classes: Sequence[str] = ()) -> Path:
    """Plot loss (train, validation) and IoU (validation mIoU and per class) per epoch into a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in rows]
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, iou_axes = figure.subplots(1, 2)
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        loss_axes.plot(epochs, [row[key] for row in rows], marker="o", label=label)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss")
    iou_keys = [("val_miou", "mIoU")] + [(f"val_iou_{name}", f"IoU {name}") for name in classes]
    for key, label in iou_keys:
        if rows and key in rows[0]:
            iou_axes.plot(epochs, [_nan(row[key]) for row in rows], marker="o", label=label)
    iou_axes.set(xlabel="epoch", ylabel="IoU (validation)", title="IoU", ylim=(0, 1))
    for axes in (loss_axes, iou_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def _nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
