"""`rs-effnet conflate`: predicted outlines minus the buildings already mapped, for JOSM (.osm) or a GIS.

The real case: the published outlines of a buildings-oam region as the prediction, the same outlines minus a known
subset as the map; conflate must return exactly that subset, and its .osm file must load in pyosmium as closed
building polygons with the tags given.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from conftest import one_line_error
from robosat_effnet.cli import main
from robosat_effnet.outputs.temp import is_temp
from robosat_effnet.vectorize.conflate import overlap_ratios

osmium = pytest.importorskip("osmium")
DATA = Path(__file__).parents[1] / ".." / "shared" / "data" / "buildings-oam"
REGIONS = ["kampala", "zanzibar", "philippines"]
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared buildings-oam data not available")


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])



def collection(features: list[dict], **extra) -> dict:
    return {"type": "FeatureCollection", **extra, "features": features}


def split_labels(region: str, folder: Path, every: int = 7) -> tuple[Path, Path, list]:
    """(predicted = the published outlines, existing = them minus every `every`-th, that subset's geometries)."""
    data = json.loads((DATA / region / "labels.geojson").read_text())
    features = data["features"]
    subset = [f for i, f in enumerate(features) if i % every == 3]
    existing = [f for i, f in enumerate(features) if i % every != 3]
    (folder / "existing.geojson").write_text(json.dumps(collection(existing)))
    return DATA / region / "labels.geojson", folder / "existing.geojson", [shapely.geometry.shape(f["geometry"])
                                                                          for f in subset]


def osm_extract(path: Path, polygons) -> Path:
    """Polygons as an OSM extract (positive ids, as a download has them), written by osmium itself."""
    ids = iter(range(1, 10**7))
    nodes, ways = [], []
    for polygon in polygons:
        refs = []
        for lon, lat in list(polygon.exterior.coords)[:-1]:
            refs.append(next(ids))
            nodes.append(osmium.osm.mutable.Node(id=refs[-1], location=(lon, lat), version=1))
        ways.append(osmium.osm.mutable.Way(id=next(ids), nodes=[*refs, refs[0]], tags={"building": "house"},
                                           version=1))
    writer = osmium.SimpleWriter(str(path))
    try:
        for obj in nodes:
            writer.add_node(obj)
        for obj in ways:
            writer.add_way(obj)
    finally:
        writer.close()
    return path


def read_vector(path: Path) -> list:
    if path.suffix == ".gpkg":
        import geopandas

        return list(geopandas.read_file(path).geometry)
    return [shapely.geometry.shape(f["geometry"]) for f in json.loads(path.read_text())["features"]]


def read_josm(path: Path, tmp: Path) -> tuple[list, dict]:
    """(polygons osmium's area factory builds, one per closed way, with their tags; what osmium read as is).

    pyosmium keeps no locations for negative ids (JOSM's new objects), so the file is read as is first (ids,
    references, tags), then renumbered positive, as the OSM API does on upload, and assembled into areas."""
    read = {"nodes": {}, "ways": []}
    for obj in osmium.FileProcessor(str(path)):
        if obj.is_node():
            read["nodes"][obj.id] = (obj.location.lon, obj.location.lat)
        elif obj.is_way():
            read["ways"].append((obj.id, [n.ref for n in obj.nodes], dict(obj.tags)))
    positive = tmp / "uploaded.osm"
    writer = osmium.SimpleWriter(str(positive))
    try:
        for node_id, (lon, lat) in sorted(read["nodes"].items(), reverse=True):
            writer.add_node(osmium.osm.mutable.Node(id=-node_id, location=(lon, lat), version=1))
        for way_id, refs, tags in sorted(read["ways"], reverse=True):
            writer.add_way(osmium.osm.mutable.Way(id=-way_id, nodes=[-r for r in refs], tags=tags, version=1))
    finally:
        writer.close()
    factory = osmium.geom.WKBFactory()
    areas = [(shapely.from_wkb(factory.create_multipolygon(a)), dict(a.tags))
             for a in osmium.FileProcessor(str(positive)).with_areas() if a.is_area()]
    return areas, read


def same_outlines(found: list, expected: list, least: float = 0.999) -> bool:
    """Whether two lists of lon/lat polygons are the same polygons (each matched with IoU >= `least`)."""
    if len(found) != len(expected):
        return False
    tree = shapely.STRtree(expected)
    for polygon in found:
        candidates = [expected[i] for i in tree.query(polygon, predicate="intersects")]
        iou = max((polygon.intersection(c).area / polygon.union(c).area for c in candidates), default=0)
        if iou < least:
            return False
    return True


@needs_data
@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("out_name", ["new.osm", "new.geojson", "new.gpkg"])
def test_conflate_returns_exactly_the_buildings_the_map_lacks(region, out_name, tmp_path):
    predicted, existing, subset = split_labels(region, tmp_path)
    out = tmp_path / out_name
    result = invoke("conflate", predicted, existing, out, "--source", "OpenAerialMap")
    total = len(json.loads(predicted.read_text())["features"])
    assert result.exit_code == 0 and f"wrote {len(subset)} new buildings" in result.output, result.output
    assert f"{total - len(subset)} of {total} predicted are already mapped" in result.output
    if out.suffix == ".osm":
        found = [polygon for polygon, _ in read_josm(out, tmp_path)[0]]
    else:
        found = read_vector(out)
    # OSM keeps 7 decimals of a degree (1 cm): a 3 m shed's IoU with itself rounded is still above 0.99
    assert len(subset) > 10 and same_outlines(found, subset, 0.99 if out.suffix == ".osm" else 0.999)


@needs_data
def test_an_osm_extract_is_the_map_too(tmp_path):
    predicted, existing, subset = split_labels("kampala", tmp_path)
    # One published outline crosses itself: osmium (rightly) builds no area of it, so the map lacks it as well.
    unbuildable = [shapely.make_valid(p) for p in read_vector(existing) if not p.is_valid]
    assert len(unbuildable) == 1
    for name in ("existing.osm", "existing.osm.pbf"):
        extract = osm_extract(tmp_path / name, read_vector(existing))
        out = tmp_path / f"new-{name}.geojson"
        result = invoke("conflate", predicted, extract, out)
        assert result.exit_code == 0 and f"wrote {len(subset) + 1} new buildings" in result.output, result.output
        assert f"by the {len(read_vector(existing)) - 1} buildings of" in result.output
        assert same_outlines(read_vector(out), subset + unbuildable)


@needs_data
def test_the_josm_file_is_new_closed_buildings_with_the_tags_given(tmp_path):
    predicted, existing, subset = split_labels("zanzibar", tmp_path)
    out = tmp_path / "new.osm"
    assert invoke("conflate", predicted, existing, out, "--source", "OpenAerialMap 2019 & co <drone>").exit_code == 0
    root = ET.parse(out).getroot()
    assert root.tag == "osm" and root.get("version") == "0.6" and root.get("upload") == "false"
    areas, read = read_josm(out, tmp_path)
    assert len(read["ways"]) == len(subset) == len(areas)
    assert all(node_id < 0 for node_id in read["nodes"]) and all(way_id < 0 for way_id, _, _ in read["ways"])
    used = set()
    for _, refs, tags in read["ways"]:
        assert refs[0] == refs[-1] and len(set(refs)) == len(refs) - 1 >= 3  # closed, each node once
        assert set(refs) <= set(read["nodes"]) and not (set(refs) & used)  # shared within the way only
        used |= set(refs)
        assert tags == {"building": "yes", "source": "OpenAerialMap 2019 & co <drone>"}
    assert used == set(read["nodes"])  # no stray nodes
    for polygon, tags in areas:
        assert polygon.is_valid and polygon.geom_type == "MultiPolygon" and tags["building"] == "yes"
    assert same_outlines([p.geoms[0] for p, _ in areas], subset, 0.99)


def square(x: float, y: float = 0.0, side: float = 1e-4):
    return shapely.box(x, y, x + side, y + side)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_a_building_is_mapped_when_more_than_overlap_of_it_is_covered(overlap, tmp_path):
    # Predicted squares each covered by an existing square shifted along x: 0, 20, 40, ..., 100 % of their area.
    shares = np.linspace(0, 1, 6)
    predicted = [square(i * 1e-3, 0.3) for i in range(len(shares))]
    existing = [square(i * 1e-3 + (1 - s) * 1e-4, 0.3) for i, s in enumerate(shares)]
    ratios = overlap_ratios(np.array(predicted, dtype=object), np.array(existing, dtype=object))
    assert ratios == pytest.approx(shares, abs=1e-3)  # intersection over the predicted polygon's area
    for name, polygons in (("pred", predicted), ("existing", existing)):
        (tmp_path / f"{name}.geojson").write_text(json.dumps(collection(
            [{"type": "Feature", "geometry": shapely.geometry.mapping(p), "properties": {}} for p in polygons])))
    out = tmp_path / "new.geojson"
    result = invoke("conflate", tmp_path / "pred.geojson", tmp_path / "existing.geojson", out, "--overlap", overlap)
    assert result.exit_code == 0, result.output
    kept = [min(range(len(predicted)), key=lambda i: predicted[i].centroid.distance(p.centroid))
            for p in read_vector(out)]
    assert sorted(kept) == [i for i, s in enumerate(shares) if s <= overlap + 1e-9]


def test_a_mapped_building_inside_a_larger_one_and_overlapping_existing_ones_count_once():
    predicted = np.array([square(0, 0, 1e-4), square(1e-3, 0, 1e-4)], dtype=object)
    # the first lies inside a larger mapped building; the second is covered twice over by two existing ones
    existing = np.array([square(-1e-4, -1e-4, 3e-4), square(1e-3, 0, 0.5e-4), square(1e-3, 0, 0.5e-4)], dtype=object)
    assert overlap_ratios(predicted, existing) == pytest.approx([1.0, 0.25], abs=1e-3)


def write_geojson(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path):
    good = write_geojson(tmp_path / "good.geojson", collection(
        [{"type": "Feature", "geometry": shapely.geometry.mapping(square(32.5)), "properties": {}}]))
    empty = write_geojson(tmp_path / "empty.geojson", collection([]))
    points = write_geojson(tmp_path / "points.geojson", collection(
        [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [32.5, 0.3]}, "properties": {}}]))
    bad_crs = write_geojson(tmp_path / "bad-crs.geojson", collection(
        [{"type": "Feature", "geometry": shapely.geometry.mapping(square(32.5)), "properties": {}}],
        crs={"type": "name", "properties": {"name": "EPSG:999999"}}))
    projected = write_geojson(tmp_path / "projected.geojson", collection(
        [{"type": "Feature", "geometry": shapely.geometry.mapping(square(452000, 3e6, 10)), "properties": {}}]))
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"\x00\x01not a pbf at all" * 10)
    theirs = tmp_path / "theirs.osm"
    theirs.write_text("<osm version='0.6'><!-- somebody's edits --></osm>")
    cases = [
        ((empty, good, tmp_path / "a.osm"), "holds no polygons, so there is nothing to conflate"),
        ((points, good, tmp_path / "b.osm"), "holds no polygons"),
        ((bad_crs, good, tmp_path / "c.osm"), "declares a CRS this program cannot read"),
        ((good, bad_crs, tmp_path / "d.geojson"), "declares a CRS this program cannot read"),
        ((projected, good, tmp_path / "e.osm"), "looks projected"),
        ((good, broken, tmp_path / "f.osm"), "cannot read"),
        ((good, good, tmp_path / "g.txt"), "unknown output format '.txt'"),
        ((good, good, tmp_path / "h"), "unknown output format '(no extension)'"),
        ((good, good, theirs), "exists and was not written by rs-effnet conflate"),
        ((good, good, good), "was not written by rs-effnet conflate"),
    ]
    before = theirs.read_text()
    for args, message in cases:
        assert message in one_line_error(invoke("conflate", *args)), args
        if args[2] not in (theirs, good):
            assert not args[2].exists()
    assert theirs.read_text() == before
    for option in (("--overlap", 1.5), ("--overlap", "nan"), ("--overlap", -0.1), ("--source", "a\x00b"),
                   ("--source", "x" * 256), ("--source", "")):
        result = invoke("conflate", good, good, tmp_path / "i.osm", *option)
        assert result.exit_code == 2 and "Traceback" not in result.output, (option, result.output)
    assert not [p for p in tmp_path.iterdir() if is_temp(p.name)]


