"""ONNX export and onnxruntime inference: the file describes itself, onnxruntime agrees with PyTorch,
predict/eval give the same answers from a .onnx as from its .pth, and unsafe or foreign files are refused.

Networks are compared with realistic activations: BatchNorm statistics are taken from data (one pass in
train mode) and the output bias is set so that both classes are predicted, so neither the logits nor the
masks can agree merely because they are all tiny or all one class.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner

from conftest import make_dataset, one_line_error
from robosat_effnet.cli import main
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.deploy.export import export_onnx, load_onnx, read_spec
from robosat_effnet.errors import CheckpointError, MissingDependencyError
from robosat_effnet.evaluation.evaluate import evaluate
from robosat_effnet.io import read_image, read_label
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.predict import Predictor
from robosat_effnet.tiles import tile_files

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
FIXTURES = DATA / "robosat-fixtures" / "images"
pytestmark = pytest.mark.usefixtures("one_thread")


def calibrate(model: torch.nn.Module, batch: torch.Tensor) -> torch.nn.Module:
    """BatchNorm statistics from `batch` (one train-mode pass), then the last conv's bias shifted so that
    the two classes split the pixels about evenly; returned in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None  # cumulative average: after one pass, exactly this batch's statistics
    with torch.no_grad():
        model.train()(batch)
        model.eval()
        head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        logits = model(batch)
        head.bias[1:] -= (logits[:, 1:] - logits[:, :1]).flatten(2).median(dim=-1).values.median(dim=0).values
    return model


def calibrated_export(folder: Path, batch: torch.Tensor, spec: ModelSpec, seed: int = 0) -> tuple[Path, Path]:
    """(pth, onnx) of a b0 U-Net calibrated on `batch`: the data it will predict, so its activations are
    realistic there (out of distribution they grow large and every float32 rounding with them)."""
    torch.manual_seed(seed)
    model = calibrate(build_model(spec.backbone, spec.decoder, num_classes=spec.num_classes), batch)
    pth = save_checkpoint(folder / "model.pth", model, spec)
    result = invoke("export", pth, folder / "model.onnx")
    assert result.exit_code == 0 and "wrote" in result.output, result.output
    return pth, folder / "model.onnx"


def image_batch(folder: Path, spec: ModelSpec, border: int = 0) -> torch.Tensor:
    """A folder's tiles, normalised; `border` px mirrored around them, roughly as predict's context looks."""
    batch = torch.stack([to_tensor(read_image(p), spec.mean, spec.std) for p in tile_files(folder).values()])
    return torch.nn.functional.pad(batch, (border,) * 4, mode="reflect") if border else batch



def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiles_run(tmp_path_factory):
    """(pth, onnx, images, labels): a calibrated b0 U-Net on generated 64 px tiles, as checkpoint and export."""
    tmp = tmp_path_factory.mktemp("onnx-tiles")
    data = make_dataset(tmp, n_train=1, n_val=8, seed=5)
    images, labels = data.root / "validation" / "images", data.root / "validation" / "labels"
    spec = ModelSpec(classes=["background", "building"], colors=["denim", "orange"], tile_size=64)
    return *calibrated_export(tmp, image_batch(images, spec, border=32), spec), images, labels


# --- export: metadata, checker, parity ------------------------------------------------------------------------

CASES = [("efficientnet-b0", "unet", 3), ("efficientnet-b0", "fpn", 4), ("efficientnet-b4", "unet", 3),
         ("efficientnet-b4", "fpn", 4), ("resnet50", "unet", 4), ("resnet50", "fpn", 3),
         # TensorFlow's asymmetric padding must hold at every size the exported file is given
         # (B8 and L2 pad with the same SamePad; their parity with timm is in test_efficientnet_lite)
         ("efficientnet-lite0", "unet", 3), ("efficientnet-lite2", "fpn", 4), ("efficientnet-lite0", "unet-lite", 3)]


