"""Training and prediction preprocess the same way, from what the checkpoint records: uint16 scaling by
max_value, band order, per-channel mean/std; and no-data pixels in probability tiles."""

from __future__ import annotations

import mercantile
import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from torch import nn

from conftest import ZOOM, make_dataset
from robosat_effnet.config import load_dataset_config
from robosat_effnet.io import write_image
from robosat_effnet.models.checkpoint import ModelSpec, load_model
from robosat_effnet.predict import Predictor, predict_tiles, read_probability
from robosat_effnet.tiles import tile_files, tile_path
from robosat_effnet.training.datasets import SegmentationTiles, find_samples
from robosat_effnet.training.loop import train

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")]

MAX_VALUE = 4095.0  # 12-bit data in uint16 tiles
MEAN, STD = [0.1, 0.3, 0.5], [0.2, 0.25, 0.4]
BANDS = [3, 2, 1]


class Recorder(nn.Module):
    """Passes its input to `net`, keeping a copy: what the predictor actually feeds the network."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.inputs = net, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.net(x)


@pytest.fixture(scope="module")
def uint16_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("u16")
    data = make_dataset(tmp, n_train=2, n_val=2, size=32, ext="tif",
                        model={"epochs": 1, "batch_size": 2, "augment": False},
                        dataset={"bands": BANDS, "mean": MEAN, "std": STD, "max_value": MAX_VALUE})
    rng = np.random.default_rng(0)
    for path in sorted(data.root.rglob("images/*/*/*.tif")):
        # 4 bands of clearly different levels, so that a wrong band order or scale shows
        levels = np.array([100, 1200, 2600, 4000], np.float64)
        write_image(path, (levels + rng.integers(0, 90, (32, 32, 4))).astype(np.uint16))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    return data, result


def by_hand(path) -> torch.Tensor:
    """The network input for a tile, from the definition: bands 3, 2, 1 / max_value, then (x - mean) / std."""
    with rasterio.open(path) as src:
        raw = src.read().astype(np.float64)
    scaled = raw[[b - 1 for b in BANDS]] / MAX_VALUE
    return torch.from_numpy((scaled - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]).float()


def test_checkpoint_records_the_preprocessing(uint16_run):
    _, result = uint16_run
    spec = load_model(result["last"])[1]
    assert (spec.bands, spec.max_value, spec.mean, spec.std, spec.in_channels) == (BANDS, MAX_VALUE, MEAN, STD, 3)


def test_trainer_and_predictor_feed_the_network_the_same_tensor(uint16_run, tmp_path):
    data, result = uint16_run
    config = load_dataset_config(data.dataset_toml)
    samples = find_samples(config, "validation")
    trainer_inputs = SegmentationTiles.from_config(config, samples, size=32)
    model, spec = load_model(result["last"])
    recorder = Recorder(model)
    predict_tiles((recorder, spec), data.root / "validation" / "images", tmp_path / "masks", border=0,
                  batch_size=1, progress=False)
    fed = torch.cat(recorder.inputs)
    assert fed.shape == (len(samples), 3, 32, 32)
    # predict_tiles goes through the tiles sorted by (z, x // 8, y, x); find_samples by (z, x, y)
    order = sorted(range(len(samples)), key=lambda i: (samples[i].tile.z, samples[i].tile.x // 8,
                                                       samples[i].tile.y, samples[i].tile.x))
    for position, index in enumerate(order):
        trained_on = trainer_inputs[index][0]
        assert torch.equal(trained_on, fed[position]), samples[index].tile  # exactly the same tensor
        torch.testing.assert_close(trained_on, by_hand(samples[index].images[0]), atol=1e-5, rtol=1e-5)


def test_probability_tiles_are_zero_where_there_is_no_data(tmp_path):
    """Transparent pixels get probability 0 (robosat's format has no no-data level); the rest is the model's."""
    conv = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [2.0, -1.0, 0.5]])[..., None, None])
        conv.bias.copy_(torch.tensor([0.0, 0.3]))
    spec = ModelSpec(tile_size=64)
    rgba = np.random.default_rng(1).integers(0, 255, (64, 64, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :24, 3] = 0
    tile = mercantile.Tile(70700, 104100, ZOOM)
    path = tile_path(tmp_path / "in", tile, "png")
    path.parent.mkdir(parents=True)
    Image.fromarray(rgba, "RGBA").save(path)
    predict_tiles((conv, spec), tmp_path / "in", tmp_path / "probs", probs=True, border=0, progress=False)
    probs = read_probability(tile_files(tmp_path / "probs")[tile])
    assert (probs[:, :24] == 0).all()
    mean, std = np.array(spec.mean), np.array(spec.std)
    x = torch.from_numpy(((rgba[..., :3] / 255 - mean) / std).transpose(2, 0, 1)).float()[None]
    expected = Predictor(conv, device="cpu")(x)[0, 1].numpy()
    assert np.abs(probs[:, 24:] - expected[:, 24:]).max() <= 0.5 / 255 + 1e-4
    assert (expected[:, :24] > 2 / 255).mean() > 0.5  # the model alone would have put probability there
