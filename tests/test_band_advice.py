"""Tiles with the wrong number of bands: the advice fits the command. `predict` has --bands and says which to pick
when the tiles have enough; `export --int8 --calibration` and `eval` have no such option and never advise it; and
nobody advises `--bands 1,2,3` for tiles that hold one band.
"""

from __future__ import annotations

from pathlib import Path

import mercantile
import numpy as np
import pytest
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.tiles import tile_path

TILES = [mercantile.Tile(70760 + i, 104130, 18) for i in range(2)]


def tiles(folder: Path, bands: int, ext: str = "png") -> Path:
    for tile in TILES:
        write_image(tile_path(folder, tile, ext), np.full((64, 64, bands), 90, np.uint8))
    return folder


def labels(folder: Path) -> Path:
    for tile in TILES:
        write_mask(tile_path(folder, tile, "png"), np.zeros((64, 64), np.uint8), ["denim", "orange"])
    return folder


COMMANDS = {
    "predict": lambda images, ckpt, tmp: ["predict", images, tmp / "out", "--checkpoint", ckpt, "--quiet",
                                          "--device", "cpu"],
    "eval": lambda images, ckpt, tmp: ["eval", "--checkpoint", ckpt, images, labels(tmp / "labels"), "-q",
                                       "--device", "cpu"],
    "export --int8": lambda images, ckpt, tmp: ["export", ckpt, tmp / "m.onnx", "--int8", "--calibration", images],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_one_band_tiles_are_never_told_to_pick_three_bands(tmp_path, random_checkpoint, command):
    pytest.importorskip("onnxruntime")
    args = COMMANDS[command](tiles(tmp_path / "grey", 1), random_checkpoint, tmp_path)
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "has 1 bands but the checkpoint expects 3" in lines[0], result.output
    assert "--bands" not in lines[0] and "use tiles with the 3 bands the model was trained on" in lines[0]


@pytest.mark.parametrize("command, advice", [("predict", "pick 3 with --bands, e.g. --bands 1,2,3"),
                                             ("eval", "use tiles with the 3 bands the model was trained on"),
                                             ("export --int8", "use tiles with the 3 bands the model was trained on")])
def test_tiles_with_more_bands_get_the_advice_their_command_can_follow(tmp_path, random_checkpoint, command, advice):
    pytest.importorskip("onnxruntime")
    args = COMMANDS[command](tiles(tmp_path / "four", 4, "tif"), random_checkpoint, tmp_path)
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1 and "has 4 bands but the checkpoint expects 3" in result.output, result.output
    assert advice in result.output and ("--bands" in result.output) == (command == "predict")
