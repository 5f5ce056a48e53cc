"""OpenStreetMap files: the buildings of an extract (.osm, .osm.pbf, read with pyosmium) and new buildings written as
an .osm XML file for JOSM.

    buildings = read_osm_buildings("region.osm.pbf")      # lon/lat shapely polygons of every building=* area
    write_josm("new.osm", polygons, source="OpenAerialMap")

The file JOSM opens holds only new objects: negative ids (JOSM creates them on upload), every node shared by the
ways of its polygon, closed ways tagged building=yes (and source=... when given), a multipolygon relation for a
polygon with holes, and `upload="false"` on the root, so that JOSM refuses to upload the layer as it is: the
outlines are a model's guesses, to be checked against the imagery and merged into a data layer by hand.
"""

from __future__ import annotations

import itertools
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from robosat_effnet.errors import ConfigError, DatasetError, MissingDependencyError
from robosat_effnet.io import atomic_path
from robosat_effnet.outputs import mark_text

OSM_SUFFIXES = (".osm", ".pbf")  # an extract's .osm.pbf ends in .pbf
MAX_TAG_LENGTH = 255  # characters: OSM's limit on a tag value
DECIMALS = 7  # OSM stores coordinates to 1e-7 degrees (about 1 cm)
OSM_EXTRA = "pip install 'robosat_effnet[osm]'"


def is_osm(path: str | os.PathLike) -> bool:
    """Whether a path names an OSM file (.osm or .osm.pbf) by its extension."""
    return Path(path).suffix.lower() in OSM_SUFFIXES


def require_osmium():
    """Import pyosmium, or say in one line which extra to install."""
    try:
        import osmium
    except ImportError:
        raise MissingDependencyError(f"reading an .osm or .osm.pbf file needs pyosmium, which is not installed: "
                                     f"{OSM_EXTRA}") from None
    return osmium


def read_osm_buildings(path: str | os.PathLike) -> np.ndarray:
    """The buildings of an OSM extract as lon/lat shapely (Multi)Polygons: every closed way and multipolygon
    relation tagged building=* (except building=no) that osmium can assemble into an area.

    DatasetError (one line) for a file osmium cannot read.
    """
    import shapely

    osmium = require_osmium()
    path = Path(path)
    factory = osmium.geom.WKBFactory()
    found = []
    try:
        for area in osmium.FileProcessor(str(path)).with_areas(osmium.filter.KeyFilter("building")):
            if not area.is_area() or area.tags.get("building", "no") == "no":
                continue
            try:
                found.append(shapely.from_wkb(factory.create_multipolygon(area), on_invalid="ignore"))
            except RuntimeError:  # a ring osmium cannot close: the mapper's problem, not a building we can use
                continue
    except (RuntimeError, ValueError, OSError) as e:  # osmium's io errors are RuntimeErrors
        raise DatasetError(f"cannot read {path} as OSM data ({str(e).splitlines()[0][:200] if str(e) else e!r}); "
                           "pass an .osm or .osm.pbf extract (e.g. from Geofabrik or JOSM)") from None
    return np.array([g for g in found if g is not None and not g.is_empty], dtype=object)


def check_source(source: str | None) -> None:
    """ConfigError unless a source tag value is printable text of 1 to OSM's 255 characters."""
    if source is None:
        return
    if not source.strip() or len(source) > MAX_TAG_LENGTH or not source.isprintable():
        raise ConfigError(f"source {source[:40]!r} must be 1 to {MAX_TAG_LENGTH} printable characters (OSM's limit "
                         "on a tag value), e.g. \"OpenAerialMap\"")


def write_josm(path: str | os.PathLike, polygons: np.ndarray, source: str | None = None,
               command: str = "conflate") -> Path:
    """Write lon/lat polygons as an .osm XML file for JOSM (see the module's docstring), atomically.

    Polygons whose rings collapse at OSM's precision (fewer than 3 distinct nodes) are left out.
    """
    import shapely

    check_source(source)
    tags = {"building": "yes"} | ({"source": source} if source else {})
    ids = itertools.count(-1, -1)
    nodes, ways, relations = [], [], []
    for polygon in shapely.get_parts(np.asarray(polygons, dtype=object)):
        rings = [_ring(r) for r in (polygon.exterior, *polygon.interiors)]
        if rings[0] is None:
            continue
        rings = [rings[0], *(r for r in rings[1:] if r is not None)]
        members = []
        for ring in rings:
            refs = []
            for lon, lat in ring:
                refs.append(next(ids))
                nodes.append(ET.Element("node", id=str(refs[-1]), lat=f"{lat:.{DECIMALS}f}",
                                        lon=f"{lon:.{DECIMALS}f}"))
            way = ET.Element("way", id=str(next(ids)))
            for ref in [*refs, refs[0]]:  # closed: the last node is the first one again
                ET.SubElement(way, "nd", ref=str(ref))
            ways.append(way)
            members.append(way)
        owner = members[0]
        if len(members) > 1:  # holes: the tags go on a multipolygon relation of outer and inner ways
            owner = ET.Element("relation", id=str(next(ids)))
            for role, way in zip(["outer"] + ["inner"] * (len(members) - 1), members, strict=True):
                ET.SubElement(owner, "member", type="way", ref=way.get("id"), role=role)
            ET.SubElement(owner, "tag", k="type", v="multipolygon")
            relations.append(owner)
        for key, value in tags.items():
            ET.SubElement(owner, "tag", k=key, v=value)
    root = ET.Element("osm", version="0.6", generator="rs-effnet", upload="false")
    root.append(ET.Comment(f" {mark_text(command)} "))  # a rerun knows its own file
    root.extend([*nodes, *ways, *relations])  # OSM order: nodes, then ways, then relations
    ET.indent(root)
    path = Path(path)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    return path


def _ring(ring) -> list[tuple[float, float]] | None:
    """A ring's distinct nodes at OSM's precision, without the closing repeat; None if fewer than 3 remain."""
    points = np.round(np.asarray(ring.coords)[:-1], DECIMALS)
    keep = np.ones(len(points), bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)  # consecutive duplicates merge
    points = points[keep]
    if len(points) > 1 and np.all(points[-1] == points[0]):
        points = points[:-1]
    return [tuple(p) for p in points] if len(points) >= 3 else None
