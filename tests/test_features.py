"""`rs-effnet features`: mask tiles -> lon/lat polygons merged across tile borders, areas by pyproj.Geod."""

from __future__ import annotations

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod

from robosat_effnet.cli import main
from robosat_effnet.io import write_mask
from robosat_effnet.vectorize.features import mask_features

SIZE = 64
COLORS = ["denim", "orange", "blue"]
GEOD = Geod(ellps="WGS84")


def corner_tile(zoom: int) -> mercantile.Tile:
    return mercantile.tile(32.5825, 0.3476, zoom)  # Kampala


def write_masks(root: Path, zoom: int, mosaic: np.ndarray) -> Path:
    """Cut a (2*SIZE) x (2*SIZE) class mosaic into the 2 x 2 tiles starting at corner_tile(zoom)."""
    t0 = corner_tile(zoom)
    for dy in range(2):
        for dx in range(2):
            part = mosaic[dy * SIZE:(dy + 1) * SIZE, dx * SIZE:(dx + 1) * SIZE]
            write_mask(root / str(zoom) / str(t0.x + dx) / f"{t0.y + dy}.png", part, COLORS)
    return root


def pixel_lonlat(zoom: int, col: float, row: float) -> tuple[float, float]:
    """Lon/lat of a mosaic pixel corner, from mercantile's tile bounds (not from the code under test)."""
    t0 = corner_tile(zoom)
    west, _, east, north = mercantile.xy_bounds(t0)
    step = (east - west) / SIZE
    return mercantile.lnglat(west + col * step, north - row * step)


def lonlat_box(zoom: int, c0: int, r0: int, c1: int, r1: int) -> shapely.Polygon:
    return shapely.Polygon([pixel_lonlat(zoom, c, r) for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1))])


def mosaic_with_house() -> np.ndarray:
    """A building across the four tiles' common corner with a courtyard cut by a border, a speck, a pond."""
    mosaic = np.zeros((2 * SIZE, 2 * SIZE), np.uint8)
    mosaic[50:100, 40:90] = 1
    mosaic[70:80, 60:70] = 0  # courtyard, across the vertical border at column 64
    mosaic[5:7, 5:7] = 1  # a 2 x 2 px speck
    mosaic[10:30, 100:120] = 2  # water
    return mosaic


def read_features(path: Path) -> list[dict]:
    data = json.loads(Path(path).read_text())
    assert data["type"] == "FeatureCollection"
    return data["features"]


@pytest.mark.parametrize("zoom", [12, 19, 22])
def test_building_across_tile_corner_is_one_feature_with_true_area(tmp_path, zoom):
    masks = write_masks(tmp_path / "masks", zoom, mosaic_with_house())
    out = tmp_path / "out.geojson"
    # --min-area 0: the speck (under the 5 m2 default at zoom 22) is one of the two features checked here
    result = CliRunner().invoke(main, ["features", str(masks), str(out), "--class", "1", "--min-area", "0", "-q"])
    assert result.exit_code == 0, result.output
    features = read_features(out)
    house = lonlat_box(zoom, 40, 50, 90, 100).difference(lonlat_box(zoom, 60, 70, 70, 80))
    speck = lonlat_box(zoom, 5, 5, 7, 7)
    assert len(features) == 2  # the house in four tiles is one feature; the speck the other
    geoms = sorted((shapely.geometry.shape(f["geometry"]) for f in features), key=lambda g: -g.area)
    assert len(geoms[0].interiors) == 1  # the courtyard survives the merge
    for got, want, feature in zip(geoms, (house, speck), sorted(features, key=lambda f: -f["properties"]["area_m2"]),
                                  strict=True):
        want_area = abs(GEOD.geometry_area_perimeter(want)[0])
        assert feature["properties"] == {"class": "1", "area_m2": pytest.approx(want_area, rel=1e-6, abs=0.01)}
        assert got.hausdorff_distance(want) < 2e-8  # degrees: the output's 8-decimal rounding
    # --min-area in square metres drops the speck only.
    speck_m2 = abs(GEOD.geometry_area_perimeter(speck)[0])
    result = CliRunner().invoke(main, ["features", str(masks), str(out), "--class", "1", "--min-area",
                                       str(speck_m2 * 1.5), "-q"])
    assert result.exit_code == 0 and len(read_features(out)) == 1 and "1 below" in result.output