@pytest.mark.parametrize("backbone, decoder, bands", CASES)
def test_onnxruntime_logits_match_pytorch_at_dynamic_sizes(tmp_path, backbone, decoder, bands):
    torch.manual_seed(0)
    spec = ModelSpec(backbone=backbone, decoder=decoder, classes=["background", "building", "road"],
                     colors=["denim", "orange", "red"], in_channels=bands, bands=list(range(1, bands + 1)),
                     mean=[0.4] * bands, std=[0.2] * bands, max_value=4095.0, tile_size=64)
    # 128 px: statistics of the stride-32 layers from 4 x 4 positions per image rather than 2 x 2
    model = calibrate(build_model(backbone, decoder, num_classes=3, in_channels=bands),
                      torch.randn(2, bands, 128, 128))
    path = export_onnx((model, spec), tmp_path / "model.onnx")

    # The file describes itself: read with onnx alone, not through our reader.
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["format"] == "robosat_effnet"
    assert json.loads(meta["robosat_effnet.spec"]) == spec.to_dict()
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == bands and all(isinstance(d, str) and d for d in (dims[0], dims[2], dims[3]))
    assert read_spec(path) == spec

    runner, loaded = load_onnx(path)
    assert loaded == spec
    sizes = [(1, 64, 64), (2, 96, 128)] if backbone in ("efficientnet-b0", "efficientnet-lite0") else \
        [(1, 64, 64), (2, 64, 96)]
    for n, h, w in sizes:  # one file, two batch sizes and two shapes
        x = torch.randn(n, bands, h, w)
        with torch.no_grad():
            expected = model(x)
        got = runner(x)
        assert got.shape == expected.shape == (n, 3, h, w)
        assert expected.std() > 0.1  # realistic logits, not a network whose activations have died out
        # 1e-4 of the logits' range: float32 PyTorch itself is up to ~1e-4 from float64 on ResNet50 FPN
        tolerance = 1e-4 * max(1.0, expected.abs().max().item())
        assert (got - expected).abs().max() <= tolerance
    with torch.no_grad():  # and onnxruntime is as close to the float64 result as float32 PyTorch is
        exact = model.double()(x.double())
    assert (got - exact).abs().max() <= tolerance


# --- predict and eval with a .onnx ----------------------------------------------------------------------------

def agreement(a: Path, b: Path) -> float:
    """Share of equal pixels over all tiles of two slippy maps with the same tiles."""
    fa, fb = tile_files(a), tile_files(b)
    assert set(fa) == set(fb) and fa
    equal = sum(int((read_label(fa[t]) == read_label(fb[t])).sum()) for t in fa)
    return equal / sum(read_label(p).size for p in fa.values())


def test_predict_masks_tta_probs_shards_and_resume_match_the_checkpoint(tmp_path, tiles_run):
    pth, model, images, _ = tiles_run
    # Masks by the plain argmax (--threshold 0): ONNX against PyTorch, whatever the default mask threshold is.
    argmax = ["--threshold", "0"]
    for name, extra in (("masks", argmax), ("tta", ["--tta", *argmax]), ("probs", ["--probs"])):
        for checkpoint in (pth, model):
            out = tmp_path / f"{name}-{checkpoint.suffix[1:]}"
            result = invoke("predict", images, out, "--checkpoint", checkpoint, "--quiet", *extra)
            assert result.exit_code == 0 and "wrote 8 " in result.output, result.output
        a, b = (np.stack([read_label(p) for p in tile_files(tmp_path / f"{name}-{kind}").values()]).astype(int)
                for kind in ("pth", "onnx"))
        if name == "probs":  # quantised probabilities: at most one level apart where rounding flips
            assert np.abs(a - b).max() <= 1 and np.mean(a == b) >= 0.99 and a.std() > 10
        else:
            assert 0.1 < np.mean(a > 0) < 0.9  # not one class everywhere
            assert agreement(tmp_path / f"{name}-pth", tmp_path / f"{name}-onnx") >= 0.999
    # TTA really changes the prediction (so the comparison above covers a different path)
    assert agreement(tmp_path / "masks-onnx", tmp_path / "tta-onnx") < 0.999

    half = invoke("predict", images, tmp_path / "shards", "--checkpoint", model, "--quiet", "--shard", "0/2", *argmax)
    assert half.exit_code == 0 and "wrote 4 mask tiles" in half.output, half.output
    rest = invoke("predict", images, tmp_path / "shards", "--checkpoint", model, "--quiet", *argmax)
    assert rest.exit_code == 0 and "wrote 4 mask tiles" in rest.output and "4 already there" in rest.output
    assert agreement(tmp_path / "shards", tmp_path / "masks-onnx") == 1.0


def test_predictor_on_the_export_equals_predictor_on_the_network(tiles_run):
    pth, model, images, _ = tiles_run
    from robosat_effnet.models.checkpoint import load_model

    network, spec = load_model(pth)
    runner, _ = load_onnx(model)
    batch = image_batch(images, spec)[:2]
    for tta in (False, True):
        expected, got = Predictor(network, "cpu", tta=tta)(batch), Predictor(runner, "cpu", tta=tta)(batch)
        assert (expected - got).abs().max() <= 1e-5


