"""Touching buildings: `rasterize --touching-px` burns the band, `features` splits the blob into one polygon each.

Buildings are boxes on the pixel grid of four z21 tiles (a 128 x 128 px mosaic), so the expected labels follow by
hand: the band from the exact Euclidean distance transform of the other buildings (scipy), not from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from scipy.ndimage import distance_transform_edt

from robosat_effnet.cli import main
from robosat_effnet.io import read_label
from robosat_effnet.tiles import tile_files
from robosat_effnet.vectorize.features import mask_features

pytest.importorskip("skimage")

ZOOM, SIZE = 21, 64
T0 = mercantile.tile(32.5825, 0.3476, ZOOM)  # Kampala
# (col0, row0, col1, row1) in mosaic pixels, end exclusive. A and B share a wall (col 50) and cross the horizontal
# tile border (row 64); B also crosses the vertical one (col 64). C nearly meets B: a one-pixel gap (col 90).
BOXES = {"A": (20, 30, 50, 100), "B": (50, 40, 90, 110), "C": (91, 10, 120, 60)}


def corner(col: float, row: float) -> tuple[float, float]:
    west, _, east, north = mercantile.xy_bounds(T0)
    step = (east - west) / SIZE
    return mercantile.lnglat(west + col * step, north - row * step)


def lonlat_box(c0, r0, c1, r1) -> shapely.Polygon:
    return shapely.Polygon([corner(c, r) for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1))])


def expected_labels(radius: int) -> np.ndarray:
    """Building 1, and 2 on building pixels within `radius` px (centre to centre) of another building's pixel."""
    ids = np.zeros((2 * SIZE, 2 * SIZE), np.int32)
    for n, (c0, r0, c1, r1) in enumerate(BOXES.values(), 1):
        ids[r0:r1, c0:c1] = n
    labels = (ids > 0).astype(np.uint8)
    for n in range(1, len(BOXES) + 1):  # exact Euclidean distance to the nearest pixel of another building
        others = (ids > 0) & (ids != n)
        labels[(ids == n) & (distance_transform_edt(~others) <= radius)] = 2
    return labels


def mosaic(masks: Path) -> np.ndarray:
    out = np.zeros((2 * SIZE, 2 * SIZE), np.uint8)
    for tile, path in tile_files(masks).items():
        dx, dy = tile.x - T0.x, tile.y - T0.y
        out[dy * SIZE:(dy + 1) * SIZE, dx * SIZE:(dx + 1) * SIZE] = read_label(path)
    return out


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def make_project(tmp_path: Path) -> Path:
    """buildings.geojson (the boxes), tiles.csv (the four tiles), two.toml and three.toml (with "touching")."""
    geojson = tmp_path / "buildings.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": k}, "geometry": shapely.geometry.mapping(lonlat_box(*b))}
        for k, b in BOXES.items()]}))
    with open(tmp_path / "tiles.csv", "w") as f:
        f.writelines(f"{T0.x + dx},{T0.y + dy},{ZOOM}\n" for dx in (0, 1) for dy in (0, 1))
    for name, classes, colors in (("two", ["background", "building"], ["denim", "orange"]),
                                  ("three", ["background", "building", "touching"], ["denim", "orange", "red"])):
        (tmp_path / f"{name}.toml").write_text(
            f'[common]\ndataset = "d"\nclasses = {json.dumps(classes)}\ncolors = {json.dumps(colors)}\n')
    return tmp_path


def rasterize(project: Path, out: str, dataset: str, *extra: str):
    return CliRunner().invoke(main, ["rasterize", str(project / "buildings.geojson"), str(project / out), "--tiles",
                                     str(project / "tiles.csv"), "--size", str(SIZE), "--dataset",
                                     str(project / dataset), "-q", *extra])


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_touching_band_is_burnt_exactly(project, radius):
    result = rasterize(project, "labels", "three.toml", "--touching-px", str(radius))
    assert result.exit_code == 0, result.output
    got, want = mosaic(project / "labels"), expected_labels(radius)
    assert (want == 2).sum() >= 2 * radius * 60  # the shared wall (60 rows), both sides (and the near miss)
    np.testing.assert_array_equal(got, want)


def test_touching_buildings_come_back_as_separate_features(project):
    assert rasterize(project, "plain", "two.toml").exit_code == 0
    assert rasterize(project, "band", "three.toml", "--touching-px", "2").exit_code == 0
    merged = mask_features(project / "plain", {1: "building"}, simplify=0, progress=False).features
    split = mask_features(project / "band", {1: "building"}, simplify=0, touching=2, progress=False).features
    assert len(merged) == 2  # A and B merge into one blob; C stays apart (the gap)
    assert len(split) == 3
    boxes = [lonlat_box(*b) for b in BOXES.values()]
    for box in boxes:  # each building exactly once, with its own outline (band pixels go to their own building)
        (hit,) = [f for f in split if f.geometry.intersection(box).area > 0.5 * box.area]
        assert hit.geometry.symmetric_difference(box).area < 1e-6 * box.area
    # The command reads the touching class from dataset.toml and writes one feature per building.
    out = project / "out.geojson"
    result = CliRunner().invoke(main, ["features", str(project / "band"), str(out), "--dataset",
                                       str(project / "three.toml"), "-q"])
    assert result.exit_code == 0, result.output
    features = json.loads(out.read_text())["features"]
    assert len(features) == 3 and {f["properties"]["class"] for f in features} == {"building"}


def test_touching_px_needs_the_class_and_says_so(project):
    result = rasterize(project, "labels", "two.toml", "--touching-px", "2")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "'touching'" in result.output
    assert not (project / "labels").exists()
    result = rasterize(project, "labels", "three.toml")
    assert result.exit_code == 0 and "declares a 'touching' class but --touching-px is 0" in result.output
    assert (mosaic(project / "labels") == 2).sum() == 0
