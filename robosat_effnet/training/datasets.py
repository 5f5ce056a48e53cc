"""Training pairs in robosat's layout, the checks they pass before training, and class weights.

    <dataset>/training/images/z/x/y.<ext>     <dataset>/training/labels/z/x/y.png
    <dataset>/validation/images/z/x/y.<ext>   <dataset>/validation/labels/z/x/y.png

Several image folders (dataset.toml `images = ["rgb", "nir"]`, each under training/ and validation/)
are stacked channel-wise, tile by tile, as robosat's SlippyMapTilesConcatenation did; `bands` then picks
1-based channels of the stacked image.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mercantile
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from robosat_effnet.config import DatasetConfig
from robosat_effnet.data.transforms import (
    COLOUR_SEED,
    IMAGENET_MEAN,
    IMAGENET_STD,
    augment,
    colour_shift,
    resize,
    sample_generator,
    scale_factor,
    select_bands,
    to_tensor,
)
from robosat_effnet.errors import DatasetError
from robosat_effnet.io import read_image, read_label
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.outputs import warn_other_classes
from robosat_effnet.tiles import tile_files

log = logging.getLogger("robosat_effnet")

SPLITS = ("training", "validation")
EXAMPLES = 3  # how many offending files an error message names

# The problems check_samples looks for, in the order they are reported, with what to do about each.
FIXES = {
    "unreadable files": "re-create or remove those files",
    "an image size different from the label size": "re-create the labels at the size of their images",
    "label values outside the classes": "labels hold class indices 0..classes-1: fix the labels or add classes "
                                        "in dataset.toml",
    "a channel count different from the model's": "set bands or in_channels (with mean and std) in dataset.toml",
}


@dataclass(frozen=True)
class Sample:
    """One training pair: a tile, its image file in each image folder, and its label file."""

    tile: mercantile.Tile
    images: tuple[Path, ...]
    label: Path


def find_samples(config: DatasetConfig, split: str) -> list[Sample]:
    """The image/label pairs of one split (`training` or `validation`), sorted by tile.

    Raises DatasetError for a missing or empty folder and for tiles that are in one folder but not another.
    """
    root = Path(config.dataset)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist; fix [common] dataset in "
                           f"{config.source or 'dataset.toml'}")
    split_dir = root / split
    folders = [split_dir / name for name in config.images] + [split_dir / config.labels]
    found = []
    for folder in folders:
        if not folder.is_dir():
            raise DatasetError(f"folder {folder} does not exist; the dataset needs "
                               f"{split}/{{{','.join(config.images)},{config.labels}}} laid out as z/x/y.<ext>")
        files = tile_files(folder, {".png"} if folder == folders[-1] else None)
        if not files:
            raise DatasetError(f"folder {folder} holds no z/x/y tiles; put the {split} tiles there")
        found.append(files)
    *images, labels = found
    for folder, files in zip(folders[:-1], images, strict=True):
        _require_same(files, labels, f"image tiles in {folder} have no label in {folders[-1]}",
                      "add their labels or remove the images")
        _require_same(labels, files, f"label tiles in {folders[-1]} have no image in {folder}",
                      "add their images or remove the labels")
    return [Sample(tile, tuple(files[tile] for files in images), path) for tile, path in labels.items()]


def check_samples(samples: Sequence[Sample], num_classes: int, channels: int, bands: Sequence[int] | None = None,
                  workers: int = 4, progress: bool = True, desc: str = "check",
                  max_value: float | None = None) -> None:
    """Read every file once and raise DatasetError for the first kind of problem found.

    Problems: unreadable files, image/label size mismatch, label values >= num_classes, and a channel count
    (after stacking and `bands`) other than `channels`, the model's input channels. uint16 images that use
    less than a quarter of their range while no `max_value` is set get a warning: divided by 65535 they
    would reach the network as an almost black image (12-bit sensors, reflectance 0..10000).
    """
    problems: dict[str, list[str]] = {}
    peak = None
    with ThreadPoolExecutor(max(1, workers)) as pool:  # decoding releases the GIL; threads suffice
        results = pool.map(lambda s: _problems(s, num_classes, channels, bands), samples)
        for found, tile_peak in tqdm(results, total=len(samples), desc=desc, unit="tile", disable=not progress,
                                     leave=False):
            for kind, example in found:
                problems.setdefault(kind, []).append(example)
            if tile_peak is not None:
                peak = max(peak or 0, tile_peak)
    for kind, fix in FIXES.items():
        if kind in problems:
            examples = problems[kind]
            raise DatasetError(f"{len(examples)} tile(s) with {kind} (first: {'; '.join(examples[:EXAMPLES])}); {fix}")
    if peak is not None and max_value is None and peak < 65535 / 4:
        log.warning("uint16 images reach at most %d of 65535 but are scaled by 65535 (nearly black to the network); "
                    "set [common] max_value = %d in dataset.toml (e.g. 4095 for 12-bit data, 10000 for "
                    "reflectance)", peak, peak)


def check_dataset(config: DatasetConfig, splits: Sequence[str] = SPLITS, workers: int = 4,
                  progress: bool = True) -> dict[str, list[Sample]]:
    """Find and check every split before training; returns {split: samples}. Raises DatasetError."""
    found = {split: find_samples(config, split) for split in splits}
    for split, samples in found.items():
        warn_label_classes(config, split)
        check_samples(samples, config.num_classes, config.in_channels, config.bands, workers, progress,
                      desc=f"check {split}", max_value=config.max_value)
    return found


class StackSizeError(DatasetError):
    """The images of one tile, from several folders, differ in size."""


def read_stacked(paths: Sequence[Path], max_value: float | None = None) -> np.ndarray:
    """The images of one tile from several folders, concatenated channel-wise into H x W x C.

    Images of different data types (e.g. uint8 RGB + uint16 NIR) are each scaled to 0..1 float32 first
    (see transforms.to_tensor: uint8 / 255, uint16 / max_value or 65535).
    """
    parts = [read_image(path) for path in paths]
    if len(parts) == 1:
        return parts[0]
    if len({part.shape[:2] for part in parts}) > 1:
        raise StackSizeError(f"images of one tile differ in size: {', '.join(map(str, paths))}; re-create them")
    if len({part.dtype for part in parts}) > 1:
        parts = [part.astype(np.float32) / scale_factor(part.dtype, max_value) for part in parts]
    return np.concatenate(parts, axis=-1)


class SegmentationTiles(Dataset):
    """Image/label pairs as (normalised float C x H x W tensor, long H x W tensor of class indices).

    Tiles of another size than `size` are resized (bilinear image, nearest label), as robosat did.
    With `augment`, each tile gets one of the 8 flips/rotations (and optional colour jitter, and hue, saturation
    and grey by `colour`) drawn from a generator seeded by (seed, epoch, index): call `set_epoch` before each
    epoch for new draws.
    """

    def __init__(self, samples: Sequence[Sample], mean: Sequence[float], std: Sequence[float],
                 size: int | None = None, bands: Sequence[int] | None = None, max_value: float | None = None,
                 augment: bool = False, jitter: float = 0.0, seed: int = 0,
                 colour: tuple[float, float, float] = (0.0, 0.0, 0.0)):
        self.samples = list(samples)
        self.mean, self.std, self.size, self.bands, self.max_value = list(mean), list(std), size, bands, max_value
        self.augment, self.jitter, self.seed, self.epoch = augment, jitter, seed, 0
        self.colour = tuple(colour)  # (hue, saturation, grayscale) of transforms.colour_shift; zeros: off

    @classmethod
    def from_config(cls, config: DatasetConfig, samples: Sequence[Sample], size: int | None = None,
                    **kwargs) -> SegmentationTiles:
        """A dataset preprocessing `samples` as `config` says (mean, std, bands, max_value); a config that names
        no mean/std gets ImageNet's statistics (training uses `from_spec`: the weights decide)."""
        return cls(samples, config.mean or IMAGENET_MEAN, config.std or IMAGENET_STD, size, config.bands,
                   config.max_value, **kwargs)

    @classmethod
    def from_spec(cls, spec: ModelSpec, samples: Sequence[Sample], size: int | None = None,
                  **kwargs) -> SegmentationTiles:
        """A dataset preprocessing `samples` exactly as the model `spec` records (and predict will)."""
        return cls(samples, spec.mean, spec.std, size, spec.bands, spec.max_value, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.samples[index]
        image = read_stacked(sample.images, self.max_value)
        image = to_tensor(select_bands(image, self.bands), self.mean, self.std, self.max_value)
        label = torch.from_numpy(read_label(sample.label).astype(np.int64))
        if self.size:
            image, label = resize(image, label, self.size)
        if self.augment:
            image, label = augment(image, label, sample_generator(self.seed, self.epoch, index), self.jitter)
            if any(self.colour):
                image = colour_shift(image, self.mean, self.std, *self.colour,
                                     sample_generator(self.seed + COLOUR_SEED, self.epoch, index))
        return image.contiguous(), label.contiguous()


def warn_label_classes(config: DatasetConfig, split: str) -> bool:
    """Warn when the record `rasterize` wrote into a split's label folder names other classes than the config's."""
    return warn_other_classes(Path(config.dataset) / split / config.labels, config.classes,
                              str(config.source or "dataset.toml"), "labels",
                              "their class indices mean other things than these names: rasterize the labels with "
                              "this dataset.toml, or correct its classes")


def class_weights(config: DatasetConfig, split: str = "training", progress: bool = True) -> list[float]:
    """robosat's class weights over the labels of a split: w = 1 / ln(1.02 + pixel frequency), rounded to 6.

    Rare classes get large weights (at most 1 / ln 1.02, about 50.5), frequent ones small (ENet's scheme).
    """
    folder = Path(config.dataset) / split / config.labels
    if not folder.is_dir():
        raise DatasetError(f"label folder {folder} does not exist; fix [common] dataset in "
                           f"{config.source or 'dataset.toml'}")
    labels = tile_files(folder, {".png"})
    if not labels:
        raise DatasetError(f"folder {folder} holds no z/x/y label tiles; put the {split} labels there")
    warn_label_classes(config, split)
    counts = np.zeros(config.num_classes, dtype=np.int64)
    for path in tqdm(labels.values(), desc="weights", unit="tile", disable=not progress):
        label = read_label(path)
        if label.size and label.max() >= config.num_classes:
            raise DatasetError(f"label {path} holds value {label.max()} but there are {config.num_classes} "
                               "classes; fix the label or add classes in dataset.toml")
        counts += np.bincount(label.ravel(), minlength=config.num_classes)
    return [round(1 / math.log(1.02 + count / counts.sum()), 6) for count in counts]


def _require_same(have: dict, reference: dict, what: str, fix: str) -> None:
    missing = [tile for tile in have if tile not in reference]
    if missing:
        names = ", ".join(f"{t.z}/{t.x}/{t.y}" for t in missing[:EXAMPLES])
        raise DatasetError(f"{len(missing)} {what} (first: {names}); {fix}")


def _problems(sample: Sample, num_classes: int, channels: int,
              bands: Sequence[int] | None) -> tuple[list[tuple[str, str]], int | None]:
    """(problems of one sample as (kind, example) pairs, the peak value of its image if it is uint16)."""
    try:
        image = read_stacked(sample.images)
        label = read_label(sample.label)
    except StackSizeError as e:
        return [("an image size different from the label size", str(e).split(";")[0])], None
    except DatasetError as e:
        return [("unreadable files", str(e).split(";")[0].removeprefix("cannot read "))], None
    except Exception as e:  # noqa: BLE001 - any decoder failure means the file is unusable
        return [("unreadable files", f"{sample.images[0]} or {sample.label}: {type(e).__name__}: {e}")], None
    peak = int(image.max()) if image.dtype == np.uint16 and image.size else None
    found = []
    if image.shape[:2] != label.shape:
        found.append(("an image size different from the label size",
                      f"{sample.images[0]} is {image.shape[1]}x{image.shape[0]}, "
                      f"{sample.label} is {label.shape[1]}x{label.shape[0]}"))
    if label.size and label.max() >= num_classes:
        found.append(("label values outside the classes",
                      f"{sample.label} holds {int(label.max())} but there are {num_classes} classes"))
    kind = "a channel count different from the model's"
    if bands and max(bands) > image.shape[-1]:
        found.append((kind, f"{sample.images[0]} has {image.shape[-1]} channels but bands asks for {max(bands)}"))
    elif (len(bands) if bands else image.shape[-1]) != channels:
        used = f"bands {list(bands)}" if bands else f"{image.shape[-1]} channels"
        found.append((kind, f"{sample.images[0]} gives {used}, the model expects {channels}"))
    return found, peak
