"""`rs-effnet predict` on the command line: defaults, outputs, usage and input errors, real scenes."""

from __future__ import annotations

import shutil
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image

from robosat_effnet.cli import main
from robosat_effnet.tiles import tile_files, tile_path

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "geotiff").is_dir(), reason="shared test data not available")


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: str):
    return CliRunner().invoke(main, ["predict", *map(str, args)])


def test_defaults_find_best_checkpoint_from_model_toml_and_say_where_they_wrote(tmp_path, tiles, random_checkpoint,
                                                                               monkeypatch):
    (tmp_path / "run").mkdir()
    shutil.copy(random_checkpoint, tmp_path / "run" / "best.pth")
    (tmp_path / "model.toml").write_text('[common]\ncheckpoint = "run"\nimage_size = 64\n')
    monkeypatch.chdir(tmp_path)
    result = invoke("tiles", "--quiet")
    assert result.exit_code == 0, result.output
    assert f"wrote 2 mask tiles to {(tmp_path / 'tiles-masks').resolve()}" in result.output
    assert set(tile_files(tmp_path / "tiles-masks")) == set(tile_files(tiles))
    again = invoke("tiles", "--quiet")
    assert again.exit_code == 0 and "wrote 0 mask tiles" in again.output and "2 already there" in again.output


def test_probs_and_tta_on_the_command_line(tmp_path, tiles, random_checkpoint):
    result = invoke(tiles, tmp_path / "probs", "--checkpoint", random_checkpoint, "--probs", "--tta", "--quiet",
                    "--batch-size", "2", "--workers", "0", "--border", "0")
    assert result.exit_code == 0, result.output
    for path in tile_files(tmp_path / "probs").values():
        with Image.open(path) as im:
            assert im.mode == "P" and im.size == (64, 64)


@pytest.mark.parametrize("args, message", [
    (["--zoom", "3"], "apply to a GeoTIFF"),
    (["--bands", "a,b"], "not a comma-separated list"),
    (["--shard", "2/2"], "need 0 <= i < n"),
    (["--shard", "x"], "must look like i/n"),
])
def test_usage_errors_exit_2(tiles, random_checkpoint, args, message):
    result = invoke(tiles, "--checkpoint", random_checkpoint, *args)
    assert result.exit_code == 2 and message in result.output


def test_bad_inputs_fail_with_one_clear_line(tmp_path, tiles, random_checkpoint, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = invoke(tiles)
    assert missing.exit_code == 1 and "no --checkpoint given and no model config" in missing.output
    wrong = invoke(tiles, "--checkpoint", tmp_path / "nope.pth")
    assert wrong.exit_code == 1 and "nope.pth does not exist" in wrong.output
    bands = invoke(tiles, "--checkpoint", random_checkpoint, "--bands", "1,2", "--quiet")
    assert bands.exit_code == 1 and "has 2 bands but the checkpoint expects 3" in bands.output
    absent = invoke(tiles, "--checkpoint", random_checkpoint, "--bands", "1,2,5", "--quiet")
    assert absent.exit_code == 1 and "104100.png has 3 band(s) but bands [1, 2, 5]" in absent.output
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 64, 64), np.uint8))
    unplaced = invoke(nocrs, tmp_path / "n", "--checkpoint", random_checkpoint, "--zoom", "10", "--quiet")
    assert unplaced.exit_code == 1 and "has no CRS" in unplaced.output and not (tmp_path / "n").exists()
    assert not (tmp_path / "tiles-masks").exists()
    tile_path(tiles, mercantile.Tile(70701, 104101, 18), "png").write_bytes(b"broken")
    broken = invoke(tiles, "--checkpoint", random_checkpoint, "--quiet")
    assert broken.exit_code == 1 and "1 tile(s) could not be read" in broken.output
    assert "Traceback" not in broken.output and len(tile_files(tmp_path / "tiles-masks")) == 2
    for result in (missing, wrong, bands, absent, unplaced, broken):
        assert result.output.count("Error:") == 1 and result.output.strip().count("\n") <= 1


@needs_data
def test_geotiff_scenes_on_the_command_line(tmp_path, random_checkpoint):
    scene = DATA / "geotiff" / "RGBA.uint16.tif"
    result = invoke(scene, tmp_path / "u16", "--checkpoint", random_checkpoint, "--zoom", "16", "--bands", "1,2,3",
                    "--geotiff", tmp_path / "mask.tif", "--window", "256", "--quiet")
    assert result.exit_code == 0, result.output
    assert "wrote 4 mask tiles" in result.output and len(tile_files(tmp_path / "u16")) == 4
    with rasterio.open(tmp_path / "mask.tif") as mask, rasterio.open(scene) as src:
        assert (mask.crs, mask.transform, mask.shape) == (src.crs, src.transform, src.shape)
        # no data exactly where the alpha band says so
        np.testing.assert_array_equal(mask.read(1) == 255, src.read(4) == 0)

    # neither --zoom nor --geotiff
    assert invoke(scene, tmp_path / "x", "--checkpoint", random_checkpoint).exit_code == 2
    corrupt = invoke(DATA / "geotiff" / "corrupt.tif", tmp_path / "c", "--checkpoint", random_checkpoint,
                     "--zoom", "18", "--border", "0", "--quiet")
    assert corrupt.exit_code == 1 and "Traceback" not in corrupt.output
    assert "corrupt.tif is damaged: cannot read pixel rows 512-1023, columns 512-1023" in corrupt.output
    limit = invoke(DATA / "geotiff" / "RGB.byte.tif", tmp_path / "big", "--checkpoint", random_checkpoint,
                   "--zoom", "16", "--max-tiles", "1000")
    assert limit.exit_code == 1 and "more than the maximum 1,000;" in limit.output and not (tmp_path / "big").exists()


@pytest.mark.parametrize("args, words", [
    (["--window", "100"], ["--window", "not a multiple of 32"]),
    (["--window", "64"], ["--overlap", "more than half of --window 64"]),  # the default overlap is 64
])
def test_window_and_overlap_are_usage_errors(tmp_path, random_checkpoint, args, words):
    (tmp_path / "tiles").mkdir()
    result = invoke(tmp_path / "tiles", tmp_path / "out", "--checkpoint", random_checkpoint, *args)
    assert result.exit_code == 2 and all(w in result.output for w in words), result.output
    assert not (tmp_path / "out").exists()
