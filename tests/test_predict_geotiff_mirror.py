"""Slippy-map tiles that hang over a GeoTIFF scene's edge: the network sees the scene mirrored there, not a
flat fill (whose hard edge it read as outlines along the scene's edges), while the masks keep those pixels as
no data; the scene's own no data, mirrored or not, stays the mean colour (0 once normalised)."""

from __future__ import annotations

from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
import torch
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from test_predict_geotiff_generated import blocky, read_png
from torch import nn

from robosat_effnet.data.raster import footprint_tiles
from robosat_effnet.data.transforms import fill_nodata, to_tensor
from robosat_effnet.data.warp import tile_transform
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.predict import predict_geotiff
from robosat_effnet.predict.geotiff import WarpedTiles
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")
SPEC = ModelSpec(in_channels=3, tile_size=64)
UTM = dict(crs="EPSG:32636", transform=from_origin(452000.0, 38800.0, 10.0, 10.0))  # 10 m px near Kampala


def write_scene(path: Path, data: np.ndarray, crs: str, transform) -> Path:
    """A uint8 GeoTIFF of `data` (bands x rows x cols) with nodata 0."""
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=len(data),
                       dtype="uint8", crs=crs, transform=transform, nodata=0) as dst:
        dst.write(data)
    return path


def fold(index: np.ndarray, size: int) -> np.ndarray:
    """Pixel indices past a scene `size` px wide, mirrored as np.pad(mode="reflect") does (one fold)."""
    index = np.abs(index)
    return np.where(index > size - 1, 2 * (size - 1) - index, index)


def test_on_the_tile_grid_the_context_past_the_edge_is_the_reflect_padded_scene(tmp_path):
    """A web-mercator scene on the tile grid starts 60 px right of and 5 px below the window's corner (tile
    64 px + 16 px border): the input is exactly np.pad(scene, mode="reflect"), as in the `--geotiff` windows,
    also where the mirror reaches past the window (col 0 mirrors window col 120); a no-data pixel and its
    mirror get the mean colour, and the pixels outside the scene stay no data."""
    tile = mercantile.Tile(309600, 261640, 19)
    left, _, right, top = mercantile.xy_bounds(tile)
    res = (right - left) / 64
    rng = np.random.default_rng(0)
    pixels = rng.integers(1, 256, (3, 120, 150)).astype(np.uint8)
    pixels[:, 20, 3] = 0  # window (25, 63); its mirror across the left edge is window (25, 57)
    scene = write_scene(tmp_path / "scene.tif", pixels, "EPSG:3857", from_origin(left + 44 * res, top + 11 * res,
                                                                               res, res))
    item = WarpedTiles(scene, [tile], 64, 16, [1, 2, 3], SPEC, Resampling.bilinear)[0]
    pad = ((5, 0), (60, 0))
    mirrored = np.pad(np.moveaxis(pixels, 0, -1), (*pad, (0, 0)), mode="reflect")[:96, :96]
    has_data = np.pad(pixels[0] > 0, pad, mode="reflect")[:96, :96]
    expected = fill_nodata(to_tensor(mirrored, SPEC.mean, SPEC.std), has_data)
    torch.testing.assert_close(item["image"], expected, atol=1e-6, rtol=0)
    assert (item["image"][:, 25, [57, 63]] == 0).all() and (item["image"][:, :, :60] != 0).any(0).float().mean() > 0.99
    valid = item["valid"].numpy()  # the tile's 64 x 64 px: the scene starts at its column 44
    assert not valid[:, :44].any() and not valid[9, 47] and valid[:, 44:].sum() == 64 * 20 - 1


