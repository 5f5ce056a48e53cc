"""What prediction writes: mask and probability tiles, their paths, and a background writer thread.

Probability tiles follow robosat's format (`rs predict` -> `rs masks`): a single-channel palette PNG
whose index q in 0..255 stands for the foreground probability q / 255 (robosat decodes with
`np.linspace(0, 1, 256)[q]`). robosat's own quantisation overflows p = 1.0 to 0; ours rounds to the
nearest level and clips, so p = 1.0 -> 255 and the round trip is exact to half a level (1/510).

With two classes the file holds class 1's probability at `OUTPUT/z/x/y.png`, as robosat writes it.
With more classes there is one slippy map per class, `OUTPUT/<class name>/z/x/y.png` (see
`probability_dirs` for how names are made safe), each holding that class's probability.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import torch
from PIL import Image

from robosat_effnet.colors import to_rgb
from robosat_effnet.io import atomic_path, write_mask
from robosat_effnet.text import is_ascii_int
from robosat_effnet.tiles import tile_path

LEVELS = 255  # probability p is stored as round(p * LEVELS)


def quantize(probabilities: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Probabilities in [0, 1] as uint8 levels round(p * 255), clipped (so 1.0 -> 255, never 0)."""
    if isinstance(probabilities, torch.Tensor):
        return (probabilities.float() * LEVELS).round_().clamp_(0, LEVELS).to(torch.uint8)
    return np.clip(np.rint(np.asarray(probabilities, np.float32) * LEVELS), 0, LEVELS).astype(np.uint8)


def dequantize(levels: np.ndarray) -> np.ndarray:
    """uint8 levels back to probabilities q / 255, exactly as robosat's `rs masks` decodes them."""
    return np.asarray(levels, np.float32) / LEVELS


def probability_palette(color: str | tuple = "orange") -> list[int]:
    """A 256-entry palette running from white (p = 0) to `color` (p = 1), for viewing probability tiles."""
    end = np.array(to_rgb(color), np.float32)
    t = np.linspace(0, 1, 256, dtype=np.float32)[:, None]
    return np.rint(255 * (1 - t) + end * t).astype(np.uint8).ravel().tolist()


def write_probability(path: str | os.PathLike, levels: np.ndarray, color: str | tuple = "orange") -> None:
    """Write an H x W uint8 array of quantised probabilities as a palette PNG, atomically."""
    image = Image.fromarray(np.asarray(levels, np.uint8), mode="P")
    image.putpalette(probability_palette(color))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)


def read_probability(path: str | os.PathLike) -> np.ndarray:
    """Read a probability tile (ours or robosat's) as an H x W float32 array of probabilities."""
    with Image.open(path) as image:
        return dequantize(np.asarray(image.convert("P") if image.mode != "L" else image))


def probability_dirs(root: str | os.PathLike, classes: list[str]) -> list[tuple[int, Path]]:
    """(class index, slippy-map folder) pairs that probability tiles go to.

    Two classes: [(1, root)]. More: one folder per class named after it, with characters other than
    letters, digits, '-', '_' and '.' replaced by '_', and a 'class-' prefix on all-digit names so
    that no class folder can be taken for a zoom level.
    """
    root = Path(root)
    if len(classes) == 2:
        return [(1, root)]
    dirs = []
    for index, name in enumerate(classes):
        safe = re.sub(r"[^\w.-]", "_", str(name)).strip(".") or f"class-{index}"
        dirs.append((index, root / (f"class-{safe}" if is_ascii_int(safe) else safe)))
    return dirs


def output_paths(root: str | os.PathLike, tile: mercantile.Tile, classes: list[str], probs: bool) -> list[Path]:
    """Every file written for `tile`: its mask, or its probability tile(s)."""
    if not probs:
        return [tile_path(root, tile, "png")]
    return [tile_path(folder, tile, "png") for _, folder in probability_dirs(root, classes)]


def is_done(root: str | os.PathLike, tile: mercantile.Tile, classes: list[str], probs: bool) -> bool:
    """Whether every output of `tile` exists (outputs are renamed into place only when complete)."""
    return all(path.is_file() for path in output_paths(root, tile, classes, probs))


def write_tile(root: Path, tile: mercantile.Tile, array: np.ndarray, classes: list[str], colors: list,
               probs: bool) -> None:
    """Write one tile's outputs. `array`: H x W class indices (255 = no data) for masks, or
    K x H x W quantised probabilities (only the classes of `probability_dirs`, in that order)."""
    if not probs:
        write_mask(tile_path(root, tile, "png"), array, colors)
        return
    for levels, (index, folder) in zip(array, probability_dirs(root, classes), strict=True):
        write_probability(tile_path(folder, tile, "png"), levels, colors[index] if index < len(colors) else "orange")


class BackgroundWriter:
    """Run write jobs on background threads so encoding PNGs overlaps with inference.

    The queue is bounded, so a slow disk slows the producer instead of filling memory. The first
    error a job raises is re-raised by `submit` or `close` in the caller's thread.

        with BackgroundWriter() as writer:
            writer.submit(write_tile, root, tile, mask, classes, colors, False)
    """

    def __init__(self, threads: int = 2, max_pending: int = 64):
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"writer-{i}")
                         for i in range(max(1, threads))]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    func, args = job
                    func(*args)
            except BaseException as e:  # handed to the caller's thread, which decides what to do
                self._error = self._error or e
            finally:
                self._queue.task_done()

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Queue `func(*args)`; blocks while the queue is full."""
        self._raise()
        self._queue.put((func, args))

    def close(self) -> None:
        """Wait for every queued job, stop the threads, and re-raise the first error."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # finish what is queued (each file is atomic) but keep the original exception
            try:
                self.close()
            except BaseException:
                pass
