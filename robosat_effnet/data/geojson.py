"""Reading GeoJSON (for `rasterize`, `score`, `view`): the features of a file, the CRS it declares, and polygons
whose coordinates are checked before shapely sees them.

Everything wrong with a file is one DatasetError naming it: not JSON (NaN and Infinity are not JSON numbers),
nested deeper than any GeoJSON (a recursion bomb), a coordinate that is not a finite number or lies beyond any
place on Earth in any CRS, or lon/lat coordinates outside -180..180 / -90..90 (a projected file without its
"crs" member). Numbers in messages are short (`1e+300`), whatever the file holds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from robosat_effnet.errors import DatasetError
from robosat_effnet.text import read_text

POLYGONAL = ("Polygon", "MultiPolygon")
MAX_DEPTH = 64  # a FeatureCollection's polygon coordinates sit 8 levels deep; properties rarely nest at all
MAX_COORDINATE = 1e10  # metres, feet or degrees: no CRS puts a place on Earth this far from its origin
_NESTING = {"Polygon": 3, "MultiPolygon": 4}  # list levels above the numbers of a position


def read_geojson(path: str | os.PathLike) -> tuple[dict, list]:
    """A GeoJSON file and its features: a FeatureCollection's, a single Feature, or a bare geometry as one feature.

    One DatasetError line for a file that cannot be read, is not JSON, nests too deeply or is not GeoJSON.
    """
    path = Path(path)
    try:
        data = json.loads(read_text(path), parse_constant=_not_a_number)  # with or without a byte-order mark
    except _NotANumber as e:
        raise DatasetError(f"{path} holds {e}, which is not a JSON number (RFC 8259); write every coordinate as "
                           "a finite number") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, and ints beyond Python's digit limit
        raise DatasetError(f"cannot read GeoJSON {path}: {str(e)[:200]}; pass a GeoJSON FeatureCollection") from None
    except RecursionError:
        raise DatasetError(f"{path} nests its JSON too deeply to be GeoJSON; pass a GeoJSON FeatureCollection") \
            from None
    depth = _depth(data)
    if depth > MAX_DEPTH:
        raise DatasetError(f"{path} nests its JSON {depth} levels deep, deeper than GeoJSON needs (at most "
                           f"{MAX_DEPTH} here); pass a GeoJSON FeatureCollection")
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        if not isinstance(data.get("features"), list):  # RFC 7946 3.3: a list, empty when nothing was found
            raise DatasetError(f"{path} is a FeatureCollection without a features list (RFC 7946 needs one, "
                               "even if empty); is the file complete?")
        features = data["features"]
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    elif isinstance(data, dict) and "coordinates" in data:
        features = [{"type": "Feature", "geometry": data, "properties": {}}]
    else:
        raise DatasetError(f"{path} is not GeoJSON (no FeatureCollection, Feature or geometry); pass a GeoJSON file")
    return data, features


class _NotANumber(ValueError):
    """NaN, Infinity or -Infinity in a file: Python's json reads them, the JSON standard has no such numbers."""


def _not_a_number(name: str) -> float:
    raise _NotANumber(name)


def _depth(data: Any) -> int:
    """How many levels of lists and objects `data` nests (without recursion: any depth is measured)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def geojson_crs(data: dict, path: Path):
    """The CRS a GeoJSON declares in its legacy `crs` member, or EPSG:4326 (RFC 7946's only CRS)."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    crs = data.get("crs")
    if not crs:
        return CRS.from_epsg(4326)
    props = crs.get("properties", {}) if isinstance(crs, dict) else {}
    name = props.get("name") or (f"EPSG:{props['code']}" if "code" in props else None)
    try:
        return CRS.from_user_input(name)
    except (CRSError, TypeError):
        raise DatasetError(
            f"{path} declares a CRS this program cannot read ({json.dumps(crs)[:200]}); "
            'use {"type": "name", "properties": {"name": "EPSG:<code>"}} or reproject it to EPSG:4326'
        ) from None


def polygon_shape(geometry: dict, n: int, path: Path):
    """The shapely geometry of feature `n`'s Polygon or MultiPolygon, its coordinates checked first."""
    import shapely

    problem = coordinate_problem(geometry)
    if problem is not None:
        raise DatasetError(f"feature {n} of {path} has a {problem}; fix or remove it")
    try:
        return shapely.geometry.shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.ShapelyError) as e:
        raise DatasetError(f"feature {n} of {path} has a broken {geometry.get('type')} geometry ({e}); "
                           "fix or remove it") from None


def coordinate_problem(geometry: dict) -> str | None:
    """What is wrong with a Polygon's or MultiPolygon's coordinates, in a few words, or None."""
    kind = geometry.get("type")
    level = [geometry.get("coordinates")]
    for _ in range(_NESTING[kind]):
        if not all(isinstance(item, list) for item in level):
            return f"broken {kind} geometry (its coordinates are not lists nested {_NESTING[kind]} deep)"
        level = [child for item in level for child in item]
    for value in level:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"broken {kind} geometry (a coordinate is a {type(value).__name__}, not a number)"
        if isinstance(value, float) and not math.isfinite(value):
            return f"coordinate that is not a finite number ({value})"
        if abs(value) > MAX_COORDINATE:
            return f"coordinate {short(value)}, beyond any place on Earth in any CRS"
    return None


def check_finite(geometries, path: Path, numbers=None) -> None:
    """DatasetError naming the first of `geometries` (shapely, read from any vector format) with a coordinate
    that is not a finite number within MAX_COORDINATE; `numbers`: each geometry's feature number in the file."""
    import numpy as np
    import shapely

    coords, index = shapely.get_coordinates(geometries, return_index=True)
    bad = ~(np.abs(coords) <= MAX_COORDINATE)  # nan compares False: flagged too
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        value = coords[row][bad[row]][0]
        what = f"that is not a finite number ({value})" if not np.isfinite(value) else \
            f"{short(value)}, beyond any place on Earth in any CRS"
        feature = int(index[row]) if numbers is None else int(numbers[int(index[row])])
        raise DatasetError(f"feature {feature} of {path} has a coordinate {what}; fix or remove it")


def check_lonlat(geometries, path: Path, crs_hint: str) -> None:
    """DatasetError when geometries read as lon/lat reach beyond -180..180 / -90..90: a projected file whose CRS
    is not declared. `crs_hint` names the CRS they were read in."""
    import shapely

    xmin, ymin, xmax, ymax = shapely.total_bounds(geometries)
    if max(abs(xmin), abs(xmax)) > 180 or max(abs(ymin), abs(ymax)) > 90:
        raise DatasetError(
            f"{path} is read as lon/lat ({crs_hint}) but its coordinates reach ({short(xmin)}, {short(ymin)})..("
            f"{short(xmax)}, {short(ymax)}), which looks projected; reproject it to EPSG:4326 or declare its CRS "
            '(a GeoJSON "crs" member)')


def short(value: float) -> str:
    """A number in at most a dozen characters: 452000, 3.8e+06, 1e+300."""
    try:
        return f"{float(value):.6g}"
    except OverflowError:
        return "a number beyond 1e308"
