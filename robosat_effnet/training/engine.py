"""One pass over the data: a training epoch (forward, loss, backward, step) or a validation pass.

Both return the mean loss per tile and the confusion matrix, each summed over DistributedDataParallel
ranks; scores are derived from the confusion matrix afterwards (robosat_effnet.training.metrics).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from robosat_effnet.errors import RobosatEffnetError
from robosat_effnet.training.distributed import DistInfo, all_reduce_sum
from robosat_effnet.training.metrics import confusion_matrix


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
                raise RobosatEffnetError(f"the loss became {loss.item()} in {desc}, step {step + 1}; "
                                         "lower lr in model.toml (or --lr)")
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
