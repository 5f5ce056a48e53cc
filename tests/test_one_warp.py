"""One scene-to-tile warp (data.warp): predicting a GeoTIFF shows the network exactly the pixels of the tiles
`rs-effnet tile` cuts from it, so a model trained on those tiles is not shown other numbers when it predicts
the scene (train/test skew).

Both paths are run on the same scene: `predict_geotiff(scene)` warps each tile with its border in one piece;
`predict_tiles(tile_geotiff(scene))` reads the tiles `tile` wrote and grows each by the pixels of its
neighbouring tiles. A recording model keeps every input batch. Wherever the scene has data the two inputs are
equal bit for bit, border included; they may differ only where it has none (the GeoTIFF path shows the scene
mirrored across its edge and the mean colour, the tile path the mirrored tile and the 0 `tile` stores).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.transform import from_origin
from torch import nn

from robosat_effnet.data.warp import DEFAULT_RESAMPLING, RESAMPLINGS
from robosat_effnet.io import read_alpha
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.predict import predict_geotiff, predict_tiles
from robosat_effnet.predict.options import PredictOptions
from robosat_effnet.prepare.tile import tile_geotiff
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")
GEOTIFF = Path(__file__).parents[1] / ".." / "shared" / "data" / "geotiff"
SIZE = 64  # px per tile; with a 16 px border the network sees 96 px: multiples of 32, so nothing is padded


class Recorder(nn.Module):
    """A pointwise 2-class model (class 1 where band 1 beats band 3) that keeps every batch it is shown."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[1, 0], self.conv.weight[1, 2] = 1.0, -1.0
            self.conv.bias.zero_()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.extend(x.detach().clone())
        return self.conv(x)


