"""Predicting a GeoTIFF scene (any CRS, uint8/uint16, any band count) into slippy-map mask tiles.

Each web-mercator tile at the chosen zoom, grown by its context border, is read through `data.warp.warp_tile`,
the warp `rs-effnet tile` cuts training tiles with: the network sees the pixels of the tiles `tile` would cut
(same grid, resampling and GDAL options; its border those of the neighbouring tiles), and masks line up with
the tile grid whatever the scene's projection. Only that window is read, so memory follows the tile size,
not the scene size. Pixels outside the scene or flagged as no data (nodata value, mask or alpha band) become
palette index 255 (transparent); a tile without any data is not written. The network sees the scene mirrored
where a tile hangs over its edge (predict.mirror) and the mean colour under the scene's own no data. Tiles whose
pixels cannot be read are never written; the run then ends with one RasterError naming the file and the
unreadable area.

    result = predict_geotiff("best.pth", "scene.tif", "masks/", zoom=18)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import rasterio
import torch
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio passes through unwrapped
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds
from torch.utils.data import Dataset

from robosat_effnet.data.raster import (
    choose_bands,
    footprint_tiles,
    gdal_env,
    open_scene,
    unreadable_error,
)
from robosat_effnet.data.transforms import fill_nodata, to_tensor
from robosat_effnet.data.warp import (
    DEFAULT_RESAMPLING,
    apply_affine,
    resampling_method,
    resampling_scale,
    tile_transform,
    warp_tile,
    warp_window,
)
from robosat_effnet.errors import RasterError
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.models.device import resolve_device
from robosat_effnet.models.loaded import ModelSource, open_model
from robosat_effnet.outputs import check_separate, claim_folder, make_record, remove_tiles
from robosat_effnet.predict.engine import Predictor, check_precision, precision_settings
from robosat_effnet.predict.mirror import mirror_sources
from robosat_effnet.predict.options import PredictOptions, predict_options
from robosat_effnet.predict.runner import PredictResult, run, take_share
from robosat_effnet.predict.writer import is_done
from robosat_effnet.threshold import threshold_settings
from robosat_effnet.tiles import WEB_MERCATOR


class WarpedTiles(Dataset):
    """Web-mercator tiles of a scene with their context border, warped on the fly (runner protocol).

    The scene is opened lazily in each process (GDAL handles must not cross a fork).
    """

    def __init__(self, path: str | os.PathLike, tiles: Sequence[mercantile.Tile], tile_size: int, border: int,
                 bands: Sequence[int], spec: ModelSpec, resampling: Resampling | None = None):
        self.path = str(path)
        self.tiles = list(tiles)
        self.tile_size, self.border, self.bands = tile_size, border, list(bands)
        self.mean, self.std = spec.mean, spec.std
        self.max_value = getattr(spec, "max_value", None)
        self.resampling = resampling_method(DEFAULT_RESAMPLING) if resampling is None else resampling
        self._src: rasterio.DatasetReader | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.tiles)

    def source(self) -> rasterio.DatasetReader:
        if self._src is None or self._pid != os.getpid():
            self._src, self._pid = rasterio.open(self.path), os.getpid()
        return self._src

    def read(self, tile: mercantile.Tile) -> tuple[np.ndarray, np.ndarray]:
        """(C x H x W pixels of the chosen bands, H x W bool validity) of `tile` with its border."""
        with gdal_env():
            return warp_tile(self.source(), tile, self.tile_size, self.bands, self.resampling, self.border)

    def mirror(self, tile: mercantile.Tile, pixels: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pixels, validity) of the network's input: past the scene's edge, the scene mirrored across it.

        A flat fill beside real pixels is nothing whole-tile training showed the network: it read the hard
        edge as an outline and grew false buildings along the scene's edges. So those pixels get the mirrored
        scene, as the `--geotiff` windows do (see predict.mirror for why the mirror is computed from the
        geometry rather than np.pad). The masks still mark them as no data (`valid` is not changed), and no-data
        pixels inside the scene, mirrored ones included, still get the mean colour.
        """
        src = self.source()
        transform, side = tile_transform(tile, self.tile_size, self.border), self.tile_size + 2 * self.border
        found = mirror_sources(src, transform, ~valid)
        if found is None:
            return pixels, valid
        flat, u, v = found
        u, v = np.clip(u, -2 * side, 3 * side - 1), np.clip(v, -2 * side, 3 * side - 1)  # a far fold: any pixel
        x0, y0 = min(int(u.min()), 0), min(int(v.min()), 0)
        x1, y1 = max(int(u.max()) + 1, side), max(int(v.max()) + 1, side)
        if (x0, y0, x1, y1) == (0, 0, side, side):
            source, source_valid = pixels, valid
        else:  # the mirrored pixels lie partly beyond the tile's window: warp a larger one at the same scale
            moved = Affine(transform.a, 0.0, transform.c + x0 * transform.a, 0.0, transform.e,
                           transform.f + y0 * transform.e)  # the tile grid, x0 px right and y0 px down
            try:
                with gdal_env():
                    source, source_valid = warp_window(src, moved, x1 - x0, y1 - y0, self.bands, self.resampling,
                                                       resampling_scale(src, tile.z, self.tile_size))
            except (RasterioError, CPLE_BaseError):  # damage beside the tile: the tiles reading it report it
                return pixels, valid
        pixels, context = pixels.copy(), valid.copy()
        pixels.reshape(len(pixels), -1)[:, flat] = source[:, v - y0, u - x0]
        context.reshape(-1)[flat] = source_valid[v - y0, u - x0]
        return pixels, context

    def __getitem__(self, index: int) -> dict:
        tile = self.tiles[index]
        try:
            pixels, valid = self.read(tile)
            b = self.border
            center = valid[b:b + self.tile_size, b:b + self.tile_size] if b else valid
            if not center.any():
                return {"index": index, "image": None, "valid": None, "error": None}
            pixels, context = (pixels, valid) if valid.all() else self.mirror(tile, pixels, valid)
        except (RasterioError, CPLE_BaseError) as e:
            return {"index": index, "image": None, "valid": None, "error": f"tile {tile}: {e}"}
        image = fill_nodata(to_tensor(np.moveaxis(pixels, 0, -1), self.mean, self.std, self.max_value), context)
        return {"index": index, "image": image, "valid": None if center.all() else torch.from_numpy(center.copy()),
                "error": None}