def test_eval_with_the_export_equals_eval_with_the_checkpoint(tiles_run):
    pth, model, images, labels = tiles_run
    a = evaluate(pth, images, labels, progress=False)
    b = evaluate(model, images, labels, progress=False)
    total = int(np.sum(a["confusion"]))
    assert np.abs(np.array(a["confusion"]) - np.array(b["confusion"])).sum() <= 0.002 * total
    assert b["miou"] == pytest.approx(a["miou"], abs=1e-3) and 0.05 < a["miou"] < 0.95
    for name, found in a.get("buildings", {}).items():  # per-building matching, where eval computes it
        assert b["buildings"][name]["f1"] == pytest.approx(found["f1"], abs=0.02)
    result = invoke("eval", "--checkpoint", model, images, labels, "--quiet")
    assert result.exit_code == 0 and f"({a['tiles']} tiles)" in result.output, result.output


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared test data not available")
def test_robosat_fixtures_give_the_same_masks_from_onnx_and_pth(tmp_path):
    spec = ModelSpec(tile_size=512)
    pth, model = calibrated_export(tmp_path, image_batch(FIXTURES, spec, border=32), spec, seed=1)
    for checkpoint in (pth, model):  # the plain argmax (--threshold 0): ONNX against PyTorch, as above
        result = invoke("predict", FIXTURES, tmp_path / checkpoint.suffix[1:], "--checkpoint", checkpoint, "--quiet",
                        "--threshold", "0")
        assert result.exit_code == 0 and "wrote 3 mask tiles" in result.output, result.output
    foreground = np.mean([read_label(p).mean() for p in tile_files(tmp_path / "pth").values()])
    assert 0.05 < foreground < 0.95
    assert agreement(tmp_path / "pth", tmp_path / "onnx") >= 0.999


@pytest.mark.skipif(not (DATA / "geotiff").is_dir(), reason="shared test data not available")
def test_geotiff_tiles_and_scene_mask_from_onnx_match_the_checkpoint(tmp_path):
    scene = DATA / "geotiff" / "rgb1.tif"
    spec = ModelSpec(tile_size=64)
    with rasterio.open(scene) as src:
        pixels = np.moveaxis(src.read(), 0, -1)
    crops = [to_tensor(pixels[y:y + 256, x:x + 256], spec.mean, spec.std) for y, x in ((0, 0), (144, 144))]
    pth, model = calibrated_export(tmp_path, torch.stack(crops), spec, seed=2)
    for checkpoint in (pth, model):
        kind = checkpoint.suffix[1:]
        result = invoke("predict", scene, tmp_path / kind, "--checkpoint", checkpoint, "--zoom", "9",
                        "--geotiff", tmp_path / f"{kind}.tif", "--window", "256", "--quiet")
        assert result.exit_code == 0 and "wrote the mask" in result.output, result.output
    assert agreement(tmp_path / "pth", tmp_path / "onnx") >= 0.999
    with rasterio.open(tmp_path / "pth.tif") as a, rasterio.open(tmp_path / "onnx.tif") as b:
        assert (a.crs, a.transform) == (b.crs, b.transform)
        assert np.mean(a.read(1) == b.read(1)) >= 0.999


def test_external_data_beside_the_model_loads(tmp_path, tiles_run):
    _, model, images, _ = tiles_run
    proto = onnx.load(str(model))
    onnx.save(proto, str(tmp_path / "split.onnx"), save_as_external_data=True, location="split.weights",
              size_threshold=0)
    assert (tmp_path / "split.weights").is_file()
    runner, spec = load_onnx(tmp_path / "split.onnx")
    x = image_batch(images, spec)[:1]
    assert (runner(x) - load_onnx(model)[0](x)).abs().max() == 0


# --- refusals -------------------------------------------------------------------------------------------------

def tiny_model(path: Path, spec: ModelSpec | None = None, external: str | None = None) -> Path:
    """A hand-made ONNX graph (image * w) without our exporter; with `spec`, it carries our metadata;
    with `external`, its weight lives in that external file location."""
    weight = numpy_helper.from_array(np.full((1, 3, 1, 1), 2.0, np.float32), name="w")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["image", "w"], ["logits"])], "foreign",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, "H", "W"])], [weight])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if spec is not None:
        for key, value in (("format", "robosat_effnet"), ("robosat_effnet.spec", json.dumps(spec.to_dict()))):
            proto.metadata_props.add(key=key, value=value)
    if external is not None:
        tensor = proto.graph.initializer[0]
        target = Path(external) if Path(external).is_absolute() else path.parent / external
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(tensor.raw_data)
        onnx.external_data_helper.set_external_data(tensor, location=external)
        tensor.ClearField("raw_data")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(proto.SerializeToString())
    return path


