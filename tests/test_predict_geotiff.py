"""Predicting GeoTIFF scenes: tile grid and data footprint against mercantile/rasterio, CRSs, bands,
damaged files, limits, and the georeferenced mask with blended sliding windows."""

from __future__ import annotations

from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
import shapely
import torch
from PIL import Image
from rasterio.features import shapes
from rasterio.transform import from_bounds, from_origin
from rasterio.warp import Resampling, reproject, transform_geom
from shapely.geometry import box, shape
from torch import nn

from conftest import synthetic_tile
from robosat_effnet.data.raster import footprint_tiles
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.errors import RasterError, TooManyTilesError
from robosat_effnet.models.checkpoint import ModelSpec, load_model
from robosat_effnet.predict import Predictor, predict_geotiff, predict_mask_geotiff
from robosat_effnet.predict.mosaic import taper, window_offsets
from robosat_effnet.tiles import tile_files

GEOTIFF = Path(__file__).parents[1] / ".." / "shared" / "data" / "geotiff"
needs_data = pytest.mark.skipif(not GEOTIFF.is_dir(), reason="shared test data not available")


pytestmark = pytest.mark.usefixtures("one_thread")


def pointwise_model(in_channels: int = 3) -> tuple[nn.Module, ModelSpec]:
    """A 1x1-conv 'network': its output at a pixel depends on that pixel only, so results can be
    recomputed independently from any correctly placed image."""
    conv = nn.Conv2d(in_channels, 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[1, 0], conv.weight[1, in_channels - 1] = 1.0, -1.0  # class 1 where red > blue
        conv.bias.zero_()
    return conv, ModelSpec(in_channels=in_channels, tile_size=64)


def erode(mask: np.ndarray, px: int = 2) -> np.ndarray:
    """Pixels of `mask` whose (2 px + 1)^2 neighbourhood is all in `mask`."""
    padded = np.pad(mask, px, constant_values=False)
    out = np.ones_like(mask)
    for dy in range(2 * px + 1):
        for dx in range(2 * px + 1):
            out &= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return out


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "P"
        return np.asarray(im)


@pytest.fixture(scope="module")
def rgb_byte_zoom9(tmp_path_factory):
    out = tmp_path_factory.mktemp("rgb") / "masks"
    # The plain argmax (threshold 0): these tests are about where pixels land, and compare with warp_agreement's.
    result = predict_geotiff(pointwise_model(), GEOTIFF / "RGB.byte.tif", out, zoom=9, progress=False, threshold=0)
    return result, out


@needs_data
def test_rgb_byte_writes_exactly_the_footprint_tiles_that_hold_data(rgb_byte_zoom9):
    result, out = rgb_byte_zoom9
    with rasterio.open(GEOTIFF / "RGB.byte.tif") as src:
        footprint = set(mercantile.tiles(*rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds), 9))
        # Independently: the scene's data area as polygons, in web mercator.
        polygons = [shape(transform_geom(src.crs, "EPSG:3857", geom))
                    for geom, value in shapes(src.dataset_mask(), transform=src.transform) if value]
    data = shapely.union_all(polygons)
    left, _, right, _ = mercantile.xy_bounds(mercantile.Tile(0, 0, 9))
    pixel = (right - left) / 64  # one output pixel, in metres
    expected = {t for t in footprint if box(*mercantile.xy_bounds(t)).intersection(data).area > 0}
    sure = {t for t in footprint if box(*mercantile.xy_bounds(t)).intersects(data.buffer(-pixel))}
    written = set(tile_files(out))
    assert set(footprint_tiles(rasterio.open(GEOTIFF / "RGB.byte.tif"), 9, 1000)) == footprint
    assert written == expected  # measured: 14 of the 20 footprint tiles
    assert sure <= written and result.written == len(written) and result.empty == len(footprint) - len(written)


