"""Training: AdamW with linear warm-up then cosine decay, validation metrics each epoch, checkpoints, resume.

    >>> from robosat_effnet.training import train
    >>> result = train("dataset.toml", "model.toml", device="cpu")
    >>> result["best_miou"], result["best"]

Writes into the checkpoint folder: `last.pth` after every epoch, `best.pth` (highest validation mIoU),
`history.csv` and `history.png`; numbered `checkpoint-NNNNN.pth` only as model.toml's `keep` says (training.retention:
default none). A checkpoint holds the model spec, weights, optimizer, scheduler, AMP scaler, RNG states,
metrics and the configs, and loads with `torch.load(weights_only=True)`; `resume=` continues from one
exactly where it stopped.
The batches themselves run in robosat_effnet.training.engine, the parameter groups and the schedule are
robosat_effnet.training.optim's; torchrun/DDP plumbing is in robosat_effnet.training.distributed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from robosat_effnet.config import DatasetConfig, ModelConfig, load_dataset_config, load_model_config, spec_from_configs
from robosat_effnet.config.model import canonical_loss
from robosat_effnet.errors import CheckpointError, ConfigError
from robosat_effnet.models.checkpoint import ModelSpec, load_checkpoint, save_checkpoint
from robosat_effnet.models.device import resolve_device
from robosat_effnet.outputs import check_separate, claim_run_folder, start_run_folder, writing
from robosat_effnet.scoring.pixels import scores
from robosat_effnet.training.datasets import SPLITS, Sample, SegmentationTiles, check_dataset, check_samples
from robosat_effnet.training.distributed import DistInfo, ShardSampler, init_distributed, shutdown, synchronize
from robosat_effnet.training.engine import Engine, check_finite
from robosat_effnet.training.history import plot, write_csv
from robosat_effnet.training.losses import WEIGHTED, build_loss
from robosat_effnet.training.optim import lr_factor, param_groups
from robosat_effnet.training.resume import check_training_state, restore
from robosat_effnet.training.retention import copy_checkpoint, epoch_file, remove_epoch_files, retained
from robosat_effnet.training.rng import get_rng_state

log = logging.getLogger("robosat_effnet")

# Spec fields a resumed run must share with its checkpoint (the version may differ).
RESUME_FIELDS = ("backbone", "decoder", "decoder_channels", "classes", "in_channels", "bands", "mean", "std",
                 "max_value", "tile_size")


def train(dataset_cfg: DatasetConfig | str | os.PathLike, model_cfg: ModelConfig | str | os.PathLike, *,
          device: str | torch.device | None = None, resume: str | os.PathLike | None = None,
          checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
          stop_after: int | None = None, overwrite: bool = False,
          extra_training: Sequence[Sample] = ()) -> dict[str, Any]:
    """Train a segmentation model as the two configs say; returns a summary of the run.

    Args:
        dataset_cfg, model_cfg: configs or paths to robosat's dataset.toml / model.toml.
        device: "cpu", "cuda", "cuda:1"...; default: a GPU when model.toml's `cuda` allows and one exists.
        resume: a checkpoint (e.g. last.pth) to continue from: same epochs count, same results.
        checkpoint_dir: where to write; default: model.toml's `checkpoint` folder.
        progress: progress bars and one summary line per epoch.
        stop_after: stop once this many epochs are done (the schedule still spans all `epochs`), e.g. to
            split a run in parts; resume the rest with `resume=`.
        overwrite: replace another run found in the checkpoint folder (its files are removed first);
            without it (or `resume`) such a folder is refused with OutputError.
        extra_training: more training pairs beside the dataset's (e.g. pseudo-labelled tiles, `adapt`), checked
            like them.
    Returns:
        {"best_miou", "best_epoch", "epochs_done", "checkpoint_dir", "best", "last", "history_path", "training_tiles",
        "history" (rows), "metrics" (last validation scores)}.
    Raises RobosatEffnetError subclasses for bad configs, datasets or checkpoints, before writing anything.
    """
    if not isinstance(dataset_cfg, DatasetConfig):
        dataset_cfg = load_dataset_config(dataset_cfg)
    if not isinstance(model_cfg, ModelConfig):
        model_cfg = load_model_config(model_cfg)
    device = resolve_device(device, model_cfg.cuda, model_cfg.source)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else Path(model_cfg.checkpoint)
    # Before any long work (and on every rank, so all fail alike): never inside the data (the dataset folder, not
    # only its tiles: it is the data's, and the next `rasterize` or `tile` there would meet checkpoints), never two
    # runs mixed.
    check_separate([folder], [dataset_cfg.dataset, *(dataset_cfg.dataset / split / name for split in SPLITS
                                                     for name in (*dataset_cfg.images, dataset_cfg.labels))])
    weights = model_cfg.weights if model_cfg.weights and str(model_cfg.weights).lower() not in ("imagenet", "none") \
        else None
    replaced = claim_run_folder(folder, resume=resume, overwrite=overwrite, keep=(weights,))
    info = init_distributed(device.type == "cuda")
    try:
        if info.enabled and device.type == "cuda":
            device = torch.device("cuda", info.local_rank)
        run = _Run(dataset_cfg, model_cfg, device, info, progress, extra_training)
        result = run.fit(resume, folder, stop_after, replaced)
        synchronize(info)  # the ranks leave together: gloo can abort a process whose peer tears down first
        return result
    finally:
        shutdown(info)


class _Run:
    """One training run's state; `fit` is the whole loop."""

    def __init__(self, dataset_cfg: DatasetConfig, model_cfg: ModelConfig, device: torch.device, info: DistInfo,
                 progress: bool, extra_training: Sequence[Sample] = ()):
        self.data, self.cfg, self.device, self.info = dataset_cfg, model_cfg, device, info
        self.progress = progress and info.is_main
        self.cuda = device.type == "cuda"
        # float16 needs the gradient scaler and CUDA; bfloat16 has float32's range and runs anywhere
        self.amp = model_cfg.amp and self.cuda and model_cfg.precision == "fp32"
        self.dtype = torch.bfloat16 if model_cfg.precision == "bf16" else torch.float16 if self.amp else None
        loss_name = canonical_loss(model_cfg.loss)
        if loss_name in WEIGHTED and dataset_cfg.weights is None:
            log.warning("%s: no [weights] values; the %s loss uses equal class weights (compute them with "
                        "`rs-effnet weights`)", dataset_cfg.source or "dataset config", loss_name)
        self.criterion = build_loss(loss_name, dataset_cfg.weights, model_cfg.gamma, model_cfg.gap_weight,
                                    model_cfg.gap_px).to(device)
        colour = (model_cfg.hue, model_cfg.saturation, model_cfg.grayscale)
        if any(colour) and model_cfg.augment and dataset_cfg.in_channels != 3:
            raise ConfigError(f"{model_cfg.source or 'model config'}: hue, saturation and grayscale change RGB "
                              f"colours; this dataset has {dataset_cfg.in_channels} bands: set them to 0")
        samples = check_dataset(dataset_cfg, workers=max(1, model_cfg.workers), progress=self.progress)
        if extra_training:
            check_samples(extra_training, dataset_cfg.num_classes, dataset_cfg.in_channels, dataset_cfg.bands,
                          max(1, model_cfg.workers), self.progress, "check extra", dataset_cfg.max_value)
            samples["training"] = samples["training"] + list(extra_training)
        self.spec = spec_from_configs(dataset_cfg, model_cfg)
        options = dict(size=model_cfg.image_size, seed=model_cfg.seed)
        self.train_set = SegmentationTiles.from_spec(self.spec, samples["training"], augment=model_cfg.augment,
                                                     jitter=model_cfg.jitter, colour=colour, **options)
        self.val_set = SegmentationTiles.from_spec(self.spec, samples["validation"], **options)
        smallest = min(model_cfg.batch_size, math.ceil(len(self.train_set) / info.world_size))
        if model_cfg.image_size < 64 and smallest < 2:  # the deepest features are 1 x 1 px
            raise ConfigError(f"batch_size {smallest} at image_size {model_cfg.image_size} leaves BatchNorm one "
                              "value per channel; use batch_size >= 2 (and as many tiles) or image_size >= 64")

    def fit(self, resume: str | os.PathLike | None, folder: Path, stop_after: int | None,
            replaced: list[Path]) -> dict[str, Any]:
        cfg, info = self.cfg, self.info
        state = self._load_resume(resume) if resume is not None else None
        torch.manual_seed(cfg.seed)  # the same initial weights for a given seed
        from robosat_effnet.models import build_model

        model = build_model(self.spec.backbone, self.spec.decoder, self.spec.num_classes, self.spec.in_channels,
                            weights=None if state else cfg.weights, output_stride=self.spec.output_stride,
                            decoder_channels=self.spec.decoder_channels)
        model = model.to(self.device, memory_format=torch.channels_last if self.cuda else torch.preserve_format)
        optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.lr, cfg.encoder_lr), lr=cfg.lr,
                                      foreach=True)
        steps = self._steps_per_epoch()
        total, warmup = steps * cfg.epochs, min(round(cfg.warmup * steps), steps * cfg.epochs // 2)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup))
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        start, history, best = 0, [], (-math.inf, 0)
        self.epoch_files = list(state.get("epoch_files", [])) if state else []  # the numbered files this run wrote
        if state:
            restore(state, resume, model, optimizer, scheduler, scaler)
            start, history, best = state["epoch"], list(state["history"]), (state["best_miou"], state["best_epoch"])
        if info.enabled:
            if self.cuda:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.cuda else None)

        if info.is_main:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"cannot create the checkpoint folder {folder} ({e.strerror}); set checkpoint "
                                  "in model.toml or --checkpoint-dir to a writable folder") from None
            start_run_folder(folder, replaced)  # the replaced run's files go only now that everything checked out
        metrics: dict[str, Any] = {}
        engine = Engine(self.device, self.spec.num_classes, self.dtype, cfg.grad_clip, info, self.progress)
        end = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
        for epoch in range(start, end):
            began = time.perf_counter()
            train_loss, confusion = engine.train_one_epoch(model, self._loader(self.train_set, epoch, True),
                                                           self.criterion, optimizer, scheduler, scaler,
                                                           desc=f"epoch {epoch + 1}/{cfg.epochs}")
            train_scores = scores(confusion, self.data.classes)
            # A large validation split scored every epoch can cost more than the training: `validate_every`.
            validated = (epoch + 1) % cfg.validate_every == 0 or epoch + 1 == cfg.epochs
            if validated:
                val_loss, confusion = engine.evaluate(model, self._loader(self.val_set, 0, False), self.criterion)
                metrics = {**scores(confusion, self.data.classes), "confusion": confusion.tolist()}
            check_finite(model, epoch + 1, None if self.amp else train_loss,  # fp16: the scaler skips inf steps
                         val_loss if validated else None,
                         metrics if validated else None)
            row = _history_row(epoch + 1, scheduler.get_last_lr()[0], train_loss, train_scores,
                               val_loss if validated else math.nan, metrics if validated else None,
                               time.perf_counter() - began, self.data.classes)
            history.append(row)
            if validated and _better(metrics["miou"], best[0]):
                best = (metrics["miou"], epoch + 1)
            if info.is_main:
                self._save(folder, model, optimizer, scheduler, scaler, epoch, metrics, history, best)
            if self.progress:
                tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f}, " + (
                    f"val loss {val_loss:.4f}, val mIoU {metrics['miou']:.4f}, MCC {metrics['mcc']:.4f}" if validated
                    else f"not validated (every {cfg.validate_every} epochs)"))
        return {"best_miou": best[0], "best_epoch": best[1], "epochs_done": max(start, end),
                "checkpoint_dir": folder, "best": folder / "best.pth", "last": folder / "last.pth",
                "history_path": folder / "history.csv", "history": history, "metrics": metrics,
                "training_tiles": len(self.train_set)}

    def _save(self, folder: Path, model: nn.Module, optimizer, scheduler, scaler, epoch: int, metrics: dict,
              history: list, best: tuple) -> None:
        """Write last.pth, checkpoint-NNNNN.pth, best.pth and the history; a full disk: one OutputError."""
        cfg = self.cfg
        kept, drop = retained(self.epoch_files, epoch + 1, save_every=cfg.save_every, epochs=cfg.epochs, keep=cfg.keep)
        extra = dict(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
                     epoch=epoch + 1, rng=get_rng_state(), metrics=metrics, history=history, best_miou=best[0],
                     best_epoch=best[1], model_config=cfg.to_dict(), dataset_config=_plain(self.data),
                     world_size=self.info.world_size, epoch_files=kept)
        with writing(folder):
            path = save_checkpoint(folder / "last.pth", model, self.spec, **extra)
            if epoch_file(epoch + 1) in kept:
                copy_checkpoint(path, folder / epoch_file(epoch + 1))
            remove_epoch_files(folder, drop)  # only numbered files this run wrote (training.retention)
            self.epoch_files = kept
            if best[1] == epoch + 1:
                copy_checkpoint(path, folder / "best.pth")
            write_csv(history, folder / "history.csv")
            plot(history, folder / "history.png", self.data.classes)

    def _load_resume(self, path: str | os.PathLike) -> dict[str, Any]:
        state = load_checkpoint(path)  # refuses robosat's own checkpoints with a clear message
        check_training_state(state, path)  # weights only, or entries of the wrong kind
        saved, wanted = ModelSpec.from_dict(state["spec"]).to_dict(), self.spec.to_dict()
        differ = [f"{k} {saved[k]!r} vs {wanted[k]!r}" for k in RESUME_FIELDS if saved[k] != wanted[k]]
        if differ:
            raise CheckpointError(f"cannot resume from {path}: it was trained differently ({'; '.join(differ)}); "
                                  "use the configs it was trained with, or train without --resume")
        if state["epoch"] >= self.cfg.epochs:
            raise ConfigError(f"{path} has already done {state['epoch']} epochs and epochs = {self.cfg.epochs}; "
                              "raise epochs (--epochs) to train further")
        return state

    def _steps_per_epoch(self) -> int:
        per_rank = math.ceil(len(self.train_set) / self.info.world_size)
        return max(1, per_rank // self.cfg.batch_size)

    def _loader(self, dataset: SegmentationTiles, epoch: int, training: bool) -> DataLoader:
        # Shuffling and worker seeds come from a generator seeded by (seed, epoch) instead of the global RNG:
        # an epoch looks the same whether the run started fresh or was resumed.
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        info, sampler = self.info, None
        if training:
            dataset.set_epoch(epoch)
            if info.enabled:
                sampler = DistributedSampler(dataset, info.world_size, info.rank, shuffle=True, seed=self.cfg.seed)
                sampler.set_epoch(epoch)
        elif info.enabled:
            sampler = ShardSampler(len(dataset), info.rank, info.world_size)
        per_rank = len(sampler) if sampler is not None else len(dataset)
        return DataLoader(dataset, batch_size=self.cfg.batch_size, shuffle=training and sampler is None,
                          sampler=sampler, generator=generator, num_workers=self.cfg.workers,
                          pin_memory=self.cuda, drop_last=training and per_rank >= self.cfg.batch_size)


def _history_row(epoch: int, lr: float, train_loss: float, train_scores: dict, val_loss: float, val: dict | None,
                 seconds: float, classes: list[str]) -> dict[str, Any]:
    """One history.csv row; `val` None (an epoch not validated) leaves the validation columns NaN."""
    nan = {"miou": math.nan, "mcc": math.nan, "accuracy": math.nan} | {k: [math.nan] * len(classes)
                                                                        for k in ("iou", "precision", "recall")}
    val = val or nan
    row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_miou": train_scores["miou"],
           "val_loss": val_loss, "val_miou": val["miou"], "val_mcc": val["mcc"], "val_accuracy": val["accuracy"]}
    for key in ("iou", "precision", "recall"):
        row.update({f"val_{key}_{name}": value for name, value in zip(classes, val[key], strict=True)})
    row["seconds"] = round(seconds, 3)
    return row


def _better(miou: float, best: float) -> bool:
    return not math.isnan(miou) and miou > best


def _plain(config: DatasetConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}