def utm_scene(path: Path, res: float, width: int, height: int) -> Path:
    """Random uint8 RGB, one value per pixel (any resampling difference shows), in UTM 36N near Kampala;
    nodata 0 in a cut-off corner, as in the rotated borders of real scenes."""
    data = np.random.default_rng(1).integers(1, 256, (3, height, width)).astype(np.uint8)
    rows, cols = np.mgrid[0:height, 0:width]
    data[:, rows + cols < min(width, height) // 2] = 0
    profile = dict(driver="GTiff", width=width, height=height, count=3, dtype="uint8", crs="EPSG:32636", nodata=0,
                   transform=from_origin(452000.0, 38800.0, res, res))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


SCENES = {
    # 10 m pixels onto z16's ~9.5 m: upsampling, the kernel's scale plays no part
    "utm-10m": (lambda p: utm_scene(p, 10.0, 200, 150), 16),
    # 1 m pixels onto z17's ~4.8 m: downsampling, the kernel spans several scene pixels
    "utm-1m": (lambda p: utm_scene(p, 1.0, 1000, 800), 17),
    # rasterio's Landsat scene, UTM 18N, 300 m pixels onto z10's ~560 m: downsampling, rotated no-data borders
    "rgb-byte": (lambda p: GEOTIFF / "RGB.byte.tif", 10),
}


def window_validity(tiles: dict[mercantile.Tile, Path], tile: mercantile.Tile, border: int) -> np.ndarray:
    """Which pixels of `tile` grown by `border` hold scene data, from the alpha of the tiles `tile` wrote (a tile
    not written holds none)."""
    side = SIZE + 2 * border
    valid = np.zeros((side, side), bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            path = tiles.get(mercantile.Tile(tile.x + dx, tile.y + dy, tile.z))
            if path is None:
                continue
            alpha = read_alpha(path)
            alpha = np.ones((SIZE, SIZE), bool) if alpha is None else alpha
            y0, x0 = border + dy * SIZE, border + dx * SIZE
            ys, xs = slice(max(y0, 0), min(y0 + SIZE, side)), slice(max(x0, 0), min(x0 + SIZE, side))
            valid[ys, xs] = alpha[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return valid


# (scene, resampling, border, values allowed 1 DN off). Not all are 0: a warped value can land on a rounding tie
# (exactly k + 0.5 in float64: RGB.byte's band 1 at one pixel of tile 10/291/440 is 15.5), and the last bits of
# the window's origin, which differ between a tile and a window around its neighbour, then round it either way.
# Measured over the whole of RGB.byte (border 16): bilinear z10 1 value of 753,543; z9 and z11 (3,018,618
# values), nearest and cubic z10: none. A tile without a border is always read alone by both paths: exact.
CASES = [
    ("utm-10m", "nearest", 0, 0), ("utm-10m", "bilinear", 0, 0), ("utm-10m", "nearest", 16, 0),
    ("utm-10m", "bilinear", 16, 0), ("utm-1m", "bilinear", 0, 0), ("utm-1m", "bilinear", 16, 0),
    ("utm-1m", "nearest", 16, 0), ("utm-1m", "cubic", 16, 0),
    ("utm-1m", None, 16, 0),  # neither path told: the defaults must agree too
    ("rgb-byte", "bilinear", 0, 0), ("rgb-byte", "bilinear", 16, 1), ("rgb-byte", "nearest", 16, 0),
]


def levels(image: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """A normalised uint8 input back as the 0..255 values it was made from."""
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in (spec.mean, spec.std))
    return torch.round((image * std + mean) * 255)


@pytest.mark.parametrize("scene_name, resampling, border, ties", CASES)
def test_predicting_a_scene_shows_the_network_the_pixels_of_its_tiles(tmp_path, scene_name, resampling, border,
                                                                       ties):
    make, zoom = SCENES[scene_name]
    scene = make(tmp_path / "scene.tif")
    if not scene.is_file():
        pytest.skip("shared test data not available")
    options = {} if resampling is None else {"resampling": resampling}
    spec = ModelSpec(in_channels=3, tile_size=SIZE)
    report = tile_geotiff(scene, tmp_path / "tiles", zoom, size=SIZE, progress=False, **options)
    direct, tiled = Recorder(), Recorder()
    common = dict(border=border, batch_size=1, device="cpu", progress=False, threshold=0)
    predict_geotiff((direct, spec), scene, tmp_path / "direct", zoom, tile_size=SIZE, **options, **common)
    predict_tiles((tiled, spec), tmp_path / "tiles", tmp_path / "tiled", **common)

    tiles = tile_files(tmp_path / "tiles")
    assert sorted(tiles) == sorted(report.written) and report.partial  # partly covered tiles are compared too
    # The order each path predicts in (batches of 1): the GeoTIFF's tiles sorted by (z, x, y); the folder's in
    # columns of 8, rows inside.
    direct_order = sorted(tiles, key=lambda t: (t.z, t.x, t.y))
    tiled_order = sorted(tiles, key=lambda t: (t.z, t.x // 8, t.y, t.x))
    assert len(direct.inputs) == len(tiled.inputs) == len(tiles)  # the GeoTIFF path predicts the tiles `tile` cut
    direct_inputs = dict(zip(direct_order, direct.inputs, strict=True))
    tiled_inputs = dict(zip(tiled_order, tiled.inputs, strict=True))
    whole, off = 0, 0
    for tile in tiles:
        a, b = direct_inputs[tile], tiled_inputs[tile]
        assert a.shape == b.shape == (3, SIZE + 2 * border, SIZE + 2 * border)
        valid = torch.from_numpy(window_validity(tiles, tile, border))
        if not torch.equal(a[:, valid], b[:, valid]):
            steps = (levels(a, spec) - levels(b, spec))[:, valid].abs()
            assert steps.max() == 1, (tile, steps.max())
            off += int((steps > 0).sum())
        whole += bool(valid.all())
    assert off <= ties and whole >= 1  # at least one tile's whole input, border included, is compared
    if ties:
        return  # a tie may flip a mask pixel too
    for path in tile_files(tmp_path / "direct").values():  # and so the masks are the same
        twin = tmp_path / "tiled" / path.relative_to(tmp_path / "direct")
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(twin))), path
    assert sorted(tile_files(tmp_path / "direct")) == sorted(tile_files(tmp_path / "tiled")) == sorted(tiles)


def test_tile_and_predict_share_one_resampling_default_and_choice():
    from robosat_effnet.cli.predict import cli as predict_cli
    from robosat_effnet.cli.tile import cli as tile_cli

    for command in (tile_cli, predict_cli):
        [option] = [p for p in command.params if p.name == "resampling"]
        assert option.default == DEFAULT_RESAMPLING and tuple(option.type.choices) == RESAMPLINGS, command.name
    assert inspect.signature(tile_geotiff).parameters["resampling"].default == DEFAULT_RESAMPLING
    assert PredictOptions().resampling == DEFAULT_RESAMPLING  # predict_geotiff's options


@pytest.mark.parametrize("cut", ["tile", "predict"])
def test_an_unknown_resampling_is_one_error_listing_the_choices_before_anything_is_written(tmp_path, cut):
    from robosat_effnet.errors import ConfigError

    scene = utm_scene(tmp_path / "scene.tif", 10.0, 200, 150)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="unknown resampling 'bogus'; use one of nearest, bilinear, cubic"):
        if cut == "tile":
            tile_geotiff(scene, out, 16, size=SIZE, resampling="bogus", progress=False)
        else:
            predict_geotiff((Recorder(), ModelSpec(tile_size=SIZE)), scene, out, 16, resampling="bogus",
                            device="cpu", progress=False)
    assert not out.exists()
