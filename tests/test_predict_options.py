"""predict's options travel as one PredictOptions from the command line to the runner's loop, and the checkpoint is
opened once (one LoadedModel, its file read once) for every product of one `rs-effnet predict`."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from rasterio.transform import from_origin

from robosat_effnet.cli import main
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.models.loaded import LoadedModel, open_model
from robosat_effnet.predict import PredictOptions, predict_tiles, runner
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")


def scene(path: Path) -> Path:
    """A 64 px RGB EPSG:3857 GeoTIFF on one z18 tile."""
    west, _, _, north = mercantile.xy_bounds(mercantile.Tile(70760, 104130, 18))
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8", crs="EPSG:3857",
                       transform=from_origin(west, north, 0.6, 0.6)) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8))
    return path


@pytest.fixture
def loops(monkeypatch) -> list[PredictOptions]:
    """The options each call of the runner's loop received (the loop itself still runs)."""
    seen: list[PredictOptions] = []
    original = runner._loop

    def spy(loader, tiles, predictor, spec, output, options, *rest):
        seen.append(options)
        return original(loader, tiles, predictor, spec, output, options, *rest)

    monkeypatch.setattr(runner, "_loop", spy)
    return seen


# Every option of `rs-effnet predict` that becomes a field, away from its default.
ARGS = ["--border", "16", "--probs", "--tta", "--threshold", "0.3", "--bands", "3,2,1", "--batch-size", "3",
        "--workers", "1", "--device", "cpu", "--precision", "fp32", "--overwrite", "--shard", "0/1", "--quiet",
        "--resampling", "cubic", "--max-tiles", "500", "--window", "256", "--overlap", "32"]
EXPECTED = PredictOptions(border=16, probs=True, tta=True, threshold=0.3, bands=(3, 2, 1), batch_size=3, workers=1,
                          device="cpu", precision="fp32", overwrite=True, shard=(0, 1), progress=False,
                          resampling="cubic", max_tiles=500, window=256, overlap=32)


def test_every_option_set_on_the_command_line_reaches_the_loop_unchanged(tmp_path, tiles, random_checkpoint, loops):
    result = CliRunner().invoke(main, ["predict", str(tiles), str(tmp_path / "probs"), "--checkpoint",
                                       str(random_checkpoint), *ARGS])
    assert result.exit_code == 0, result.output
    assert loops == [EXPECTED]  # one loop, the whole object: not a field lost or changed on the way
    # ARGS moves every field off its default but tile_size (refused for a tile folder: the next test sets it)
    fields = {f.name for f in dataclasses.fields(PredictOptions)}
    assert {name for name in fields if getattr(EXPECTED, name) != getattr(PredictOptions(), name)} == \
        fields - {"tile_size"}


def test_geotiff_tiles_get_the_same_options_with_the_tile_size(tmp_path, random_checkpoint, loops):
    tif = scene(tmp_path / "scene.tif")
    result = CliRunner().invoke(main, ["predict", str(tif), str(tmp_path / "probs"), "--checkpoint",
                                       str(random_checkpoint), "--zoom", "18", "--tile-size", "32", *ARGS])
    assert result.exit_code == 0, result.output
    assert loops == [dataclasses.replace(EXPECTED, tile_size=32)]


