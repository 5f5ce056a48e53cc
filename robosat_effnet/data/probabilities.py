"""Probability tiles, robosat's format (`rs predict` -> `rs masks`): a single-channel palette PNG whose index q in
0..255 stands for the foreground probability q / 255 (robosat decodes with `np.linspace(0, 1, 256)[q]`). robosat's
own quantisation overflows p = 1.0 to 0; ours rounds to the nearest level and clips, so p = 1.0 -> 255 and the round
trip is exact to half a level (1/510).

With two classes the file holds class 1's probability at `OUTPUT/z/x/y.png`, as robosat writes it. With more
classes there is one slippy map per class, `OUTPUT/<class name>/z/x/y.png` (see `probability_dirs` for how names
are made safe), each holding that class's probability.

Written by predict, read by `blocks --probs` and `features --probs`: the format sits below all three.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robosat_effnet.colors import to_rgb
from robosat_effnet.io import atomic_path
from robosat_effnet.text import is_ascii_int

LEVELS = 255  # probability p is stored as round(p * LEVELS)


def quantize(probabilities: Any) -> Any:
    """Probabilities in [0, 1] as uint8 levels round(p * 255), clipped (so 1.0 -> 255, never 0)."""
    if hasattr(probabilities, "round_"):  # a torch.Tensor: quantised on its device; torch is loaded already
        import torch

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