def warp_agreement(scene: Path, out: Path, model, spec) -> tuple[list[float], list[float]]:
    """Per tile of `out`: the share of pixels equal to the model applied to rasterio.warp.reproject of `scene`
    onto the tile's mercantile bounds grown by the 32 px border, and the share whose no-data (255) matches the
    reprojected dataset mask. An independent path to the tile grid, for the GeoTIFF predictor's tests."""
    agreement, nodata = [], []
    with rasterio.open(scene) as src:
        pixels, valid = src.read(), src.dataset_mask()
        for tile, path in tile_files(out).items():
            left, bottom, right, top = mercantile.xy_bounds(tile)
            res = (right - left) / 64
            dst_transform = from_bounds(left - 32 * res, bottom - 32 * res, right + 32 * res, top + 32 * res, 128, 128)
            warped = np.zeros((3, 128, 128), np.uint8)
            reproject(pixels, warped, src_transform=src.transform, src_crs=src.crs, dst_transform=dst_transform,
                      dst_crs="EPSG:3857", resampling=Resampling.bilinear, src_nodata=0, dst_nodata=0)
            mask = np.zeros((128, 128), np.uint8)
            reproject(valid, mask, src_transform=src.transform, src_crs=src.crs, dst_transform=dst_transform,
                      dst_crs="EPSG:3857", resampling=Resampling.nearest, dst_nodata=0)
            image = to_tensor(np.moveaxis(warped, 0, -1), spec.mean, spec.std)
            expected = Predictor(model, device="cpu")(image[None])[0].argmax(0)[32:96, 32:96].numpy()
            mask = mask[32:96, 32:96] > 0
            got = read_png(path)
            assert got.shape == (64, 64)
            inside = mask & (got != 255)
            agreement.append((got[inside] == expected[inside]).mean())
            nodata.append(((got == 255) == ~mask).mean())
    return agreement, nodata


@needs_data
def test_rgb_byte_tiles_line_up_with_an_independent_warp_to_the_tile_grid(rgb_byte_zoom9):
    """Each tile equals the model applied to rasterio.warp.reproject of the scene onto the tile's
    mercantile bounds (with the 32 px border), and no-data/outside pixels are 255."""
    _, out = rgb_byte_zoom9
    model, spec = pointwise_model()
    agreement, nodata = warp_agreement(GEOTIFF / "RGB.byte.tif", out, model, spec)
    # measured: agreement 1.0 on every tile; no-data pixels agree except along the scene's edge
    assert min(agreement) > 0.99 and np.mean(nodata) > 0.98, (agreement, nodata)


@needs_data
def test_wkt_crs_uint16_and_band_choice(tmp_path, rgb_byte_zoom9):
    result = predict_geotiff(pointwise_model(), GEOTIFF / "rgb1.tif", tmp_path / "wkt", zoom=9, progress=False,
                             threshold=0)  # the rule of rgb_byte_zoom9, whose tiles these are compared with
    with rasterio.open(GEOTIFF / "rgb1.tif") as src:
        assert src.crs.to_epsg() is None  # WKT without an EPSG code
    # rgb1.tif is a crop of RGB.byte.tif: its tiles are some of those, with the same pixels where both have data
    full = tile_files(rgb_byte_zoom9[1])
    crop = tile_files(tmp_path / "wkt")
    assert result.written == len(crop) > 0 and set(crop) <= set(full)
    for tile, path in crop.items():
        a, b = read_png(path), read_png(full[tile])
        both = erode((a != 255) & (b != 255))  # bilinear resampling differs along the crop's edge
        assert both.any() and (a[both] == b[both]).mean() > 0.99
    # 4 bands uint16 (blue, green, red, alpha): three chosen, alpha used as the data mask
    result = predict_geotiff(pointwise_model(), GEOTIFF / "RGBA.uint16.tif", tmp_path / "u16", zoom=17,
                             bands=[3, 2, 1], progress=False)
    masks = [read_png(p) for p in tile_files(tmp_path / "u16").values()]
    assert result.written == 10 and result.empty == 2
    assert any((m == 255).any() for m in masks) and all(set(np.unique(m)) <= {0, 1, 255} for m in masks)
    with pytest.raises(RasterError, match=r"2 band\(s\) \[1, 2\] selected but the checkpoint expects 3"):
        predict_geotiff(pointwise_model(), GEOTIFF / "RGBA.uint16.tif", tmp_path / "x", zoom=17, bands=[1, 2])
    with pytest.raises(RasterError, match="has 1 band"):
        predict_geotiff(pointwise_model(), GEOTIFF / "rgb1_fake_nir_epsg3857.tif", tmp_path / "x", zoom=9)
    assert not (tmp_path / "x").exists()


