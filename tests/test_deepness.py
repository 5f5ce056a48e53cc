"""`rs-effnet export --deepness`: a file the QGIS plugin Deepness runs as it is.

Deepness itself needs QGIS, so these tests do what it does, as its source does it
(github.com/PUTvision/qgis-plugin-deepness, src/deepness/processing/models/model_base.py and segmentor.py,
map_processor_segmentation.py): it parses each metadata value with json.loads (class_names with an ast
fallback, keys sorted by int() and required to be consecutive), takes the tile size from the input's shape,
feeds uint8 H x W x C tiles cut to the input's channel count, / 255, standardised only by metadata that says
how, transposed to N x C x H x W; it then zeroes probabilities below seg_thresh and takes the argmax.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import mercantile
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import X0, Y0, ZOOM, one_line_error, synthetic_tile
from robosat_effnet.cli import main
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.io import read_image, read_label, write_image
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.models.onnx import load_onnx
from robosat_effnet.outputs.temp import is_temp
from robosat_effnet.predict import Predictor
from robosat_effnet.tiles import tile_files, tile_path

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from test_onnx import calibrate  # noqa: E402  (BatchNorm statistics from data: realistic activations)

pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])



def deepness_reads(path: Path) -> dict:
    """The settings Deepness takes from a file, parsed as its ModelBase parses them (every value through
    json.loads), with the checks it makes on the way; plus the raw JSON values, to check their types."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    inputs = session.get_inputs()
    assert len(inputs) == 1  # "ONNX model: unsupported number of inputs"
    shape = inputs[0].shape
    txt = meta["class_names"]
    try:
        names = json.loads(txt)
    except json.decoder.JSONDecodeError:
        names = ast.literal_eval(txt)
    names = [names] if isinstance(names, dict) else names
    class_names = []
    for output in names:
        ordered = sorted(output.items(), key=lambda kv: int(kv[0]))
        assert [int(k) for k, _ in ordered] == list(range(len(ordered)))  # "not consecutive" otherwise
        class_names.append([v for _, v in ordered])
    read = {
        "model_type": str(json.loads(meta["model_type"])).capitalize(),
        "class_names": class_names,
        "resolution": float(json.loads(meta["resolution"])),
        "tile_size": int(json.loads(meta["tile_size"])),
        "tiles_overlap": int(json.loads(meta["tiles_overlap"])),
        "seg_thresh": float(json.loads(meta["seg_thresh"])),
        "seg_small_segment": int(json.loads(meta["seg_small_segment"])),
        "batch": None if isinstance(shape[0], str) else shape[0],  # get_model_batch_size
        "input_size": shape[-1],  # the dock widget's tile size: the input's width
        "channels": shape[-3],
        "outputs": [o.shape for o in session.get_outputs()],
        "mean": np.zeros(shape[-3], np.float32), "std": np.ones(shape[-3], np.float32),
        "raw": {key: json.loads(value) for key, value in meta.items() if not key.startswith(("robosat", "format"))},
    }
    if "standardization_mean" in meta and "standardization_std" in meta:
        read["mean"] = np.array([float(x) for x in json.loads(meta["standardization_mean"])], np.float32)
        read["std"] = np.array([float(x) for x in json.loads(meta["standardization_std"])], np.float32)
    return read


def onnx_meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def deepness_run(path: Path, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, class mask) of uint8 N x H x W x C tiles as Deepness computes them."""
    read = deepness_reads(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = tiles[:, :, :, :read["channels"]]  # limit_channels_number
    batch = np.float32(batch * 1. / 255.)  # normalize_values_to_01
    batch = (batch - read["mean"]) / read["std"]  # standardize_values
    batch = np.transpose(batch, (0, 3, 1, 2))  # transpose_nhwc_to_nchw
    (probs,) = session.run(None, {session.get_inputs()[0].name: batch})
    result = probs.copy()
    result[result < read["seg_thresh"]] = 0.0
    return probs, np.argmax(result, axis=1)


@pytest.fixture(scope="module")
def trained(trained_run, tmp_path_factory) -> dict:
    """The session's trained checkpoint (64 px tiles at zoom 18), its validation tiles, and its Deepness export."""
    out = tmp_path_factory.mktemp("deepness")
    root = trained_run["dataset"].root
    paths = {"pth": trained_run["checkpoint"], "images": root / "validation" / "images",
             "train_images": root / "training" / "images", "out": out, "onnx": out / "deepness.onnx"}
    result = invoke("export", paths["pth"], paths["onnx"], "--deepness")
    assert result.exit_code == 0 and "Deepness: 64 px tiles overlapping 50 % (16 px border)" in result.output, \
        result.output
    return paths


