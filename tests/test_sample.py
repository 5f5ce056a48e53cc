"""Synthetic aerial scenes: determinism, georeferencing, labels that match the pixels, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from pyproj import Geod
from rasterio.features import rasterize
from rasterio.warp import transform, transform_geom

from robosat_effnet.data.synthetic import DEFAULT_CENTER, write_sample
from robosat_effnet.errors import ConfigError

SIZE = 256


def read(paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray, dict]:
    with rasterio.open(paths["scene"]) as src:
        scene = src.read()
    with rasterio.open(paths["mask"]) as src:
        mask = src.read(1)
    return scene, mask, json.loads(paths["buildings"].read_text())


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("scene"), seed=7, size=SIZE)


def test_writes_three_files_atomically(scene):
    assert set(scene) == {"scene", "mask", "buildings"}
    names = sorted(p.name for p in scene["scene"].parent.iterdir())
    assert names == [".rs-effnet.json", "buildings.geojson", "mask.tif", "scene.tif"]  # + what wrote them


def test_never_replaces_a_scene_it_did_not_write(tmp_path):
    from robosat_effnet.errors import OutputError

    (tmp_path / "scene.tif").write_bytes(b"somebody's survey")
    with pytest.raises(OutputError, match="files this command did not write"):
        write_sample(tmp_path, seed=1, size=SIZE)
    assert (tmp_path / "scene.tif").read_bytes() == b"somebody's survey"
    write_sample(tmp_path, seed=1, size=SIZE, overwrite=True)  # asked for: replaced
    assert (tmp_path / "scene.tif").read_bytes()[:2] in (b"II", b"MM")


def test_a_rerun_rewrites_its_own_sample_and_refuses_another(tmp_path):
    from robosat_effnet.errors import OutputError

    first = write_sample(tmp_path, seed=1, size=SIZE)["scene"].read_bytes()
    assert write_sample(tmp_path, seed=1, size=SIZE)["scene"].read_bytes() == first
    with pytest.raises(OutputError, match="seed 1 there, 2 now"):
        write_sample(tmp_path, seed=2, size=SIZE)
    assert (tmp_path / "scene.tif").read_bytes() == first


def test_same_seed_same_scene_other_seed_other_scene(tmp_path, scene):
    again = write_sample(tmp_path / "again", seed=7, size=SIZE)
    other = write_sample(tmp_path / "other", seed=8, size=SIZE)
    (a, am, ag), (b, bm, bg), (c, cm, cg) = read(scene), read(again), read(other)
    assert a.tobytes() == b.tobytes() and am.tobytes() == bm.tobytes() and ag == bg
    assert a.tobytes() != c.tobytes() and am.tobytes() != cm.tobytes() and ag != cg


def test_scene_is_a_tiled_compressed_rgb_geotiff(scene):
    with rasterio.open(scene["scene"]) as src:
        assert (src.count, src.width, src.height, src.dtypes[0]) == (3, SIZE, SIZE, "uint8")
        assert src.block_shapes[0] == (256, 256) and src.profile["compress"] == "deflate"
        assert src.crs.to_epsg() == 3857
        image = src.read()
    with rasterio.open(scene["mask"]) as src:
        assert src.count == 1 and src.dtypes[0] == "uint8" and src.crs.to_epsg() == 3857
        assert set(np.unique(src.read(1))) <= {0, 1}
    assert image.std() > 15  # textured, not flat colour


def ground_metres_per_pixel(path: Path) -> tuple[float, float, float]:
    """Geodesic length of one pixel across the scene centre, and the centre's lon/lat."""
    with rasterio.open(path) as src:
        h, w = src.height // 2, src.width
        xs, ys = src.xy([h, h, h], [0, w, w // 2], offset="ul")  # left edge, right edge, centre
        (lon0, lon1, lon), (lat0, lat1, lat) = transform(src.crs, "EPSG:4326", xs, ys)
        return Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)[2] / w, lon, lat


def test_web_mercator_pixels_are_03_m_on_the_ground(scene):
    metres, lon, lat = ground_metres_per_pixel(scene["scene"])
    assert metres == pytest.approx(0.3, rel=0.01)
    assert (lon, lat) == pytest.approx(DEFAULT_CENTER, abs=1e-6)
    with rasterio.open(scene["scene"]) as src:  # mercator metres are longer than ground metres, by 1/cos(lat)
        assert src.res[0] == pytest.approx(0.3 / math.cos(math.radians(DEFAULT_CENTER[1])))


@pytest.mark.parametrize("center, epsg", [(DEFAULT_CENTER, 32636), ((-47.93, -15.78), 32723), ((13.4, 52.5), 32633)])
def test_utm_option_picks_the_zone_of_the_centre(tmp_path, center, epsg):
    paths = write_sample(tmp_path, seed=1, size=128, crs="utm", center=center)
    with rasterio.open(paths["scene"]) as src:
        assert src.crs.to_epsg() == epsg and src.res == pytest.approx((0.3, 0.3))
    metres, lon, lat = ground_metres_per_pixel(paths["scene"])
    assert metres == pytest.approx(0.3, rel=0.01) and (lon, lat) == pytest.approx(center, abs=1e-6)


def test_geojson_outlines_rasterise_back_to_the_mask(tmp_path):
    paths = write_sample(tmp_path, seed=3, size=512, crs="utm")
    _, mask, collection = read(paths)
    assert collection["type"] == "FeatureCollection" and "crs" not in collection  # RFC 7946: lon/lat only
    features = collection["features"]
    assert features and all(f["properties"] == {"class": "building"} for f in features)
    assert all(f["geometry"]["type"] == "Polygon" for f in features)
    with rasterio.open(paths["mask"]) as src:
        shapes = [transform_geom("EPSG:4326", src.crs, f["geometry"]) for f in features]
        burnt = rasterize(shapes, out_shape=mask.shape, transform=src.transform, dtype=np.uint8)
    iou = (burnt & mask).sum() / (burnt | mask).sum()
    assert iou > 0.98


def test_outlines_are_counter_clockwise_and_apart(scene):
    polygons = [shapely.geometry.shape(f["geometry"]) for f in read(scene)[2]["features"]]
    assert all(p.exterior.is_ccw for p in polygons)
    tree = shapely.STRtree(polygons)
    assert all(len(tree.query(p, predicate="intersects")) == 1 for p in polygons)  # each touches only itself


def test_buildings_cover_a_plausible_share(tmp_path, scene):
    assert 0.04 < read(scene)[1].mean() < 0.3  # a small scene holds only a few houses
    mask = read(write_sample(tmp_path, seed=11, size=512))[1]
    assert 0.08 < mask.mean() < 0.22


def test_buildings_caps_the_number_of_houses(tmp_path):
    _, mask, collection = read(write_sample(tmp_path / "few", seed=2, size=SIZE, buildings=2))
    assert len(collection["features"]) == 2
    _, mask, collection = read(write_sample(tmp_path / "none", seed=2, size=SIZE, buildings=0))
    assert collection["features"] == [] and not mask.any()


@pytest.mark.parametrize("kwargs", [
    {"crs": "EPSG:4326"}, {"size": 10}, {"size": 256.0}, {"seed": -1}, {"seed": True}, {"resolution": 0},
    {"center": (0, 89)}, {"center": (200, 0)}, {"center": "Kampala"}, {"buildings": -3},
])
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        write_sample(tmp_path, **{"size": 64, **kwargs})
    assert not any(tmp_path.iterdir())  # nothing half-written


def invoke(args: list[str]):
    try:
        from robosat_effnet.cli import main
    except ImportError:  # the group is written separately; the command object works on its own too
        from robosat_effnet.cli.sample import cli as main
        return CliRunner().invoke(main, args)
    return CliRunner().invoke(main, ["sample", *args])


def test_cli_writes_a_train_and_a_differently_seeded_test_scene(tmp_path):
    result = invoke([str(tmp_path), "--size", "128", "--seed", "4", "--crs", "utm"])
    assert result.exit_code == 0, result.output
    assert "train (seed 4)" in result.output and "test (seed 5)" in result.output
    train, test = (read({k: tmp_path / split / n for k, n in (("scene", "scene.tif"), ("mask", "mask.tif"),
                                                              ("buildings", "buildings.geojson"))})
                   for split in ("train", "test"))
    assert train[0].shape == (3, 128, 128) and train[0].tobytes() != test[0].tobytes()
    with rasterio.open(tmp_path / "train" / "scene.tif") as src:
        assert src.crs.to_epsg() == 32636


def test_cli_rejects_a_test_seed_equal_to_the_seed(tmp_path):
    result = invoke([str(tmp_path), "--size", "64", "--seed", "3", "--test-seed", "3"])
    assert result.exit_code == 2 and "--test-seed" in result.output
