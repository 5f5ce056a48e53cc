"""Polygons from vector files, in lon/lat (EPSG:4326, x = longitude), for `score`, `view` and `conflate`; and the
CRS work on them (an equal-area CRS centred on the data, reprojection).

GeoJSON is read here (its CRS from the legacy "crs" member, else RFC 7946's lon/lat); any other format
(.gpkg, .shp, ...) through geopandas/pyogrio, with the CRS the file declares. Non-polygon features (points,
lines) are left out and counted; a file whose features are all non-polygons is an error, a file with no
features at all is an empty set (a model that found nothing writes one).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robosat_effnet.errors import DatasetError

POLYGONAL = ("Polygon", "MultiPolygon")
GEOJSON = (".geojson", ".json")


@dataclass
class Polygons:
    """The polygons of one file: lon/lat geometries, their feature index in the file and class (or None)."""

    geometries: np.ndarray  # shapely geometries, EPSG:4326
    index: np.ndarray  # feature number in the file, for reports and maps
    classes: np.ndarray | None  # the class property's value per polygon (str), None if no feature has one
    source: Path
    skipped: int = 0  # non-polygon features left out
    properties: list[dict] | None = None  # each polygon's feature properties (for maps and reports)

    def subset(self, keep: np.ndarray) -> Polygons:
        classes = None if self.classes is None else self.classes[keep]
        properties = None if self.properties is None else [self.properties[i] for i in np.arange(len(self.index))[keep]]
        return Polygons(self.geometries[keep], self.index[keep], classes, self.source, self.skipped, properties)


def read_polygons(path: str | os.PathLike, class_property: str = "class") -> Polygons:
    """Read a file's polygons into lon/lat, with each one's `class_property` value when features carry it."""
    import shapely
    from pyproj import CRS

    path = Path(path)
    if path.suffix.lower() in GEOJSON:
        records, crs = _geojson_records(path)
    else:
        records, crs = _ogr_records(path, class_property)
    geometries, index, classes, props, skipped = [], [], [], [], 0
    for n, (geometry, properties) in enumerate(records):
        if geometry is None:
            skipped += 1
            continue
        geometries.append(geometry)
        index.append(n)
        props.append(dict(properties) if isinstance(properties, dict) else {})
        value = properties.get(class_property) if isinstance(properties, dict) else None
        classes.append(None if value is None else str(value))
    if records and not geometries:
        raise DatasetError(f"{path} holds no polygons ({len(records)} features, none a Polygon or MultiPolygon); "
                           "pass building outlines as polygons")
    array = np.array(geometries, dtype=object)
    if len(array):
        from robosat_effnet.data.geojson import check_finite, check_lonlat

        if path.suffix.lower() not in GEOJSON:  # GeoJSON's coordinates were checked as read (polygon_shape)
            check_finite(array, path, index)
        declared = CRS.from_user_input(crs)
        if declared.is_geographic:
            check_lonlat(array, path, declared.to_string())
        array = shapely.make_valid(array, method="structure", keep_collapsed=False)
        array = _to_lonlat(array, crs, path)
    has_classes = any(c is not None for c in classes)
    return Polygons(array, np.array(index, dtype=np.int64),
                    np.array(classes, dtype=object) if has_classes else None, path, skipped, props)


def _geojson_records(path: Path) -> tuple[list, object]:
    from robosat_effnet.data.geojson import geojson_crs, polygon_shape, read_geojson

    data, features = read_geojson(path)  # not JSON, nested too deeply, no features: one line
    records = []
    for n, feature in enumerate(features):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in POLYGONAL:
            records.append((None, None))
            continue
        records.append((polygon_shape(geometry, n, path), feature.get("properties")))  # coordinates checked
    return records, geojson_crs(data, path)


def _ogr_records(path: Path, class_property: str) -> tuple[list, object]:
    import geopandas
    import pyogrio.errors

    try:
        with warnings.catch_warnings():  # shapely's "invalid value" for NaN coordinates: check_finite names them
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = geopandas.read_file(path)
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as e:
        raise DatasetError(f"cannot read {path}: {e}; pass a GeoJSON, GeoPackage or another vector file") from None
    if frame.crs is None and len(frame):
        raise DatasetError(f"{path} declares no CRS; give it one (e.g. ogr2ogr -a_srs EPSG:4326) or convert it "
                           "to GeoJSON in lon/lat")
    values = frame[class_property].tolist() if class_property in frame.columns else [None] * len(frame)
    records = []
    for geometry, value in zip(frame.geometry, values, strict=True):
        polygonal = geometry is not None and geometry.geom_type in POLYGONAL
        value = None if value is None or (isinstance(value, float) and np.isnan(value)) else value
        records.append((geometry, {class_property: value}) if polygonal else (None, None))
    return records, frame.crs


def _to_lonlat(geometries: np.ndarray, crs, path: Path) -> np.ndarray:
    """Reproject to lon/lat (coordinates already checked by `read_polygons`)."""
    import shapely
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    if crs.to_epsg() == 4326:
        return geometries
    lonlat = project(geometries, "EPSG:4326", source=crs)
    if not np.isfinite(shapely.total_bounds(lonlat)).all():
        raise DatasetError(f"{path}'s coordinates do not transform from {crs.to_string()} to lon/lat; check the CRS "
                           "it declares")
    return lonlat


def equal_area_crs(*lonlat: Sequence):
    """A Lambert azimuthal equal-area CRS (WGS84 ellipsoid, metres) centred on lon/lat geometries.

    Equal area keeps every area, hence every IoU, true; centring it on the data keeps shapes nearly true as
    well (the distortion of a few km around the centre is far below a pixel).
    """
    import shapely
    from pyproj import CRS

    parts = [np.asarray(list(g), dtype=object) for g in lonlat if len(g)]
    if parts:
        xmin, ymin, xmax, ymax = shapely.total_bounds(np.concatenate(parts))
        lon, lat = (xmin + xmax) / 2, (ymin + ymax) / 2
    else:
        lon = lat = 0.0
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.8f} +lon_0={lon:.8f} +datum=WGS84 +units=m +no_defs")


def project(geometries: Sequence, crs, source: Any = "EPSG:4326") -> np.ndarray:
    """Geometries from `source` (default lon/lat, x = longitude as GeoJSON has it) into `crs`, as an array."""
    import shapely
    from pyproj import Transformer

    array = np.asarray(list(geometries) if not isinstance(geometries, np.ndarray) else geometries, dtype=object)
    if array.size == 0:
        return array
    transformer = Transformer.from_crs(source, crs, always_xy=True)
    return shapely.transform(array, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
