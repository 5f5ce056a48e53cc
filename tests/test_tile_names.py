"""Tile names and numeric text are ASCII digits only. `str.isdigit()` and `int()` take more: '²'.isdigit() is True
and int('²') fails (a traceback in every command that read a slippy-map folder holding `².png`), while int('１')
(fullwidth), int('١') (Arabic-Indic), int(' 1'), int('+1') and int('1_000') succeed (a stray file read as a tile).
Names that are not ASCII digits are no tiles: every command that reads a slippy-map folder ignores them exactly
(its output is the one it gives without them); ASCII numbers too big for any tile are named as "not a tile".
"""

from __future__ import annotations

import json
import re
import shutil

import mercantile
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robosat_effnet.cli import main
from robosat_effnet.cli.options import comma_integers
from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.predict.runner import parse_shard
from robosat_effnet.text import ascii_int
from robosat_effnet.tiles import read_tiles_csv, tile_files, tile_path

TILES = [mercantile.Tile(70760 + i, 104130, 18) for i in range(4)]  # two 2x2 blocks' top rows
# Names that int() or str.isdigit() take but that are no ASCII number, and other near misses.
NOT_NUMBERS = ["²", "１", "１８", "١", "٣", "①", "𝟏", "߁", "+1", "-1", " 1", "1 ", "1_000", "0x1", "1.0", "1e3", "a"]
HUGE = ["9" * 40, "1" + "0" * 200]  # ASCII digits far beyond any tile (and int()'s 4300 digits are out of reach)
LEVELS = ["z", "x", "y"]


def junk_path(root, name: str, level: str, ext: str = "png"):
    """A file in the slippy map `root` whose z, x or y name is `name` (the rest that of the first tile)."""
    tile = TILES[0]
    parts = {"z": (name, str(tile.x), f"{tile.y}.{ext}"), "x": (str(tile.z), name, f"{tile.y}.{ext}"),
             "y": (str(tile.z), str(tile.x), f"{name}.{ext}")}[level]
    return root.joinpath(*parts)


def make_inputs(root, junk: list[str]):
    """Image tiles, label tiles, dataset.toml and a GeoJSON; each name of `junk` at every level of both folders,
    each such file a readable tile (so that one taken for a tile changes the result)."""
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    label = np.zeros((64, 64), np.uint8)
    label[8:40, 8:40] = 1
    for tile in TILES:
        write_image(tile_path(root / "images", tile, "png"), image)
        write_mask(tile_path(root / "labels", tile, "png"), label, ["denim", "orange"])
    for name in junk:
        for level in LEVELS:
            for folder in ("images", "labels"):
                path = junk_path(root / folder, name, level)
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(tile_path(root / folder, TILES[0], "png"), path)
    (root / "dataset.toml").write_text("[common]\ndataset = 'd'\nclasses = ['background', 'building']\n"
                                       "colors = ['denim', 'orange']\n")
    for split in ("training", "validation"):  # robosat's dataset layout, for train and weights: the same tiles
        (root / "d" / split).mkdir(parents=True)
        for kind in ("images", "labels"):
            (root / "d" / split / kind).symlink_to(root / kind, target_is_directory=True)
    (root / "model.toml").write_text("[common]\ncuda = false\nbatch_size = 2\nimage_size = 64\nbackbone = 'b0'\n"
                                     "workers = 0\nseed = 0\ncheckpoint = 'ckpt'\n[opt]\nepochs = 1\nlr = 0.001\n")
    b = mercantile.bounds(TILES[1])
    ring = [[b.west, b.south], [b.east, b.south], [b.east, b.north], [b.west, b.north], [b.west, b.south]]
    (root / "a.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    return root


# command -> its arguments; every command that reads a slippy-map folder (bench --tiles and export --calibration,
# too slow to run here, read theirs through the same tiles.tile_files)
READERS = {
    "blocks": lambda d, c: ["blocks", d / "images", d / "out"],
    "view": lambda d, c: ["view", d / "images", "--masks", d / "labels", "--out", d / "out", "--no-serve", "-q"],
    "rasterize --tiles": lambda d, c: ["rasterize", d / "a.geojson", d / "out", "--tiles", d / "images",
                                       "--dataset", d / "dataset.toml", "-q"],
    "features": lambda d, c: ["features", d / "labels", d / "out.geojson", "-q"],
    "score --tiles": lambda d, c: ["score", d / "a.geojson", d / "a.geojson", "--tiles", d / "labels"],
    "eval": lambda d, c: ["eval", "--checkpoint", c, d / "images", d / "labels", "--device", "cpu", "-q"],
    "predict": lambda d, c: ["predict", d / "images", d / "out", "--checkpoint", c, "--device", "cpu", "-q"],
    "weights": lambda d, c: ["weights", "--dataset", d / "dataset.toml", "-q"],
    "train": lambda d, c: ["train", "--dataset", d / "dataset.toml", "--model", d / "model.toml", "--device", "cpu",
                           "--workers", "0", "-q"],
}


def run(args: list) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", NOT_NUMBERS)
def test_a_name_that_is_no_ascii_number_is_no_tile(tmp_path, name, level):
    make_inputs(tmp_path, [name])
    assert list(tile_files(tmp_path / "images")) == TILES


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", HUGE)
def test_a_huge_ascii_number_is_named_as_no_tile(tmp_path, name, level):
    make_inputs(tmp_path, [name])
    with pytest.raises(DatasetError, match=r"is not a tile of the slippy map: .*of more than 30 digits is outside"):
        tile_files(tmp_path / "images")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and "\x00" not in s
                                                    and s not in (".", "..")),
       level=st.sampled_from(LEVELS))