def test_classes_by_name_from_dataset(tmp_path):
    masks = write_masks(tmp_path / "masks", 20, mosaic_with_house())
    dataset = tmp_path / "dataset.toml"
    dataset.write_text('[common]\ndataset = "d"\nclasses = ["background", "building", "water"]\n')
    out = tmp_path / "water.geojson"
    result = CliRunner().invoke(main, ["features", str(masks), str(out), "--class", "Water", "--dataset",
                                       str(dataset), "-q"])
    assert result.exit_code == 0, result.output
    assert [f["properties"]["class"] for f in read_features(out)] == ["water"]
    result = CliRunner().invoke(main, ["features", str(masks), str(out), "--dataset", str(dataset), "-q"])
    assert result.exit_code == 0
    # the house and the pond; the 2 x 2 px speck (about 1.4 m2 at zoom 20) is under the default --min-area of 5 m2
    assert sorted(f["properties"]["class"] for f in read_features(out)) == ["building", "water"]


def test_simplify_is_in_metres_and_keeps_the_shape(tmp_path):
    mosaic = np.zeros((2 * SIZE, 2 * SIZE), np.uint8)
    rows, cols = np.mgrid[0:2 * SIZE, 0:2 * SIZE]
    mosaic[(abs(rows - cols) < 12) & (rows > 10) & (rows < 118)] = 1  # a diagonal band: pixel staircases
    masks = write_masks(tmp_path / "masks", 21, mosaic)
    raw = mask_features(masks, {1: "band"}, simplify=0, progress=False).features
    auto = mask_features(masks, {1: "band"}, progress=False).features
    metre = mask_features(masks, {1: "band"}, simplify=1.0, progress=False).features
    vertices = [len(f[0].geometry.exterior.coords) for f in (raw, auto, metre)]
    assert len(raw) == len(auto) == len(metre) == 1
    assert vertices[0] > 100 and vertices[1] < vertices[0] / 4 and vertices[2] <= vertices[1]
    # Douglas-Peucker keeps every point within its tolerance of the raw outline: one pixel by default,
    # 1 m when asked (degrees here: near the equator 1 m is 1 / 111320 of a degree either way).
    pixel_deg = 360 / (SIZE * 2**21)
    drift = [raw[0].geometry.hausdorff_distance(f[0].geometry) for f in (auto, metre)]
    assert 0.5 * pixel_deg < drift[0] <= 1.01 * pixel_deg
    assert drift[0] < drift[1] <= 1.01 / 111_320
    assert abs(auto[0].area_m2 - raw[0].area_m2) < 0.05 * raw[0].area_m2  # a thin band: much outline per m2


def test_zoom_filter_and_several_zooms(tmp_path):
    masks = write_masks(tmp_path / "masks", 19, mosaic_with_house())
    write_masks(masks, 20, mosaic_with_house())
    only19 = mask_features(masks, {1: "b"}, zoom=19, progress=False).features
    both = mask_features(masks, {1: "b"}, progress=False).features
    assert len(only19) == 2 and len(both) == 3  # the z20 house lies inside the z19 one: merged


def run_bad(*args: str) -> str:
    result = CliRunner().invoke(main, ["features", *args, "-q"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not Path("out.geojson").exists()
    return result.output


def test_bad_inputs(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # no ./dataset.toml to fall back on
    masks = write_masks(tmp_path / "masks", 20, mosaic_with_house())
    (tmp_path / "empty").mkdir()
    dataset = tmp_path / "dataset.toml"
    dataset.write_text('[common]\ndataset = "d"\nclasses = ["background", "building"]\n')
    assert "no mask tiles" in run_bad(str(tmp_path / "empty"), "out.geojson")
    assert "'roads' is not in" in run_bad(str(masks), "out.geojson", "--class", "roads", "--dataset",
                                          str(dataset))
    assert "--dataset" in run_bad(str(masks), "out.geojson", "--class", "building")
    assert "at zoom 18" in run_bad(str(masks), "out.geojson", "--zoom", "18")
