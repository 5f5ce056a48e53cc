"""`rs-effnet tile`: GeoTIFFs of any CRS -> slippy-map image tiles, checked against pyproj + mercantile."""

from __future__ import annotations

import csv
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from pyproj import Transformer
from rasterio.transform import Affine

from robosat_effnet.cli import main
from robosat_effnet.data.raster import footprint_tiles
from robosat_effnet.errors import ConfigError, TooManyTilesError
from robosat_effnet.io import read_alpha, read_image
from robosat_effnet.prepare.tile import tile_geotiff
from robosat_effnet.tiles import check_count, count_tiles, tile_files

GEOTIFF = Path(__file__).parents[1] / ".." / "shared" / "data" / "geotiff"
UTM36N = "EPSG:32636"
ORIGIN = (452000.0, 38800.0)  # UTM 36N metres, near Kampala


def write_scene(path: Path, width: int = 200, height: int = 150, crs: str = UTM36N, dtype: str = "uint8",
                count: int = 3, res: float = 1.0, origin: tuple[float, float] = ORIGIN) -> np.ndarray:
    """A scene whose bands 2 and 3 encode each pixel's row and column (so a sample tells where it came from).

    The top-left triangle is nodata (0), as in the rotated borders of real scenes.
    """
    rows, cols = np.mgrid[0:height, 0:width]
    bands = [((rows * 7 + cols * 13) % 250) + 1, rows % 250 + 1, cols % 250 + 1]
    while len(bands) < count:
        bands.append(np.full_like(rows, 1000 * len(bands)))
    data = np.stack(bands[:count]).astype(dtype)
    if dtype == "uint16":
        data[0] += 300  # values a PNG could not hold
    data[:, rows + cols < 60] = 0
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype=dtype, crs=crs, nodata=0,
                   transform=Affine(res, 0, origin[0], 0, -res, origin[1]))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return data