def test_a_rerun_replaces_its_own_output(tmp_path):
    pred = write_geojson(tmp_path / "pred.geojson", collection(
        [{"type": "Feature", "geometry": shapely.geometry.mapping(square(32.5 + i * 1e-3)), "properties": {}}
         for i in range(3)]))
    existing = write_geojson(tmp_path / "existing.geojson", collection(
        [{"type": "Feature", "geometry": shapely.geometry.mapping(square(32.5)), "properties": {}}]))
    for out in (tmp_path / "new.osm", tmp_path / "new.geojson", tmp_path / "new.gpkg"):
        for overlap in (0.5, 1.0):  # the second run replaces the first's file
            result = invoke("conflate", pred, existing, out, "--overlap", overlap)
            assert result.exit_code == 0, result.output
        assert "wrote 3 new buildings" in result.output  # 1.0: nothing is covered by more than all of it


def test_without_pyosmium_an_osm_extract_is_one_line(tmp_path, monkeypatch):
    import sys

    pred = write_geojson(tmp_path / "pred.geojson", collection(
        [{"type": "Feature", "geometry": shapely.geometry.mapping(square(32.5)), "properties": {}}]))
    extract = tmp_path / "region.osm"
    extract.write_text("<osm version='0.6'></osm>")
    monkeypatch.setitem(sys.modules, "osmium", None)  # import osmium raises ImportError
    message = one_line_error(invoke("conflate", pred, extract, tmp_path / "new.osm"))
    assert "needs pyosmium, which is not installed: pip install 'robosat_effnet[osm]'" in message
    assert not (tmp_path / "new.osm").exists()
