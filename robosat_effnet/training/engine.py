"""One pass over the data: a training epoch (forward, loss, backward, step) or a validation pass.

Both return the mean loss per tile and the confusion matrix, each summed over DistributedDataParallel
ranks; scores are derived from the confusion matrix afterwards (robosat_effnet.scoring.pixels).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from robosat_effnet.errors import DivergedError
from robosat_effnet.scoring.pixels import confusion_matrix
from robosat_effnet.training.distributed import DistInfo, all_reduce_sum

LOWER_LR = "lower lr (and encoder_lr) in model.toml (or --lr); nothing of this epoch was saved"


def check_finite(model: nn.Module, epoch: int, train_loss: float, val_loss: float | None = None,
                 metrics: dict | None = None) -> None:
    """DivergedError when an epoch ended with a non-finite training or validation loss, validation score, weight
    or BatchNorm statistic: called before its checkpoints are written, so none of a diverged epoch is kept.

    Huge but finite weights (lr 1e30) show up as a nan validation loss; a run not validated this epoch is still
    stopped by its weights as soon as they overflow.
    """
    where = f"training diverged in epoch {epoch}"
    module = getattr(model, "module", model)  # DistributedDataParallel's wrapped model
    for name, value in module.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise DivergedError(f"{where}: the weights {name} are no longer finite; {LOWER_LR}")
    losses = {"training loss": train_loss, "validation loss": val_loss}
    if metrics and sum(map(sum, metrics.get("confusion", []))):  # scores of no pixel at all are nan by definition
        losses |= {"validation mIoU": metrics.get("miou"), "validation MCC": metrics.get("mcc")}
    for what, value in losses.items():
        if value is not None and not math.isfinite(value):
            raise DivergedError(f"{where}: the {what} is {value}; {LOWER_LR}")


@dataclass
class Engine:
    """Where and how batches run: device, autocast dtype (None: float32), gradient clipping, ranks, progress."""

    device: torch.device
    num_classes: int
    dtype: torch.dtype | None = None
    grad_clip: float = 0.0
    info: DistInfo = field(default_factory=DistInfo)
    progress: bool = True

    def train_one_epoch(self, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                        optimizer: torch.optim.Optimizer, scheduler, scaler: torch.amp.GradScaler,
                        desc: str = "train") -> tuple[float, torch.Tensor]:
        """Train on every batch of `loader` once; the scheduler steps once per batch."""
        model.train()
        totals, confusion = self._accumulators()
        began = time.perf_counter()
        bar = tqdm(loader, desc=desc, unit="batch", disable=not self.progress, leave=False)
        for step, (images, labels) in enumerate(bar):
            images, labels = self.to_device(images, labels)
            with self._autocast():
                logits = model(images)
            loss = criterion(logits.float(), labels)  # losses in float32: sums over many pixels
            if self.dtype != torch.float16 and not torch.isfinite(loss):  # with AMP the scaler skips such steps itself
                raise DivergedError(f"the loss became {loss.item()} in {desc}, step {step + 1}; "
                                    f"{LOWER_LR}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if self.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            totals += torch.tensor([loss.item() * len(images), len(images)], dtype=torch.float64,
                                   device=self.device)
            confusion += confusion_matrix(logits.detach().argmax(1), labels, self.num_classes)
            tiles_per_s = totals[1].item() * self.info.world_size / (time.perf_counter() - began)
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}",
                            tiles_s=f"{tiles_per_s:.1f}")
        return self._reduce(totals, confusion)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                 desc: str = "validate") -> tuple[float, torch.Tensor]:
        """Loss and confusion matrix of the model in eval mode over `loader`."""
        model.eval()
        totals, confusion = self._accumulators()
        for images, labels in tqdm(loader, desc=desc, unit="batch", disable=not self.progress, leave=False):
            images, labels = self.to_device(images, labels)
            with self._autocast():
                logits = model(images)
            loss = criterion(logits.float(), labels)
            totals += torch.tensor([loss.item() * len(images), len(images)], dtype=torch.float64,
                                   device=self.device)
            confusion += confusion_matrix(logits.argmax(1), labels, self.num_classes)
        return self._reduce(totals, confusion)

    def to_device(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        if self.device.type == "cuda":  # convolutions run faster in NHWC on tensor cores
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels.to(self.device, non_blocking=True)

    def _accumulators(self) -> tuple[torch.Tensor, torch.Tensor]:
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # sum of loss * tiles, tiles
        return totals, torch.zeros(self.num_classes, self.num_classes, dtype=torch.long, device=self.device)

    def _reduce(self, totals: torch.Tensor, confusion: torch.Tensor) -> tuple[float, torch.Tensor]:
        all_reduce_sum(totals, self.info)
        all_reduce_sum(confusion, self.info)
        return (totals[0] / totals[1]).item(), confusion.cpu()