def test_any_name_is_a_tile_only_when_ascii_digits(tmp_path_factory, name, level):
    root = tmp_path_factory.mktemp("names")
    try:
        make_inputs(root, [name])
    except OSError:  # a name this file system refuses
        return
    try:
        found = list(tile_files(root / "images"))
    except DatasetError as e:
        assert re.fullmatch("[0-9]+", name) and "is not a tile of the slippy map" in str(e)
        return
    extra = [t for t in found if t not in TILES]
    assert not extra or re.fullmatch("[0-9]+", name), (name, extra)


@pytest.mark.parametrize("command", list(READERS))
def test_every_command_ignores_names_that_are_no_tiles_exactly(tmp_path, random_checkpoint, command, one_thread):
    results = {}
    for case, junk in (("clean", []), ("junk", NOT_NUMBERS)):
        root = make_inputs(tmp_path / case, junk)
        result = run(READERS[command](root, random_checkpoint))
        assert "Traceback" not in result.output and not isinstance(result.exception, ValueError), result.output
        output = re.sub(r"[0-9.]+ tiles/s", "N tiles/s", result.output.replace(str(root), "ROOT"))  # timings
        results[case] = (result.exit_code, output)
    assert results["junk"] == results["clean"]


@pytest.mark.parametrize("command", list(READERS))
def test_every_command_names_a_huge_number_as_no_tile(tmp_path, random_checkpoint, command):
    root = make_inputs(tmp_path, [HUGE[0]])
    result = run(READERS[command](root, random_checkpoint))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.splitlines()
    assert lines[-1].startswith("Error: ") and "is not a tile of the slippy map" in lines[-1], result.output
    assert all(line.startswith("warning: ") for line in lines[:-1]), result.output  # train's about [weights]


@pytest.mark.parametrize("cell", [c for c in NOT_NUMBERS if c != "-1"] + ["", "1.5", "-", "--1", "-١"])
def test_a_tiles_csv_cell_that_is_no_ascii_number_is_named(tmp_path, cell):
    path = tmp_path / "tiles.csv"
    path.write_text(f"{TILES[0].x},{TILES[0].y},18\n{TILES[1].x},{cell},18\n", encoding="utf-8")
    if cell.strip() == "1":  # spaces around a number: an editor's "x, y, z"
        assert read_tiles_csv(path) == [TILES[0], mercantile.Tile(TILES[1].x, 1, 18)]
        return
    with pytest.raises(DatasetError, match="row 2 .*not three integers"):
        read_tiles_csv(path)


@pytest.mark.parametrize("text", NOT_NUMBERS + HUGE)
def test_numeric_text_of_options_is_ascii_digits(text):
    number = ascii_int(text.strip())
    assert number is None or re.fullmatch("[0-9]+", text.strip())
    if number is None:
        with pytest.raises(ConfigError, match="must look like i/n"):
            parse_shard(f"{text}/4")
        with pytest.raises(Exception, match="is not a comma-separated list"):
            comma_integers(f"1,{text}", 0, "integers", "rule")


@pytest.mark.parametrize("name", [n for n in NOT_NUMBERS if n.strip() != "1"])
def test_features_class_that_is_no_ascii_number_is_a_name(tmp_path, name):
    make_inputs(tmp_path, [])
    result = run(["features", tmp_path / "labels", tmp_path / "out.geojson", "--class", name, "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "is a name: pass --dataset" in result.output
