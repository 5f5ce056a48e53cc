"""The loop both tile predictors share: pick this worker's tiles, read in DataLoader workers,
infer in batches, write in the background, report.

A tile dataset returns one dict per tile (so reading errors travel to the main process as data
instead of multi-line worker tracebacks):

    {"index": i, "image": C x H x W float tensor (tile + border) or None,
     "valid": H x W bool tensor of pixels with data (None: all), "error": one-line str or None}

`image` None with no error means the tile holds no data: nothing is written for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mercantile
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.errors import ConfigError
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.outputs import write_error
from robosat_effnet.predict.context import crop
from robosat_effnet.predict.engine import Predictor
from robosat_effnet.predict.options import TILES_BATCH, PredictOptions
from robosat_effnet.predict.writer import BackgroundWriter, probability_dirs, quantize, write_tile
from robosat_effnet.text import ascii_int
from robosat_effnet.threshold import MASK_THRESHOLD, to_classes


@dataclass
class PredictResult:
    """What a prediction run did. `failed` holds one line per tile that could not be read."""

    output: Path
    tiles: int = 0  # tiles this shard was responsible for
    written: int = 0
    skipped: int = 0  # outputs already there (resume)
    empty: int = 0  # tiles without any data: not written
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tiles_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' -> (i, n) with 0 <= i < n; None stays None."""
    if text is None:
        return None
    numbers = [ascii_int(part.strip()) for part in str(text).split("/")]  # int() takes '١', fails on '²'
    if len(numbers) != 2 or None in numbers:
        raise ConfigError(f"shard {text!r} must look like i/n, e.g. 0/4 for the first of four shares")
    index, count = numbers
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"shard {text!r}: need 0 <= i < n, e.g. 0/4 .. 3/4")
    return index, count


def take_share(tiles: Sequence[mercantile.Tile], shard: tuple[int, int] | None = None) -> list[mercantile.Tile]:
    """This worker's disjoint share of `tiles` (sorted first, so every worker agrees on the split).

    `shard` (i, n) takes every n-th tile from the i-th; under torchrun (RANK, WORLD_SIZE set) each
    rank takes its part of that share, so `--shard` and torchrun combine.
    """
    index, count = shard or (0, 1)
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    world = int(os.environ["WORLD_SIZE"]) if distributed else 1
    rank = int(os.environ["RANK"]) if distributed else 0
    index, count = index * world + rank, count * world
    ordered = sorted(tiles, key=lambda t: (t.z, t.x, t.y))
    return ordered[index::count]


def run(dataset: Dataset, tiles: list[mercantile.Tile], predictor: Predictor, spec: ModelSpec, output: Path,
        options: PredictOptions, result: PredictResult, desc: str = "predict") -> PredictResult:
    """Predict every tile of `dataset` (item i is tiles[i]) and write its outputs under `output`, as `options`
    say (border, probs, batch size, workers, progress, threshold: masks keep a foreground class only where its
    probability reaches it, `threshold.to_classes`)."""
    cuda = predictor.device.type == "cuda"
    workers = options.workers
    loader = DataLoader(dataset, batch_size=options.batch(TILES_BATCH), num_workers=workers, collate_fn=collate,
                        pin_memory=cuda, persistent_workers=False, prefetch_factor=4 if workers else None)
    classes = [index for index, _ in probability_dirs(output, spec.classes)] if options.probs else None
    start = time.perf_counter()
    try:
        _loop(loader, tiles, predictor, spec, output, options, classes, result, desc)
    except OSError as e:  # a full disk or a read-only folder: say where, without a traceback
        raise write_error(output, e) from None
    result.seconds = time.perf_counter() - start
    return result


def collate(items: list[dict]) -> dict:
    """A batch of tile items, stacked per tile size in the loader's worker (so pinned memory can be
    used as is): {"groups": [{"index", "image", "valid"}], "failed": [str], "empty": int, "count": int}."""
    batch: dict = {"groups": [], "failed": [], "empty": 0, "count": len(items)}
    by_shape: dict[tuple, list[dict]] = {}
    for item in items:
        if item["error"]:
            batch["failed"].append(item["error"])
        elif item["image"] is None:
            batch["empty"] += 1
        else:  # tiles of one size go through the network together
            by_shape.setdefault(tuple(item["image"].shape), []).append(item)
    for group in by_shape.values():
        valid = None
        if any(item["valid"] is not None for item in group):
            shape = next(item["valid"].shape for item in group if item["valid"] is not None)
            everywhere = torch.ones(shape, dtype=torch.bool)
            valid = torch.stack([everywhere if item["valid"] is None else item["valid"] for item in group])
        batch["groups"].append({"index": [item["index"] for item in group],
                                "image": torch.stack([item["image"] for item in group]), "valid": valid})
    return batch


def _loop(loader: DataLoader, tiles: list[mercantile.Tile], predictor: Predictor, spec: ModelSpec, output: Path,
          options: PredictOptions, classes: list[int] | None, result: PredictResult, desc: str) -> None:
    batches = iter(loader)  # start (fork) the DataLoader workers before the writer threads exist
    with BackgroundWriter() as writer, tqdm(total=len(tiles), desc=desc, unit="tile", disable=not options.progress,
                                            dynamic_ncols=True) as bar:
        for batch in batches:
            result.failed += batch["failed"]
            result.empty += batch["empty"]
            for group in batch["groups"]:
                outputs = _infer(predictor, group, options.border, classes, options.threshold)
                for index, array in zip(group["index"], outputs, strict=True):
                    writer.submit(write_tile, output, tiles[index], array, spec.classes, spec.colors, options.probs)
                result.written += len(outputs)
            bar.update(batch["count"])


def _infer(predictor: Predictor, group: dict, border: int, classes: list[int] | None,
           threshold: float = MASK_THRESHOLD) -> list:
    """Masks (H x W uint8, 255 = no data) or quantised probabilities (K x H x W uint8) as numpy arrays.

    argmax and quantisation run on the inference device, so only uint8 arrays travel back.
    """
    probs = crop(predictor(group["image"]), border)
    valid = None if group["valid"] is None else group["valid"].to(probs.device, non_blocking=True)
    if classes is None:
        out = to_classes(probs, threshold)
        if valid is not None:
            out[~valid] = NODATA_INDEX
    else:
        out = quantize(probs[:, classes])
        if valid is not None:  # probability tiles have no spare level for "no data": use 0
            out *= valid[:, None].to(torch.uint8)
    return list(out.cpu().numpy())
