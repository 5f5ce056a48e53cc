"""A tile that cannot exist (a zoom beyond 0..30, an x or y beyond its zoom's grid) in a tiles.csv or a slippy-map
folder is one line naming the row or the file, in every command that reads tiles: never a mercantile warning
followed by "no polygon inside the scoring area", never a tile silently placed nowhere.
"""

from __future__ import annotations

import contextlib
import json
import warnings

import mercantile
import numpy as np
import pytest
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.tiles import tile_path

GOOD = mercantile.Tile(70760, 104130, 18)
ROWS = {  # a tiles.csv row -> what the one line says about it
    "70760,104130,31": "zoom 31 is outside 0..30",
    "300,0,8": "x 300 is outside 0..255, the tiles of zoom 8",
    "0,-1,8": "y -1 is outside 0..255, the tiles of zoom 8",
    "70760,104130": "not three integers",
    "x,y,z": "not three integers",
}


@pytest.fixture
def inputs(tmp_path):
    write_image(tile_path(tmp_path / "images", GOOD, "png"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "dataset.toml").write_text("[common]\ndataset = 'd'\nclasses = ['background', 'building']\n")
    b = mercantile.bounds(GOOD)
    ring = [[b.west, b.south], [b.east, b.south], [b.east, b.north], [b.west, b.north], [b.west, b.south]]
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    return tmp_path


CSV_READERS = {
    "score --tiles": lambda d, tiles: ["score", d / "a.geojson", d / "a.geojson", "--tiles", tiles],
    "rasterize --tiles": lambda d, tiles: ["rasterize", d / "a.geojson", d / "labels", "--tiles", tiles,
                                           "--dataset", d / "dataset.toml"],
}


@pytest.mark.parametrize("row", list(ROWS))
@pytest.mark.parametrize("reader", list(CSV_READERS))
def test_an_impossible_tiles_csv_row_is_named(inputs, reader, row):
    tiles = inputs / "tiles.csv"
    tiles.write_text(f"{GOOD.x},{GOOD.y},{GOOD.z}\n\n{row}\n")
    with no_future_warnings():
        result = CliRunner().invoke(main, [str(a) for a in CSV_READERS[reader](inputs, tiles)])
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: {tiles} row 3 ({row}) is not a tile of the slippy map: {ROWS[row]}; " \
                            "expected rows of x,y,z integers\n"
    assert not (inputs / "labels").exists()


FOLDER_READERS = {
    "score --tiles": lambda d, folder: ["score", d / "a.geojson", d / "a.geojson", "--tiles", folder],
    "rasterize --tiles": lambda d, folder: ["rasterize", d / "a.geojson", d / "labels", "--tiles", folder,
                                            "--dataset", d / "dataset.toml"],
    "features": lambda d, folder: ["features", folder, d / "out.geojson", "-q"],
    "view": lambda d, folder: ["view", folder, "--out", d / "page", "--no-serve", "--quiet"],
}


@pytest.mark.parametrize("tile", [(5, 0, 2), (0, 9, 3), (0, 0, 31)], ids=["x beyond", "y beyond", "zoom 31"])
@pytest.mark.parametrize("reader", list(FOLDER_READERS))
def test_an_impossible_tile_in_a_folder_is_named(inputs, reader, tile):
    folder = inputs / "images"
    x, y, z = tile
    bad = folder / str(z) / str(x) / f"{y}.png"  # not through mercantile, which warns about such tiles
    write_mask(bad, np.zeros((32, 32), np.uint8), ["denim", "orange"])
    with no_future_warnings():
        result = CliRunner().invoke(main, [str(a) for a in FOLDER_READERS[reader](inputs, folder)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {bad} is not a tile of the slippy map: ")
    assert result.output.count("\n") == 1


@contextlib.contextmanager
def no_future_warnings():
    """Fail on a FutureWarning (mercantile's about invalid tiles was shown before the error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        yield
