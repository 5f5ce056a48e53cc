"""Predicted buildings the map does not have yet: `rs-effnet conflate PRED EXISTING OUT`.

    report = conflate_files("buildings.geojson", "region.osm.pbf", "new.osm", overlap=0.3, source="OpenAerialMap")
    keep = overlap_ratios(predicted, existing) <= 0.3      # the test itself, on lon/lat polygon arrays

A predicted polygon is *already mapped* when existing buildings cover more than `overlap` of its area:

    ratio = area(predicted ∩ union of the existing polygons it touches) / area(predicted)

measured in a Lambert azimuthal equal-area CRS centred on the data (`data.vectors.equal_area_crs`), where areas are
true. Intersection over the *predicted* area rather than IoU: a predicted outline inside a larger mapped one (a
wing, a part of a block) is mapped, and one shifted by the imagery's offset against OSM still counts as covered;
a large predicted blob that reaches into one mapped building by a little stays new. The existing buildings
are found with an STRtree, so each predicted polygon is tested against its neighbours only.

PRED and EXISTING are GeoJSON or GeoPackage (any vector file GDAL reads, with its CRS); EXISTING may also be an
OSM extract (.osm, .osm.pbf, read with pyosmium). OUT's extension picks what is written: .osm (for JOSM, see
`vectorize.osm`), .geojson / .json or .gpkg (as `features` writes them, class "building").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robosat_effnet.data.vectors import equal_area_crs, project, read_polygons
from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.outputs import check_separate, writing
from robosat_effnet.vectorize.features import Feature
from robosat_effnet.vectorize.osm import check_source, is_osm, read_osm_buildings, write_josm

DEFAULT_OVERLAP = 0.3
COMMAND = "conflate"
OUTPUTS = (".osm", ".geojson", ".json", ".gpkg")


@dataclass
class ConflateReport:
    """What `conflate_files` did: the new buildings (lon/lat polygons, written to `output`) and the counts."""

    new: np.ndarray
    predicted: int  # polygons read from PRED (MultiPolygons counted by their parts)
    existing: int  # buildings read from EXISTING
    mapped: int  # predicted polygons covered by more than `overlap`
    empty: int  # predicted polygons without area (lines, points after repair): neither new nor mapped
    output: Path


def read_buildings(path: str | os.PathLike) -> np.ndarray:
    """Lon/lat polygons of a file: an OSM extract's buildings, or a vector file's polygons; MultiPolygons are split
    into their parts. One DatasetError line for what cannot be read (`data.vectors.read_polygons`)."""
    import shapely

    geometries = read_osm_buildings(path) if is_osm(path) else read_polygons(path).geometries
    parts = shapely.get_parts(np.asarray(geometries, dtype=object))
    return parts[shapely.get_type_id(parts) == 3] if len(parts) else parts  # 3: Polygon (repairs leave lines)


def overlap_ratios(predicted: np.ndarray, existing: np.ndarray) -> np.ndarray:
    """For each predicted lon/lat polygon, the share of its area that the existing polygons cover (0..1; nan for
    a polygon without area), in an equal-area CRS centred on both sets."""
    import shapely

    crs = equal_area_crs(predicted, existing)
    pred, known = project(predicted, crs), project(existing, crs)
    areas = shapely.area(pred) if len(pred) else np.zeros(0)
    covered = np.zeros(len(pred))
    if len(pred) and len(known):
        hits, neighbours = shapely.STRtree(known).query(pred, predicate="intersects")
        for i in np.unique(hits):
            union = shapely.union_all(known[neighbours[hits == i]])  # overlapping existing ones count once
            covered[i] = shapely.area(shapely.intersection(pred[i], union))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(areas > 0, np.minimum(covered / areas, 1.0), np.nan)


def check_output(out: str | os.PathLike) -> None:
    """Before any work: OUT's format is known and its libraries installed, and OUT is new or conflate's own."""
    from robosat_effnet.outputs import claim_output
    from robosat_effnet.vectorize.output import check_output as check_vector_output

    out = Path(out)
    if out.suffix.lower() not in OUTPUTS:
        raise ConfigError(f"{out}: unknown output format {out.suffix or '(no extension)'!r}; name the output .osm "
                          "(for JOSM), .geojson or .gpkg")
    if out.suffix.lower() == ".osm":
        if out.is_dir():
            raise ConfigError(f"output {out} is a folder; name a file, e.g. {out / 'new-buildings.osm'}")
        claim_output(out, COMMAND)
    else:
        check_vector_output(out, COMMAND)


def conflate_files(pred: str | os.PathLike, existing: str | os.PathLike, out: str | os.PathLike,
                   overlap: float = DEFAULT_OVERLAP, source: str | None = None) -> ConflateReport:
    """Write to `out` the polygons of `pred` that `existing` does not cover by more than `overlap` (see the
    module's docstring); every check (options, output, inputs) comes before anything is written."""
    import shapely

    if not 0 <= overlap <= 1:  # nan fails too
        raise ConfigError(f"overlap {overlap} is not a share of an area; give 0..1 (e.g. {DEFAULT_OVERLAP})")
    check_source(source)
    check_output(out)
    check_separate([out], [pred, existing])
    predicted, known = read_buildings(pred), read_buildings(existing)
    if not len(predicted):
        raise DatasetError(f"{pred} holds no polygons, so there is nothing to conflate; pass the outlines "
                           "`rs-effnet features` wrote (GeoJSON or GeoPackage)")
    ratios = overlap_ratios(predicted, known)
    new = predicted[ratios <= overlap]  # nan (no area) is neither new nor mapped
    out = Path(out)
    if out.suffix.lower() == ".osm":
        with writing(out):
            write_josm(out, new, source=source, command=COMMAND)
    else:
        from robosat_effnet.vectorize.output import write_features

        areas = shapely.area(project(new, equal_area_crs(new))) if len(new) else []
        write_features(out, [Feature(g, "building", float(a)) for g, a in zip(new, areas, strict=True)],
                       command=COMMAND)
    return ConflateReport(new, len(predicted), len(known), int(np.sum(ratios > overlap)),
                          int(np.sum(np.isnan(ratios))), out)