def validation_tiles(folder: Path) -> tuple[list[mercantile.Tile], np.ndarray]:
    files = tile_files(folder)
    return list(files), np.stack([read_image(path) for path in files.values()])


def test_deepness_run_gives_the_masks_of_predict(trained):
    probs, mask = deepness_run(trained["onnx"], validation_tiles(trained["images"])[1])
    assert probs.shape == (8, 2, 64, 64) and probs.min() >= 0 and probs.max() <= 1
    assert np.abs(probs.sum(axis=1) - 1).max() < 1e-5  # probabilities, not logits
    # predict takes `--border` px of context from neighbouring tiles (these are neighbours) where Deepness sees
    # the tile alone: --border 0 gives the network the same 64 x 64 pixels that Deepness hands it.
    out = trained["out"] / "predict-border0"
    result = invoke("predict", trained["images"], out, "--checkpoint", trained["pth"], "--border", 0, "--quiet")
    assert result.exit_code == 0 and "wrote 8 mask tiles" in result.output, result.output
    tiles, _ = validation_tiles(trained["images"])
    predicted = np.stack([read_label(tile_path(out, tile, "png")) for tile in tiles])
    assert 0.05 < np.mean(predicted == 1) < 0.95  # both classes: agreement is not that of one class everywhere
    assert np.mean(mask == predicted) >= 0.999


def test_metadata_parses_as_deepness_parses_it(trained):
    read = deepness_reads(trained["onnx"])
    assert read["model_type"] == "Segmentor"
    assert read["class_names"] == [["background", "building"]]
    assert read["raw"]["class_names"] == {"0": "background", "1": "building"}
    assert read["batch"] is None and read["channels"] == 3  # dynamic batch, RGB
    assert read["input_size"] == read["tile_size"] == read["raw"]["tiles_size"] == 64
    assert read["outputs"] == [["batch", 2, 64, 64]]  # one softmax head of 2 classes: not read as sigmoid
    # The size of a pixel of the training tiles (zoom 18, 64 px each) in Web Mercator units, an XYZ layer's: there
    # Deepness hands the model the very pixels it was trained on. The ground size (latitude 40) is 0.77 of it.
    expected = 2 * math.pi * 6378137 / (64 * 2**ZOOM) * 100
    assert 230 < expected < 250 and read["resolution"] == pytest.approx(expected, rel=1e-5)
    bounds = mercantile.bounds(mercantile.Tile(X0, Y0, ZOOM))
    ground = expected * math.cos(math.radians((bounds.north + bounds.south) / 2))
    note = json.loads(onnx_meta(trained["onnx"])["robosat_effnet.deepness"])["resolution_source"]
    assert note.startswith(f"{read['resolution']:g} cm/px for a Web Mercator layer")
    assert float(note.rpartition("pass --resolution ")[2]) == pytest.approx(ground, rel=1e-3)  # the tiles' median
    # Deepness keeps a tile's core (overlap / 2 px in from each side): at least predict's border there
    overlap_px = int(64 * read["tiles_overlap"] / 100 * 2) // 2  # ProcessingOverlap.get_overlap_px
    assert read["tiles_overlap"] == 50 and overlap_px // 2 == 16
    assert read["seg_thresh"] == 0.7 and read["seg_small_segment"] == 0  # predict's threshold; no filter
    raw = read["raw"]  # numbers as JSON numbers, of the types its documentation gives
    assert isinstance(raw["resolution"], float) and isinstance(raw["seg_thresh"], float)
    assert all(type(raw[key]) is int for key in ("tile_size", "tiles_size", "tiles_overlap", "seg_small_segment"))
    assert "standardization_mean" not in raw  # the normalisation is in the graph


