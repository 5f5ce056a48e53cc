"""What prediction writes: mask and probability tiles, their paths, and a background writer thread.

The probability tiles' format (robosat's) is `robosat_effnet.data.probabilities`.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mercantile
import numpy as np

from robosat_effnet.data.probabilities import (  # noqa: F401  (re-exported: predict's public API)
    LEVELS,
    dequantize,
    probability_dirs,
    quantize,
    read_probability,
    write_probability,
)
from robosat_effnet.io import write_mask
from robosat_effnet.tiles import tile_path


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
