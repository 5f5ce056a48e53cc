"""The "touching" label class: the band where neighbouring buildings meet, burnt by `rasterize --touching-px N`.

Neighbours that share a wall merge into one blob in a building mask. `rasterize --touching-px N` burns an extra
class, named `touching` in dataset.toml (e.g. ``classes = ["background", "building", "touching"]``), on every
building pixel that lies within N px of a *different* building, so the wall between neighbours becomes a band of
its own class (only building pixels: the gap between buildings stays background, so areas are not inflated).
`features` splits the buildings apart again along the predicted band (`robosat_effnet.vectorize.split`).
"""

from __future__ import annotations

import mercantile
import numpy as np

from robosat_effnet.extras import require_ndimage


def disk(radius: int) -> np.ndarray:
    """Boolean (2r+1)^2 footprint of the pixels within `radius` px (Euclidean) of the centre."""
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius**2


def touching_band(ids: np.ndarray, radius: int) -> np.ndarray:
    """Pixels of a building (id > 0) that have a pixel of another building (another id) within `radius` px."""
    ndimage = require_ndimage("touching buildings")
    footprint = disk(radius)
    highest = ndimage.maximum_filter(ids, footprint=footprint, mode="constant", cval=0)
    none = np.iinfo(ids.dtype).max
    lowest = ndimage.minimum_filter(np.where(ids > 0, ids, none), footprint=footprint, mode="constant", cval=none)
    return (ids > 0) & (lowest < highest)


def burn_touching(mask: np.ndarray, geometries: np.ndarray, tile: mercantile.Tile, radius: int,
                  index: int) -> np.ndarray:
    """Set `index` on the building pixels of `mask` within `radius` px of another of `geometries` (EPSG:3857).

    The buildings are burnt with a margin of `radius` px around the tile, so a neighbour on the next tile counts.
    """
    from rasterio.features import rasterize

    from robosat_effnet.data.warp import tile_transform

    if radius <= 0 or len(geometries) < 2:
        return mask
    height, width = mask.shape
    transform = tile_transform(tile, width, height=height)
    margin = transform @ transform.translation(-radius, -radius)  # the same grid, shifted by `radius` px
    ids = rasterize(((g, i + 1) for i, g in enumerate(geometries)), out_shape=(height + 2 * radius,
                    width + 2 * radius), transform=margin, dtype=np.int32)
    band = touching_band(ids, radius)[radius:radius + height, radius:radius + width]
    mask[band & (mask != 0)] = index
    return mask
