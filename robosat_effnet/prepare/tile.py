"""Cut a GeoTIFF of any CRS into slippy-map image tiles `OUT/z/x/y.{png,webp,tif}`.

Each tile is read through `data.warp.warp_tile`, the warp `predict` reads a scene's tiles through too (same
grid, resampling and GDAL options), so the tiles a model is trained on are the pixels it is later shown when it
predicts the scene. The grid *is* the tile (`mercantile.xy_bounds` -> affine), so pixels line up exactly with
the slippy map, resampling happens once, and GDAL reads only the source blocks under that tile: memory is
bounded by the tile size, not the scene size.
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

from robosat_effnet.data.warp import DEFAULT_RESAMPLING, resampling_method, tile_transform, warp_tile
from robosat_effnet.errors import ConfigError, RasterError
from robosat_effnet.io import atomic_path, write_image
from robosat_effnet.limits import MAX_TILE_SIZE, MAX_ZOOM
from robosat_effnet.outputs import check_separate, claim_folder, make_record, remove_tiles, writing
from robosat_effnet.text import is_url
from robosat_effnet.tiles import WEB_MERCATOR, tile_path, write_tiles_csv

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
    resampling: str = DEFAULT_RESAMPLING,
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

    from robosat_effnet.data.raster import default_bands, footprint_tiles, open_scene

    path, out = (path if is_url(path) else Path(path)), Path(out)  # a URL: a COG read by range requests
    check_separate([out], [path])
    method = resampling_method(resampling)  # an unknown name fails before the scene is opened
    if not 0 < size <= MAX_TILE_SIZE or not 0 <= zoom <= MAX_ZOOM:
        raise ConfigError(f"tile size {size} / zoom {zoom} out of range; use a size of 1..{MAX_TILE_SIZE} px and a "
                          f"zoom in 0..{MAX_ZOOM}")
    with open_scene(path) as src:
        tiles = footprint_tiles(src, zoom, max_tiles)
        if bands is None:
            bands = default_bands(src)
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
        if progress:
            from tqdm import tqdm

            tiles = tqdm(tiles, desc="tile", unit="tile")
        cutter = _Cutter(path, out, size, bands, method, report.format, src.nodata)
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


def read_tile(src, tile: mercantile.Tile, size: int, bands: list[int], resampling) -> tuple[np.ndarray, np.ndarray]:
    """One tile of `src` warped into web mercator by `data.warp.warp_tile`: (bands x size x size array,
    size x size bool valid mask); a read that fails is a RasterError naming the tile's place."""
    import rasterio

    try:
        return warp_tile(src, tile, size, bands, resampling)
    except rasterio.errors.RasterioError as e:
        west, south, east, north = mercantile.bounds(tile)
        reason = str(e).split(" See previous")[0].rstrip(". ")
        raise RasterError(
            f"cannot read {src.name} under tile {tile.z}/{tile.x}/{tile.y} (lon {west:.6f}..{east:.6f}, "
            f"lat {south:.6f}..{north:.6f}): {reason}; the file is damaged there (tiles already written are complete)"
        ) from None


def _write_geotiff(path: Path, data: np.ndarray, valid: np.ndarray, tile: mercantile.Tile, nodata) -> None:
    """A georeferenced tile (EPSG:3857, the tile's own grid) keeping band values; no data as 0 + internal mask."""
    import rasterio

    count, height, width = data.shape
    data = np.where(valid, data, nodata if nodata is not None else 0).astype(data.dtype)
    profile = dict(driver="GTiff", height=height, width=width, count=count, dtype=data.dtype.name,
                   crs=WEB_MERCATOR, transform=tile_transform(tile, width, height=height),
                   nodata=nodata, compress="deflate")
    with atomic_path(path) as tmp, rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            if nodata is None and not valid.all():
                dst.write_mask((valid * 255).astype(np.uint8))

