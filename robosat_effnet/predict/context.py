"""Tiles with a border of context: from the 8 real neighbours where they exist, mirrored where not.

A network sees little context at a tile's edge, so predicting tiles one by one leaves seams.
Predicting each tile with a border taken from its neighbours, then cropping the border off, makes
neighbouring predictions agree. robosat filled missing neighbours with black, which the network
reads as a dark object; a mirror image continues the texture instead.
"""

from __future__ import annotations

import numpy as np
import torch

Neighbours = dict[tuple[int, int], np.ndarray | None]


def buffer_tile(center: np.ndarray, neighbours: Neighbours, border: int) -> np.ndarray:
    """The H x W x C `center` tile grown by `border` px on every side.

    `neighbours` maps (dx, dy) in {-1, 0, 1}^2 (x to the east, y to the south, as slippy-map tiles)
    to the neighbouring tile's array of the same shape, or None / absent when there is none.
    Missing sides are mirrored (numpy 'reflect', the edge pixel not repeated): first left and right
    from the centre row of tiles, then top and bottom from the grown row, so a missing corner is
    the mirror of whatever real context lies beside it.
    """
    if border <= 0:
        return center
    height, width = center.shape[:2]
    b = border
    pad_rest = ((0, 0),) * (center.ndim - 2)

    def strip(dx: int, dy: int, rows: slice, cols: slice) -> np.ndarray | None:
        tile = neighbours.get((dx, dy))
        if tile is None:
            return None
        if tile.shape != center.shape:
            raise ValueError(f"neighbour {(dx, dy)} has shape {tile.shape}, the tile {center.shape}")
        return tile[rows, cols]

    def below(n: int) -> slice:  # the first n rows/cols of a neighbour: those touching our edge
        return slice(0, n)

    def above(n: int, size: int) -> slice:  # its last n rows/cols
        return slice(size - n, size)

    # Borders wider than a tile take all of the neighbour and mirror the rest.
    bw, bh = min(b, width), min(b, height)
    row = np.pad(center, ((0, 0), (b, b), *pad_rest), mode="reflect")
    sides = ((-1, above(bw, width), slice(b - bw, b)), (1, below(bw), slice(b + width, b + width + bw)))
    for dx, cols, target in sides:
        part = strip(dx, 0, slice(None), cols)
        if part is not None:
            row[:, target] = part

    canvas = np.pad(row, ((b, b), (0, 0), *pad_rest), mode="reflect")
    ends = ((-1, above(bh, height), slice(b - bh, b)), (1, below(bh), slice(b + height, b + height + bh)))
    for dy, rows, target in ends:
        for dx, cols, target_cols in (*sides[:1], (0, slice(None), slice(b, b + width)), *sides[1:]):
            part = strip(dx, dy, rows, cols)
            if part is not None:
                canvas[target, target_cols] = part
    return canvas


def crop(array: np.ndarray | torch.Tensor, border: int) -> np.ndarray | torch.Tensor:
    """Remove `border` px from the last two dimensions (the inverse of `buffer_tile`'s growth)."""
    if border <= 0:
        return array
    return array[..., border:-border, border:-border]