@needs_data
def test_damaged_scene_writes_only_clean_tiles_and_names_the_unreadable_area(tmp_path):
    with pytest.raises(RasterError) as error:
        predict_geotiff(pointwise_model(), GEOTIFF / "corrupt.tif", tmp_path / "out", zoom=19, border=0,
                        progress=False)
    message = str(error.value)
    assert "\n" not in message and "corrupt.tif" in message and "pixel rows 512-1023, columns 512-1023" in message
    with rasterio.open(GEOTIFF / "corrupt.tif") as src:
        bad = box(*rasterio.windows.bounds(rasterio.windows.Window(512, 512, 512, 512), src.transform))
    written = tile_files(tmp_path / "out")
    assert written, "tiles away from the damaged block should be written"
    for tile in written:  # none of them was read from the damaged block
        assert not box(*mercantile.xy_bounds(tile)).intersection(bad).area > 0
    assert not [p for p in (tmp_path / "out").rglob("*")
                if p.is_file() and p.suffix != ".png" and p.name != ".rs-effnet.json"]  # the record stays


def test_no_crs_and_too_many_tiles_are_clear_errors_with_nothing_written(tmp_path):
    profile = dict(driver="GTiff", width=64, height=64, count=3, dtype="uint8")
    with rasterio.open(tmp_path / "nocrs.tif", "w", **profile) as dst:
        dst.write(np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(RasterError, match="has no CRS"):
        predict_geotiff(pointwise_model(), tmp_path / "nocrs.tif", tmp_path / "out", zoom=10)
    with pytest.raises(RasterError, match="has no CRS"):
        predict_mask_geotiff(pointwise_model(), tmp_path / "nocrs.tif", tmp_path / "mask.tif")
    assert not (tmp_path / "mask.tif").exists()
    profile.update(crs="EPSG:3857", transform=from_origin(0, 0, 100, 100))
    with rasterio.open(tmp_path / "scene.tif", "w", **profile) as dst:
        dst.write(np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(TooManyTilesError, match="more than the maximum 50;"):
        predict_geotiff(pointwise_model(), tmp_path / "scene.tif", tmp_path / "out", zoom=16, max_tiles=50)
    assert not (tmp_path / "out").exists()


def test_pixels_without_data_reach_the_network_as_the_mean_colour(tmp_path):
    """Under nodata the input is 0 (the normalised mean), not black: black reads as a dark roof or shadow and
    gave false detections along scene edges. Outside the scene the input is the mirrored scene, here its
    nodata columns again (so the mean colour too), all but the last one mirrored: the first valid column."""
    from robosat_effnet.predict.geotiff import WarpedTiles
    from robosat_effnet.predict.mosaic import SceneWindows

    tile = mercantile.Tile(309600, 261640, 19)
    left, bottom, right, top = mercantile.xy_bounds(tile)
    res = (right - left) / 64
    pixels = np.full((3, 64, 96), 200, np.uint8)
    pixels[:, :, :16] = 0  # nodata
    profile = dict(driver="GTiff", width=96, height=64, count=3, dtype="uint8", crs="EPSG:3857", nodata=0,
                   transform=from_origin(left + 16 * res, top, res, res))  # starts 16 px into the tile
    with rasterio.open(tmp_path / "scene.tif", "w", **profile) as dst:
        dst.write(pixels)
    spec = pointwise_model()[1]
    item = WarpedTiles(tmp_path / "scene.tif", [tile], 64, 0, [1, 2, 3], spec, Resampling.nearest)[0]
    image, valid = item["image"], item["valid"].numpy()
    assert not valid[:, :32].any() and valid[:, 32:].all()  # 16 px outside the scene + 16 px nodata
    assert (image[:, :, 1:32] == 0).all()
    expected = to_tensor(np.full((64, 32, 3), 200, np.uint8), spec.mean, spec.std)
    torch.testing.assert_close(image[:, :, 32:], expected)
    torch.testing.assert_close(image[:, :, :1], expected[:, :, :1])  # tile column 0 mirrors scene column 16
    window = SceneWindows(tmp_path / "scene.tif", [0], [0], 96, [1, 2, 3], spec)[0]["image"]
    assert (window[:, :, :16] == 0).all() and (window[:, :64, 16:] != 0).all()


def test_tapered_windows_sum_to_one_and_cover_the_scene():
    for size, window, overlap in ((300, 64, 16), (64, 64, 16), (40, 64, 0), (1000, 512, 64)):
        stride = window - overlap
        offsets = window_offsets(size, window, stride)
        total = np.zeros(offsets[-1] + window)
        for i, offset in enumerate(offsets):
            total[offset:offset + window] += taper(len(offsets), i, window, overlap)
        assert offsets[-1] + window >= size
        np.testing.assert_allclose(total[:size], 1.0, atol=1e-6)


def test_georeferenced_mask_matches_whole_scene_prediction(tmp_path):
    """With a per-pixel model the blended sliding windows must reproduce the whole-scene result exactly, drawn
    by the default rule: a building only where its probability reaches 0.7."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (3, 150, 200), dtype=np.uint8)
    pixels[:, :10, :30] = 0
    profile = dict(driver="GTiff", width=200, height=150, count=3, dtype="uint8", crs="EPSG:32636", nodata=0,
                   transform=from_origin(450000, 50000, 0.5, 0.5))
    with rasterio.open(tmp_path / "scene.tif", "w", **profile) as dst:
        dst.write(pixels)
    model, spec = pointwise_model()
    path = predict_mask_geotiff((model, spec), tmp_path / "scene.tif", tmp_path / "mask.tif", window=64, overlap=16,
                                progress=False)
    probs = Predictor(model, device="cpu")(to_tensor(np.moveaxis(pixels, 0, -1), spec.mean, spec.std)[None])[0]
    expected = (probs[1] >= 0.7).numpy().astype(np.uint8)  # two classes: building where p(building) >= 0.7
    doubtful = ((probs[1] > 0.5) & (probs[1] < 0.7)).numpy()
    assert doubtful[10:].mean() > 0.05  # pixels the argmax would call buildings: the threshold is what is tested
    expected[:10, :30] = 255
    with rasterio.open(path) as mask:
        assert (mask.crs, mask.transform, mask.shape) == (rasterio.crs.CRS.from_epsg(32636), profile["transform"],
                                                          (150, 200))
        assert mask.profile["tiled"] and mask.compression.value == "DEFLATE" and mask.nodata == 255
        assert mask.colormap(1)[1][:3] == (0xF9, 0x88, 0x6C) and mask.colormap(1)[255][3] == 0
        np.testing.assert_array_equal(mask.read(1), expected)

    # A rerun keeps the mask it made; a file there that is not a mask of this scene is an error.
    before = path.stat().st_mtime_ns
    assert predict_mask_geotiff((model, spec), tmp_path / "scene.tif", path, progress=False) == path
    assert path.stat().st_mtime_ns == before
    (tmp_path / "other.tif").write_bytes(b"")
    with pytest.raises(RasterError, match="other.tif exists but is not a mask of"):
        predict_mask_geotiff((model, spec), tmp_path / "scene.tif", tmp_path / "other.tif", progress=False)


def test_georeferenced_mask_of_a_trained_model_matches_predicting_the_scene_at_once(tmp_path, trained_checkpoint):
    image, label = synthetic_tile(np.random.default_rng(3), 192, 2)
    profile = dict(driver="GTiff", width=192, height=192, count=3, dtype="uint8", crs="EPSG:3857",
                   transform=from_origin(0, 0, 0.3, 0.3))
    with rasterio.open(tmp_path / "scene.tif", "w", **profile) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    predict_mask_geotiff(trained_checkpoint, tmp_path / "scene.tif", tmp_path / "mask.tif", window=128, overlap=32,
                         progress=False, threshold=0)  # the plain argmax, as `whole` below: blending is tested
    with rasterio.open(tmp_path / "mask.tif") as mask:
        blended = mask.read(1)
    model, spec = load_model(trained_checkpoint)
    whole = Predictor(model, device="cpu")(to_tensor(image, spec.mean, spec.std)[None])[0].argmax(0).numpy()
    # measured (seeds 3, 4): 0.9987-0.9990 agreement, 0.997-0.998 pixel accuracy against the labels
    assert (blended == whole).mean() > 0.99 and (blended == label).mean() > 0.97