def test_keywords_are_a_front_for_the_options(tmp_path, tiles, random_checkpoint, loops):
    options = PredictOptions(border=0, threshold=0.25, progress=False)
    predict_tiles(random_checkpoint, tiles, tmp_path / "a", options)
    predict_tiles(random_checkpoint, tiles, tmp_path / "b", border=0, threshold=0.25, progress=False)
    predict_tiles(random_checkpoint, tiles, tmp_path / "c", options, probs=True)  # one field changed
    assert loops == [options, options, dataclasses.replace(options, probs=True)]
    assert options.probs is False  # the caller's object is never changed
    with pytest.raises(TypeError, match="unexpected keyword argument 'treshold'; the options are"):
        predict_tiles(random_checkpoint, tiles, tmp_path / "d", treshold=0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.border = 8  # type: ignore[misc]
    assert PredictOptions(bands=[1, 2, 3]).bands == (1, 2, 3)  # a list from a notebook is kept as a value


def test_a_checkpoint_is_opened_once_into_one_type(random_checkpoint):
    loaded = open_model(random_checkpoint, torch.device("cpu"))
    assert (loaded.kind, loaded.path, loaded.spec.tile_size) == ("checkpoint", random_checkpoint, 64)
    assert loaded.sha256 == hashlib.sha256(random_checkpoint.read_bytes()).hexdigest()
    assert open_model(loaded, torch.device("cpu")) is loaded  # opened already: nothing is read again
    network = torch.nn.Conv2d(4, 3, 1)
    bare = open_model(network, torch.device("cpu"))  # a notebook's network: a default spec from the network
    assert (bare.kind, bare.path, bare.sha256, bare.spec.in_channels, bare.spec.num_classes) == \
        ("module", None, None, 4, 3)
    pair = open_model((network, ModelSpec(tile_size=32)), torch.device("cpu"))
    assert isinstance(pair, LoadedModel) and pair.spec.tile_size == 32 and pair.kind == "module"


@pytest.mark.parametrize("source", ["scene", "tiles"])
def test_one_predict_reads_the_checkpoint_file_once(tmp_path, tiles, random_checkpoint, monkeypatch, source):
    """Tiles and the scene mask of one run, or a tile folder: the .pth is opened once, loaded once, and its digest
    (the output record's) comes from those bytes, not from reading it again."""
    tif = scene(tmp_path / "scene.tif")
    args = ["--zoom", "18", "--geotiff", str(tmp_path / "mask.tif"), "--window", "64", "--overlap", "0"] \
        if source == "scene" else []
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(random_checkpoint.read_bytes())
    reads: list[str] = []
    real_open, real_load = builtins.open, torch.load

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, Path)) and Path(file).resolve() == checkpoint.resolve():
            reads.append("open")
        return real_open(file, *args, **kwargs)

    def counting_load(source, *args, **kwargs):
        # torch.load given a path reads the file itself (in C++ for zip files): that counts as a read too
        reads.append("torch.load(path)" if isinstance(source, (str, Path)) else "torch.load(bytes)")
        return real_load(source, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(torch, "load", counting_load)
    result = CliRunner().invoke(main, ["predict", str(tif if source == "scene" else tiles), str(tmp_path / "masks"),
                                       "--checkpoint", str(checkpoint), *args, "--border", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(tile_files(tmp_path / "masks")) == (1 if source == "scene" else 2)
    assert (tmp_path / "mask.tif").is_file() == (source == "scene")
    assert reads == ["open", "torch.load(bytes)"]
    record = json.loads((tmp_path / "masks" / ".rs-effnet.json").read_text())
    assert record["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()


def test_an_exported_model_is_read_once_too(tmp_path, tiles, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from robosat_effnet.deploy.export import export_onnx

    torch.manual_seed(0)
    onnx_file = export_onnx((torch.nn.Conv2d(3, 2, 1), ModelSpec(tile_size=64)), tmp_path / "model.onnx")
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, Path)) and Path(file).resolve() == onnx_file.resolve():
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    sessions: list[type] = []
    real_session = ort.InferenceSession

    def session(source, *args, **kwargs):  # given a path, onnxruntime reads the file itself (in C++)
        sessions.append(type(source))
        return real_session(source, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(ort, "InferenceSession", session)
    result = predict_tiles(onnx_file, tiles, tmp_path / "masks", border=0, progress=False)
    # one read, ours: onnxruntime runs the bytes read for the checks, and the record's digest is theirs
    assert result.written == 2 and len(opened) == 1 and sessions == [bytes]
    record = json.loads((tmp_path / "masks" / ".rs-effnet.json").read_text())
    assert record["checkpoint_sha256"] == hashlib.sha256(onnx_file.read_bytes()).hexdigest()