def sample_source(tile: mercantile.Tile, size: int, src_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independently of the code under test: the source pixel under each tile pixel centre (pyproj).

    Returns (values C x size x size by nearest neighbour, valid mask, unambiguous mask: centres not within
    5% of a source pixel edge, where nearest neighbour could go either way).
    """
    west, south, east, north = mercantile.xy_bounds(tile)
    step = (east - west) / size
    xs = west + (np.arange(size) + 0.5) * step
    ys = north - (np.arange(size) + 0.5) * step
    x, y = np.meshgrid(xs, ys)
    with rasterio.open(src_path) as src:
        to_src = Transformer.from_crs("EPSG:3857", src.crs, always_xy=True)
        sx, sy = to_src.transform(x, y)
        col, row = ~src.transform @ (sx, sy)
        data = src.read()
    inside = (col >= 0) & (row >= 0) & (col < data.shape[2]) & (row < data.shape[1])
    c = np.clip(np.floor(col).astype(int), 0, data.shape[2] - 1)
    r = np.clip(np.floor(row).astype(int), 0, data.shape[1] - 1)
    values = data[:, r, c]
    valid = inside & (values != 0).any(axis=0)
    frac_c, frac_r = col - np.floor(col), row - np.floor(row)
    clear = (np.minimum(frac_c, 1 - frac_c) > 0.05) & (np.minimum(frac_r, 1 - frac_r) > 0.05)
    return values, valid, clear


def scene_tiles(src_path: Path, zoom: int) -> list[mercantile.Tile]:
    with rasterio.open(src_path) as src:
        to_lonlat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True)
        lon, lat = to_lonlat.transform([src.bounds.left, src.bounds.right, src.bounds.left, src.bounds.right],
                                       [src.bounds.bottom, src.bounds.bottom, src.bounds.top, src.bounds.top])
    return list(mercantile.tiles(min(lon), min(lat), max(lon), max(lat), zooms=zoom))


def test_utm_scene_tiles_match_pyproj_sampling(tmp_path):
    scene = tmp_path / "scene.tif"
    write_scene(scene)
    out = tmp_path / "tiles"
    result = CliRunner().invoke(main, ["tile", str(scene), str(out), "--zoom", "18", "--resampling", "nearest", "-q"])
    assert result.exit_code == 0, result.output
    written = tile_files(out)
    expected, partial = set(), set()
    for tile in scene_tiles(scene, 18):
        values, valid, clear = sample_source(tile, 256, scene)
        if not valid.any():
            continue
        expected.add(tile)
        if tile not in written:
            continue
        image, alpha = read_image(written[tile]), read_alpha(written[tile])
        alpha = np.ones(valid.shape, bool) if alpha is None else alpha
        if not alpha.all():
            partial.add(tile)
        # Every unambiguous pixel: same validity and, where valid, exactly the source pixel's bands.
        assert np.array_equal(alpha[clear], valid[clear])
        keep = clear & valid
        assert np.array_equal(np.moveaxis(image, -1, 0)[:, keep], values[:, keep])
        assert (image[~alpha] == 0).all()  # no data is transparent black
    assert set(written) == expected and len(expected) >= 2
    with open(out / "partial.csv") as f:
        listed = {mercantile.Tile(*map(int, row)) for row in csv.reader(f)}
    assert listed == partial and partial
    assert f"wrote {len(expected)} png tiles" in result.output


def test_uint16_four_bands_become_georeferenced_tifs(tmp_path):
    scene = tmp_path / "u16.tif"
    write_scene(scene, dtype="uint16", count=4, crs="EPSG:4326", res=1e-5, origin=(32.58, 0.35))
    report = tile_geotiff(scene, tmp_path / "tiles", 19, size=64, resampling="nearest", progress=False)
    assert report.format == "tif" and report.written
    for tile in report.written:
        with rasterio.open(tmp_path / "tiles" / "19" / str(tile.x) / f"{tile.y}.tif") as src:
            assert src.count == 4 and src.dtypes[0] == "uint16" and src.crs.to_epsg() == 3857
            assert np.allclose(src.bounds, mercantile.xy_bounds(tile), rtol=0, atol=1e-6)
            data, mask = src.read(), src.dataset_mask() > 0
        values, valid, clear = sample_source(tile, 64, scene)
        keep = clear & valid
        assert np.array_equal(data[:, keep], values[:, keep]) and data[0][keep].max() > 255
        assert np.array_equal(mask[clear], valid[clear])


def test_band_selection_and_webp(tmp_path):
    scene = tmp_path / "scene.tif"
    write_scene(scene)
    result = CliRunner().invoke(main, ["tile", str(scene), str(tmp_path / "t"), "--zoom", "17", "--bands", "3,2,1",
                                       "--format", "webp", "--resampling", "nearest", "-q"])
    assert result.exit_code == 0, result.output
    tile, path = next(iter(tile_files(tmp_path / "t").items()))
    assert path.suffix == ".webp"
    values, valid, clear = sample_source(tile, 256, scene)
    image = read_image(path)
    keep = clear & valid
    assert np.array_equal(np.moveaxis(image, -1, 0)[:, keep], values[::-1][:, keep])  # lossless webp


def test_count_tiles_agrees_with_mercantile():
    for bounds, zoom in [((32.5, 0.3, 32.7, 0.4), 14), ((-10.2, 50.1, -9.9, 50.3), 12), ((170, -5, -170, 5), 6)]:
        assert count_tiles(bounds, zoom) == len(list(mercantile.tiles(*bounds, zooms=zoom)))


def test_too_many_tiles_is_refused_before_writing(tmp_path):
    scene = tmp_path / "scene.tif"
    write_scene(scene)
    out = tmp_path / "tiles"
    with pytest.raises(TooManyTilesError):
        tile_geotiff(scene, out, 22, max_tiles=100, progress=False)
    result = CliRunner().invoke(main, ["tile", str(scene), str(out), "--zoom", "24", "--max-tiles", "1000"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--max-tiles" in lines[0] and "zoom 24" in lines[0]
    assert not out.exists()


def test_the_tile_limit_is_inclusive_and_says_how_many():
    check_count(1000, 18, 1000, "x")  # exactly the maximum is allowed
    with pytest.raises(TooManyTilesError, match=r"zoom 18 cuts x into 1,001 tiles, more than the maximum 1,000; use"):
        check_count(1001, 18, 1000, "x")


def test_a_zoom_out_of_range_is_a_setting_error_not_too_many_tiles(tmp_path):
    scene = tmp_path / "scene.tif"
    write_scene(scene)
    with rasterio.open(scene) as src:
        assert len(footprint_tiles(src, 0, 1)) == 1
        for zoom in (-1, 31):
            with pytest.raises(ConfigError, match=f"zoom {zoom} is out of range; use 0..") as caught:
                footprint_tiles(src, zoom, 10**9)
            assert not isinstance(caught.value, TooManyTilesError)


def test_png_for_uint16_is_a_clear_error(tmp_path):
    scene = tmp_path / "u16.tif"
    write_scene(scene, dtype="uint16", count=3)
    result = CliRunner().invoke(main, ["tile", str(scene), str(tmp_path / "t"), "--zoom", "17", "--format", "png"])
    assert result.exit_code == 1 and "--format tif" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_scene_without_crs_is_refused(tmp_path):
    scene = tmp_path / "nocrs.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 8, 8), np.uint8))
    result = CliRunner().invoke(main, ["tile", str(scene), str(tmp_path / "t"), "--zoom", "10"])
    assert result.exit_code == 1 and "has no CRS" in result.output and not (tmp_path / "t").exists()


@pytest.mark.skipif(not GEOTIFF.is_dir(), reason="shared test data not available")
def test_real_landsat_scene_and_corrupt_file(tmp_path):
    out = tmp_path / "landsat"
    report = tile_geotiff(GEOTIFF / "RGB.byte.tif", out, 8, progress=False)
    # UTM 18N scene with rotated nodata borders: every written tile holds data, bounded by the footprint.
    assert report.written and set(report.written) <= set(scene_tiles(GEOTIFF / "RGB.byte.tif", 8))
    for tile in report.written:
        alpha = read_alpha(tile_files(out)[tile])
        assert alpha is None or alpha.any()
    result = CliRunner().invoke(main, ["tile", str(GEOTIFF / "corrupt.tif"), str(tmp_path / "c"), "--zoom", "15",
                                       "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot read" in result.output and len(result.output.strip().splitlines()) == 1
    # nothing half-written: whatever the failed run left holds only complete tiles, no temp files
    left = [p for p in (tmp_path / "c").rglob("*") if p.is_file() and p.name != ".rs-effnet.json"]  # record stays
    assert not [p for p in left if p.suffix not in {".png", ".csv"}], left
    for path in left:
        if path.suffix == ".png":
            assert read_image(path).shape[:2] == (256, 256)


def test_threads_write_the_same_tiles(tmp_path):
    scene = tmp_path / "scene.tif"
    write_scene(scene)
    one = tile_geotiff(scene, tmp_path / "one", 19, size=64, workers=1, progress=False)
    three = tile_geotiff(scene, tmp_path / "three", 19, size=64, workers=3, progress=False)
    assert one.written == three.written and one.partial == three.partial and len(one.written) > 10
    for tile in one.written:
        a, b = tile_files(tmp_path / "one")[tile], tile_files(tmp_path / "three")[tile]
        assert a.read_bytes() == b.read_bytes()
