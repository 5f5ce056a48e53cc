"""The GeoTIFF tile-grid checks of test_predict_geotiff.py on small scenes made here with rasterio, so they
also run on a fresh clone without ../shared/data: footprint tiles, alignment with an independent warp onto
the tile grid, no data, and a uint16 scene with an alpha band and a band choice."""

from __future__ import annotations

from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
import shapely
import torch
from PIL import Image
from pyproj import Transformer
from rasterio.features import shapes
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds, transform_geom
from shapely.geometry import box, shape
from test_predict_geotiff import warp_agreement
from torch import nn

from robosat_effnet.data.raster import footprint_tiles
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.predict import predict_geotiff
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")
ZOOM = 16  # about 600 m tiles at this latitude: a handful of tiles for a 2 km x 1.5 km scene


def pointwise_model(in_channels: int = 3) -> tuple[nn.Module, ModelSpec]:
    """Class 1 where the first band is brighter than the last: each output pixel depends on that pixel only."""
    conv = nn.Conv2d(in_channels, 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[1, 0], conv.weight[1, in_channels - 1] = 1.0, -1.0
        conv.bias.zero_()
    return conv, ModelSpec(in_channels=in_channels, tile_size=64)


def blocky(rng: np.random.Generator, count: int, height: int, width: int, low: int, high: int) -> np.ndarray:
    """Bands of 10 x 10 px blocks of random values: bilinear resampling changes a pixel's class only at block
    edges."""
    coarse = rng.integers(low, high, (count, height // 10 + 1, width // 10 + 1))
    return np.kron(coarse, np.ones((1, 10, 10), coarse.dtype))[:, :height, :width]


@pytest.fixture(scope="module")
def utm_scene(tmp_path_factory) -> Path:
    """200 x 150 px of 10 m in UTM 36N (near Kampala), uint8 RGB, nodata 0 in a cut-off corner as in the
    rotated borders of real scenes."""
    path = tmp_path_factory.mktemp("utm") / "scene.tif"
    data = blocky(np.random.default_rng(0), 3, 150, 200, 1, 256).astype(np.uint8)
    rows, cols = np.mgrid[0:150, 0:200]
    data[:, rows + cols < 70] = 0
    profile = dict(driver="GTiff", width=200, height=150, count=3, dtype="uint8", crs="EPSG:32636", nodata=0,
                   transform=from_origin(452000.0, 38800.0, 10.0, 10.0))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.fixture(scope="module")
def utm_masks(utm_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("utm-masks") / "masks"
    # The plain argmax (threshold 0): these tests are about where pixels land, and compare with warp_agreement's.
    return predict_geotiff(pointwise_model(), utm_scene, out, zoom=ZOOM, progress=False, threshold=0), out


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "P"
        return np.asarray(im)


def test_generated_scene_writes_the_footprint_tiles_that_hold_data(utm_scene, utm_masks):
    result, out = utm_masks
    with rasterio.open(utm_scene) as src:
        footprint = set(mercantile.tiles(*transform_bounds(src.crs, "EPSG:4326", *src.bounds), ZOOM))
        assert set(footprint_tiles(src, ZOOM, 1000)) == footprint
        # Independently: the scene's data area as polygons, in web mercator.
        polygons = [shape(transform_geom(src.crs, "EPSG:3857", geom))
                    for geom, value in shapes(src.dataset_mask(), transform=src.transform) if value]
    data = shapely.union_all(polygons)
    left, _, right, _ = mercantile.xy_bounds(next(iter(footprint)))
    pixel = (right - left) / 64
    expected = {t for t in footprint if box(*mercantile.xy_bounds(t)).intersection(data).area > 0}
    sure = {t for t in footprint if box(*mercantile.xy_bounds(t)).intersects(data.buffer(-pixel))}
    written = set(tile_files(out))
    assert len(footprint) >= 4 and sure <= written <= expected and len(footprint) > len(written)
    assert result.written == len(written) and result.empty == len(footprint) - len(written)


def test_generated_scene_tiles_line_up_with_an_independent_warp_to_the_tile_grid(utm_scene, utm_masks):
    """Each tile equals the model applied to rasterio.warp.reproject of the scene onto the tile's mercantile
    bounds grown by the 32 px border; pixels outside the scene or under nodata are 255."""
    _, out = utm_masks
    model, spec = pointwise_model()
    agreement, nodata = warp_agreement(utm_scene, out, model, spec)
    assert len(agreement) >= 3
    assert min(agreement) > 0.97 and np.mean(nodata) > 0.97, (agreement, nodata)


@pytest.mark.parametrize("max_value", [None, 20000.0])
def test_generated_uint16_scene_with_alpha_and_band_choice(tmp_path, max_value):
    """4 bands uint16 (blue, green, red, alpha) in EPSG:4326: bands 3, 2, 1 chosen, alpha is the data mask,
    values scaled by the checkpoint's max_value (65535 without one)."""
    height, width, res = 60, 80, 1e-4  # scene pixels about 2.3 tile pixels wide at zoom 17
    rng = np.random.default_rng(1)
    data = np.zeros((4, height, width), np.uint16)
    data[:3] = rng.integers(300, 60000, (3, height, width))
    data[3] = 65535
    data[3, :, :20] = 0  # the western quarter has no data
    profile = dict(driver="GTiff", width=width, height=height, count=4, dtype="uint16", crs="EPSG:4326",
                   transform=from_origin(32.58, 0.35, res, res), photometric="RGB", alpha="YES")
    scene = tmp_path / "u16.tif"
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(data)
        dst.colorinterp = [rasterio.enums.ColorInterp.blue, rasterio.enums.ColorInterp.green,
                           rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.alpha]
    model, spec = pointwise_model()
    spec.max_value = max_value
    result = predict_geotiff((model, spec), scene, tmp_path / "masks", zoom=17, bands=[3, 2, 1],
                             progress=False, resampling="nearest", threshold=0)  # the argmax, as `expected` below
    masks = tile_files(tmp_path / "masks")
    assert result.written == len(masks) >= 2
    # Independently: the scene pixel under each tile pixel centre (pyproj), class 1 where normalised red
    # (band 3) > normalised blue (band 1); only centres clear of a scene pixel's edge, where nearest neighbour
    # could go either way.
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    agree, nodata, counted = [], [], []
    for tile, path in masks.items():
        got = read_png(path)
        left, bottom, right, top = mercantile.xy_bounds(tile)
        step = (right - left) / 64
        x, y = np.meshgrid(left + (np.arange(64) + 0.5) * step, top - (np.arange(64) + 0.5) * step)
        lon, lat = to_lonlat.transform(x, y)
        col, row = (lon - 32.58) / res, (0.35 - lat) / res
        clear = (np.abs(col - np.round(col)) > 0.05) & (np.abs(row - np.round(row)) > 0.05)
        r, c = np.floor(row).astype(int), np.floor(col).astype(int)
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        rc, cc = np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)
        valid = inside & (data[3][rc, cc] > 0)
        scale = max_value or 65535
        red, blue = data[2][rc, cc] / scale, data[0][rc, cc] / scale
        mean, std = ModelSpec().mean, ModelSpec().std  # the model compares normalised channels 0 and 2
        expected = ((red - mean[0]) / std[0] > (blue - mean[2]) / std[2]).astype(np.uint8)
        keep = clear & valid
        agree.append((got[keep] == expected[keep]).mean())
        nodata.append(((got == 255) == ~valid)[clear].mean())
        counted.append(keep.sum())
    assert sum(counted) > 1000 and min(agree) > 0.995 and min(nodata) > 0.995, (agree, nodata)
    assert any((read_png(p) == 255).any() for p in masks.values())
    assert any((read_png(p) == 1).any() for p in masks.values()) and any((read_png(p) == 0).any()
                                                                          for p in masks.values())


def test_scene_windows_past_the_edge_see_the_mirrored_scene(tmp_path):
    """The last window of `--geotiff` reaches past the scene: the network sees the scene mirrored there (as in
    one window over the whole scene, whole-tile training never showed it a flat fill), while those pixels stay
    no data; only no-data pixels inside the scene get the mean colour (0 once normalised)."""
    from rasterio.windows import Window

    from robosat_effnet.predict.mosaic import SceneWindows

    rng = np.random.default_rng(0)
    pixels = rng.integers(1, 255, (3, 40, 50)).astype(np.uint8)
    pixels[:, 5, 7] = 0  # one no-data pixel inside the scene
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=50, height=40, count=3, dtype="uint8", crs="EPSG:32636",
                       transform=from_origin(500000, 100000, 0.3, 0.3), nodata=0) as dst:
        dst.write(pixels)
    spec = ModelSpec()
    item = SceneWindows(path, [0], [0, 32], 32, [1, 2, 3], spec)[1]  # cols 32..63 of a 50 px wide scene
    assert item["window"] == Window(32, 0, 18, 32)
    inside = np.moveaxis(pixels[:, :32, 32:50], 0, -1)
    mirrored = np.pad(inside, ((0, 0), (0, 14), (0, 0)), mode="reflect")
    expected = to_tensor(mirrored, spec.mean, spec.std)
    assert torch.equal(item["image"], expected)
    assert item["valid"][:, :18].all() and not item["valid"][:, 18:].any()
    first = SceneWindows(path, [0], [0, 32], 32, [1, 2, 3], spec)[0]
    assert (first["image"][:, 5, 7] == 0).all() and not first["valid"][5, 7]
