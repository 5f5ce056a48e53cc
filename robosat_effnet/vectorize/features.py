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
from robosat_effnet.outputs import mark
from robosat_effnet.tiles import WEB_MERCATOR, tile_files

log = logging.getLogger("robosat_effnet")

HALF_WORLD = math.pi * 6378137.0  # web mercator's x and y run from -HALF_WORLD to +HALF_WORLD metres
EARTH_CIRCUMFERENCE = 2 * HALF_WORLD


@dataclass
class Feature:
    """One output polygon: lon/lat geometry, its class name, its true (ellipsoidal) area in m2 and, when
    probability tiles were given, its score (the mean probability of its class over its pixels)."""

    geometry: object  # shapely Polygon, EPSG:4326
    class_name: str
    area_m2: float
    score: float | None = None


@dataclass
class FeaturesReport:
    """What `mask_features` found: features per class and how many specks were dropped."""

    features: list[Feature] = field(default_factory=list)
    tiles: int = 0
    dropped: int = 0  # polygons below min_area
    unsure: int = 0  # polygons whose score is below min_score


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


def class_polygons(masks: dict[mercantile.Tile, Path], indices: list[int], progress: bool = True,
                   touching: int | None = None) -> tuple[dict[int, np.ndarray], float]:
    """Polygons of each class in `indices` over the mask tiles, merged across tile borders, in EPSG:3857.

    With `touching` (the index of the band between touching buildings, see `vectorize.split`), each class's blobs
    are split into one polygon per building first. Returns ({index: array of shapely Polygons}, the finest
    zoom's pixel size in web-mercator metres).
    """
    import shapely

    from robosat_effnet.vectorize.split import instance_polygons, merge_across_tiles, split_buildings

    # (class, zoom, tile size) -> (polygons inside their tile, polygons touching a tile edge, their tiles)
    groups: dict[tuple[int, int, int], tuple[list, list, list]] = defaultdict(lambda: ([], [], []))
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
            if touching is None:
                inside, edge = tile_polygons(mask == index, tile)
            else:
                inside, edge = instance_polygons(split_buildings(mask, index, touching), tile)
            group = groups[(index, tile.z, mask.shape[0])]
            group[0].extend(inside)
            group[1].extend(edge)
            group[2].extend([tile] * len(edge))
    result: dict[int, np.ndarray] = {}
    for index in indices:
        parts = []
        for (_, zoom, size), (inside, edge, tiles) in ((k, v) for k, v in groups.items() if k[0] == index):
            if touching is not None:  # split neighbours share edges: join only what continues across a border
                merged = np.array(merge_across_tiles(edge, tiles), dtype=object)
            else:
                merged = shapely.get_parts(shapely.unary_union(edge)) if edge else np.array([], dtype=object)
            parts.append(pixels_to_mercator(np.concatenate([np.array(inside, dtype=object), merged]), zoom, size))
        geometries = np.concatenate(parts) if parts else np.array([], dtype=object)
        if len(parts) > 1 and touching is None:  # several zooms or tile sizes: merge once more, now in metres
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
    touching: int | None = None,
    regularize: bool = False,
    tolerance: float | None = None,
    diagonals: bool = True,
    probabilities: dict[int, str | os.PathLike] | None = None,
    min_score: float = 0.0,
) -> FeaturesReport:
    """Polygons of the classes {index: name} in a slippy-map folder of mask tiles, in lon/lat.

    `min_area` (m2, true ellipsoidal area) drops specks; `simplify` is a Douglas-Peucker tolerance in
    metres on the ground (None: one pixel of the finest zoom, the least that straightens a 45-degree pixel
    staircase, while corners stay; 0: no simplification). `zoom` restricts the input to the tiles of one zoom.
    `touching`: the class index of the band between touching buildings (`vectorize.split`): blobs are split into one
    polygon per building. `regularize` squares each outline to its own axes (`vectorize.footprints`) with `tolerance`
    metres on the ground (None: 1.5 pixels of the finest zoom), with 45-degree edges if `diagonals`.
    `probabilities` {class index: slippy-map folder of probability tiles} gives each feature a score, and
    `min_score` then drops the polygons the model is less sure of (a mean probability below it).
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
    to_lonlat = Transformer.from_crs(WEB_MERCATOR, "EPSG:4326", always_xy=True)
    geod = Geod(ellps="WGS84")
    report = FeaturesReport(tiles=len(tiles))
    classes = {i: n for i, n in classes.items() if i != touching}
    polygons, pixel = class_polygons(tiles, list(classes), progress, touching)
    for index, name in classes.items():
        mercator = polygons[index]
        if not len(mercator):
            continue
        if simplify is None:
            step = pixel  # one pixel, whatever the latitude
        else:  # web mercator stretches ground distances by 1/cos(latitude): scale per polygon
            latitude = to_lonlat.transform(*shapely.get_coordinates(shapely.centroid(mercator)).T)[1]
            step = simplify / np.cos(np.radians(latitude))
        if simplify is None or simplify > 0:
            mercator = shapely.simplify(mercator, step, preserve_topology=True)
        lonlat = shapely.transform(mercator, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
        for geometry in lonlat:
            if geometry.is_empty:
                continue
            area = abs(geod.geometry_area_perimeter(geometry)[0])
            if area < min_area:
                report.dropped += 1
                continue
            report.features.append(Feature(geometry, name, area))
    if regularize and report.features:
        from robosat_effnet.vectorize.footprints import ground_pixel, regularize_features

        if tolerance is None:
            latitude = float(np.mean([f.geometry.centroid.y for f in report.features]))
            tolerance = 1.5 * ground_pixel(pixel, latitude)  # measured on Kampala z20: keeps F1, 5.9 vertices
        report.features = regularize_features(report.features, tolerance, diagonals, progress=progress)
    if probabilities:
        for index, folder in probabilities.items():
            chosen = [f for f in report.features if f.class_name == classes.get(index)]
            for feature, score in zip(chosen, polygon_scores([f.geometry for f in chosen], folder, set(tiles)),
                                      strict=True):
                feature.score = score
        if min_score > 0:
            kept = [f for f in report.features if f.score is None or f.score >= min_score]
            report.unsure = len(report.features) - len(kept)
            report.features = kept
    return report


def polygon_scores(geometries: list, folder: str | os.PathLike, tiles: set[mercantile.Tile]) -> list[float | None]:
    """Mean probability over the pixels (centres inside) of each lon/lat polygon, from the probability tiles in
    `folder` (robosat's format, `predict --probs`) of `tiles`; None for a polygon no tile covers."""
    import shapely
    from pyproj import Transformer
    from rasterio.features import rasterize

    from robosat_effnet.data.probabilities import read_probability
    from robosat_effnet.data.warp import tile_transform

    found = {t: p for t, p in tile_files(folder, {".png"}).items() if t in tiles}
    if geometries and not found:
        raise DatasetError(f"no probability tiles in {folder} for the mask tiles; pass the folder `rs-effnet predict "
                           "--probs` wrote for the same tiles")
    to_mercator = Transformer.from_crs("EPSG:4326", WEB_MERCATOR, always_xy=True)
    mercator = shapely.transform(np.array(geometries, dtype=object),
                                 lambda xy: np.column_stack(to_mercator.transform(xy[:, 0], xy[:, 1])))
    sums, counts = np.zeros(len(geometries) + 1), np.zeros(len(geometries) + 1)
    tree = shapely.STRtree(mercator)
    for tile, path in found.items():
        hits = tree.query(shapely.box(*mercantile.xy_bounds(tile)), predicate="intersects")
        if not len(hits):
            continue
        probability = read_probability(path)
        height, width = probability.shape
        ids = rasterize(((mercator[i], int(i) + 1) for i in hits), out_shape=(height, width),
                        transform=tile_transform(tile, width, height=height), dtype=np.int32)
        sums += np.bincount(ids.ravel(), weights=probability.ravel(), minlength=len(sums))
        counts += np.bincount(ids.ravel(), minlength=len(counts))
    return [float(s / c) if c else None for s, c in zip(sums[1:], counts[1:], strict=True)]


def properties(feature: Feature) -> dict:
    """A feature's output properties: class, area_m2 (to the cm2) and, when known, score (to 1e-4)."""
    result = {"class": feature.class_name, "area_m2": round(feature.area_m2, 2)}
    if feature.score is not None:
        result["score"] = round(feature.score, 4)
    return result


def write_geojson(path: str | os.PathLike, features: list[Feature], precision: int = 8,
                  command: str = "features") -> Path:
    """Write features as an RFC 7946 FeatureCollection (lon/lat) with properties class and area_m2, atomically.

    `precision` decimals of a degree: 8 is about 1 mm, finer than any aerial pixel. `command`: whose mark the
    file carries (`outputs.mark`), so that a rerun of that command may replace it.
    """
    import shapely

    collection = {
        **mark(command),  # a foreign member (RFC 7946 6.1), first: a rerun knows its own file
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature",
             "geometry": json.loads(shapely.to_geojson(shapely.set_precision(f.geometry, 10.0**-precision))),
             "properties": properties(f)}
            for f in features
        ],
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(collection))
    return path
