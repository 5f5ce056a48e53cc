"""Burn GeoJSON polygons into palette label tiles (robosat's `rasterize`), for exactly a given set of tiles.

Geometries are read once, reprojected to web mercator and indexed in a shapely STRtree, so each
tile only burns the few polygons that touch it: the cost grows with tiles + polygons, not their product.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mercantile
import numpy as np

from robosat_effnet.data.geojson import POLYGONAL, check_lonlat, geojson_crs, polygon_shape, read_geojson
from robosat_effnet.errors import ConfigError, DatasetError, UnknownNameError
from robosat_effnet.io import write_mask
from robosat_effnet.limits import MAX_TOUCHING_PX
from robosat_effnet.outputs import writing
from robosat_effnet.text import ascii_int
from robosat_effnet.tiles import MAX_LATITUDE, WEB_MERCATOR, tile_path


@dataclass
class LabelShapes:
    """Polygons in web mercator with the class index each one burns."""

    geometries: np.ndarray  # shapely geometries, EPSG:3857
    classes: np.ndarray  # uint8 class index per geometry
    source: Path
    skipped: int = 0  # features that are not polygons (points, lines) and were left out


@dataclass
class RasterizeReport:
    """What `rasterize_geojson` wrote."""

    tiles: list[mercantile.Tile] = field(default_factory=list)
    with_features: int = 0  # tiles where at least one polygon was burnt
    polygons_used: int = 0  # polygons touching at least one tile
    polygons_total: int = 0
    skipped: int = 0  # non-polygon features left out


def load_label_shapes(
    path: str | os.PathLike,
    classes: list[str],
    class_property: str | None = None,
) -> LabelShapes:
    """Read a GeoJSON's polygons, reproject them to web mercator and find each one's class index.

    With `class_property`, a feature's value of that property must name one of `classes` (case is
    ignored). Without it the dataset must have exactly two classes and every polygon burns class 1 (a class
    named "touching", the band `--touching-px` burns, does not count: every polygon burns the other one).
    """
    import shapely
    from pyproj import Transformer

    from robosat_effnet.config.dataset import touching_index

    path = Path(path)
    data, features = read_geojson(path)
    band = touching_index(classes)
    burnt = [i for i in range(1, len(classes)) if i != band]
    if class_property is None and len(burnt) != 1:
        raise ConfigError(
            f"the dataset has {len(classes)} classes ({', '.join(classes)}); "
            "pass --class-property naming the GeoJSON property that holds each polygon's class"
        )
    lookup = {name.lower(): i for i, name in enumerate(classes)}
    geometries, indices, skipped = [], [], 0
    for n, feature in enumerate(features):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in POLYGONAL:
            skipped += 1
            continue
        if class_property is None:
            index = burnt[0]
        else:
            properties = feature.get("properties")
            value = properties.get(class_property) if isinstance(properties, dict) else None
            if value is None:
                raise DatasetError(f"feature {n} of {path} has no property {class_property!r}; "
                                   "give every polygon a class or choose another --class-property")
            index = class_index(value, lookup)
            if index is None:
                raise UnknownNameError(
                    f"class {value!r} (feature {n} of {path}, property {class_property!r}) is not in the dataset's "
                    f"classes {classes} (by name or index 0..{len(classes) - 1}); add it to dataset.toml or fix "
                    "the GeoJSON"
                )
        geometries.append(polygon_shape(geometry, n, path))
        indices.append(index)
    if not geometries:
        raise DatasetError(f"{path} holds no polygons ({len(features)} features, none a Polygon or MultiPolygon); "
                           "pass building/area outlines as polygons")
    crs = geojson_crs(data, path)
    geometries = np.array(geometries, dtype=object)
    if crs.to_epsg() == 4326:
        check_lonlat(geometries, path, "EPSG:4326, the GeoJSON default")
    # Repair self-intersections (common in digitised outlines) keeping only areas: a collapsed ring burns nothing.
    geometries = shapely.make_valid(geometries, method="structure", keep_collapsed=False)
    if crs.to_epsg() == 4326:
        # Web mercator stops short of the poles; clamp so the transform stays finite.
        geometries = shapely.clip_by_rect(geometries, -180, -MAX_LATITUDE, 180, MAX_LATITUDE)
    transformer = Transformer.from_crs(crs, WEB_MERCATOR, always_xy=True)
    geometries = shapely.transform(geometries, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
    return LabelShapes(geometries, np.asarray(indices, dtype=np.uint8), path, skipped)


def class_index(value: object, lookup: dict[str, int]) -> int | None:
    """The class index a GeoJSON property value names: a class name (any case) or an index 0..C-1."""
    if str(value).lower() in lookup:
        return lookup[str(value).lower()]
    number = value if isinstance(value, int) and not isinstance(value, bool) else \
        ascii_int(value.strip()) if isinstance(value, str) else None  # ASCII digits: int() takes '١', fails '²'
    return number if number is not None and 0 <= number < len(lookup) else None


def image_sizes(tiles: dict[mercantile.Tile, Path]) -> dict[mercantile.Tile, tuple[int, int]]:
    """(height, width) of every image tile, read from file headers only."""
    from PIL import Image, UnidentifiedImageError

    sizes = {}
    for tile, path in tiles.items():
        try:
            if path.suffix.lower() in (".tif", ".tiff"):
                import rasterio

                with rasterio.open(path) as src:
                    sizes[tile] = (src.height, src.width)
            else:
                with Image.open(path) as image:
                    sizes[tile] = (image.height, image.width)
        except (OSError, UnidentifiedImageError) as e:
            raise DatasetError(f"cannot read image tile {path}: {e}; re-create or remove it") from None
    return sizes


def burn_tile(shapes: LabelShapes, indices: np.ndarray, tile: mercantile.Tile, size: tuple[int, int]) -> np.ndarray:
    """The label array of one tile: class indices of the polygons `indices` burnt on background 0."""
    from rasterio.features import rasterize

    from robosat_effnet.data.warp import tile_transform

    height, width = size
    mask = np.zeros((height, width), dtype=np.uint8)
    if len(indices) == 0:
        return mask
    # Higher class indices are burnt last so they win where classes overlap; stable keeps file order within a class.
    order = indices[np.argsort(shapes.classes[indices], kind="stable")]
    transform = tile_transform(tile, width, height=height)
    pairs = ((shapes.geometries[i], int(shapes.classes[i])) for i in order)
    return rasterize(pairs, out=mask, transform=transform, dtype=np.uint8)


def rasterize_geojson(
    geojson: str | os.PathLike,
    tiles: dict[mercantile.Tile, tuple[int, int]],
    out: str | os.PathLike,
    classes: list[str],
    colors: list,
    class_property: str | None = None,
    progress: bool = True,
    touching_px: int = 0,
    before_writing: Callable[[], object] | None = None,
) -> RasterizeReport:
    """Write `out/z/x/y.png` palette labels for every tile in `tiles` ({tile: (height, width)}).

    `touching_px` > 0 also burns the class named "touching" (which `classes` must hold) on building pixels
    within that many px of another polygon (`vectorize.split.burn_touching`), to keep touching buildings apart.

    Raises DatasetError (before writing anything) when no polygon touches any of the tiles,
    which almost always means a wrong CRS or the wrong area/zoom. `before_writing` runs once the input
    is checked, before the first label (e.g. `outputs.claim_folder`: a bad input leaves no folder).
    """
    import shapely

    if not tiles:
        raise DatasetError("no tiles to rasterize; pass --tiles with a slippy-map folder or a non-empty tiles.csv")
    from robosat_effnet.config.dataset import require_touching
    from robosat_effnet.prepare.touching import burn_touching

    if not 0 <= touching_px <= MAX_TOUCHING_PX:
        raise ConfigError(f"touching px {touching_px} is out of range; use 0 (off) to {MAX_TOUCHING_PX}, e.g. 2")
    band = require_touching(classes) if touching_px > 0 else None
    shapes = load_label_shapes(geojson, classes, class_property)
    tree = shapely.STRtree(shapes.geometries)
    order = list(tiles)
    boxes = shapely.box(*np.array([mercantile.xy_bounds(t) for t in order]).T)
    tile_idx, geom_idx = tree.query(boxes, predicate="intersects")
    near: dict[int, list[int]] = {}
    if band is not None:  # neighbours up to touching_px beyond the tile count too (the widest pixel of any tile)
        reach = touching_px * max((b[2] - b[0]) / tiles[t][1] for t, b in
                                  ((t, mercantile.xy_bounds(t)) for t in order))
        for t, g in zip(*tree.query(shapely.buffer(boxes, reach, join_style="mitre"), predicate="intersects"),
                        strict=True):
            near.setdefault(int(t), []).append(int(g))
    if len(geom_idx) == 0:
        west, south, east, north = shapely.total_bounds(shapes.geometries)
        raise DatasetError(
            f"none of the {len(shapes.geometries)} polygons in {shapes.source} touches any of the {len(order)} tiles "
            f"(polygons span web-mercator x {west:.0f}..{east:.0f}, y {south:.0f}..{north:.0f}); "
            "check the GeoJSON's CRS and that the tiles cover the same area"
        )
    if before_writing is not None:
        before_writing()
    per_tile: dict[int, list[int]] = {}
    for t, g in zip(tile_idx.tolist(), geom_idx.tolist(), strict=True):
        per_tile.setdefault(t, []).append(g)
    report = RasterizeReport(polygons_used=len(set(geom_idx.tolist())), polygons_total=len(shapes.geometries),
                             skipped=shapes.skipped, with_features=len(per_tile))
    iterator = enumerate(order)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(order), desc="rasterize", unit="tile")
    for i, tile in iterator:
        indices = np.array(sorted(per_tile.get(i, [])), dtype=np.int64)
        mask = burn_tile(shapes, indices, tile, tiles[tile])
        if band is not None and len(near.get(i, [])) > 1:
            mask = burn_touching(mask, shapes.geometries[sorted(near[i])], tile, touching_px, band)
        with writing(out):  # a full or read-only disk: one line, no half-written label
            write_mask(tile_path(out, tile, "png"), mask, colors)
        report.tiles.append(tile)
    return report
