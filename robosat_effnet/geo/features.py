"""Mask tiles -> lon/lat polygons (robosat's `features`, for any class and any zoom).

Each tile is polygonised in *global pixel coordinates* of its zoom (tile x * size + column), which are
integers, so a building's two halves on neighbouring tiles share their cut edge exactly and `unary_union`
joins them without snapping tolerances. Only polygons that touch their tile's edge can continue on a
neighbour, so only those go through the union: the cost stays proportional to the border polygons.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import mercantile
import numpy as np

from robosat_effnet.errors import DatasetError
from robosat_effnet.io import atomic_path, read_label
from robosat_effnet.tiles import tile_files

log = logging.getLogger("robosat_effnet")

HALF_WORLD = math.pi * 6378137.0  # web mercator's x and y run from -HALF_WORLD to +HALF_WORLD metres
EARTH_CIRCUMFERENCE = 2 * HALF_WORLD


@dataclass
class Feature:
    """One output polygon: lon/lat geometry, its class name and its true (ellipsoidal) area in m2."""

    geometry: object  # shapely Polygon, EPSG:4326
    class_name: str
    area_m2: float


@dataclass
class FeaturesReport:
    """What `mask_features` found: features per class and how many specks were dropped."""

    features: list[Feature] = field(default_factory=list)
    tiles: int = 0
    dropped: int = 0  # polygons below min_area


def tile_polygons(mask: np.ndarray, tile: mercantile.Tile) -> tuple[list, list]:
    """Polygons of the True pixels of one square tile, in global pixel coordinates: (inside, touching the edge)."""
    import shapely
    from affine import Affine
    from rasterio.features import shapes

    size = mask.shape[0]
    x0, y0 = tile.x * size, tile.y * size
    inside, edge = [], []
    for geometry, _ in shapes(mask.astype(np.uint8), mask=mask, transform=Affine.translation(x0, y0),
                              connectivity=4):
        polygon = shapely.geometry.shape(geometry)
        minx, miny, maxx, maxy = polygon.bounds
        touches = minx <= x0 or miny <= y0 or maxx >= x0 + size or maxy >= y0 + size
        (edge if touches else inside).append(polygon)
    return inside, edge


def pixels_to_mercator(geometries: np.ndarray, zoom: int, size: int) -> np.ndarray:
    """Global pixel coordinates of a zoom (size-px tiles) -> EPSG:3857 metres."""
    import shapely

    scale = EARTH_CIRCUMFERENCE / (size * 2**zoom)
    return shapely.transform(geometries, lambda xy: np.column_stack(
        [xy[:, 0] * scale - HALF_WORLD, HALF_WORLD - xy[:, 1] * scale]))


def class_polygons(masks: dict[mercantile.Tile, Path], indices: list[int],
                   progress: bool = True) -> tuple[dict[int, np.ndarray], float]:
    """Polygons of each class in `indices` over the mask tiles, merged across tile borders, in EPSG:3857.

    Returns ({index: array of shapely Polygons}, the finest zoom's pixel size in web-mercator metres).
    """
    import shapely

    # (class, zoom, tile size) -> (polygons inside their tile, polygons touching a tile edge)
    groups: dict[tuple[int, int, int], tuple[list, list]] = defaultdict(lambda: ([], []))
    iterator = masks.items()
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(masks), desc="features", unit="tile")
    pixel = math.inf
    for tile, path in iterator:
        mask = read_label(path)
        if mask.shape[0] != mask.shape[1]:
            raise DatasetError(f"mask tile {path} is {mask.shape[1]}x{mask.shape[0]} px; slippy-map tiles are "
                               "square: pass masks written by `rs-effnet predict` or `rs-effnet rasterize`")
        pixel = min(pixel, EARTH_CIRCUMFERENCE / (mask.shape[0] * 2**tile.z))
        for index in indices:
            inside, edge = tile_polygons(mask == index, tile)
            group = groups[(index, tile.z, mask.shape[0])]
            group[0].extend(inside)
            group[1].extend(edge)
    result: dict[int, np.ndarray] = {}
    for index in indices:
        parts = []
        for (_, zoom, size), (inside, edge) in ((k, v) for k, v in groups.items() if k[0] == index):
            merged = shapely.get_parts(shapely.unary_union(edge)) if edge else np.array([], dtype=object)
            parts.append(pixels_to_mercator(np.concatenate([np.array(inside, dtype=object), merged]), zoom, size))
        geometries = np.concatenate(parts) if parts else np.array([], dtype=object)
        if len(parts) > 1:  # several zooms or tile sizes: merge once more, now in metres
            geometries = shapely.get_parts(shapely.unary_union(geometries))
        result[index] = geometries
    return result, pixel


def mask_features(
    masks: str | os.PathLike,
    classes: dict[int, str],
    min_area: float = 0.0,
    simplify: float | None = None,
    zoom: int | None = None,
    progress: bool = True,
) -> FeaturesReport:
    """Polygons of the classes {index: name} in a slippy-map folder of mask tiles, in lon/lat.

    `min_area` (m2, true ellipsoidal area) drops specks; `simplify` is a Douglas-Peucker tolerance in
    metres on the ground (None: one pixel of the finest zoom, the least that straightens a 45-degree pixel
    staircase, while corners stay; 0: no simplification). `zoom` restricts the input to the tiles of one zoom.
    """
    import shapely
    from pyproj import Geod, Transformer

    tiles = tile_files(masks, {".png"})
    if zoom is not None:
        tiles = {tile: path for tile, path in tiles.items() if tile.z == zoom}
    if not tiles:
        at = f" at zoom {zoom}" if zoom is not None else ""
        raise DatasetError(f"no mask tiles (z/x/y.png){at} in {masks}; pass the folder `rs-effnet predict` or "
                           "`rs-effnet rasterize` wrote")
    zooms = sorted({tile.z for tile in tiles})
    if len(zooms) > 1:
        log.warning(
            "%s holds mask tiles of zooms %s; their polygons are merged (use --zoom to take one)", masks,
            ", ".join(map(str, zooms)))
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    geod = Geod(ellps="WGS84")
    report = FeaturesReport(tiles=len(tiles))
    polygons, pixel = class_polygons(tiles, list(classes), progress)
    for index, name in classes.items():
        mercator = polygons[index]
        if not len(mercator):
            continue
        if simplify is None:
            tolerance = pixel  # one pixel, whatever the latitude
        else:  # web mercator stretches ground distances by 1/cos(latitude): scale per polygon
            latitude = to_lonlat.transform(*shapely.get_coordinates(shapely.centroid(mercator)).T)[1]
            tolerance = simplify / np.cos(np.radians(latitude))
        if simplify is None or simplify > 0:
            mercator = shapely.simplify(mercator, tolerance, preserve_topology=True)
        lonlat = shapely.transform(mercator, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
        for geometry in lonlat:
            if geometry.is_empty:
                continue
            area = abs(geod.geometry_area_perimeter(geometry)[0])
            if area < min_area:
                report.dropped += 1
                continue
            report.features.append(Feature(geometry, name, area))
    return report


def write_geojson(path: str | os.PathLike, features: list[Feature], precision: int = 8) -> Path:
    """Write features as an RFC 7946 FeatureCollection (lon/lat) with properties class and area_m2, atomically.

    `precision` decimals of a degree: 8 is about 1 mm, finer than any aerial pixel.
    """
    import shapely

    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature",
             "geometry": json.loads(shapely.to_geojson(shapely.set_precision(f.geometry, 10.0**-precision))),
             "properties": {"class": f.class_name, "area_m2": round(f.area_m2, 2)}}
            for f in features
        ],
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(collection))
    return path
