"""Scoring areas for `score`: a tile folder's footprint, a file's polygons. The polygons themselves are read by
`robosat_effnet.data.vectors` (re-exported here: `read_polygons`, `Polygons`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robosat_effnet.data.vectors import GEOJSON, POLYGONAL, Polygons, read_polygons
from robosat_effnet.errors import DatasetError

__all__ = ["GEOJSON", "POLYGONAL", "Polygons", "polygon_area", "read_polygons", "tiles_area"]


def tiles_area(tiles: str | os.PathLike):
    """The union of the bounds of a slippy-map folder's tiles (any files z/x/y.*, any zooms) or of a tiles.csv.

    Tile edges are lines of constant longitude or latitude, so the union is exact in lon/lat.
    """
    import mercantile
    import shapely

    from robosat_effnet.tiles import read_tiles_csv, tile_files

    path = Path(tiles)
    if path.is_dir():
        found = list(tile_files(path, {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}))
    else:
        found = read_tiles_csv(path)
    if not found:
        raise DatasetError(f"no tiles in {path}; pass a slippy-map folder z/x/y.<ext> or a tiles.csv of x,y,z rows")
    boxes = shapely.box(*np.array([tuple(mercantile.bounds(t)) for t in found]).T)
    return shapely.union_all(boxes)


def polygon_area(path: str | os.PathLike):
    """The union of a file's polygons (lon/lat), as a scoring area."""
    import shapely

    polygons = read_polygons(path)
    if not len(polygons.geometries):
        raise DatasetError(f"area file {path} holds no polygons; pass the outline of the imagery as a polygon")
    return shapely.union_all(polygons.geometries)