def test_foreign_corrupt_and_outside_data_models_are_refused_with_one_line(tmp_path, tiles_run):
    _, model, images, _ = tiles_run
    spec = ModelSpec(classes=["a", "b", "c"], colors=["red", "green", "blue"])
    inside = tiny_model(tmp_path / "inside" / "ours.onnx", spec, external="w.bin")
    runner, _ = load_onnx(inside)  # our metadata, data beside it: accepted, and it computes image * 2
    assert torch.equal(runner(torch.ones(1, 3, 32, 32)), torch.full((1, 3, 32, 32), 2.0))

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07\x12\xff\xff not onnx at all" * 10)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    cases = {
        tiny_model(tmp_path / "foreign.onnx"): "is not a robosat_effnet model (no robosat_effnet.spec metadata)",
        garbage: "corrupt",
        truncated: "corrupt",
        tiny_model(tmp_path / "a" / "up.onnx", spec, external="../outside.bin"): "outside its own folder",
        tiny_model(tmp_path / "b" / "abs.onnx", spec, external=str(tmp_path / "abs.bin")): "outside its own folder",
        tmp_path / "missing.onnx": "does not exist",
        tiny_model(tmp_path / "c" / "bands.onnx", ModelSpec(in_channels=4, mean=[0.4] * 4, std=[0.2] * 4)):
            "but its metadata says 4 bands",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_onnx(path)
        result = invoke("predict", images, tmp_path / f"out-{path.stem}", "--checkpoint", path, "--quiet")
        assert message in one_line_error(result)
        assert not tile_files(tmp_path / f"out-{path.stem}") if (tmp_path / f"out-{path.stem}").exists() else True


