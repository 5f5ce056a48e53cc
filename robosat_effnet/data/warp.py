"""THE scene-to-tile warp: a GeoTIFF of any CRS resampled onto a slippy-map tile's web-mercator pixel grid.

`rs-effnet tile` (the training tiles), `rs-effnet predict scene.tif --zoom Z` (each tile with its context
border), `cover --geotiff` (which tiles hold data) and the mirror past a scene's edge all read through
`warp_tile` / `warp_window`, so the pixels a network is trained on and the pixels it predicts on are the same
numbers: same grid (`tile_transform`), same resampling (DEFAULT_RESAMPLING unless told), same GDAL options.

Two GDAL options make a pixel's value independent of the window it is read in (a tile alone, a tile with a
border, a larger window for the mirror), so a tile with a border warped in one piece equals the same tile
grown by the pixels of its warped neighbours:

- `tolerance` WARP_TOLERANCE: the warper otherwise interpolates the CRS transformation linearly along each
  window's rows up to 0.125 px (rasterio's default), and where the interpolation nodes fall depends on the
  window: nearest neighbour then took another source pixel in some tiles (values off by up to 220 in a
  generated UTM scene), bilinear was off by 1 here and there. (rasterio 1.4 fails on 0 with an explicit grid.)
- XSCALE/YSCALE (`resampling_scale`, one pair per scene and zoom): when downsampling, GDAL widens the
  resampling kernel by the ratio of scene to tile pixels, which it otherwise estimates from the source window
  each chunk reads; that window shrinks where a tile hangs over the scene's edge, and differs between a tile
  and its bordered window (bilinear off by up to 35 of 255 in a 1 m scene warped to ~10 m pixels).
  Per scene rather than per tile: neighbouring tiles then share one kernel, so the border a tile borrows
  from its neighbours is bit for bit the border read around it (a per-tile scale left 0.03% of border
  pixels off by 1 at 60 degrees north). Upsampling (scene pixels larger than the tile's) ignores it. The
  price: over a scene many degrees tall the kernel is a little too wide at one end and too narrow at the other.

The exact transformation has a cost: a 256 px tile took about 20 ms more on one core (`tile` of a 1 m UTM scene
at z18: 15 -> 34 ms per tile, PNG writing included). WARP_TOLERANCE 1e-6 would cost about 1 ms, but left 7 values
in a million off by one between a bordered window and its neighbours (bilinear).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mercantile
import numpy as np

from robosat_effnet.errors import ConfigError
from robosat_effnet.tiles import WEB_MERCATOR

RESAMPLINGS = ("nearest", "bilinear", "cubic", "lanczos", "average")  # what `tile` and `predict` offer
DEFAULT_RESAMPLING = "bilinear"  # `tile` and `predict` alike: training tiles and predicted tiles match
WARP_TOLERANCE = 1e-9  # px: the CRS transformation is computed exactly at (practically) every pixel


def resampling_method(name: str):
    """rasterio's Resampling member called `name`; ConfigError listing the choices for another name."""
    from rasterio.enums import Resampling

    if name not in Resampling.__members__:
        raise ConfigError(f"unknown resampling {name!r}; use one of {', '.join(RESAMPLINGS)}")
    return Resampling[name]


def tile_transform(tile: mercantile.Tile, size: int, border: int = 0, *, height: int | None = None):
    """The affine transform (EPSG:3857 metres, north up) of `tile` at `size` px, grown by `border` px on
    every side: pixel (border, border) is the tile's top-left pixel. `height`: rows, for a tile not square."""
    from affine import Affine

    left, bottom, right, top = mercantile.xy_bounds(tile)
    x_res, y_res = (right - left) / size, (top - bottom) / (height or size)
    return Affine(x_res, 0.0, left - border * x_res, 0.0, -y_res, top + border * y_res)


def apply_affine(t, col, row):
    """(x, y) of pixel (col, row) through the affine transform `t`; numbers or numpy arrays (spelled out:
    affine 3 deprecates `t * (x, y)`, and arrays go through at once)."""
    return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f


def resampling_scale(src, zoom: int, size: int) -> dict[str, float]:
    """GDAL warp options XSCALE/YSCALE: tile px per scene px (along the scene's columns and rows) at the
    scene's centre, for `size` px tiles of `zoom`; empty where the centre cannot be projected."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError
    from rasterio.warp import transform as warp_transform

    t = src.transform
    cx, cy = apply_affine(t, src.width / 2, src.height / 2)
    try:
        xs, ys = warp_transform(src.crs, WEB_MERCATOR, [cx, cx + t.a, cx + t.b], [cy, cy + t.d, cy + t.e])
    except (RasterioError, CPLE_BaseError, ValueError):
        return {}
    left, _, right, _ = mercantile.xy_bounds(mercantile.Tile(0, 0, zoom))
    res = (right - left) / size
    scales = {"XSCALE": math.hypot(xs[1] - xs[0], ys[1] - ys[0]) / res,
              "YSCALE": math.hypot(xs[2] - xs[0], ys[2] - ys[0]) / res}
    return scales if all(math.isfinite(v) and v > 0 for v in scales.values()) else {}


def warp_window(src, transform, width: int, height: int, bands: Sequence[int], resampling,
                scale: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(len(bands) x height x width pixels, height x width bool validity) of the scene `src` warped onto the
    EPSG:3857 grid `transform` with `resampling` (a rasterio Resampling) and `scale` (`resampling_scale`).

    Validity (nodata, masks, alpha, outside the scene) is the warper's alpha band, computed in the same pass
    as the pixels. rasterio's errors pass through: each caller says what a failed read means for it.
    """
    from rasterio.enums import ColorInterp
    from rasterio.vrt import WarpedVRT

    # Without an alpha band, ask the warper for one: it marks both nodata and outside-the-scene pixels.
    has_alpha = ColorInterp.alpha in src.colorinterp
    with WarpedVRT(src, crs=WEB_MERCATOR, transform=transform, width=width, height=height, resampling=resampling,
                   add_alpha=not has_alpha, tolerance=WARP_TOLERANCE, **scale) as vrt:
        alpha = vrt.colorinterp.index(ColorInterp.alpha) + 1
        data = vrt.read(list(bands) + [alpha])
    return data[:-1], data[-1] > 0


def warp_tile(src, tile: mercantile.Tile, size: int, bands: Sequence[int], resampling,
              border: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, validity) of `tile` at `size` px with `border` px of context on every side (side
    size + 2 x border), warped from the scene `src` with `resampling` (a rasterio Resampling); see
    `warp_window`. Memory follows the tile, not the scene: GDAL reads only the blocks under it."""
    side = size + 2 * border
    return warp_window(src, tile_transform(tile, size, border), side, side, bands, resampling,
                       resampling_scale(src, tile.z, size))
