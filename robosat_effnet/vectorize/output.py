"""Where `features` writes: GeoJSON or GeoPackage, chosen by the output's extension.

GeoJSON (`.geojson`, `.json`) is written by `vectorize.features.write_geojson` (RFC 7946, no extra dependency);
GeoPackage (`.gpkg`, what QGIS and JOSM's OpenData plugin open) through geopandas and pyogrio, the footprints
extra. Both are written to a temp name and renamed, and both hold the same properties (`class`, `area_m2`, and
`score` when probabilities were given) on lon/lat (EPSG:4326) polygons.
"""

from __future__ import annotations

import os
from pathlib import Path

from robosat_effnet.errors import ConfigError
from robosat_effnet.io import atomic_path
from robosat_effnet.outputs import claim_output, mark_text, write_error, writing
from robosat_effnet.vectorize.features import Feature, properties, write_geojson


def write_geopackage(path: str | os.PathLike, features: list[Feature], command: str = "features") -> Path:
    """Write features as a GeoPackage (one layer named after the file, EPSG:4326, marked as `command`'s),
    atomically."""
    from robosat_effnet.extras import require_footprints as require

    geopandas, _ = require("a .gpkg output")
    path = Path(path)
    rows = [properties(f) for f in features]
    import numpy as np
    import pandas
    import shapely

    columns = {"class": pandas.Series([r["class"] for r in rows], dtype=str),
               "area_m2": pandas.Series([r["area_m2"] for r in rows], dtype=float)}
    if any("score" in r for r in rows):
        columns["score"] = pandas.Series([r.get("score") for r in rows], dtype=float)
    # The GeoJSON's 8 decimals (about 1 mm), so both formats hold the same vertices.
    geometries = shapely.set_precision(np.array([f.geometry for f in features], dtype=object), 1e-8)
    frame = geopandas.GeoDataFrame(columns, geometry=list(geometries), crs="EPSG:4326")
    from pyogrio.errors import DataLayerError, DataSourceError

    with atomic_path(path) as tmp:
        tmp.unlink()  # GDAL creates the file itself and refuses to open an empty one as a GeoPackage
        try:
            frame.to_file(tmp, driver="GPKG", layer=path.stem, engine="pyogrio",
                          layer_options={"DESCRIPTION": mark_text(command)},
                          geometry_type="Polygon" if len(frame) == 0 else None)
        except (DataLayerError, DataSourceError) as e:
            raise write_error(path, e) from None
    return path


WRITERS = {".geojson": write_geojson, ".json": write_geojson, ".gpkg": write_geopackage}


def output_writer(path: str | os.PathLike):
    """The writer for an output path, by its extension; ConfigError listing the known ones otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITERS:
        raise ConfigError(f"{path}: unknown output format {suffix or '(no extension)'!r}; name the output "
                          f"{' or '.join(sorted(WRITERS))} (GeoJSON or GeoPackage)")
    return WRITERS[suffix]


def check_output(path: str | os.PathLike, command: str = "features") -> None:
    """Before any work: the format is known, its libraries are installed and the folder is writable (or can be made)."""
    path = Path(path)
    if output_writer(path) is write_geopackage:
        from robosat_effnet.extras import require_footprints as require

        require("a .gpkg output")
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; name a file, e.g. {path / 'buildings.geojson'}")
    claim_output(path, command)  # new, or one `command` wrote: never somebody's file


def write_features(path: str | os.PathLike, features: list[Feature], command: str = "features") -> Path:
    """Write features as GeoJSON or GeoPackage by `path`'s extension; a failing disk is one OutputError."""
    writer = output_writer(path)
    with writing(path):
        return writer(path, features, command=command)