def metadata_model(path: Path, spec: dict | str, divisor: str | None = None, channels: object = 2) -> Path:
    """A hand-made graph (a 3-band image in, its first two bands doubled out as logits) whose output shape gives
    `channels` (an int, or a name: a size the graph leaves open), with `spec` (a dict over a good 2-class
    ModelSpec's fields, or raw JSON text) and `divisor` as its metadata."""
    weight = numpy_helper.from_array(np.full((1, 3, 1, 1), 2.0, np.float32), name="w")
    bounds = [numpy_helper.from_array(np.array([v], np.int64), name=n) for n, v in (("s", 0), ("e", 2), ("a", 1))]
    nodes = [helper.make_node("Mul", ["image", "w"], ["product"]),
             helper.make_node("Slice", ["product", "s", "e", "a"], ["logits"])]
    graph = helper.make_graph(
        nodes, "ours", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", channels, "H", "W"])], [weight, *bounds])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    base = ModelSpec(classes=["background", "building"], colors=["denim", "orange"]).to_dict()
    text = spec if isinstance(spec, str) else json.dumps({**base, **spec})
    entries = {"format": "robosat_effnet", "robosat_effnet.spec": text}
    if divisor is not None:
        entries["robosat_effnet.divisor"] = divisor
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    path.write_bytes(proto.SerializeToString())
    return path


# Metadata the graph or arithmetic contradicts: each is refused when the file is opened, before any tile.
DAMAGED_METADATA = {
    "5 classes over 2 logits": ({"classes": list("abcde"), "colors": ["red"] * 5}, None,
                                "computes logits of shape [None, 2, None, None] but its metadata names 5 classes"),
    "4 bands into a 3-band input": ({"in_channels": 4, "mean": [0.4] * 4, "std": [0.2] * 4}, None,
                                    "but its metadata says 4 bands"),
    "std 0": ({"std": [0.2, 0.0, 0.2]}, None, "damaged std ([0.2, 0.0, 0.2]: positive finite numbers"),
    "std NaN": ('{"std": [0.2, NaN, 0.2]}', None, "damaged std"),
    "std Infinity": ('{"std": [0.2, Infinity, 0.2]}', None, "damaged std"),
    "mean 1e999": ('{"mean": [0.2, 1e999, 0.2]}', None, "damaged mean ([0.2, inf, 0.2]: finite numbers"),
    "max_value 0": ({"max_value": 0}, None, "damaged max_value"),
    "two means for three bands": ({"mean": [0.4, 0.4]}, None, "gives 2 mean, 3 std for 3 input bands"),
    "tile_size 10^9": ({"tile_size": 10**9}, None, "damaged tile_size (1000000000: 1 to 4096 px)"),
    "divisor 0": ({}, "0", "damaged robosat_effnet.divisor metadata entry ('0'"),
    "divisor -32": ({}, "-32", "damaged robosat_effnet.divisor"),
    "divisor text": ({}, "thirty-two", "damaged robosat_effnet.divisor"),
    "divisor 10^30": ({}, str(10**30), "damaged robosat_effnet.divisor"),
}


@pytest.mark.parametrize("case", list(DAMAGED_METADATA))
def test_metadata_the_graph_contradicts_is_refused_when_opened(tmp_path, tiles_run, case):
    spec, divisor, message = DAMAGED_METADATA[case]
    if isinstance(spec, str):  # raw JSON text: overrides written into the good spec's text
        spec = json.dumps(ModelSpec(classes=["background", "building"], colors=["denim", "orange"]).to_dict())[:-1] + \
            ", " + spec[1:]
    path = metadata_model(tmp_path / "m.onnx", spec, divisor)
    for read in (load_onnx, read_spec):
        with pytest.raises(CheckpointError, match=re.escape(message)):
            read(path)
    _, _, images, _ = tiles_run
    result = invoke("predict", images, tmp_path / "out", "--checkpoint", path, "--quiet")
    assert message in one_line_error(result) and not (tmp_path / "out").exists()


def test_the_consistent_hand_made_model_loads_and_runs(tmp_path):
    runner, spec = load_onnx(metadata_model(tmp_path / "m.onnx", {}, "32"))
    assert runner.divisor == 32 and spec.num_classes == 2
    assert torch.equal(runner(torch.ones(1, 3, 32, 32)), torch.full((1, 2, 32, 32), 2.0))


def test_logits_the_graph_leaves_open_are_checked_when_computed(tmp_path):
    spec = {"classes": list("abcde"), "colors": ["red"] * 5}
    runner, _ = load_onnx(metadata_model(tmp_path / "m.onnx", spec, channels="K"))  # nothing to check when opened
    with pytest.raises(CheckpointError, match=r"computes logits of shape \(1, 2, 32, 32\) but its metadata names 5"):
        runner(torch.ones(1, 3, 32, 32))


def test_bad_checkpoints_and_output_paths_are_refused_with_one_line(tmp_path, tiles_run):
    pth, model, _, _ = tiles_run
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "not-a-folder").write_text("x")
    foreign = tiny_model(tmp_path / "foreign.onnx")
    before = foreign.read_bytes()
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    for output in (pth, tmp_path / "model.pth"):  # the name alone is wrong: a usage error, nothing read
        usage = invoke("export", pth, output)
        assert usage.exit_code == 2 and "must end in .onnx" in usage.output, usage.output
    cases = [
        ((pth, tmp_path / "folder.onnx"), "is a folder"),
        # outputs.checks names the file in the way before anything is written (the merged h31c wording)
        ((pth, tmp_path / "not-a-folder" / "m.onnx"), "not-a-folder is a file, not a folder; choose another output"),
        ((pth, model), "already exists; pass --overwrite"),
        ((pth, foreign, "--overwrite"), "is not a model exported by robosat_effnet; refusing to overwrite"),
        ((model, tmp_path / "again.onnx"), "is already an exported model"),
        ((broken, tmp_path / "x.onnx"), "is not a robosat_effnet checkpoint"),
    ]
    for args, message in cases:
        assert message in one_line_error(invoke("export", *args))
    assert foreign.read_bytes() == before and not (tmp_path / "x.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # nothing half-written left behind
    assert invoke("export", tmp_path / "nope.pth", tmp_path / "y.onnx").exit_code == 2  # click: no such file

    again = invoke("export", pth, tmp_path / "fresh.onnx")
    assert again.exit_code == 0 and "efficientnet-b0 unet, 2 classes (background, building)" in again.output
    assert invoke("export", pth, tmp_path / "fresh.onnx", "--overwrite").exit_code == 0  # ours: may be replaced


def test_missing_onnxruntime_or_onnx_says_what_to_install(tmp_path, tiles_run, monkeypatch):
    pth, model, images, _ = tiles_run
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'robosat_effnet\[onnx\]'"):
        load_onnx(model)
    result = invoke("predict", images, tmp_path / "out", "--checkpoint", model, "--quiet")
    assert "pip install 'robosat_effnet[onnx]'" in one_line_error(result)
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert "pip install 'robosat_effnet[onnx]'" in one_line_error(invoke("export", pth, tmp_path / "m.onnx"))
