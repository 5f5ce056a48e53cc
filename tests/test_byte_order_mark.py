"""Every text file a person may make in a spreadsheet or an editor (tiles.csv, blocks' local.csv and rest.csv,
GeoJSON, dataset.toml and model.toml) reads the same with a UTF-8 byte-order mark first, as Excel's "CSV UTF-8"
and Notepad save it, as without one: it used to fail as "row 1 ... not three integers", "not valid TOML" or
"Unexpected UTF-8 BOM"."""

from __future__ import annotations

import codecs
import re

import pytest
from click.testing import CliRunner
from test_tile_names import TILES, make_inputs

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.config import load_dataset_config, load_model_config
from robosat_effnet.data.geojson import read_geojson
from robosat_effnet.tiles import read_tiles_csv, write_tiles_csv


def add_bom(path) -> None:
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())


def prepare(root):
    make_inputs(root, [])
    write_tiles_csv(root / "tiles.csv", TILES)
    write_tiles_csv(root / "rest.csv", TILES[1:])  # as `blocks` writes it, then edited in a spreadsheet
    return root


# reader -> (its arguments, the text files given a byte-order mark)
READERS = {
    "blocks tiles.csv": (lambda d: ["blocks", d / "tiles.csv", d / "out"], ["tiles.csv"]),
    "rasterize --tiles tiles.csv": (lambda d: ["rasterize", d / "a.geojson", d / "out", "--tiles", d / "tiles.csv",
                                               "--dataset", d / "dataset.toml", "--size", "32", "-q"], ["tiles.csv"]),
    "rasterize GEOJSON --dataset": (lambda d: ["rasterize", d / "a.geojson", d / "out", "--tiles", d / "images",
                                               "--dataset", d / "dataset.toml", "-q"], ["a.geojson", "dataset.toml"]),
    "score --tiles rest.csv": (lambda d: ["score", d / "a.geojson", d / "a.geojson", "--tiles", d / "rest.csv"],
                               ["rest.csv", "a.geojson"]),
    "score --area": (lambda d: ["score", d / "a.geojson", d / "a.geojson", "--area", d / "a.geojson"],
                     ["a.geojson"]),
    "view --outlines --truth --dataset": (lambda d: ["view", d / "images", "--masks", d / "labels", "--outlines",
                                                     d / "a.geojson", "--truth", d / "a.geojson", "--dataset",
                                                     d / "dataset.toml", "--out", d / "out", "--no-serve", "-q"],
                                          ["a.geojson", "dataset.toml"]),
    "features --dataset": (lambda d: ["features", d / "labels", d / "out.geojson", "--dataset", d / "dataset.toml",
                                      "--class", "building", "-q"], ["dataset.toml"]),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_of_text_takes_a_byte_order_mark(tmp_path, reader):
    args, files = READERS[reader]
    results = {}
    for case in ("plain", "bom"):
        root = prepare(tmp_path / case)
        if case == "bom":
            for name in files:
                add_bom(root / name)
        result = CliRunner().invoke(main, [str(a) for a in args(root)])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        results[case] = re.sub(r"[0-9.]+ tiles/s", "N tiles/s", result.output.replace(str(root), "ROOT"))
    assert results["bom"] == results["plain"]


def test_each_text_reader_drops_a_byte_order_mark(tmp_path):
    """The library readers behind the commands: tiles.csv, GeoJSON, dataset.toml and model.toml."""
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    root = prepare(tmp_path / "inputs")
    plain = (read_tiles_csv(root / "tiles.csv"), read_geojson(root / "a.geojson")[0],
             load_dataset_config(data.dataset_toml), load_model_config(data.model_toml))
    for path in (root / "tiles.csv", root / "a.geojson", data.dataset_toml, data.model_toml):
        add_bom(path)
    bom = (read_tiles_csv(root / "tiles.csv"), read_geojson(root / "a.geojson")[0],
           load_dataset_config(data.dataset_toml), load_model_config(data.model_toml))
    assert bom[0] == TILES and bom[0] == plain[0]
    assert bom[1] == plain[1] and bom[1]["type"] == "Polygon"
    assert bom[2].classes == plain[2].classes == ["background", "building"]
    assert bom[3].backbone == plain[3].backbone and bom[3].epochs == plain[3].epochs == 1


def test_a_byte_order_mark_inside_a_row_is_still_no_number(tmp_path):
    """Only a mark at the start of the file is dropped: one elsewhere is part of a cell, named as such."""
    path = tmp_path / "tiles.csv"
    path.write_bytes(b"70760,104130,18\n" + codecs.BOM_UTF8 + b"70761,104130,18\n")
    with pytest.raises(Exception, match="row 2 .*not three integers"):
        read_tiles_csv(path)