def test_a_reprojected_scene_is_mirrored_across_its_tilted_edges(tmp_path):
    """A UTM scene (tilted edges on the tile grid) with no data in a cut-off corner: in every partly covered
    tile, the input outside the scene is the scene pixel mirrored across its edge (found here independently:
    pyproj to scene pixels, indices folded as np.pad does), the mean colour where that pixel has no data, and
    the corner's own no data is the mean colour."""
    data = blocky(np.random.default_rng(0), 3, 150, 200, 1, 256).astype(np.uint8)
    rows, cols = np.mgrid[0:150, 0:200]
    data[:, rows + cols < 70] = 0
    scene = write_scene(tmp_path / "utm.tif", data, **UTM)
    with rasterio.open(scene) as src:
        tiles = footprint_tiles(src, 16, 100)
    dataset = WarpedTiles(scene, tiles, 64, 32, [1, 2, 3], SPEC, Resampling.bilinear)
    expected_all = to_tensor(np.moveaxis(data, 0, -1), SPEC.mean, SPEC.std)
    expected_all[:, data[0] == 0] = 0
    to_utm = Transformer.from_crs("EPSG:3857", "EPSG:32636", always_xy=True)
    agree, counted, corner = [], 0, []
    for index, tile in enumerate(tiles):
        image = dataset[index]["image"]
        if image is None:
            continue
        transform, side = tile_transform(tile, 64, 32), 64 + 2 * 32
        r, c = np.mgrid[0:side, 0:side]
        east, north = to_utm.transform(transform.c + (c + 0.5) * transform.a, transform.f + (r + 0.5) * transform.e)
        col, row = np.floor((east - 452000.0) / 10).astype(int), np.floor((38800.0 - north) / 10).astype(int)
        outside = (col < 0) | (col >= 200) | (row < 0) | (row >= 150)
        mc, mr = fold(col, 200), fold(row, 150)
        clear = outside & (mc % 10 >= 2) & (mc % 10 <= 7) & (mr % 10 >= 2) & (mr % 10 <= 7)  # inside one block
        expected = expected_all[:, mr, mc]
        agree.append(torch.isclose(image, expected, atol=1e-4).all(0).numpy()[clear])
        counted += clear.sum()
        nodata = ~outside & (np.clip(row, 0, 149) + np.clip(col, 0, 199) < 68)  # clear of the cut's edge
        corner.append((image[:, nodata] == 0).all().item() if nodata.any() else True)
    agree = np.concatenate(agree)
    assert counted > 20000 and agree.mean() > 0.995 and all(corner), (counted, agree.mean(), corner)


class EdgeNet(nn.Module):
    """Class 1 where the first band's 3 x 3 Laplacian exceeds 0.1 (normalised units) in magnitude: any step
    of the input, none on a smooth ramp (uint8 steps give at most 2 / 255 / 0.229 = 0.034)."""

    def __init__(self):
        super().__init__()
        self.laplacian = nn.Conv2d(3, 2, 3, padding=1, bias=False)
        self.head = nn.Conv2d(2, 2, 1)
        kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        with torch.no_grad():
            self.laplacian.weight.zero_()
            self.laplacian.weight[0, 0], self.laplacian.weight[1, 0] = kernel, -kernel
            self.head.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1))
            self.head.bias.copy_(torch.tensor([0.1, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.laplacian(x)))  # relu(l) + relu(-l) = |l|


def test_edges_of_a_smooth_scene_grow_no_false_outlines(tmp_path):
    """A smooth UTM scene (a gentle ramp, far from the mean colour) predicted into tiles with an edge
    detector: a flat fill beside it is a step, found along every edge of the scene; the mirrored scene is
    not, so no tile has a single class-1 pixel, while outside the scene the masks still say no data."""
    rows, cols = np.mgrid[0:150, 0:200]
    ramp = (200 + 0.2 * cols + 0.1 * rows).round().astype(np.uint8)
    scene = write_scene(tmp_path / "ramp.tif", np.stack([ramp, ramp, ramp]), **UTM)
    result = predict_geotiff((EdgeNet(), SPEC), scene, tmp_path / "masks", zoom=16, progress=False)
    masks = {tile: read_png(path) for tile, path in tile_files(tmp_path / "masks").items()}
    assert result.written == len(masks) >= 10
    ones = sum(int((mask == 1).sum()) for mask in masks.values())
    assert ones == 0 and sum(int((mask == 0).sum()) for mask in masks.values()) > 20000
    assert sum(int((mask == 255).sum()) for mask in masks.values()) > 10000
