"""`rs-effnet rasterize`: GeoJSON polygons -> palette label tiles, checked against shapely point-in-polygon."""

from __future__ import annotations

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from PIL import Image
from pyproj import Transformer

from robosat_effnet.cli import main
from robosat_effnet.colors import to_rgb
from robosat_effnet.io import read_label, write_image
from robosat_effnet.tiles import tile_files, write_tiles_csv

ZOOM, X0, Y0 = 19, 309610, 261632  # Kampala
SIZE = 64
TILES = [mercantile.Tile(X0 + dx, Y0 + dy, ZOOM) for dy in range(2) for dx in range(2)]
CLASSES, COLORS = ["background", "building", "water"], ["denim", "orange", "blue"]


def write_config(path: Path, classes=CLASSES[:2], colors=COLORS[:2]) -> Path:
    path.write_text(f"[common]\ndataset = \"data\"\nclasses = {json.dumps(classes)}\ncolors = {json.dumps(colors)}\n")
    return path


def write_images(root: Path, tiles=TILES, size=SIZE) -> Path:
    for tile in tiles:
        write_image(root / str(tile.z) / str(tile.x) / f"{tile.y}.png", np.zeros((size, size, 3), np.uint8))
    return root


def lonlat(tile: mercantile.Tile, u: float, v: float) -> tuple[float, float]:
    """The lon/lat of fractional position (u, v) inside a tile (0..1 from its top-left)."""
    west, south, east, north = mercantile.bounds(tile)
    return west + u * (east - west), north - v * (north - south)


def polygons() -> list[dict]:
    """A house across the four tiles' common corner, one inside a single tile, and a pond (class water)."""
    a, b = TILES[0], TILES[3]
    house = [lonlat(a, 0.61, 0.57), lonlat(b, 0.43, 0.05), lonlat(b, 0.22, 0.38), lonlat(a, 0.83, 0.93)]
    shed = [lonlat(a, 0.1, 0.1), lonlat(a, 0.3, 0.12), lonlat(a, 0.25, 0.33)]
    pond = [lonlat(a, 0.7, 0.7), lonlat(b, 0.3, 0.1), lonlat(b, 0.2, 0.4)]
    return [{"type": "Feature", "properties": {"kind": kind},
             "geometry": {"type": "Polygon", "coordinates": [ring + [ring[0]]]}}
            for ring, kind in ((house, "building"), (shed, "Building"), (pond, "water"))]


def write_geojson(path: Path, features: list[dict], crs: str | None = None) -> Path:
    data = {"type": "FeatureCollection", "features": features}
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data))
    return path


def expected_labels(features: list[dict], tile: mercantile.Tile, size: int, classes: list[str]) -> tuple:
    """Independently: the class at each pixel centre by shapely point-in-polygon in web mercator.

    Returns (labels, clear): `clear` leaves out centres within 1% of a pixel of an edge.
    """
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    west, south, east, north = mercantile.xy_bounds(tile)
    step = (east - west) / size
    x, y = np.meshgrid(west + (np.arange(size) + 0.5) * step, north - (np.arange(size) + 0.5) * step)
    labels = np.zeros((size, size), np.uint8)
    clear = np.ones((size, size), bool)
    for feature in sorted(features, key=lambda f: classes.index(f["properties"]["kind"].lower())):
        ring = np.array(feature["geometry"]["coordinates"][0])
        polygon = shapely.Polygon(np.column_stack(to_merc.transform(ring[:, 0], ring[:, 1])))
        labels[shapely.contains_xy(polygon, x, y)] = classes.index(feature["properties"]["kind"].lower())
        clear &= shapely.distance(polygon.exterior, shapely.points(x, y)) > 0.01 * step
    return labels, clear


def invoke(*args: str):
    return CliRunner().invoke(main, ["rasterize", *map(str, args), "-q"])


def test_single_class_labels_match_point_in_polygon(tmp_path):
    images = write_images(tmp_path / "images")
    features = polygons()[:2]
    result = invoke(write_geojson(tmp_path / "b.geojson", features), tmp_path / "labels", "--tiles", images,
                    "--dataset", write_config(tmp_path / "dataset.toml"))
    assert result.exit_code == 0, result.output
    labels = tile_files(tmp_path / "labels")
    assert set(labels) == set(TILES)
    for tile in TILES:
        with Image.open(labels[tile]) as image:
            assert image.mode == "P" and image.size == (SIZE, SIZE)
            assert image.getpalette()[:6] == [*to_rgb("denim"), *to_rgb("orange")]
        got = read_label(labels[tile])
        want, clear = expected_labels(features, tile, SIZE, CLASSES)
        assert np.array_equal(got[clear], want[clear]) and got.max() == 1
    assert "4 label tiles" in result.output and "2 of 2 polygons" in result.output


