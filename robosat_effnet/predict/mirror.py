"""Where a tile hangs over the scene's edge, which scene pixels the network sees there: the mirrored scene.

The `--geotiff` mosaic reads windows on the scene's own grid and mirror-pads them with np.pad(mode="reflect")
(predict.mosaic). A slippy-map tile is warped from the scene, so the scene's border is in general not a pixel
row or column of the tile window (a UTM scene's edges are tilted, a rotated grid's even more), and np.pad
cannot be applied there. The same mirror is therefore computed from the geometry: each tile pixel outside the
scene is mapped to scene pixel coordinates, reflected there exactly as np.pad "reflect" does (about the centres
of the scene's edge pixels, folding again past the far side of a narrow scene), and mapped back onto the tile
grid, where the warped pixel under it is taken. For a scene on the tile grid this is np.pad's result pixel for
pixel; elsewhere it is the mirror across the border as the tile sees it (up to half a tile pixel of nearest
sampling), with the warp's own resampling of the pixels mirrored.
"""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio passes through unwrapped
from rasterio.errors import RasterioError
from rasterio.warp import transform as warp_transform

from robosat_effnet.data.warp import apply_affine
from robosat_effnet.tiles import WEB_MERCATOR


def reflect(coord: np.ndarray, size: int) -> np.ndarray:
    """Continuous pixel coordinates (pixel i spans [i, i + 1)) folded into a scene `size` px wide the way
    np.pad(mode="reflect") folds indices: about the centres of the first and last pixel, repeatedly."""
    span = size - 1
    if span <= 0:  # one pixel: np.pad would need mode="edge"
        return np.full_like(coord, 0.5, dtype=np.float64)
    t = np.mod(coord - 0.5, 2 * span)
    return 0.5 + np.where(t <= span, t, 2 * span - t)


def mirror_sources(src: rasterio.DatasetReader, transform, invalid: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """For the `invalid` pixels (H x W bool) of a tile window at `transform` (north-up, EPSG:3857) that lie
    outside the scene: (their flat indices, window column, window row) of the pixel holding the scene mirrored
    across its border. Window coordinates may fall outside the window. None when no invalid pixel is outside
    the scene (only the scene's own no data) or the points cannot be projected.

    "Outside" means past the centres of the scene's edge pixels, where the mirror starts: an invalid pixel in
    the outer half of an edge pixel is mirrored onto its neighbour instead of getting the mean colour.
    """
    flat = np.flatnonzero(invalid)
    if not flat.size:
        return None
    rows, cols = np.divmod(flat, invalid.shape[1])
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    try:
        col, row = _to_scene_pixels(src, x, y)
        outside = (col < 0.5) | (col > src.width - 0.5) | (row < 0.5) | (row > src.height - 0.5)
        if not outside.any():
            return None
        col, row = reflect(col[outside], src.width), reflect(row[outside], src.height)
        xs, ys = apply_affine(src.transform, col, row)
        if src.crs != WEB_MERCATOR:
            xs, ys = (np.asarray(v) for v in warp_transform(src.crs, WEB_MERCATOR, xs, ys))
    except (RasterioError, CPLE_BaseError, ValueError):
        return None
    u, v = (xs - transform.c) / transform.a, (ys - transform.f) / transform.e
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        return None
    return flat[outside], np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)


def _to_scene_pixels(src: rasterio.DatasetReader, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:3857 points as continuous (column, row) in the scene's pixel grid."""
    if src.crs != WEB_MERCATOR:
        x, y = (np.asarray(v) for v in warp_transform(WEB_MERCATOR, src.crs, x, y))
    col, row = apply_affine(~src.transform, x, y)
    if not (np.isfinite(col).all() and np.isfinite(row).all()):
        raise ValueError("points outside the scene's projection")
    return col, row