def test_predict_takes_the_deepness_file_and_gives_the_same_masks(trained):
    out = trained["out"]
    for name, model in (("pth", trained["pth"]), ("deepness", trained["onnx"])):  # default border: 128 px inputs
        result = invoke("predict", trained["images"], out / name, "--checkpoint", model, "--quiet")
        assert result.exit_code == 0 and "wrote 8 mask tiles" in result.output, result.output
    a, b = (np.stack([read_label(p) for p in tile_files(out / name).values()]) for name in ("pth", "deepness"))
    assert 0.05 < np.mean(a == 1) < 0.95 and np.mean(a == b) >= 0.999


def test_the_graph_is_bands_normalisation_network_softmax(tmp_path):
    """Deepness's input (raster bands 1-3 / 255) through the file equals the checkpoint's own preprocessing
    (its bands in its order, its mean and std) and network, then softmax: dropping any step fails here."""
    spec = ModelSpec(classes=["background", "building", "road"], colors=["denim", "orange", "red"], bands=[3, 2, 1],
                     mean=[0.4, 0.5, 0.45], std=[0.2, 0.25, 0.22], tile_size=64)
    rng = np.random.default_rng(3)
    pixels = np.stack([synthetic_tile(rng, 64, 3)[0] for _ in range(4)])  # raster bands 1-3, uint8
    inputs = torch.stack([to_tensor(image[..., [2, 1, 0]], spec.mean, spec.std) for image in pixels])
    torch.manual_seed(0)
    network = calibrate(build_model("efficientnet-b0", num_classes=3), inputs)
    pth = save_checkpoint(tmp_path / "bgr.pth", network, spec)
    result = invoke("export", pth, tmp_path / "bgr.onnx", "--deepness", "--resolution", 30, "--min-area", 2)
    assert result.exit_code == 0 and "resolution 30 cm/px as given" in result.output, result.output

    probs, mask = deepness_run(tmp_path / "bgr.onnx", pixels)
    with torch.no_grad():  # float64: the reference both float32 engines are measured against
        logits = network.double()(inputs.double())
    expected = torch.softmax(logits, dim=1).numpy()
    assert expected.std() > 0.1 and len(np.unique(expected.argmax(axis=1))) == 3  # realistic, every class
    # as in test_onnx, 1e-4 of the logits' range (float32 PyTorch is as far from float64); a step left out of
    # the graph moves probabilities by tenths, and leaving out the softmax gives logits, not probabilities
    assert np.abs(probs - expected).max() <= 1e-4 * logits.abs().max().item()
    read = deepness_reads(tmp_path / "bgr.onnx")
    assert read["seg_thresh"] == 0.7  # predict's threshold, with any number of classes
    drawn = expected.argmax(axis=1)  # predict's rule written out: a doubtful winner other than background is background
    drawn[(drawn > 0) & (expected.max(axis=1) < 0.7)] = 0
    assert np.mean(mask == drawn) >= 0.999 and np.mean(mask != expected.argmax(axis=1)) > 0.01
    # 2 m2 at 30 cm/px is 22 px: a median filter of side 7 empties a window of 49 px holding fewer than 25
    assert read["seg_small_segment"] == 7 and read["resolution"] == 30.0

    runner, _ = load_onnx(tmp_path / "bgr.onnx")  # predict's path: normalised network inputs in, logits out
    network.float()
    for tta in (False, True):
        a, b = Predictor(network, "cpu", tta=tta)(inputs), Predictor(runner, "cpu", tta=tta)(inputs)
        assert (a - b).abs().max() <= 1e-4 * logits.abs().max().item()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_models_deepness_cannot_feed_are_refused_with_one_line(tmp_path):
    def checkpoint(name: str, **fields) -> Path:
        spec = ModelSpec(tile_size=64, **fields)
        return save_checkpoint(tmp_path / f"{name}.pth", build_model("efficientnet-b0", num_classes=2,
                                                                      in_channels=spec.in_channels), spec)

    four = checkpoint("four", in_channels=4, bands=[1, 2, 3, 4], mean=[0.4] * 4, std=[0.2] * 4)
    uint16 = checkpoint("uint16", max_value=4095.0)
    nir = checkpoint("nir", bands=[1, 2, 4])
    rgb = checkpoint("rgb")
    deep = tmp_path / "deep-dataset"
    write_image(tile_path(deep / "training" / "images", mercantile.Tile(X0, Y0, ZOOM), "tif"),
                np.full((64, 64, 3), 3000, np.uint16))
    sixteen = save_checkpoint(tmp_path / "sixteen.pth", build_model("efficientnet-b0", num_classes=2),
                              ModelSpec(tile_size=64), dataset_config={"dataset": str(deep), "images": ["images"]})
    moved = save_checkpoint(tmp_path / "moved.pth", build_model("efficientnet-b0", num_classes=2),
                            ModelSpec(tile_size=64), dataset_config={"dataset": str(tmp_path / "gone")})
    cases = [
        ((four, "--resolution", 30), "takes 4 band(s) but Deepness hands a model red, green and blue"),
        ((uint16, "--resolution", 30), "reads uint16 pixels (max_value 4095) but Deepness divides every pixel by 255"),
        ((nir, "--resolution", 30), "reads raster bands [1, 2, 4] but Deepness hands a model bands 1, 2 and 3"),
        ((sixteen,), "trained on 16-bit tiles"),
        ((rgb,), "does not say which tiles it was trained on, so the imagery's resolution is unknown: pass "
                 "--resolution CM"),
        ((moved,), "are not on this machine, so the imagery's resolution is unknown: pass --resolution CM"),
        ((rgb, "--resolution", 30, "--border", 32), "border 32 px leaves no core in 64 px tiles"),
    ]
    for args, message in cases:
        output = tmp_path / f"{Path(args[0]).stem}.onnx"
        assert message in one_line_error(invoke("export", args[0], output, "--deepness", *args[1:]))
        assert not output.exists()
    usage = invoke("export", rgb, tmp_path / "x.onnx", "--resolution", 30, "--threshold", 0.6)
    assert usage.exit_code == 2 and "--resolution, --threshold apply to --deepness exports only" in usage.output
    assert invoke("export", rgb, tmp_path / "y.onnx", "--deepness", "--threshold", 1.5).exit_code == 2
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".onnx" or is_temp(p.name)]


