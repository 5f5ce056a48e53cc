"""Regularised footprints, GeoPackage output and `features` bad input, on hand-made shapes.

Shapes are drawn in metres (UTM 36N, Kampala) and checked there: angles and areas by their definition, not by the
code under test. Lon/lat goes through pyproj both ways.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import mercantile
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer
from shapely import affinity

from robosat_effnet.cli import main
from robosat_effnet.errors import MissingDependencyError
from robosat_effnet.prepare.rasterize import rasterize_geojson
from robosat_effnet.vectorize.footprints import regularize_polygons, utm_epsg

pytest.importorskip("buildingregulariser")

UTM = "EPSG:32636"
E0, N0 = 453_000.0, 38_400.0  # near Kampala (32.58 E, 0.35 N)
TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)


def lonlat(polygon):
    return shapely.transform(polygon, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0] + E0, xy[:, 1] + N0)))


def metres(polygon):
    return shapely.transform(polygon, lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])) - [E0, N0])


def noisy(polygon, sigma: float = 0.05, seed: int = 0):
    """The outline resampled every 25 cm with Gaussian noise of `sigma` metres on every point."""
    points = np.array(shapely.segmentize(polygon.exterior, 0.25).coords)[:-1]
    return shapely.Polygon(points + np.random.default_rng(seed).normal(0, sigma, points.shape))


def corner_angles(polygon) -> np.ndarray:
    """Turning angle (degrees) at every vertex: 90 at a right-angled corner, 45 at a chamfer, ~0 on an arc."""
    c = np.array(polygon.exterior.coords)[:-1]
    a, b = c - np.roll(c, 1, 0), np.roll(c, -1, 0) - c
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def iou(a, b) -> float:
    return a.intersection(b).area / a.union(b).area


def squared(shape, seed: int, **kwargs):
    pieces = regularize_polygons([lonlat(noisy(shape, seed=seed))], 0.3, **kwargs)[0]
    assert len(pieces) == 1
    return metres(pieces[0])


RECTANGLE = affinity.rotate(shapely.box(0, 0, 12, 8), 27, origin=(0, 0))
L_SHAPE = affinity.rotate(shapely.Polygon([(0, 0), (10, 0), (10, 4), (4, 4), (4, 10), (0, 10)]), 15, origin=(0, 0))
CHAMFERED = affinity.rotate(shapely.Polygon([(0, 0), (16, 0), (16, 6), (12, 10), (0, 10)]), 10, origin=(0, 0))


@pytest.mark.parametrize("diagonals", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotated_noisy_rectangle_becomes_a_rectangle(seed, diagonals):
    got = squared(RECTANGLE, seed, diagonals=diagonals)
    assert len(got.exterior.coords) - 1 == 4
    assert np.abs(corner_angles(got) - 90).max() < 0.5
    assert got.area == pytest.approx(RECTANGLE.area, rel=0.03)
    assert iou(got, RECTANGLE) > 0.95
    # The long side keeps the building's own orientation (27 degrees), not the grid's.
    x, y = np.array(got.exterior.coords).T
    lengths = np.hypot(np.diff(x), np.diff(y))
    k = int(np.argmax(lengths))
    assert np.degrees(np.arctan2(y[k + 1] - y[k], x[k + 1] - x[k])) % 180 == pytest.approx(27, abs=1.5)
    # The noisy input has hundreds of points and no right angle.
    assert len(noisy(RECTANGLE, seed=seed).exterior.coords) > 150


@pytest.mark.parametrize("seed", [0, 1])
def test_l_shape_stays_an_l(seed):
    got = squared(L_SHAPE, seed)
    assert len(got.exterior.coords) - 1 == 6
    assert np.abs(corner_angles(got) - 90).max() < 0.5
    assert got.area == pytest.approx(L_SHAPE.area, rel=0.04)
    assert iou(got, L_SHAPE) > 0.95
    assert iou(got, L_SHAPE.convex_hull) < 0.85  # not squared into its bounding rectangle


def test_near_circle_stays_round():
    circle = shapely.Point(0, 0).buffer(6, quad_segs=32)
    got = squared(circle, 0)
    assert len(got.exterior.coords) > 32 and corner_angles(got).max() < 10  # a smooth ring, no corner
    assert iou(got, circle) > 0.97
    off = regularize_polygons([lonlat(noisy(circle))], 0.3, circles=False)[0][0]
    assert corner_angles(metres(off)).max() > 40  # without circle detection it is squared


def test_45_degree_edges_are_optional():
    with_diagonals, right_angles = squared(CHAMFERED, 0), squared(CHAMFERED, 0, diagonals=False)
    assert sorted(np.round(corner_angles(with_diagonals))) == [45, 45, 90, 90, 90]
    assert len(right_angles.exterior.coords) - 1 == 4 and np.abs(corner_angles(right_angles) - 90).max() < 0.5
    assert iou(with_diagonals, CHAMFERED) > 0.95 and iou(right_angles, CHAMFERED) > 0.9


def test_utm_zone_by_definition():
    assert utm_epsg(32.58, 0.35) == 32636 and utm_epsg(-0.1, 51.5) == 32630 and utm_epsg(121.0, -13.5) == 32751
    assert utm_epsg(180.0, 10.0) == 32660 and utm_epsg(-180.0, -10.0) == 32701


# --- the command: rasterize a rotated building into tiles, then features --regularize / .gpkg ---------------

ZOOM = 21  # 7.5 cm pixels at Kampala


def dataset_toml(tmp_path: Path, classes: list[str]) -> Path:
    path = tmp_path / f"dataset-{len(classes)}.toml"
    colors = ["denim", "orange", "red"][: len(classes)]
    path.write_text(f'[common]\ndataset = "d"\nclasses = {json.dumps(classes)}\ncolors = {json.dumps(colors)}\n')
    return path


def building_masks(tmp_path: Path, buildings: list, touching_px: int = 0) -> Path:
    """`buildings` (metre polygons around E0, N0) rasterized into the 2 x 2 z21 tiles around them."""
    geojson = tmp_path / "buildings.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(lonlat(b))} for b in buildings]}))
    lon, lat = TO_LONLAT.transform(E0, N0)
    t = mercantile.tile(lon, lat, ZOOM)
    tiles = {mercantile.Tile(t.x + dx, t.y + dy, ZOOM): (64, 64) for dx in (-1, 0) for dy in (-1, 0)}
    classes = ["background", "building", "touching"] if touching_px else ["background", "building"]
    rasterize_geojson(geojson, tiles, tmp_path / "masks", classes, ["denim", "orange", "red"][: len(classes)],
                      progress=False, touching_px=touching_px)
    return tmp_path / "masks"


def features(*args) -> list:
    result = CliRunner().invoke(main, ["features", *map(str, args), "-q"])
    assert result.exit_code == 0, result.output
    return result


def read_geojson(path: Path) -> list:
    return json.loads(Path(path).read_text())["features"]


def building_near_corner():
    """A 3.5 x 2.5 m building rotated 20 degrees, across the common corner of the four z21 tiles."""
    lon, lat = TO_LONLAT.transform(E0, N0)
    west, south, east, north = mercantile.bounds(mercantile.tile(lon, lat, ZOOM))
    e, n = TO_UTM.transform(west, north)
    box = affinity.rotate(shapely.box(-1.75, -1.25, 1.75, 1.25), 20)
    return affinity.translate(box, e - E0, n - N0)


def test_features_regularize_and_geopackage_round_trip(tmp_path):
    pyogrio = pytest.importorskip("pyogrio")
    building = building_near_corner()
    masks = building_masks(tmp_path, [building])
    features(masks, tmp_path / "plain.geojson", "--class", "1")
    features(masks, tmp_path / "square.geojson", "--class", "1", "--regularize")
    features(masks, tmp_path / "square.gpkg", "--class", "1", "--regularize")
    (plain,), (square,) = read_geojson(tmp_path / "plain.geojson"), read_geojson(tmp_path / "square.geojson")
    before, after = (metres(shapely.geometry.shape(f["geometry"])) for f in (plain, square))
    assert np.abs(corner_angles(before) - 90).max() > 5  # a simplified pixel outline: no right angles
    assert len(after.exterior.coords) - 1 == 4 and np.abs(corner_angles(after) - 90).max() < 0.5
    assert iou(after, building) > 0.9 and iou(after, building) >= iou(before, building) - 0.02
    assert square["properties"]["area_m2"] == pytest.approx(after.area, rel=0.01)  # area of the new outline
    # The GeoPackage holds the same polygons and properties.
    frame = pyogrio.read_dataframe(tmp_path / "square.gpkg")
    assert frame.crs.to_epsg() == 4326 and list(frame["class"]) == ["1"]
    assert frame["area_m2"][0] == pytest.approx(square["properties"]["area_m2"])
    assert shapely.normalize(frame.geometry[0]).equals_exact(
        shapely.normalize(shapely.geometry.shape(square["geometry"])), 1e-12)


def test_score_is_the_mean_probability_inside(tmp_path):
    from robosat_effnet.data.probabilities import write_probability
    from robosat_effnet.io import read_label
    from robosat_effnet.tiles import tile_files

    masks = building_masks(tmp_path, [building_near_corner()])
    total, count = 0.0, 0
    for tile, path in tile_files(masks).items():  # building pixels: 0.9 on the western tiles, 0.4 on the eastern
        building = read_label(path) == 1
        level = 230 if tile.x % 2 == 0 else 102
        write_probability(tmp_path / "probs" / str(tile.z) / str(tile.x) / f"{tile.y}.png",
                          np.where(building, level, 26).astype(np.uint8))
        total, count = total + building.sum() * level / 255, count + building.sum()
    # Without simplification the polygon is the mask's own outline: the mean over its pixels, by hand.
    features(masks, tmp_path / "scored.geojson", "--class", "1", "--probs", tmp_path / "probs", "--simplify", "0")
    (scored,) = read_geojson(tmp_path / "scored.geojson")
    assert scored["properties"]["score"] == pytest.approx(total / count, abs=1e-4)
    assert 0.45 < total / count < 0.85  # both halves count
    features(masks, tmp_path / "p.geojson", "--class", "1")
    assert "score" not in read_geojson(tmp_path / "p.geojson")[0]["properties"]


def test_min_score_drops_the_outlines_the_model_doubts(tmp_path):
    from robosat_effnet.data.probabilities import write_probability
    from robosat_effnet.io import read_label
    from robosat_effnet.tiles import tile_files

    corner = building_near_corner()
    sure = affinity.translate(corner, xoff=-6, yoff=6)  # inside the north-western tile
    doubtful = affinity.translate(corner, xoff=6, yoff=-6)  # inside the south-eastern one
    masks = building_masks(tmp_path, [sure, doubtful])
    west, north = min(t.x for t in tile_files(masks)), min(t.y for t in tile_files(masks))
    for tile, path in tile_files(masks).items():
        building = read_label(path) == 1
        near_sure = (tile.x, tile.y) == (west, north)
        write_probability(tmp_path / "probs" / str(tile.z) / str(tile.x) / f"{tile.y}.png",
                          np.where(building, 230 if near_sure else 140, 10).astype(np.uint8))
    features(masks, tmp_path / "all.geojson", "--class", "1", "--probs", tmp_path / "probs")
    scores = sorted(f["properties"]["score"] for f in read_geojson(tmp_path / "all.geojson"))
    assert 0.5 < scores[0] <= 140 / 255 < 0.7 < scores[1] <= 230 / 255  # edge pixels pull each mean down a little
    result = CliRunner().invoke(main, ["features", str(masks), str(tmp_path / "kept.geojson"), "--class", "1",
                                       "--probs", str(tmp_path / "probs"), "--min-score", "0.7", "-q"])
    assert result.exit_code == 0 and "1 scored below 0.7 dropped" in result.output, result.output
    (kept,) = read_geojson(tmp_path / "kept.geojson")
    assert kept["properties"]["score"] == scores[1]
    result = CliRunner().invoke(main, ["features", str(masks), str(tmp_path / "x.geojson"), "--min-score", "0.5"])
    assert result.exit_code == 2 and "--probs" in result.output  # a score needs the probabilities

def run_bad(*args) -> str:
    result = CliRunner().invoke(main, ["features", *map(str, args), "-q"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    return result.output


def test_bad_output_and_input(tmp_path, monkeypatch):
    masks = building_masks(tmp_path, [building_near_corner()])
    assert "unknown output format '.shp'" in run_bad(masks, tmp_path / "out.shp", "--class", "1")
    (tmp_path / "a-file").write_text("x")
    assert "a-file" in run_bad(masks, tmp_path / "a-file" / "out.geojson", "--class", "1")
    (tmp_path / "empty" / "20").mkdir(parents=True)
    assert "no mask tiles" in run_bad(tmp_path / "empty", tmp_path / "out.geojson", "--class", "1")
    # A disk that fails while the file is written (full, read-only): one line, no file and no temp file left.
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith((".geojson", ".gpkg")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    for name in ("out.geojson", "out.gpkg"):
        assert "disk is full" in run_bad(masks, tmp_path / name, "--class", "1")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "buildings.geojson", "empty", "masks"]


def test_missing_extra_names_the_pip_install(tmp_path, monkeypatch):
    masks = building_masks(tmp_path, [building_near_corner()])
    monkeypatch.setitem(sys.modules, "geopandas", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install robosat_effnet\[footprints\]"):
        regularize_polygons([lonlat(RECTANGLE)])
    for args in (["out.gpkg"], ["out.geojson", "--regularize"]):
        assert "pip install robosat_effnet[footprints]" in run_bad(masks, tmp_path / args[0], *args[1:], "--class", "1")
    assert not (tmp_path / "out.gpkg").exists() and not (tmp_path / "out.geojson").exists()