def test_class_property_and_projected_crs(tmp_path):
    images = write_images(tmp_path / "images")
    config = write_config(tmp_path / "dataset.toml", CLASSES, COLORS)
    features = polygons()
    result = invoke(write_geojson(tmp_path / "c.geojson", features), tmp_path / "a", "--tiles", images,
                    "--dataset", config, "--class-property", "kind")
    assert result.exit_code == 0, result.output
    # The same polygons in UTM 36N, declared the way GDAL/QGIS write it.
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32636", always_xy=True)
    utm = json.loads(json.dumps(features))
    for f in utm:
        ring = np.array(f["geometry"]["coordinates"][0])
        f["geometry"]["coordinates"] = [np.column_stack(to_utm.transform(ring[:, 0], ring[:, 1])).tolist()]
    result = invoke(write_geojson(tmp_path / "utm.geojson", utm, "urn:ogc:def:crs:EPSG::32636"), tmp_path / "b",
                    "--tiles", images, "--dataset", config, "--class-property", "kind")
    assert result.exit_code == 0, result.output
    for tile in TILES:
        want, clear = expected_labels(features, tile, SIZE, CLASSES)
        a, b = read_label(tile_files(tmp_path / "a")[tile]), read_label(tile_files(tmp_path / "b")[tile])
        assert np.array_equal(a[clear], want[clear]) and np.array_equal(b[clear], want[clear])
    assert 2 in want  # the pond overlaps the house and wins (higher class index)
    # Class indices work as well as names (numeric class columns are common).
    numbered = json.loads(json.dumps(features))
    for f in numbered:
        f["properties"]["kind"] = CLASSES.index(f["properties"]["kind"].lower())
    result = invoke(write_geojson(tmp_path / "n.geojson", numbered), tmp_path / "n", "--tiles", images,
                    "--dataset", config, "--class-property", "kind")
    assert result.exit_code == 0, result.output
    for tile in TILES:
        assert np.array_equal(read_label(tile_files(tmp_path / "n")[tile]),
                              read_label(tile_files(tmp_path / "a")[tile]))


def test_tiles_csv_with_size_and_empty_tiles(tmp_path):
    extra = mercantile.Tile(X0 + 5, Y0, ZOOM)  # no polygon there: an all-background label
    write_tiles_csv(tmp_path / "tiles.csv", TILES + [extra])
    result = invoke(write_geojson(tmp_path / "b.geojson", polygons()[:1]), tmp_path / "labels", "--tiles",
                    tmp_path / "tiles.csv", "--size", "32", "--dataset", write_config(tmp_path / "dataset.toml"))
    assert result.exit_code == 0, result.output
    labels = tile_files(tmp_path / "labels")
    assert set(labels) == set(TILES) | {extra}
    assert all(read_label(p).shape == (32, 32) for p in labels.values())
    assert read_label(labels[extra]).max() == 0 and read_label(labels[TILES[3]]).max() == 1


def test_zoom_picks_one_zoom_of_a_folder(tmp_path):
    images = write_images(tmp_path / "images")
    write_images(images, [mercantile.parent(TILES[0])], size=32)
    args = [write_geojson(tmp_path / "b.geojson", polygons()[:1]), tmp_path / "labels", "--tiles", images,
            "--dataset", write_config(tmp_path / "dataset.toml")]
    assert invoke(*args, "--zoom", ZOOM).exit_code == 0
    assert set(tile_files(tmp_path / "labels")) == set(TILES)
    result = invoke(*args, "--zoom", 5)
    assert result.exit_code == 1 and "no tiles at zoom 5" in result.output


BAD_INPUTS = {
    "empty": ({"type": "FeatureCollection", "features": []}, {}, "holds no polygons"),
    "projected without crs": (
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
            "type": "Polygon",
            "coordinates": [[[452000, 38000], [452100, 38000], [452100, 38100], [452000, 38000]]]}}]},
        {}, "looks projected"),
    "outside every tile": (
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
            "type": "Polygon", "coordinates": [[[10, 50], [10.001, 50], [10.001, 50.001], [10, 50]]]}}]},
        {}, "touches any of the 4 tiles"),
    "class not in config": (None, {"--class-property": "kind", "classes": CLASSES[:2]}, "'water'"),
    "broken ring": (
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
            "type": "Polygon", "coordinates": [[[32.58, 0.34], [32.59, 0.34]]]}}]},
        {}, "feature 0 of"),
    "coordinates not numbers": (
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
            "type": "Polygon", "coordinates": "x"}}]},
        {}, "broken Polygon geometry"),
    "several classes without property": (None, {"classes": CLASSES}, "--class-property"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_nothing_written(tmp_path, case):
    data, options, message = BAD_INPUTS[case]
    data = data or {"type": "FeatureCollection", "features": polygons()}
    classes = options.pop("classes", CLASSES[:2])
    config = write_config(tmp_path / "dataset.toml", classes, COLORS[:len(classes)])
    geojson = tmp_path / "labels.geojson"
    geojson.write_text(json.dumps(data))
    extra = [str(v) for item in options.items() for v in item]
    result = invoke(geojson, tmp_path / "out", "--tiles", write_images(tmp_path / "images"), "--dataset", config,
                    *extra)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert str(geojson) in lines[0] or case == "several classes without property"
    assert not (tmp_path / "out").exists()
