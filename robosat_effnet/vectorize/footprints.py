"""Regularised building footprints: outlines squared to their own axes, as mappers draw them.

The work is done by `buildingregulariser` (MIT; `regularize_geodataframe`): each polygon is simplified, its
dominant orientation found from a length-weighted histogram of edge directions, and every edge snapped to that
direction, its perpendicular or (optionally) 45 degrees from it; outlines close to a circle (circle IoU > 0.9)
become circles. Its tolerances are in the units of the CRS it is given, so lon/lat polygons are taken to the UTM
zone of each polygon's centroid (metres, conformal: right angles stay right angles), regularised there, and
brought back to lon/lat.

Right angles only (`diagonals=False`): buildingregulariser's own mode for it (`allow_45_degree=False`) fails on
our data: a perfect 12 x 8 m rectangle rotated 27 degrees comes back with 8 vertices (notches at two corners), at
5 degrees with 14, and Kampala's outlines become staircases (13.7 vertices per building against 5.9). Its 45-degree
mode squares those shapes correctly, so we run that and then replace each 45-degree edge by the two right-angled
edges (of the two possible corners, the one whose polygon overlaps the input best): `square_diagonals`.

Measured on the Kampala z20 labels (rasterize -> features): about 4 ms per polygon on one core, every corner a
multiple of 45 degrees, L-shapes kept; see docs/recipe-buildings.md.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import replace

import numpy as np

from robosat_effnet.extras import require_footprints as require

log = logging.getLogger("robosat_effnet")

CHUNK = 500  # polygons per call of the regulariser: a progress step, and the memory of one GeoDataFrame


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone holding a lon/lat point (326zz north, 327zz south)."""
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def regularize_polygons(
    geometries: list | np.ndarray,
    tolerance: float = 0.3,
    diagonals: bool = True,
    circles: bool = True,
    workers: int = 1,
    progress: bool = False,
) -> list[list]:
    """Regularise lon/lat (EPSG:4326) polygons; returns, for each input, the lon/lat polygon(s) it became.

    `tolerance` (metres on the ground) is the simplification tolerance before the edges are snapped; edges
    closer than twice it and nearly parallel merge into one. `diagonals` allows 45-degree edges; `circles` keeps
    near-circular outlines round. An input the regulariser drops or cannot square comes back unchanged.
    `progress` shows a tqdm bar (polygons are regularised in chunks of CHUNK).
    """
    import shapely

    geopandas, buildingregulariser = require("--regularize")
    geometries = np.asarray(geometries, dtype=object)
    result: list[list] = [[g] for g in geometries]
    if not len(geometries):
        return result
    centroids = shapely.get_coordinates(shapely.centroid(geometries))
    zones = np.array([utm_epsg(lon, lat) for lon, lat in centroids])
    chunks = [(int(epsg), part) for epsg in np.unique(zones)
              for part in np.array_split(np.flatnonzero(zones == epsg), -(-int((zones == epsg).sum()) // CHUNK))]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(geometries), desc="regularize", unit="polygon")
    for epsg, chosen in chunks:
        frame = geopandas.GeoDataFrame({"item": chosen}, geometry=list(geometries[chosen]), crs="EPSG:4326")
        metric = frame.to_crs(epsg=int(epsg))
        with warnings.catch_warnings(record=True) as caught:  # "low IoU, returning original" and the like
            warnings.simplefilter("always")
            squared = buildingregulariser.regularize_geodataframe(
                metric, simplify_tolerance=tolerance, parallel_threshold=2 * tolerance, allow_45_degree=True,
                allow_circles=circles, num_cores=max(1, workers), include_metadata=True)
        if caught:
            log.debug("buildingregulariser: %d warnings, e.g. %s", len(caught), caught[0].message)
        if not diagonals:
            originals = dict(zip(metric["item"].tolist(), metric.geometry.values, strict=True))
            squared["geometry"] = [square_diagonals(g, originals[int(i)], a) for g, i, a in
                                   zip(squared.geometry.values, squared["item"], squared["main_direction"],
                                       strict=True)]
        squared = squared.to_crs("EPSG:4326")
        pieces: dict[int, list] = {}
        for item, geometry in zip(squared["item"].tolist(), squared.geometry.values, strict=True):
            if geometry is not None and not geometry.is_empty:
                pieces.setdefault(int(item), []).extend(shapely.get_parts(geometry).tolist())
        for item, parts in pieces.items():
            result[item] = parts
        if bar is not None:
            bar.update(len(chosen))
    if bar is not None:
        bar.close()
    return result


def square_diagonals(polygon, original, direction: float, angle_tolerance: float = 2.0):
    """Replace every edge of `polygon` at 45 degrees to `direction` (degrees, the main axis) by two right-angled
    edges through one of the two corners of its box on that axis: the one whose polygon overlaps `original` most.

    Circles (no edge near 0/45/90 degrees) and polygons without diagonals come back unchanged.
    """
    import shapely
    from shapely import affinity

    if polygon is None or polygon.geom_type != "Polygon" or polygon.is_empty:
        return polygon
    # The grid's exact orientation from the edges themselves (length-weighted mean of their angles mod 45),
    # of its two axes mod 90 the one nearest the regulariser's main direction.
    xy = np.array(polygon.exterior.coords)
    d = np.diff(xy, axis=0)
    eight = 8 * np.arctan2(d[:, 1], d[:, 0])
    lengths = np.hypot(d[:, 0], d[:, 1])
    grid = np.degrees(np.arctan2((lengths * np.sin(eight)).sum(), (lengths * np.cos(eight)).sum())) / 8
    direction = min((grid, grid + 45), key=lambda a: abs(((a - direction) + 45) % 90 - 45))
    centre = polygon.centroid
    flat = affinity.rotate(polygon, -direction, origin=centre)  # main axes along x and y
    reference = shapely.make_valid(affinity.rotate(original, -direction, origin=centre))
    rings = [np.array(flat.exterior.coords)[:-1]] + [np.array(r.coords)[:-1] for r in flat.interiors]
    edges = np.concatenate([np.roll(r, -1, 0) - r for r in rings])
    angles = np.degrees(np.arctan2(edges[:, 1], edges[:, 0])) % 45
    if not np.all(np.minimum(angles, 45 - angles) < angle_tolerance):
        return polygon  # edges off the 45-degree grid: a circle, left round

    def build(rings_):
        return shapely.Polygon(rings_[0], rings_[1:]).buffer(0)

    def overlap(candidate):
        return candidate.intersection(reference).area / candidate.union(reference).area if candidate.area else 0.0

    for r in range(len(rings)):
        i = 0
        while i < len(rings[r]):
            p, q = rings[r][i], rings[r][(i + 1) % len(rings[r])]
            if abs((np.degrees(np.arctan2(*(q - p)[::-1])) % 90) - 45) < angle_tolerance:
                options = []
                for corner in ((q[0], p[1]), (p[0], q[1])):
                    ring = np.insert(rings[r], i + 1, corner, axis=0)
                    candidate = build([ring if k == r else x for k, x in enumerate(rings)])
                    if candidate.geom_type == "Polygon" and candidate.is_valid:
                        options.append((overlap(candidate), ring))
                if options:
                    rings[r] = max(options, key=lambda option: option[0])[1]
                    i += 1
            i += 1
    squared = build(rings)
    if squared.geom_type != "Polygon":
        return polygon
    # Drop the vertices left in the middle of straight edges.
    squared = shapely.simplify(squared, 1e-3 * math.sqrt(squared.area), preserve_topology=True)
    return affinity.rotate(squared, direction, origin=centre)


def regularize_features(features: list, tolerance: float = 0.3, diagonals: bool = True, circles: bool = True,
                        workers: int = 1, progress: bool = False) -> list:
    """`regularize_polygons` over `vectorize.features.Feature`s: same class and score, area_m2 measured again."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    squared = regularize_polygons([f.geometry for f in features], tolerance, diagonals, circles, workers, progress)
    result = []
    for feature, parts in zip(features, squared, strict=True):
        for part in parts:
            result.append(replace(feature, geometry=part, area_m2=abs(geod.geometry_area_perimeter(part)[0])))
    return result


def ground_pixel(pixel_mercator: float, latitude: float) -> float:
    """A web-mercator pixel size (metres) as metres on the ground at `latitude`."""
    return pixel_mercator * math.cos(math.radians(latitude))
