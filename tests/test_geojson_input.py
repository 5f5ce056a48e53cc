"""Hostile GeoJSON is one short line in every command that reads GeoJSON (score PRED/TRUTH/--area, rasterize,
view --outlines/--truth): JSON nested into a recursion bomb, NaN and Infinity (which Python's json reads but JSON
has no such numbers), coordinates that overflow to infinity, coordinates of 1e300 or a 400-digit integer. None is
dropped silently and none ends in a traceback, a RecursionError, a shapely warning or a 300-digit number.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas
import mercantile
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.errors import DatasetError
from robosat_effnet.evaluation.vectors import read_polygons
from robosat_effnet.io import write_image
from robosat_effnet.tiles import tile_path

TILE = mercantile.Tile(70760, 104130, 18)


def square() -> list[list[float]]:
    b = mercantile.bounds(TILE)
    w, s, e, n = b.west + 1e-5, b.south + 1e-5, b.east - 1e-5, b.north - 1e-5
    return [[w, s], [e, s], [e, n], [w, n], [w, s]]


def collection(ring: list) -> dict:
    polygon = {"type": "Polygon", "coordinates": [ring]}
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {"class": "building"}, "geometry": polygon}]}


def with_value(value: str) -> str:
    """A valid collection whose second coordinate's longitude is written as `value` (raw JSON text)."""
    ring = square()
    ring[1][0] = "VALUE"
    return json.dumps(collection(ring)).replace('"VALUE"', value)


# name -> (file text, words the one line must hold)
BAD = {
    "recursion bomb": ("[" * 100000 + "]" * 100000, "nests its JSON too deeply"),
    "nested past any GeoJSON": (json.dumps(collection(square())).replace(
        '"properties": {"class": "building"}', '"properties": {"deep": ' + "[" * 200 + "]" * 200 + "}"),
        "nests its JSON 204 levels deep"),
    "NaN literal": (with_value("NaN"), "holds NaN, which is not a JSON number"),
    "Infinity literal": (with_value("Infinity"), "holds Infinity, which is not a JSON number"),
    "-Infinity literal": (with_value("-Infinity"), "holds -Infinity, which is not a JSON number"),
    "overflow to infinity": (with_value("1e400"), "has a coordinate that is not a finite number (inf)"),
    "negative overflow": (with_value("-1e400"), "has a coordinate that is not a finite number (-inf)"),
    "1e300": (with_value("1e300"), "has a coordinate 1e+300, beyond any place on Earth"),
    "400-digit integer": (with_value("1" + "0" * 400), "has a coordinate a number beyond 1e308, beyond any place"),
    "true as a coordinate": (with_value("true"), "a coordinate is a bool, not a number"),
    "coordinates too shallow": (json.dumps({"type": "Polygon", "coordinates": [1, 2]}),
                                "its coordinates are not lists nested 3 deep"),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("geojson")
    write_image(tile_path(root / "images", TILE, "png"), np.zeros((32, 32, 3), np.uint8))
    (root / "dataset.toml").write_text("[common]\ndataset = 'd'\nclasses = ['background', 'building']\n")
    (root / "good.geojson").write_text(json.dumps(collection(square())))
    return {"root": root, "images": root / "images", "dataset": root / "dataset.toml", "good": root / "good.geojson"}


READERS = {
    "score PRED": lambda f, i: ["score", f, i["good"]],
    "score TRUTH": lambda f, i: ["score", i["good"], f],
    "score --area": lambda f, i: ["score", i["good"], i["good"], "--area", f],
    "rasterize": lambda f, i: ["rasterize", f, i["root"] / "labels", "--tiles", i["images"], "--dataset", i["dataset"]],
    "view --outlines": lambda f, i: ["view", i["images"], "--outlines", f, "--out", i["root"] / "page", "--no-serve"],
    "view --truth": lambda f, i: ["view", i["images"], "--truth", f, "--out", i["root"] / "page", "--no-serve"],
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("reader", list(READERS))
def test_hostile_geojson_is_one_short_line_in_every_reader(inputs, tmp_path, reader, case):
    text, words = BAD[case]
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    result = CliRunner().invoke(main, [str(a) for a in READERS[reader](path, inputs)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output  # no warning first
    assert words in result.output and str(path) in result.output, result.output
    assert len(result.output) < 400  # no 300-digit numbers
    assert not (inputs["root"] / "labels").exists()


def test_the_good_file_passes_every_reader(inputs):
    for reader, args in READERS.items():
        result = CliRunner().invoke(main, [str(a) for a in args(inputs["good"], inputs)])
        assert result.exit_code == 0, (reader, result.output)


def test_projected_numbers_read_as_lon_lat_are_reported_short(tmp_path):
    ring = [[452000.5, 3800000.25], [452100, 3800000], [452100, 3800100], [452000.5, 3800000.25]]
    path = tmp_path / "utm.geojson"
    path.write_text(json.dumps(collection(ring)))
    with pytest.raises(DatasetError, match=r"reach \(452000, 3.8e\+06\)..\(452100, 3.8001e\+06\), which looks "
                                           "projected"):
        read_polygons(path)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 1e300])
def test_other_vector_formats_are_checked_too(tmp_path, value):
    path = tmp_path / "outlines.gpkg"
    with warnings.catch_warnings():  # shapely warns about the NaN it is asked to store
        warnings.simplefilter("ignore", RuntimeWarning)
        bad = shapely.Polygon([(0, 0), (value, 0), (1, 1), (0, 0)])
        geopandas.GeoDataFrame({"class": ["a", "b"]}, geometry=[shapely.Polygon(square()), bad],
                               crs="EPSG:4326").to_file(path)
    with warnings.catch_warnings(), pytest.raises(DatasetError, match=f"feature 1 of {path} has a coordinate "):
        warnings.simplefilter("error")  # nothing but the one line: no shapely warning before it
        read_polygons(path)
