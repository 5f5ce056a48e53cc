"""Reduced precision: bf16 autocast for predict/eval, int8 ONNX exports calibrated on tiles.

All on the session's tiny trained model (conftest's trained_run), whose masks hold both classes, so that
agreement between precisions is not the trivial agreement of one class everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import one_line_error
from robosat_effnet.cli import main
from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.evaluation.evaluate import evaluate
from robosat_effnet.io import read_label
from robosat_effnet.models.checkpoint import load_model
from robosat_effnet.outputs import read_record
from robosat_effnet.outputs.temp import is_temp
from robosat_effnet.predict import Predictor, predict_tiles
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def stack(folder: Path, read=read_label) -> np.ndarray:
    """Every tile of a slippy map, in tile order, as one array."""
    files = tile_files(folder, {".png"})
    assert files, f"no tiles in {folder}"
    return np.stack([read(files[t]) for t in sorted(files)])



@pytest.fixture(scope="module")
def run(trained_run, tmp_path_factory) -> dict:
    """The trained checkpoint, its validation images and labels, and its fp32 masks and probabilities."""
    out = tmp_path_factory.mktemp("precision")
    root = trained_run["dataset"].root
    paths = {"pth": trained_run["checkpoint"], "images": root / "validation" / "images",
             "labels": root / "validation" / "labels", "train_images": root / "training" / "images", "out": out}
    for kind, extra in (("masks", []), ("probs", ["--probs"])):
        result = invoke("predict", paths["images"], out / f"fp32-{kind}", "--checkpoint", paths["pth"], "--quiet",
                        *extra)
        assert result.exit_code == 0 and "wrote 8 " in result.output, result.output
    masks = stack(out / "fp32-masks")
    assert 0.05 < np.mean(masks == 1) < 0.6  # both classes: agreement below is not trivially 1
    return paths


def test_bf16_masks_and_probabilities_agree_with_fp32(run):
    out = run["out"]
    for kind, extra in (("masks", []), ("probs", ["--probs"])):
        result = invoke("predict", run["images"], out / f"bf16-{kind}", "--checkpoint", run["pth"], "--quiet",
                        "--precision", "bf16", *extra)
        assert result.exit_code == 0 and "wrote 8 " in result.output, result.output
    fp32, bf16 = stack(out / "fp32-masks"), stack(out / "bf16-masks")
    assert np.mean(fp32 == bf16) >= 0.95
    p32, p16 = stack(out / "fp32-probs", read_probability), stack(out / "bf16-probs", read_probability)
    difference = float(np.abs(p32 - p16).mean())
    assert 0 < difference <= 0.05  # bf16 really ran (not bit-identical), and stays close
    assert read_record(out / "bf16-masks")["settings"]["precision"] == "bf16"
    assert "precision" not in read_record(out / "fp32-masks")["settings"]  # the default: as before the option


def test_predictor_runs_bf16_only_when_asked(run):
    network, _ = load_model(run["pth"])
    conv = next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d))
    seen: list[torch.dtype] = []
    hook = conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    batch = torch.randn(2, 3, 64, 64)
    try:
        for precision, dtype in (("bf16", torch.bfloat16), (None, torch.float32), ("fp32", torch.float32)):
            seen.clear()
            predictor = Predictor(network, device="cpu", precision=precision)
            probs = predictor(batch)
            assert seen == [dtype] and probs.dtype == torch.float32, precision
            assert predictor.channels_last == (precision == "bf16")  # oneDNN's bf16 kernels want NHWC
    finally:
        hook.remove()
    with pytest.raises(ConfigError, match="fp32, bf16"):
        Predictor(network, device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="fp32, bf16"):
        predict_tiles(run["pth"], run["images"], run["out"] / "never", precision="int4", progress=False)
    assert not (run["out"] / "never").exists()


def test_another_precision_into_the_same_folder_is_another_run(run):
    out = run["out"] / "fp32-masks"
    again = invoke("predict", run["images"], out, "--checkpoint", run["pth"], "--quiet", "--precision", "fp32")
    assert again.exit_code == 0 and "8 already there" in again.output, again.output  # fp32 is the CPU default
    other = one_line_error(invoke("predict", run["images"], out, "--checkpoint", run["pth"], "--quiet",
                                  "--precision", "bf16"))
    assert "precision" in other and "bf16 now" in other and "--overwrite" in other
    unknown = invoke("predict", run["images"], out, "--checkpoint", run["pth"], "--precision", "fp16")
    assert unknown.exit_code == 2 and "bf16" in unknown.output


def test_bf16_eval_scores_as_fp32_does(run):
    a = evaluate(run["pth"], run["images"], run["labels"], progress=False, match_iou=None)
    b = evaluate(run["pth"], run["images"], run["labels"], progress=False, match_iou=None, precision="bf16")
    assert 0.3 < a["miou"] and b["miou"] == pytest.approx(a["miou"], abs=0.02)


@pytest.fixture(scope="module")
def exports(run) -> dict:
    """fp32 and int8 exports of the trained checkpoint (int8 calibrated on its training tiles)."""
    fp32, int8 = run["out"] / "model.onnx", run["out"] / "model-int8.onnx"
    result = invoke("export", run["pth"], fp32)
    assert result.exit_code == 0, result.output
    result = invoke("export", run["pth"], int8, "--int8", "--calibration", run["train_images"],
                    "--calibration-tiles", 8)
    assert result.exit_code == 0 and "int8" in result.output, result.output
    return {"fp32": fp32, "int8": int8}


def test_int8_export_keeps_the_spec_and_agrees_with_fp32(run, exports):
    import onnx

    from robosat_effnet.deploy.export import load_onnx, read_spec

    fp32, int8 = exports["fp32"], exports["int8"]
    proto = onnx.load(str(int8))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["robosat_effnet.precision"] == "int8" and meta["format"] == "robosat_effnet"
    assert read_spec(int8) == read_spec(fp32) == load_model(run["pth"])[1]
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in proto.graph.node}
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size  # int8 weights, not float32 ones
    model, _ = load_onnx(int8)
    assert model.precision == "int8" and load_onnx(fp32)[0].precision == "fp32"
    assert not [p for p in int8.parent.iterdir() if is_temp(p.name)]  # written through a temp name, renamed

    out = run["out"]
    for name, model_file in (("onnx-fp32", fp32), ("onnx-int8", int8)):
        result = invoke("predict", run["images"], out / name, "--checkpoint", model_file, "--quiet")
        assert result.exit_code == 0 and "wrote 8 mask tiles" in result.output, result.output
    a, b = stack(out / "onnx-fp32"), stack(out / "onnx-int8")
    assert np.mean(a == b) >= 0.90 and 0.05 < np.mean(b == 1)


def test_bf16_with_an_onnx_model_is_one_line(run, exports):
    for command in (["predict", run["images"], run["out"] / "onnx-bf16", "--checkpoint", exports["int8"]],
                    ["eval", "--checkpoint", exports["fp32"], run["images"], run["labels"]]):
        message = one_line_error(invoke(*command, "--quiet", "--precision", "bf16"))
        assert "onnxruntime" in message and "own precision" in message and "--int8" in message
    assert not (run["out"] / "onnx-bf16").exists()


def test_int8_usage_errors(run, tmp_path):
    missing = invoke("export", run["pth"], tmp_path / "m.onnx", "--int8")
    assert missing.exit_code == 2 and "--calibration" in missing.output
    stray = invoke("export", run["pth"], tmp_path / "m.onnx", "--calibration", run["train_images"])
    assert stray.exit_code == 2 and "--int8" in stray.output
    (tmp_path / "empty").mkdir()
    message = one_line_error(invoke("export", run["pth"], tmp_path / "m.onnx", "--int8", "--calibration",
                                    tmp_path / "empty"))
    assert "no image tiles" in message and "empty" in message
    assert not (tmp_path / "m.onnx").exists()
    from robosat_effnet.deploy.export import export_onnx

    with pytest.raises(ConfigError, match="calibration"):
        export_onnx(run["pth"], tmp_path / "m.onnx", int8=True)
    with pytest.raises(DatasetError, match="no image tiles"):
        export_onnx(run["pth"], tmp_path / "m.onnx", int8=True, calibration=tmp_path / "empty")