def test_int8_combines_with_deepness(trained):
    out = trained["out"] / "deepness-int8.onnx"
    result = invoke("export", trained["pth"], out, "--deepness", "--int8", "--calibration", trained["train_images"],
                    "--calibration-tiles", 8)
    assert result.exit_code == 0 and "int8" in result.output and "Deepness:" in result.output, result.output
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["robosat_effnet.precision"] == "int8" and meta["robosat_effnet.graph"] == "deepness"
    ops = [node.op_type for node in proto.graph.node]
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(ops) and ops[-1] == "Softmax"  # probabilities in float
    read = deepness_reads(out)
    assert read["input_size"] == read["tile_size"] == 64 and read["model_type"] == "Segmentor"
    assert read["resolution"] == deepness_reads(trained["onnx"])["resolution"]

    tiles = validation_tiles(trained["images"])[1]
    probs, mask = deepness_run(out, tiles)
    assert np.abs(probs.sum(axis=1) - 1).max() < 1e-5
    assert np.mean(mask == deepness_run(trained["onnx"], tiles)[1]) >= 0.9 and 0.05 < np.mean(mask == 1)
    result = invoke("predict", trained["images"], trained["out"] / "int8-masks", "--checkpoint", out, "--quiet")
    assert result.exit_code == 0 and "wrote 8 mask tiles" in result.output, result.output

