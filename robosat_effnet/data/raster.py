"""A GeoTIFF scene: opening it (path or URL), its bands, the tiles that cover it, its unreadable areas.

Shared by `rs-effnet tile` (prepare.tile), `cover --geotiff`, and the predictors (`predict.geotiff` on the
slippy map, `predict.mosaic` on the scene's own grid). The warp onto a tile's grid is `data.warp`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import mercantile
import rasterio
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio passes through unwrapped
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from robosat_effnet.data.remote import open_url
from robosat_effnet.errors import ConfigError, RasterError
from robosat_effnet.limits import MAX_ZOOM
from robosat_effnet.text import is_url
from robosat_effnet.tiles import MAX_LATITUDE, check_count, count_tiles

# GDAL's block cache defaults to 5% of RAM; a fixed cap keeps memory bounded on any machine
# (used only when the user has not set GDAL_CACHEMAX).
CACHE_MB = 256


def gdal_env() -> rasterio.Env:
    """A rasterio.Env with a bounded GDAL block cache unless GDAL_CACHEMAX is set by the user."""
    options = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": CACHE_MB}
    return rasterio.Env(**options)


def open_scene(path: str | os.PathLike) -> rasterio.DatasetReader:
    """Open a raster (a path, or an http(s) URL read by range requests) for reading; a clear RasterError if it
    is missing, unreadable or has no CRS."""
    if is_url(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = open_url(str(path))
    else:
        path = Path(path)
        if not path.is_file():
            raise RasterError(f"scene {path} does not exist; pass a GeoTIFF file")
        try:
            with warnings.catch_warnings():  # a scene without georeferencing gets the error below instead
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                src = rasterio.open(path)
        except (RasterioError, CPLE_BaseError) as e:
            raise RasterError(f"cannot open scene {path}: {e}; is it a GeoTIFF?") from None
    if src.crs is None:
        src.close()
        raise RasterError(
            f"scene {path} has no CRS (coordinate reference system), so it cannot be placed on the map; "
            f"assign one, e.g. `gdal_edit.py -a_srs EPSG:32618 {path}`"
        )
    return src


def alpha_band(src: rasterio.DatasetReader) -> int | None:
    """The 1-based index of the scene's alpha band, if it has one."""
    for index, interp in enumerate(src.colorinterp, start=1):
        if interp == ColorInterp.alpha:
            return index
    return None


def default_bands(src: rasterio.DatasetReader) -> list[int]:
    """The bands `tile` keeps and `predict` feeds when none are named: every band that is not alpha."""
    alpha = alpha_band(src)
    return [b for b in range(1, src.count + 1) if b != alpha] or [1]


def choose_bands(src: rasterio.DatasetReader, requested: Sequence[int] | None, from_spec: Sequence[int] | None,
                 in_channels: int) -> list[int]:
    """The 1-based bands to feed the network: `requested` (--bands), else the checkpoint's, else every
    band that is not alpha. Raises RasterError when they do not exist or do not match `in_channels`."""
    bands = list(requested or from_spec or default_bands(src))
    wrong = [b for b in bands if not 1 <= b <= src.count]
    if wrong:
        raise RasterError(f"scene {src.name} has bands 1..{src.count}; band(s) {wrong} do not exist: fix --bands")
    if src.count < in_channels:
        raise RasterError(
            f"scene {src.name} has {src.count} band(s) but the checkpoint expects {in_channels}; "
            f"use a checkpoint trained on {src.count}-band images"
        )
    if len(bands) != in_channels:
        raise RasterError(
            f"scene {src.name}: {len(bands)} band(s) {bands} selected but the checkpoint expects {in_channels}; "
            f"pick {in_channels} with --bands, e.g. --bands {','.join(str(b) for b in range(1, in_channels + 1))}"
        )
    return bands


def scene_bounds(src: rasterio.DatasetReader) -> tuple[float, float, float, float]:
    """The scene's footprint as (west, south, east, north) in lon/lat, clipped to web mercator's latitudes."""
    # Densify so curved edges of the reprojected footprint are not cut off.
    west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    return west, max(south, -MAX_LATITUDE), east, min(north, MAX_LATITUDE)


def footprint_tiles(src: rasterio.DatasetReader, zoom: int, max_tiles: int) -> list[mercantile.Tile]:
    """The web-mercator tiles at `zoom` that intersect the scene's bounding box (`scene_bounds`), the tiles
    `tile` and `predict` read. More than `max_tiles`: TooManyTilesError, before any is listed; a zoom out of
    0..30: ConfigError."""
    if not 0 <= zoom <= MAX_ZOOM:
        raise ConfigError(f"zoom {zoom} is out of range; use 0..{MAX_ZOOM}")
    bounds = scene_bounds(src)
    check_count(count_tiles(bounds, zoom), zoom, max_tiles, src.name)
    return list(mercantile.tiles(*bounds, zooms=[zoom]))


def unreadable_windows(src: rasterio.DatasetReader, bands: Sequence[int],
                       regions: Sequence[Window] | None = None) -> list[Window]:
    """The scene's internal blocks (those meeting `regions`, default all) whose pixels fail to read."""
    bad = []
    for _, block in src.block_windows(bands[0]):
        if regions is not None and not any(_overlaps(block, region) for region in regions):
            continue
        try:
            src.read(list(bands), window=block)
        except (RasterioError, CPLE_BaseError):
            bad.append(block)
    return bad


def _overlaps(a: Window, b: Window) -> bool:
    return (a.col_off < b.col_off + b.width and b.col_off < a.col_off + a.width
            and a.row_off < b.row_off + b.height and b.row_off < a.row_off + a.height)


def describe_windows(src: rasterio.DatasetReader, windows: list[Window]) -> str:
    """'pixel rows 512-1023, columns 512-1023 (bounds ... in EPSG:3857)' for each window, joined."""
    parts = []
    for w in windows:
        left, bottom, right, top = rasterio.windows.bounds(w, src.transform)
        parts.append(
            f"pixel rows {int(w.row_off)}-{int(w.row_off + w.height) - 1}, columns {int(w.col_off)}-"
            f"{int(w.col_off + w.width) - 1} (bounds {left:.2f}, {bottom:.2f}, {right:.2f}, {top:.2f} in {src.crs})"
        )
    return "; ".join(parts)


def unreadable_error(path: str | os.PathLike, src: rasterio.DatasetReader, bands: Sequence[int],
                     consequence: str, regions: Sequence[Window] | None = None) -> RasterError:
    """One-line RasterError naming the file and its unreadable area (found by reading the blocks
    that meet `regions`, the pixel windows whose reads failed), then `consequence`."""
    bad = unreadable_windows(src, bands, regions)
    where = describe_windows(src, bad) if bad else "some of its pixels"
    return RasterError(f"scene {path} is damaged: cannot read {where}; {consequence}; re-create or re-download it")
