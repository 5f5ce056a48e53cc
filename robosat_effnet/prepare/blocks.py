"""Blocks of neighbouring tiles: the part of an area a mapper labels first, and the rest a model maps for them.

A model fine-tuned on labelled tiles of the area it will map is scored on the other tiles of that area. Tiles
next to each other show the same roofs, roads and light, so a fair split keeps whole blocks of neighbours
together (the tiles under one parent tile a zoom or more up), never single tiles:

    >>> local, rest = pick_blocks(tiles, fraction=0.25, seed=0)

Where a model has already mapped the area (`predict --probs`), the blocks it is least sure of can be labelled
first instead of random ones (`uncertainty`, `pick_blocks(..., scores=...)`): labels where the model errs
teach it more than labels where it is already right.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import mercantile
import numpy as np

from robosat_effnet.errors import ConfigError, DatasetError


def blocks_of(tiles: Iterable[mercantile.Tile], levels: int = 1) -> dict[mercantile.Tile, list[mercantile.Tile]]:
    """The tiles grouped by their parent `levels` zooms up (2^levels x 2^levels tiles at most), in tile order."""
    tiles = sorted(set(tiles), key=lambda t: (t.z, t.x, t.y))
    zooms = {t.z for t in tiles}
    if len(zooms) > 1:
        raise ConfigError(f"the tiles are of zooms {', '.join(map(str, sorted(zooms)))}; pick blocks of one zoom "
                          "(--zoom)")
    if tiles and not 1 <= levels <= tiles[0].z:
        raise ConfigError(f"block levels {levels} must be from 1 to the tiles' zoom ({tiles[0].z})")
    groups: dict[mercantile.Tile, list[mercantile.Tile]] = {}
    for tile in tiles:
        groups.setdefault(mercantile.parent(tile, zoom=tile.z - levels), []).append(tile)
    return groups


def pick_blocks(tiles: Iterable[mercantile.Tile], fraction: float = 0.25, levels: int = 1, seed: int = 0,
                scores: Mapping[mercantile.Tile, float] | None = None,
                ) -> tuple[list[mercantile.Tile], list[mercantile.Tile]]:
    """Split tiles into (local, rest): whole blocks drawn at random (by `seed`) until they hold at least
    `fraction` of the tiles, and every other tile.

    `scores` ({tile: uncertainty}, e.g. from `uncertainty`) takes the blocks of highest mean score first
    instead (ties broken by the seed's draw); a tile without a score counts as 0.

    Blocks of a single tile (an outlier at the area's edge) are never drawn: they would let the model see one
    tile's neighbours among the scored tiles. Raises ConfigError when no split leaves tiles on both sides.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction {fraction} must lie between 0 and 1 (e.g. 0.25 for a quarter)")
    groups = blocks_of(tiles, levels)
    total = sum(len(members) for members in groups.values())
    candidates = [parent for parent, members in groups.items() if len(members) > 1]
    if not candidates:
        raise ConfigError(f"none of the {len(groups)} blocks {2**levels}x{2**levels} tiles holds more than one tile; "
                          "give more neighbouring tiles, or fewer levels")
    order = np.random.default_rng(seed).permutation(len(candidates))
    if scores is not None:
        mean = [float(np.mean([scores.get(t, 0.0) for t in groups[c]])) for c in candidates]
        order = sorted(order, key=lambda i: -mean[i])  # stable: equal means keep the seed's order
    chosen: list[mercantile.Tile] = []
    for index in order:
        if len(chosen) >= fraction * total:
            break
        chosen += groups[candidates[index]]
    if len(chosen) >= total:
        raise ConfigError(f"a fraction of {fraction} takes every one of the {total} tiles; give a smaller fraction "
                          "or more tiles")
    picked = set(chosen)
    rest = [t for members in groups.values() for t in members if t not in picked]
    return sorted(chosen, key=lambda t: (t.x, t.y)), rest


def uncertainty(probabilities: str | os.PathLike, tiles: Iterable[mercantile.Tile]) -> dict[mercantile.Tile, float]:
    """{tile: mean binary entropy (bits) of its pixels} from the probability tiles `predict --probs` wrote.

    0 where the model is sure of every pixel (p = 0 or 1), 1 where every pixel is a coin toss. Raises
    DatasetError when the folder holds none of the tiles.
    """
    from robosat_effnet.data.probabilities import read_probability
    from robosat_effnet.tiles import tile_files

    found = tile_files(probabilities, {".png"})
    wanted = set(tiles)
    scores = {}
    for tile in wanted & set(found):
        p = np.clip(read_probability(found[tile]).astype(np.float64), 1e-6, 1 - 1e-6)
        scores[tile] = float(np.mean(-(p * np.log2(p) + (1 - p) * np.log2(1 - p))))
    if wanted and not scores:
        raise DatasetError(f"{probabilities} holds no probability tiles of these tiles; pass the folder "
                           "`rs-effnet predict --probs` wrote for them")
    return scores