def predict_geotiff(model: ModelSource, scene: str | os.PathLike, output_dir: str | os.PathLike, zoom: int,
                    options: PredictOptions | None = None, **overrides: Any) -> PredictResult:
    """Predict the slippy-map tiles at `zoom` covering `scene` into `output_dir`/z/x/y.png.

    Args:
        model: as in `predict_tiles`: a checkpoint path, (model, ModelSpec) pair, bare model or LoadedModel.
        options: a PredictOptions (None: the defaults), `overrides` change fields of it by keyword. Besides
            those of `predict_tiles` (border, probs, tta, threshold, precision, bands, shard, ...) it reads:
        tile_size: output px per tile (default: the checkpoint's tile_size).
        border: px of real context read around each tile (tile_size + 2 x border: a multiple of 32).
        bands: 1-based scene bands (default: the checkpoint's, else all but alpha).
        max_tiles: refuse zooms making more tiles than this (TooManyTilesError, nothing written).
        resampling: how scene pixels are warped onto the tile grid (a rasterio Resampling name): the warp
            and default of `rs-effnet tile`, so tiles cut with the same --resampling are what the network sees.
        probs: probability tiles as in `predict_tiles`; there, no-data pixels get probability 0.
    Raises RasterError (after writing every readable tile) when some of the scene cannot be read, and
    OutputError (before writing) for an output that overlaps the inputs or holds another run's tiles.
    """
    options = predict_options(options, overrides, "predict_geotiff")
    check_separate([output_dir], [scene])
    check_precision(options.precision)
    device = resolve_device(options.device)
    loaded = open_model(model, device)
    check_separate([output_dir], [loaded.path])  # never into the checkpoint's file (links resolved)
    spec, border = loaded.spec, options.border
    # bf16 with an .onnx model fails here
    predictor = Predictor(loaded.network, device=device, tta=options.tta, precision=options.precision)
    tile_size = options.tile_size or spec.tile_size
    if tile_size < 1 or border < 0:
        raise RasterError(f"tile size {tile_size} must be positive and border {border} 0 or more px")
    method = resampling_method(options.resampling)
    with open_scene(scene) as src:
        chosen = choose_bands(src, options.bands_list(), spec.bands, spec.in_channels)
        tiles = footprint_tiles(src, zoom, options.max_tiles)
    output = Path(output_dir)
    settings = {"kind": "probabilities" if options.probs else "masks", "zoom": zoom, "tile_size": tile_size,
                "border": border, "bands": chosen, "resampling": options.resampling, "tta": options.tta,
                "classes": spec.classes, **precision_settings(options.precision, device),
                **threshold_settings(options.threshold, options.probs)}
    claim_folder(output, make_record("predict", scene, settings, loaded.path, loaded.sha256),
                 overwrite=options.overwrite, clear=remove_tiles)
    result = PredictResult(output=output)
    share = take_share(tiles, options.shard)
    result.tiles = len(share)
    todo = [t for t in share if options.overwrite or not is_done(output, t, spec.classes, options.probs)]
    result.skipped = len(share) - len(todo)
    dataset = WarpedTiles(scene, todo, tile_size, border, chosen, spec, method)
    run(dataset, todo, predictor, spec, output, options, result)
    if result.failed:
        with open_scene(scene) as src:
            failed = [t for t in todo if any(line.startswith(f"tile {t}:") for line in result.failed)]
            regions = [_source_window(src, t, tile_size, border) for t in failed]
            raise unreadable_error(scene, src, chosen, f"{len(failed)} tile(s) reading from there were not written "
                                   f"({result.written} others were)", regions)
    return result


def _source_window(src: rasterio.DatasetReader, tile: mercantile.Tile, tile_size: int, border: int):
    """The scene's pixel window that a tile with its border is read from."""
    transform, side = tile_transform(tile, tile_size, border), tile_size + 2 * border
    left, top = apply_affine(transform, 0, 0)
    right, bottom = apply_affine(transform, side, side)
    try:
        bounds = transform_bounds(WEB_MERCATOR, src.crs, left, bottom, right, top, densify_pts=21)
        return window_from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
    except (RasterioError, CPLE_BaseError, ValueError):  # e.g. a rotated grid: look everywhere instead
        return Window(0, 0, src.width, src.height)
