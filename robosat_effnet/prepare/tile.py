"""Cut a GeoTIFF of any CRS into slippy-map image tiles `OUT/z/x/y.{png,webp,tif}`.

Each tile is read through its own warped web-mercator view whose grid *is* the tile
(`mercantile.xy_bounds` -> affine), so pixels line up exactly with the slippy-map grid,
resampling happens once, and GDAL reads only the source blocks under that tile: memory
is bounded by the tile size, not the scene size.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import mercantile
import numpy as np

from robosat_effnet.data.remote import open_url
from robosat_effnet.errors import ConfigError, RasterError, TooManyTilesError
from robosat_effnet.io import atomic_path, write_image
from robosat_effnet.limits import MAX_TILE_SIZE, MAX_ZOOM
from robosat_effnet.outputs import check_separate, claim_folder, make_record, remove_tiles, writing
from robosat_effnet.text import is_url
from robosat_effnet.tiles import tile_path, write_tiles_csv

WEB_MERCATOR = "EPSG:3857"
MAX_LATITUDE = 85.0511287798066  # web mercator's square world stops here
DEFAULT_MAX_TILES = 100_000
FORMATS = ("png", "webp", "tif")
PARTIAL_CSV = "partial.csv"


@dataclass
class TileReport:
    """What `tile_geotiff` did: tiles written, the subset only partly covered by data, tiles skipped."""

    written: list[mercantile.Tile] = field(default_factory=list)
    partial: list[mercantile.Tile] = field(default_factory=list)
    empty: int = 0  # tiles of the footprint's bounding box holding no data at all (not written)
    format: str = "png"
    partial_csv: Path | None = None

    def add(self, tile: mercantile.Tile, coverage: str) -> None:
        """Count one tile whose coverage is "empty", "partial" or "full"."""
        if coverage == "empty":
            self.empty += 1
            return
        self.written.append(tile)
        if coverage == "partial":
            self.partial.append(tile)


def scene_bounds(src) -> tuple[float, float, float, float]:
    """A dataset's footprint as (west, south, east, north) in lon/lat, clipped to web mercator's latitudes."""
    from rasterio.warp import transform_bounds

    if src.crs is None:
        raise RasterError(f"{src.name} has no CRS; assign one (e.g. `gdal_edit.py -a_srs EPSG:32636`) and retry")
    # Densify so curved edges of the reprojected footprint are not cut off.
    west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    return west, max(south, -MAX_LATITUDE), east, min(north, MAX_LATITUDE)


def count_tiles(bounds: tuple[float, float, float, float], zoom: int) -> int:
    """How many tiles of `zoom` cover a lon/lat bounding box, without enumerating them."""
    west, south, east, north = bounds
    if west > east:  # crosses the antimeridian
        return count_tiles((west, south, 180.0, north), zoom) + count_tiles((-180.0, south, east, north), zoom)
    upper_left = mercantile.tile(west, north, zoom)
    # Nudge the far corner inwards so a bound lying exactly on a tile edge does not add a row of empty tiles.
    eps = 1e-9
    lower_right = mercantile.tile(max(west, east - eps), min(north, south + eps), zoom)
    return (lower_right.x - upper_left.x + 1) * (lower_right.y - upper_left.y + 1)


def output_format(dtype: str, count: int, requested: str | None) -> str:
    """The tile format for a band count and dtype: png/webp hold 1 or 3 uint8 bands; anything else needs tif."""
    fits_8bit = dtype == "uint8" and count in (1, 3)
    if requested is None:
        return "png" if fits_8bit else "tif"
    requested = requested.lower().lstrip(".")
    if requested not in FORMATS:
        raise ConfigError(f"unknown tile format {requested!r}; use one of {', '.join(FORMATS)}")
    if requested != "tif" and not fits_8bit:
        raise ConfigError(
            f"{count} band(s) of {dtype} do not fit a {requested} tile without losing values; use --format tif"
        )
    return requested


def tile_geotiff(
    path: str | os.PathLike,
    out: str | os.PathLike,
    zoom: int,
    size: int = 256,
    bands: list[int] | None = None,
    fmt: str | None = None,
    resampling: str = "bilinear",
    max_tiles: int = DEFAULT_MAX_TILES,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> TileReport:
    """Cut the GeoTIFF at `path` into `out/zoom/x/y.<fmt>` tiles of `size` x `size` pixels.

    `bands` are 1-based source bands (default: every band that is not alpha). uint8 with 1 or 3 bands
    becomes png (or webp with `fmt`), anything else georeferenced tif with the source values kept.
    Tiles without any data are skipped; partly covered tiles keep no-data pixels transparent (png/webp
    alpha) or zero with an internal mask (tif) and are listed in `out/partial.csv` (robosat's x,y,z rows).
    Raises TooManyTilesError before writing anything if the scene needs more than `max_tiles` tiles.
    `workers` threads (default: up to 4) read and write tiles side by side; GDAL and zlib release the GIL.
    `out` must not hold the scene, and is only reused when a run of the same scene and settings wrote it
    (`outputs.claim_folder`); `overwrite` replaces another run's tiles. Else OutputError, before writing.
    """
    import rasterio
    from rasterio.enums import ColorInterp, Resampling

    path, out = (path if is_url(path) else Path(path)), Path(out)  # a URL: a COG read by range requests
    check_separate([out], [path])
    try:
        resampling_method = Resampling[resampling]
    except KeyError:
        raise ConfigError(f"unknown resampling {resampling!r}; use e.g. nearest, bilinear, cubic, lanczos") from None
    if not 0 < size <= MAX_TILE_SIZE or not 0 <= zoom <= MAX_ZOOM:
        raise ConfigError(f"tile size {size} / zoom {zoom} out of range; use a size of 1..{MAX_TILE_SIZE} px and a "
                          f"zoom in 0..{MAX_ZOOM}")
    src = open_raster(path)
    with src:
        bounds = scene_bounds(src)
        n_tiles = count_tiles(bounds, zoom)
        if n_tiles > max_tiles:
            raise TooManyTilesError(
                f"zoom {zoom} cuts {path} into {n_tiles:,} tiles, more than the maximum {max_tiles:,}; "
                "use a lower --zoom or raise --max-tiles"
            )
        if bands is None:
            bands = [i + 1 for i, ci in enumerate(src.colorinterp) if ci != ColorInterp.alpha] or [1]
        bad = [b for b in bands if not 1 <= b <= src.count]
        if bad:
            raise ConfigError(f"band(s) {bad} not in {path}, which has bands 1..{src.count}; fix --bands")
        dtypes = {src.dtypes[b - 1] for b in bands}
        if len(dtypes) > 1:
            raise RasterError(f"bands {bands} of {path} mix data types {sorted(dtypes)}; pick bands of one type")
        dtype = dtypes.pop()
        report = TileReport(format=output_format(dtype, len(bands), fmt))
        settings = {"zoom": zoom, "size": size, "bands": bands, "format": report.format, "resampling": resampling}
        claim_folder(out, make_record("tile", path, settings), overwrite=overwrite, clear=remove_tiles)
        tiles = mercantile.tiles(*bounds, zooms=[zoom])
        if progress:
            from tqdm import tqdm

            tiles = tqdm(tiles, total=n_tiles, desc="tile", unit="tile")
        cutter = _Cutter(path, out, size, bands, resampling_method, report.format, src.nodata)
        workers = workers or min(4, os.cpu_count() or 1)
        pending: deque = deque()
        try:
            with writing(out, (rasterio.errors.RasterioError,)), ThreadPoolExecutor(workers) as pool:
                try:
                    for tile in tiles:
                        pending.append((tile, pool.submit(cutter, tile)))
                        if len(pending) >= 4 * workers:  # bounded: only a few tiles in flight
                            report.add(*_done(pending))
                    while pending:
                        report.add(*_done(pending))
                finally:  # on an error, tiles not started yet are dropped, not written
                    for _, future in pending:
                        future.cancel()
        finally:
            cutter.close()
    if report.written:
        report.partial_csv = out / PARTIAL_CSV
        with writing(report.partial_csv):
            write_tiles_csv(report.partial_csv, report.partial)
    return report


def open_raster(path: str | os.PathLike):
    """A GeoTIFF by path or http(s) URL, opened for reading; RasterError, one line, when it cannot be."""
    import rasterio

    if is_url(path):
        return open_url(str(path))
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as e:
        raise RasterError(f"cannot open {path} as a raster: {e}; pass a GeoTIFF") from None


def _done(pending: deque) -> tuple[mercantile.Tile, str]:
    tile, future = pending.popleft()
    return tile, future.result()


class _Cutter:
    """Reads and writes one tile; each thread gets its own dataset handle (they are not thread-safe)."""

    def __init__(self, path: Path, out: Path, size: int, bands: list[int], resampling, fmt: str, nodata):
        self.path, self.out, self.size, self.bands = path, out, size, bands
        self.resampling, self.format, self.nodata = resampling, fmt, nodata
        self._local = threading.local()
        self._opened: list = []
        self._lock = threading.Lock()

    def __call__(self, tile: mercantile.Tile) -> str:
        import rasterio

        src = getattr(self._local, "src", None)
        if src is None:
            src = self._local.src = rasterio.open(self.path)
            with self._lock:
                self._opened.append(src)
        data, valid = read_tile(src, tile, self.size, self.bands, self.resampling)
        if not valid.any():
            return "empty"
        partial = not valid.all()
        target = tile_path(self.out, tile, self.format)
        if self.format == "tif":
            _write_geotiff(target, data, valid, tile, self.nodata)
        else:
            data = np.moveaxis(data, 0, -1)
            if partial:
                data = np.where(valid[..., None], data, 0).astype(data.dtype)
                data = np.concatenate([data, (valid * 255).astype(np.uint8)[..., None]], axis=-1)
            write_image(target, data)
        return "partial" if partial else "full"

    def close(self) -> None:
        for src in self._opened:
            src.close()


def tile_transform(tile: mercantile.Tile, width: int, height: int):
    """The affine transform from a tile's pixels to web-mercator metres (north up)."""
    from affine import Affine

    west, south, east, north = mercantile.xy_bounds(tile)
    return Affine((east - west) / width, 0.0, west, 0.0, -(north - south) / height, north)


def read_tile(src, tile: mercantile.Tile, size: int, bands: list[int], resampling) -> tuple[np.ndarray, np.ndarray]:
    """One tile of `src` warped into web mercator: (bands x size x size array, size x size bool valid mask)."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.vrt import WarpedVRT

    # The warper computes validity (nodata, alpha, internal masks, outside the scene) into an alpha band in
    # the same pass as the pixels: one read instead of a second warp for dataset_mask().
    has_alpha = ColorInterp.alpha in src.colorinterp
    try:
        with WarpedVRT(src, crs=WEB_MERCATOR, transform=tile_transform(tile, size, size), width=size, height=size,
                       resampling=resampling, add_alpha=not has_alpha) as vrt:
            alpha = vrt.colorinterp.index(ColorInterp.alpha) + 1
            data = vrt.read(list(bands) + [alpha])
    except rasterio.errors.RasterioError as e:
        west, south, east, north = mercantile.bounds(tile)
        reason = str(e).split(" See previous")[0].rstrip(". ")
        raise RasterError(
            f"cannot read {src.name} under tile {tile.z}/{tile.x}/{tile.y} (lon {west:.6f}..{east:.6f}, "
            f"lat {south:.6f}..{north:.6f}): {reason}; the file is damaged there (tiles already written are complete)"
        ) from None
    return data[:-1], data[-1] > 0


def _write_geotiff(path: Path, data: np.ndarray, valid: np.ndarray, tile: mercantile.Tile, nodata) -> None:
    """A georeferenced tile (EPSG:3857, the tile's own grid) keeping band values; no data as 0 + internal mask."""
    import rasterio

    count, height, width = data.shape
    data = np.where(valid, data, nodata if nodata is not None else 0).astype(data.dtype)
    profile = dict(driver="GTiff", height=height, width=width, count=count, dtype=data.dtype.name,
                   crs=WEB_MERCATOR, transform=tile_transform(tile, width, height),
                   nodata=nodata, compress="deflate")
    with atomic_path(path) as tmp, rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            if nodata is None and not valid.all():
                dst.write_mask((valid * 255).astype(np.uint8))

