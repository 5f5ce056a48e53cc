"""`rs-effnet view` on bad values and files: one line and a non-zero exit, never a traceback or a broken page."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from robosat_effnet.cli import main
from robosat_effnet.cli.view import cli as view_cli
from robosat_effnet.io import write_image, write_mask

Z, X, Y = 18, 152600, 129350
FLOAT_OPTIONS = [p.opts[0] for p in view_cli.params if isinstance(p.type, click.types.FloatParamType)]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    write_image(folder / str(Z) / str(X) / f"{Y}.png", np.full((64, 64, 3), 90, np.uint8))
    return folder


def _one_line(result, code: int, *words: str) -> None:
    """Exit `code` and one line naming `words` (a usage error, exit 2, comes after click's usage lines)."""
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    if code == 2:
        lines = [line for line in lines if line.startswith("Error")]
    assert len(lines) == 1 and all(word in lines[0] for word in words), result.output
    assert "Traceback" not in result.output


def test_every_float_option_is_known():
    assert sorted(FLOAT_OPTIONS) == ["--match-iou", "--opacity"]  # a new one joins the test below


@pytest.mark.parametrize("value", ["nan", "NaN", "-nan", "inf", "-inf", "1e999"])
@pytest.mark.parametrize("option", FLOAT_OPTIONS)
def test_float_options_refuse_what_is_not_a_finite_number_in_range(images, tmp_path, option, value):
    """nan compares false with both bounds of a range, so click let it through: opacity NaN went into the page."""
    out = tmp_path / "page"
    result = CliRunner().invoke(main, ["view", str(images), "--out", str(out), "--no-serve", f"{option}={value}"])
    _one_line(result, 2, option)
    assert not out.exists()


@pytest.mark.filterwarnings("error")  # a warning printed before the error line is a second line
@pytest.mark.parametrize("zxy", ["31/0/0", "5000/0/0", f"{Z}/{2**Z}/0", f"{Z}/0/{2**Z}", f"{Z}/0/{10**30}",
                                 "0/1/0", f"{Z}/{10**30}/0"])
def test_tiles_outside_the_web_mercator_grid_are_refused(tmp_path, zxy):
    """A folder name that is a number but no tile (x, y beyond 2^z, zoom beyond 30): it used to overflow
    (a traceback) or place imagery far outside the world."""
    z, x, y = zxy.split("/")
    folder = tmp_path / "images"
    write_image(folder / str(Z) / str(X) / f"{Y}.png", np.full((8, 8, 3), 90, np.uint8))
    write_image(folder / z / x / f"{y}.png", np.full((8, 8, 3), 90, np.uint8))
    result = CliRunner().invoke(main, ["view", str(folder), "--out", str(tmp_path / "page"), "--no-serve",
                                       "--quiet"])
    _one_line(result, 1, str(Path(z) / x / f"{y}.png"), "not a tile")


def _claim_size(path: Path, width: int, height: int) -> None:
    """Rewrite a PNG's header to claim another size (what a decoder reads before any pixel)."""
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_a_decompression_bomb_mask_is_one_line(images, tmp_path):
    """A mask tile claiming 60000 x 60000 px: Pillow refuses it before decoding, with its own exception."""
    masks = tmp_path / "masks"
    mask = masks / str(Z) / str(X) / f"{Y}.png"
    write_mask(mask, np.zeros((8, 8), np.uint8), ["denim", "orange"])
    _claim_size(mask, 60000, 60000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(mask)
    result = CliRunner().invoke(main, ["view", str(images), "--masks", str(masks), "--out", str(tmp_path / "page"),
                                       "--no-serve", "--quiet"])
    _one_line(result, 1, str(mask))
